"""Eager ops against numpy, and the same ops traced + compiled against their eager results."""
import numpy as np
import pytest

import tostatic as paddle
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.jit import to_static
from tostatic.static import InputSpec

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4)).astype("float32")
B = rng.standard_normal((4,)).astype("float32")
M = rng.standard_normal((4, 5)).astype("float32")

CASES = [
    ("add", lambda p, a, b: p.add(a, b), lambda a, b: a + b),
    ("subtract", lambda p, a, b: p.subtract(a, b), lambda a, b: a - b),
    ("multiply", lambda p, a, b: a * b, lambda a, b: a * b),
    ("divide", lambda p, a, b: a / b, lambda a, b: a / b),
    ("floor_divide", lambda p, a, b: p.floor_divide(a, b), np.floor_divide),
    ("floordiv_operator", lambda p, a, b: 2.0 // (a // 0.5), lambda a, b: 2.0 // (a // 0.5)),
    ("scale", lambda p, a, b: a * 2.0 + 1.0, lambda a, b: a * 2.0 + 1.0),
    ("rsub", lambda p, a, b: 1.0 - a, lambda a, b: 1.0 - a),
    ("neg", lambda p, a, b: -a, lambda a, b: -a),
    ("relu", lambda p, a, b: p.nn.functional.relu(a), lambda a, b: np.maximum(a, 0)),
    ("sum_all", lambda p, a, b: p.sum(a), lambda a, b: a.sum()),
    ("sum_axis", lambda p, a, b: p.sum(a, axis=1, keepdim=True), lambda a, b: a.sum(1, keepdims=True)),
    ("mean", lambda p, a, b: p.mean(a, axis=0), lambda a, b: a.mean(0)),
    ("reshape", lambda p, a, b: p.reshape(a, [0, 2, -1]), lambda a, b: a.reshape(3, 2, 2)),
    ("transpose", lambda p, a, b: p.transpose(a, [1, 0]), lambda a, b: a.T),
    ("compare", lambda p, a, b: a > b, lambda a, b: a > b),
    ("cast", lambda p, a, b: p.cast(a > 0.0, "int64") * 3, lambda a, b: (a > 0).astype("int64") * 3),
]


@pytest.mark.parametrize("name,ours,ref", CASES, ids=[c[0] for c in CASES])
def test_eager_matches_numpy(name, ours, ref):
    out = ours(paddle, paddle.to_tensor(A), paddle.to_tensor(B))
    want = np.asarray(ref(A, B))
    assert out.shape == list(want.shape)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6, atol=1e-6)
    assert out.numpy().dtype == want.dtype


@pytest.mark.parametrize("name,ours,ref", CASES, ids=[c[0] for c in CASES])
def test_compiled_matches_numpy(name, ours, ref, tmp_path):
    fn = to_static(lambda a, b: ours(paddle, a, b),
                   input_spec=[InputSpec([None, 4], "float32", "a"), InputSpec([4], "float32", "b")])
    prefix = str(tmp_path / name)
    paddle.jit.save(fn, prefix)
    got = paddle.jit.load(prefix)(A, B).numpy()
    want = np.asarray(ref(A, B))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_matmul_and_creation():
    np.testing.assert_allclose(paddle.matmul(paddle.to_tensor(A), paddle.to_tensor(M)).numpy(),
                               A @ M, rtol=1e-6)
    np.testing.assert_allclose(paddle.matmul(paddle.to_tensor(M), paddle.to_tensor(A),
                                             transpose_x=True, transpose_y=True).numpy(),
                               M.T @ A.T, rtol=1e-6)
    assert paddle.ones([2, 3], "int32").numpy().tolist() == [[1, 1, 1]] * 2
    assert paddle.full([2], 1.5).numpy().tolist() == [1.5, 1.5]
    assert paddle.arange(5).numpy().tolist() == [0, 1, 2, 3, 4]
    assert paddle.arange(5).dtype == paddle.int64
    assert paddle.to_tensor(1.5).dtype == paddle.float32
    assert paddle.to_tensor([1, 2]).dtype == paddle.int64
    paddle.seed(3)
    a = paddle.rand([2, 2]).numpy()
    paddle.seed(3)
    assert np.array_equal(a, paddle.rand([2, 2]).numpy()) and (0 <= a).all() and (a < 1).all()
    assert paddle.randn([1000]).numpy().std() == pytest.approx(1.0, abs=0.1)


