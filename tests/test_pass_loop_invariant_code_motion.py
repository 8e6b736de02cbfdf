"""loop-invariant-code-motion and constant conditions in constant-folding: what a loop
recomputes from invariants runs once before it, a branch a constant condition never takes
is gone; the results stay those of the eager run (numpy-backed Python control flow)."""
import os

import numpy as np
import pytest

import tostatic as paddle
from tostatic.ops.control_flow import If, While
from tostatic.ops.activation import Exp
from tostatic.static import InputSpec

from conftest import paddle_predict


def nested(x, w, n):
    i = 0
    while i < n:
        scale = paddle.exp(w) * 2.0  # invariant of the outer loop
        j = 0
        while j < n:
            bias = paddle.tanh(w) + 1.0  # invariant of both loops
            x = x * 0.5 + scale + bias
            j += 1
        i += 1
    return x


SPECS = [InputSpec([3], "float32", "x"), InputSpec([3], "float32", "w"),
         InputSpec([], "int64", "n")]
X = np.array([1, 2, 3], np.float32)
W = np.array([0.1, 0.2, 0.3], np.float32)


def _ops_in_loops(module):
    found = []
    for op in module.walk():
        if isinstance(op, While):
            found += [type(inner).__name__ for inner in op.body.block.walk()]
    return found


def test_invariants_leave_both_loops_and_results_hold(tmp_path):
    sf = paddle.jit.to_static(nested, input_spec=SPECS)
    module = sf.concrete_program.module
    inside = _ops_in_loops(module)
    assert "Exp" not in inside and "Tanh" not in inside
    assert sum(isinstance(op, Exp) for op in module.walk()) == 1
    path = str(tmp_path / "nested")
    paddle.jit.save(sf, path)
    loaded = paddle.jit.load(path)
    for n in (0, 1, 3):
        args = [paddle.to_tensor(X), paddle.to_tensor(W), paddle.to_tensor(np.array(n))]
        want = nested(*args).numpy()
        np.testing.assert_allclose(sf(*args).numpy(), want, rtol=1e-6)
        np.testing.assert_allclose(loaded(*args).numpy(), want, rtol=1e-6)


def test_without_the_pass_they_stay_inside():
    from tostatic.frontend.capture.static_function import trace

    program = trace(nested, SPECS, pipeline="canonicalize,constant-folding,cse")
    assert "Exp" in _ops_in_loops(program.module)


@pytest.mark.interop
def test_hoisted_loops_run_in_paddle_inference(tmp_path, real_paddle):
    sf = paddle.jit.to_static(nested, input_spec=SPECS)
    path = str(tmp_path / "nested")
    paddle.jit.save(sf, path)
    for n in (0, 1, 3):
        want = nested(paddle.to_tensor(X), paddle.to_tensor(W), n).numpy()
        params = path + ".pdiparams"
        got = paddle_predict(path + ".pdmodel", params if os.path.exists(params) else None,
                             {"x": X, "w": W, "n": np.array(n, np.int64)}, onednn=False)[0]
        np.testing.assert_allclose(got, want, rtol=1e-5)


def constant_conditions(x):
    if paddle.full([1], 1.0) > 0.5:  # known while capturing: the else branch is dead
        y = x * 2.0
    else:
        y = x - 1.0
    n = paddle.zeros([1], "int64")
    while n > 3:  # never runs
        y = y + 1.0
        n = n + 1
    return y


def test_a_constant_condition_removes_the_dead_branch_and_loop():
    sf = paddle.jit.to_static(constant_conditions, input_spec=[InputSpec([3], "float32", "x")])
    module = sf.concrete_program.module
    assert not any(isinstance(op, (If, While)) for op in module.walk())
    x = paddle.to_tensor(X)
    np.testing.assert_array_equal(sf(x).numpy(), X * 2)
    np.testing.assert_array_equal(constant_conditions(x).numpy(), X * 2)
