"""Every way into the compiler runs its passes through the PassManager, so the dump options
show them: a traced Layer, a loaded model and a static-mode Program."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tostatic as paddle
from tostatic.static import InputSpec

from conftest import guide_simple_net

RNG = np.random.default_rng(0)


def headers(text: str) -> list[str]:
    """The pass names of the `After <pass>` dump headers, in order."""
    return re.findall(r"After ([a-z-]+)", text)


def test_compile_of_a_loaded_model_shows_the_load_and_export_passes(tmp_path, capsys):
    net = guide_simple_net()()
    net.eval()
    prefix = str(tmp_path / "net")
    paddle.jit.save(net, prefix, input_spec=[InputSpec([None, 10], "float32", "x"),
                                             InputSpec([3], "float32", "y")])
    loaded = paddle.jit.load(prefix)
    compiled = paddle.compile(loaded, dump="after-all")
    passes = headers(capsys.readouterr().err)
    assert passes[:2] == ["raise-from-program", "dead-op-elimination"]
    assert "cse" in passes and passes[-1] == "lower-to-program"
    assert compiled.stages[0] == "program" and compiled.stages[-1] == "lower-to-program"
    x = RNG.standard_normal((4, 10)).astype("float32")
    y = RNG.standard_normal(3).astype("float32")
    w, b = net.linear.weight.numpy(), net.linear.bias.numpy()
    (out,) = compiled(x, y)
    np.testing.assert_allclose(out.numpy(), x @ w + b + y, rtol=1e-5, atol=1e-6)


def test_compile_of_a_static_program_shows_its_passes(static, capsys):
    main, startup = static
    x = paddle.static.data("x", [None, 4], "float32")
    h = paddle.static.nn.fc(x, 3, activation="relu")
    out = h * 2.0 + 1.0
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    compiled = paddle.compile(main, input_spec=["x"], fetch_list=[out], dump="after-all")
    passes = headers(capsys.readouterr().err)
    assert passes[0] == "raise-from-program" and passes[-1] == "lower-to-program"
    state = main.state_dict()
    w, b = np.array(state["fc_0.w_0"]), np.array(state["fc_0.b_0"])
    xv = RNG.standard_normal((5, 4)).astype("float32")
    (got,) = compiled(xv)
    np.testing.assert_allclose(got.numpy(), np.maximum(xv @ w + b, 0) * 2.0 + 1.0,
                               rtol=1e-5, atol=1e-6)
    (by_executor,) = exe.run(main, feed={"x": xv}, fetch_list=[out])
    np.testing.assert_allclose(got.numpy(), by_executor, rtol=1e-6)


def test_compile_of_a_static_program_needs_its_fetches(static):
    main, _ = static
    paddle.static.data("x", [None, 4], "float32")
    with pytest.raises(ValueError, match="fetch_list"):
        paddle.compile(main, input_spec=["x"])