def test_shape_mismatch_is_an_error_naming_op_shapes_and_line():
    with pytest.raises(ShapeError, match=r"pd.matmul.*\[3, 4\].*\[3, 4\]"):
        paddle.matmul(paddle.to_tensor(A), paddle.to_tensor(A))
    fn = to_static(lambda a: paddle.matmul(a, a), input_spec=[InputSpec([2, 4])])
    with pytest.raises(ShapeError, match=r"test_eager_ops.py:\d+"):
        fn.concrete_program


def test_dygraph_only_code_in_to_static_names_the_users_line():
    def uses_numpy(x):
        return paddle.to_tensor(x.numpy() * 2)

    def bool_outside_a_condition(x):  # an `if` on a tensor itself is converted (pd.if)
        flag = bool(paddle.mean(x) > 0)
        return x if flag else -x

    for fn in (uses_numpy, bool_outside_a_condition):
        with pytest.raises(UnsupportedError, match=r"test_eager_ops.py:\d+"):
            to_static(fn, input_spec=[InputSpec([None, 4])]).concrete_program


def test_static_function_call_runs_compiled_program_on_live_parameters():
    layer = paddle.nn.Linear(4, 2)
    st = to_static(layer, input_spec=[InputSpec([None, 4], "float32", "x")])
    x = paddle.to_tensor(A)
    np.testing.assert_allclose(st(x).numpy(), A @ layer.weight.numpy() + layer.bias.numpy(),
                               rtol=1e-6)
    layer.weight.set_value(np.ones((4, 2), "float32"))  # training changed the weights
    np.testing.assert_allclose(st(x).numpy(), A @ np.ones((4, 2)) + layer.bias.numpy(), rtol=1e-5)


def test_flatten_layer_and_function():
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    assert paddle.nn.Flatten()(paddle.to_tensor(x)).shape == [2, 12]
    np.testing.assert_array_equal(paddle.nn.functional.flatten(paddle.to_tensor(x)).numpy(),
                                  x.reshape(-1))
    fn = to_static(lambda a: paddle.nn.functional.flatten(a, 1), input_spec=[InputSpec([None, 3, 4])])
    assert fn(paddle.to_tensor(x)).shape == [2, 12]


@pytest.mark.interop
def test_floor_divide_rounds_like_paddle_and_runs_in_paddle_inference(tmp_path, real_paddle):
    """Integer floor division of mixed signs: eager against Paddle's eager, the exported file
    in paddle.inference."""
    from conftest import paddle_predict

    x = np.array([[7, -7, 5, -5], [9, 0, -1, 1]], dtype="int64")
    y = np.array([2, 2, -3, -3], dtype="int64")
    want = real_paddle.floor_divide(real_paddle.to_tensor(x), real_paddle.to_tensor(y)).numpy()
    np.testing.assert_array_equal(paddle.floor_divide(paddle.to_tensor(x),
                                                      paddle.to_tensor(y)).numpy(), want)
    fn = to_static(lambda a, b: a // b, input_spec=[InputSpec([None, 4], "int64", "a"),
                                                    InputSpec([4], "int64", "b")])
    paddle.jit.save(fn, str(tmp_path / "fd"))
    (got,) = paddle_predict(tmp_path / "fd.pdmodel", None, {"a": x, "b": y})
    np.testing.assert_array_equal(got, want)
