"""Each pass does what its docstring says, and leaves alone what it must not touch."""
import numpy as np
import pytest

import tostatic as paddle
from tostatic.frontend.capture.static_function import trace
from tostatic.ops.core import Capture, Constant, Persistable
from tostatic.passes.base import entry
from tostatic.passes.manager import run_pipeline
from tostatic.passes.pipeline import parse_pipeline
from tostatic.static import InputSpec


def _ops(cp):
    return [op.name for op in entry(cp.module).body.block.ops]


def test_constant_folding_folds_constants_but_never_parameters():
    layer = paddle.nn.Linear(2, 2)

    def fn(x):
        c = paddle.full([2], 3.0) * 2.0 + 1.0  # foldable: only constants
        w = layer.weight * 2.0  # a parameter: must stay an op on a persistable
        return paddle.matmul(x, w) + c

    cp = trace(fn, [InputSpec([None, 2])], layer)  # default pipeline ends with DCE
    ops = _ops(cp)
    assert ops.count("pd.scale") == 1  # the one on the weight
    consts = [op for op in entry(cp.module).body.block.ops if isinstance(op, Constant)]
    assert len(consts) == 1
    x = np.ones((1, 2), "float32")
    np.testing.assert_allclose(cp.plan().run([x])[0],
                               x @ (layer.weight.numpy() * 2) + 7.0, rtol=1e-6)


def test_constant_folding_respects_max_elements():
    def fn(x):
        return x + paddle.full([64], 1.0) * 2.0

    small = trace(fn, [InputSpec([64])], pipeline="constant-folding{max-elements=8}")
    assert "pd.scale" in _ops(small)
    big = trace(fn, [InputSpec([64])], pipeline="constant-folding{max-elements=64}")
    assert "pd.scale" not in _ops(big)


def test_dead_op_elimination_removes_unused_chains_but_keeps_effects():
    def fn(x):
        unused = paddle.relu(x) * 3.0  # noqa: F841  (dead chain)
        paddle.rand([2])  # random: has an effect, stays
        return x + 1.0

    cp = trace(fn, [InputSpec([2])], pipeline="dead-op-elimination")
    assert _ops(cp) == ["pd.uniform", "pd.scale", "func.return"]


def test_persistable_extraction_names_parameters_and_snapshots_them():
    layer = paddle.nn.Linear(3, 2)
    cp = trace(lambda x: layer(x), [InputSpec([None, 3])], layer, pipeline="")
    assert sum(isinstance(op, Capture) for op in entry(cp.module).body.block.ops) == 2
    run_pipeline(cp.module, cp.state, "persistable-extraction")
    names = sorted(op.attr_values()["var_name"] for op in entry(cp.module).body.block.ops
                   if isinstance(op, Persistable))
    assert names == sorted([layer.weight.name, layer.bias.name])
    assert cp.state.info[layer.weight.name] == {"structured_name": "weight",
                                                "stop_gradient": False, "trainable": True}
    before = cp.state.weights[layer.weight.name].copy()
    layer.weight.set_value(np.zeros((3, 2), "float32"))
    np.testing.assert_array_equal(cp.state.weights[layer.weight.name], before)  # a snapshot


def test_pipeline_string_errors():
    import pytest

    with pytest.raises(ValueError, match="unknown pass 'nope'"):
        parse_pipeline("constant-folding,nope")
    with pytest.raises(ValueError, match="no option"):
        parse_pipeline("constant-folding{max=3}")


def _save_constant_model(tmp_path):
    fn = paddle.jit.to_static(
        lambda x, k: (x + paddle.to_tensor([1.0, 2.0]), k * paddle.to_tensor([3, -4])),
        input_spec=[InputSpec([None, 2], "float32", "x"), InputSpec([2], "int64", "k")])
    paddle.jit.save(fn, str(tmp_path / "m"))
    return {"x": np.zeros((1, 2), "float32"), "k": np.array([2, 5], "int64")}


def test_non_uniform_constants_round_trip_through_assign_value(tmp_path):
    feeds = _save_constant_model(tmp_path)
    a, b = paddle.jit.load(str(tmp_path / "m"))(feeds["x"], feeds["k"])
    np.testing.assert_array_equal(a.numpy(), [[1.0, 2.0]])
    np.testing.assert_array_equal(b.numpy(), [6, -20])


@pytest.mark.interop
def test_real_paddle_runs_our_assign_value(tmp_path, real_paddle):
    from conftest import paddle_predict

    feeds = _save_constant_model(tmp_path)
    a, b = paddle_predict(tmp_path / "m.pdmodel", None, feeds)
    np.testing.assert_array_equal(a, [[1.0, 2.0]])
    np.testing.assert_array_equal(b, [6, -20])
