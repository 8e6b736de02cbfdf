"""`import tostatic` is lazy (tostatic/__init__.py, PEP 562): a deployed model's process
imports the runtime only, and the API's every name still resolves on first use."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tostatic

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "paddle-3.3.1" / "small_cnn"
# what a predictor's process must not pay for before it loads a model
HEAVY = ("xdsl", "llvmlite", "tostatic.ops", "tostatic.passes", "tostatic.frontend",
         "tostatic.jit", "tostatic.nn", "pickletools", "google.protobuf")


def _fresh(code: str) -> dict:
    """What a fresh interpreter running `code` prints as JSON on its last line."""
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(FIXTURE)],
                         text=True, capture_output=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_import_and_config_import_nothing_heavy():
    got = _fresh("""
        import json, sys
        import tostatic
        after_import = sorted(m for m in sys.modules if m.startswith(HEAVY))
        config = tostatic.inference.Config(sys.argv[1] + "/model")
        config.set_cpu_math_library_num_threads(1)
        after_config = sorted(m for m in sys.modules if m.startswith(HEAVY))
        print(json.dumps([after_import, after_config, config.model_file()]))
    """.replace("HEAVY", repr(HEAVY)))
    assert got[0] == [] and got[1] == []
    assert got[2] == str(FIXTURE / "model.pdmodel")


def test_a_fresh_predictor_loads_on_creation_and_matches_paddle():
    """The heavy modules come with create_predictor, and the result is Paddle's (the
    outputs Paddle 3.3.1 computed for the fixture)."""
    z = np.load(FIXTURE / "io.npz")
    meta = json.loads((FIXTURE / "meta.json").read_text())
    got = _fresh("""
        import json, sys
        import numpy as np
        import tostatic
        d = sys.argv[1]
        predictor = tostatic.inference.create_predictor(
            tostatic.inference.Config(d + "/model.pdmodel", d + "/model.pdiparams"))
        z = np.load(d + "/io.npz")
        h = predictor.get_input_handle(predictor.get_input_names()[0])
        h.copy_from_cpu(z[predictor.get_input_names()[0]])
        predictor.run()
        out = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
        print(json.dumps(["xdsl" in sys.modules, out.tolist()]))
    """)
    assert got[0] is True
    np.testing.assert_allclose(np.asarray(got[1], np.float32), z["out0"], rtol=1e-5, atol=1e-6)
    assert len(meta["fetches"]) == 1


def test_every_public_name_resolves():
    names = [n for n in dir(tostatic) if not n.startswith("_")]
    assert {"nn", "jit", "inference", "to_tensor", "float32", "bool", "no_grad"} <= set(names)
    for name in names:
        assert getattr(tostatic, name) is not None, name
    assert tostatic.bool is tostatic.ir.dtypes.bool_  # the one renamed on the way
    assert tostatic.full is tostatic.frontend.tensor.accumulate.full  # (not math's)


def test_paddle_style_use_after_a_lazy_import():
    import tostatic as paddle
    from tostatic import jit, nn

    assert nn is paddle.nn and jit is paddle.jit
    layer = nn.Linear(3, 2)
    x = paddle.to_tensor(np.ones((4, 3), np.float32))
    y = layer(x)
    want = np.ones((4, 3), np.float32) @ layer.weight.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-6)
    assert paddle.static.InputSpec is not None


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'no_such_api'"):
        tostatic.no_such_api  # noqa: B018
    assert not hasattr(tostatic, "no_such_api")
