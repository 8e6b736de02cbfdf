"""benchmarks/flop_bound.py counts a model's multiply-adds by convolution kind: checked on
ResNet-18 against its layers written out by hand (torchvision's 1.81 GMACs)."""
import importlib.util
from pathlib import Path

import pytest


def _flop_bound():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "flop_bound.py"
    spec = importlib.util.spec_from_file_location("flop_bound", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def conv(hw, c_out, c_in, k):
    return hw * hw * c_out * c_in * k * k


def test_resnet18_multiply_adds_by_kind():
    want = {
        "7x7 stem": conv(112, 64, 3, 7),
        "3x3": 4 * conv(56, 64, 64, 3) + sum(3 * conv(hw, c, c, 3)
                                             for hw, c in ((28, 128), (14, 256), (7, 512))),
        "3x3 strided": sum(conv(hw, c, c // 2, 3) for hw, c in ((28, 128), (14, 256), (7, 512))),
        "1x1 strided": sum(conv(hw, c, c // 2, 1) for hw, c in ((28, 128), (14, 256), (7, 512))),
        "classifier": 512 * 1000,
    }
    got = _flop_bound().conv_macs("resnet18")
    assert got == pytest.approx(want)
    assert sum(want.values()) == pytest.approx(1.814e9, rel=1e-3)
