"""The training examples run: LeNet on the generated images reaches > 95% test accuracy and
its export runs (jit.load and paddle.inference agree with the trained model, checked inside
the script); the spiral MLP trains, exports and runs in well under 10 s."""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import train_lenet  # noqa: E402
import train_then_export  # noqa: E402


def test_train_lenet(tmp_path, capsys):
    # one epoch keeps the suite fast; the script's default is two
    assert train_lenet.main(str(tmp_path), epochs=1) > 0.95
    assert (tmp_path / "lenet.pdmodel").exists() and (tmp_path / "lenet.pdiparams").exists()
    assert "accuracy" in capsys.readouterr().out


def test_train_then_export_under_ten_seconds(tmp_path):
    start = time.perf_counter()
    assert train_then_export.main(str(tmp_path)) > 0.9
    assert time.perf_counter() - start < 10
    assert (tmp_path / "mlp.pdiparams.info").exists()
