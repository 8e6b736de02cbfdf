"""Property tests (hypothesis) of codegen's generated kernels against the ops' numpy `eager`:
fused elementwise chains over broadcast operands of every numeric dtype, softmax / log_softmax
and layer_norm rows, reductions, depthwise convolution with its epilogue, and pooling.
tests/test_codegen_kernels.py covers the same families on fixed seeded cases; here hypothesis
draws the shapes, axes and attributes and shrinks a failure to its smallest case."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_codegen_kernels import _f, _op, random_array, tolerance
from tostatic.codegen import elementwise
from tostatic.codegen.kernels import kernel_for
from tostatic.ir import scalar_expr as se
from tostatic.ir.opdef import REGISTRY
from tostatic.ops import activation, conv, layer_norm, math_unary, pooling, reduction

pytestmark = pytest.mark.usefixtures("compiled_kernels")

SETTINGS = settings(max_examples=25, deadline=None)
NUMERIC = ("float32", "float64", "int32", "int64")
# ops a chain draws from: (op name, arity, dtypes it is drawn for)
CHAIN_OPS = [("pd.add", 2, NUMERIC), ("pd.subtract", 2, NUMERIC), ("pd.multiply", 2, NUMERIC),
             ("pd.maximum", 2, NUMERIC), ("pd.minimum", 2, NUMERIC), ("pd.relu", 1, NUMERIC),
             ("pd.abs", 1, NUMERIC), ("pd.tanh", 1, ("float32", "float64")),
             ("pd.sigmoid", 1, ("float32", "float64")), ("pd.exp", 1, ("float32", "float64"))]


@st.composite
def broadcast_operands(draw, n):
    """n shapes that broadcast together, and the broadcast shape."""
    base = draw(st.lists(st.integers(1, 7), min_size=0, max_size=4))
    shapes = []
    for _ in range(n):
        s = [1 if draw(st.booleans()) and draw(st.booleans()) else d for d in base]
        shapes.append(tuple(s[draw(st.integers(0, len(s))):] if draw(st.booleans()) else s))
    return shapes


@st.composite
def chains(draw):
    dtype = draw(st.sampled_from(NUMERIC))
    ops = [o for o in CHAIN_OPS if dtype in o[2]]
    steps = draw(st.lists(st.tuples(st.sampled_from(ops), st.integers(0, 2)), min_size=1,
                          max_size=5))
    return dtype, [(name, arity, other) for (name, arity, _), other in steps]


@SETTINGS
@given(chains(), broadcast_operands(3), st.booleans(), st.integers(0, 2**16))
def test_fused_chains_match_op_by_op_numpy(chain, shapes, strided, seed):
    dtype, steps = chain
    rng = np.random.default_rng(seed)
    arrays = [random_array(rng, s, dtype) * (1 if dtype in se.INTS else 0.3) for s in shapes]
    if strided:  # operands as non-contiguous views holding the same values
        arrays = [np.repeat(a, 2, axis=-1)[..., ::2] if a.ndim else a for a in arrays]
    args = [se.arg(i, dtype) for i in range(3)]
    expr, value = args[0], arrays[0]
    for name, arity, other in steps:
        cls = REGISTRY[name]
        attrs = cls.normalize_attrs({})
        expr = cls.SCALAR(*([expr] if arity == 1 else [expr, args[other]]), **attrs)
        with np.errstate(all="ignore"):
            value = cls.run_eager([value] if arity == 1 else [value, arrays[other]], attrs)[0]
    got = elementwise.ElementwiseKernel(expr, [dtype] * 3)(*arrays)[0]
    assert got.shape == value.shape and got.dtype == value.dtype
    np.testing.assert_allclose(got, value, **tolerance(dtype), err_msg=str(steps))


def shapes_and_axis(min_rank=1):
    return st.lists(st.integers(1, 40), min_size=min_rank, max_size=4).flatmap(
        lambda s: st.tuples(st.just(tuple(s)), st.integers(-len(s), len(s) - 1)))


@SETTINGS
@given(shapes_and_axis(), st.sampled_from(["float32", "float64"]),
       st.sampled_from([activation.Softmax, math_unary.LogSoftmax]), st.integers(0, 2**16))
def test_softmax_rows(shape_axis, dtype, cls, seed):
    shape, axis = shape_axis
    x = random_array(np.random.default_rng(seed), shape, dtype)
    got = kernel_for(_op(cls, [_f(dtype, shape)], axis=axis))(x)[0]
    np.testing.assert_allclose(got, cls.eager(x, axis), rtol=1e-5, atol=1e-6)


@SETTINGS
@given(st.lists(st.integers(1, 40), min_size=2, max_size=4).flatmap(
           lambda s: st.tuples(st.just(tuple(s)), st.integers(1, len(s) - 1))),
       st.sampled_from(["float32", "float64"]),
       st.sampled_from([layer_norm.LayerNorm, layer_norm.LayerNormScaleOnly,
                        layer_norm.LayerNormBiasOnly, layer_norm.LayerNormPlain]),
       st.integers(0, 2**16))
def test_layer_norm_rows(shape_axis, dtype, cls, seed):
    shape, axis = shape_axis  # Paddle's rule: at least one row dim
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype)
    cols = int(np.prod(shape[axis:]))
    weights = [random_array(rng, (cols,), dtype) for _ in cls.WEIGHTS]
    op = _op(cls, [_f(dtype, shape)] + [_f(dtype, (cols,))] * len(weights), epsilon=1e-5,
             begin_norm_axis=axis)
    got = kernel_for(op)(x, *weights)
    want = cls.run_eager([x, *weights], op.attr_values())
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-5)


@st.composite
def reductions(draw):
    shape = tuple(draw(st.lists(st.integers(1, 12), min_size=1, max_size=4)))
    axes = tuple(draw(st.lists(st.integers(0, len(shape) - 1), min_size=1,
                               max_size=len(shape), unique=True)))
    return shape, axes, draw(st.booleans())


@SETTINGS
@given(reductions(), st.sampled_from([reduction.Sum, reduction.Mean, reduction.Max,
                                      reduction.Min]),
       st.sampled_from(NUMERIC), st.integers(0, 2**16))
def test_reductions(case, cls, dtype, seed):
    shape, axes, keepdim = case
    x = random_array(np.random.default_rng(seed), shape, dtype)
    op = _op(cls, [_f(dtype, shape)], axis=axes, keepdim=keepdim)
    want = cls.run_eager([x], op.attr_values())[0]
    got = kernel_for(op)(x)[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, **(tolerance(dtype) if dtype in se.INTS
                                             else dict(rtol=1e-5, atol=1e-5)))


@st.composite
def depthwise_cases(draw):
    c, m, k = draw(st.integers(2, 40)), draw(st.integers(1, 2)), draw(st.sampled_from([1, 3, 5]))
    stride, dil = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    pads = tuple(draw(st.lists(st.integers(0, 2), min_size=4, max_size=4)))
    span = dil * (k - 1) + 1
    h = draw(st.integers(max(1, span - pads[0] - pads[1]), 20))
    w = draw(st.integers(max(1, span - pads[2] - pads[3]), 20))
    return c, m, k, stride, dil, pads, h, w, draw(st.integers(1, 2))


@SETTINGS
@given(depthwise_cases(), st.integers(0, 2**16))
def test_depthwise_convolution(case, seed):
    c, m, k, s, d, pads, h, w, n = case
    rng = np.random.default_rng(seed)
    x = random_array(rng, (n, c, h, w), "float32")
    weight = random_array(rng, (c * m, 1, k, k), "float32")
    op = _op(conv.DepthwiseConv2D, [_f("float32", x.shape), _f("float32", weight.shape)],
             strides=(s, s), paddings=pads, dilations=(d, d), groups=c)
    want = conv.DepthwiseConv2D.run_eager([x, weight], op.attr_values())[0]
    np.testing.assert_allclose(kernel_for(op)(x, weight)[0], want, rtol=1e-5, atol=1e-5)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = (draw(st.integers(0, (kh - 1) // 2)), draw(st.integers(0, (kw - 1) // 2)))
    h, w = draw(st.integers(kh, 20)), draw(st.integers(kw, 20))
    return dict(pooling_type=draw(st.sampled_from(["max", "avg"])), ksize=(kh, kw),
                strides=(sh, sw), paddings=pads, ceil_mode=draw(st.booleans()),
                exclusive=draw(st.booleans())), (draw(st.integers(1, 2)),
                                                 draw(st.integers(1, 9)), h, w)


@SETTINGS
@given(pool_cases(), st.sampled_from(["float32", "float64"]), st.integers(0, 2**16))
def test_pool2d(case, dtype, seed):
    attrs, shape = case
    x = random_array(np.random.default_rng(seed), shape, dtype)
    op = _op(pooling.Pool2D, [_f(dtype, shape)], **attrs)
    want = pooling.Pool2D.run_eager([x], op.attr_values())[0]
    np.testing.assert_allclose(kernel_for(op)(x)[0], want, rtol=1e-6, atol=1e-6)
