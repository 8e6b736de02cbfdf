"""Every generated kernel (tostatic.codegen) against its numpy reference (the op's `eager`),
on seeded random shapes, broadcasts, layouts and dtypes: elementwise SCALAR rules of every op
that has one, fused trees, softmax / log_softmax / layer_norm rows, reductions, depthwise
convolution, pooling and conv epilogues; and the host vector code in the assembly."""
from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block

from conftest import emit
from tostatic.codegen import (compiled_kernel, depthwise, depthwise_nhwc, direct_conv_nhwc,
                              elementwise, engine, epilogue, pool, reduce, rows, threads)
from tostatic.codegen.kernels import kernel_for
from tostatic.ir import dtypes
from tostatic.ir import scalar_expr as se
from tostatic.ir.opdef import REGISTRY
from tostatic.ops import activation, conv, layer_norm, math_unary, pooling, reduction

pytestmark = pytest.mark.usefixtures("compiled_kernels")

RNG_SEED = 20261207
ALL_DTYPES = ("float32", "float64", "int32", "int64", "bool")
ELEMENTWISE = sorted((c for c in REGISTRY.values() if c.SCALAR is not None),
                     key=lambda c: c.name)
# attributes beyond the defaults, so that rules see values other than their defaults
ATTR_CASES = {
    "pd.scale": [{"scale": 2.5, "bias": -1.25}, {"scale": -0.5, "bias": 3.0,
                                                 "bias_after_scale": False}],
    "pd.clip": [{"min": -1.5, "max": 2.0}],
    "pd.leaky_relu": [{"alpha": 0.1}],
    "pd.elu": [{"alpha": 0.7}],
    "pd.hardsigmoid": [{"slope": 1 / 6, "offset": 0.5}],
    "pd.gelu": [{"approximate": False}, {"approximate": True}],
    "pd.cast": [{"dtype": dtypes.BY_NAME[d]} for d in ALL_DTYPES],
}
POSITIVE = {"pd.log", "pd.sqrt", "pd.rsqrt", "pd.pow"}


def tolerance(dtype: str) -> dict:
    return {"float32": dict(rtol=1e-5, atol=1e-6),
            "float64": dict(rtol=1e-10, atol=1e-12)}.get(dtype, dict(rtol=0, atol=0))


def random_array(rng, shape, dtype, positive=False, nonzero=False):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in se.INTS:
        lo = 1 if positive else -50
        a = rng.integers(lo, 50, shape).astype(dtype)
        if nonzero:
            a[a == 0] = 7
        return a
    a = rng.standard_normal(shape) * 3
    if positive:
        a = np.abs(a) + 0.1
    return a.astype(dtype)


def broadcast_shapes(rng, n):
    """n shapes that broadcast together: a base shape, each operand dropping leading dims or
    setting dims to 1 at random."""
    rank = int(rng.integers(0, 5))
    base = [int(rng.integers(1, 9)) for _ in range(rank)]
    shapes = []
    for _ in range(n):
        s = [1 if rng.random() < 0.3 else d for d in base]
        drop = int(rng.integers(0, rank + 1)) if rng.random() < 0.3 else 0
        shapes.append(tuple(s[drop:]))
    return shapes


def layout(rng, a):
    """The array as it is, or as a non-contiguous view holding the same values."""
    if a.ndim >= 2 and rng.random() < 0.3:
        return np.ascontiguousarray(np.swapaxes(a, 0, 1)).swapaxes(0, 1)
    if a.ndim >= 1 and rng.random() < 0.2:
        return np.repeat(a, 2, axis=-1)[..., ::2]
    return a


def _cases():
    for cls in ELEMENTWISE:
        for attrs in ATTR_CASES.get(cls.name, [{}]):
            for dtype in ALL_DTYPES:
                yield pytest.param(cls, attrs, dtype, id=f"{cls.name}-{dtype}-{attrs}")


@pytest.mark.parametrize("cls, attrs, dtype", _cases())
def test_each_scalar_rule_matches_the_ops_numpy_kernel(cls, attrs, dtype):
    attrs = cls.normalize_attrs(attrs)
    n = len(cls.INPUTS)
    try:
        expr = cls.SCALAR(*(se.arg(i, dtype) for i in range(n)), **attrs)
    except se.NotScalar:
        pytest.skip(f"{cls.name} has no scalar rule for {dtype}")
    kernel = elementwise.ElementwiseKernel(expr, [dtype] * n)
    rng = np.random.default_rng([RNG_SEED, hash(cls.name) % 1000, ALL_DTYPES.index(dtype)])
    for _ in range(4):
        shapes = broadcast_shapes(rng, n)
        arrays = [layout(rng, random_array(rng, s, dtype, positive=cls.name in POSITIVE,
                                           nonzero=i == 1)) for i, s in enumerate(shapes)]
        with np.errstate(all="ignore"):
            try:
                want = cls.run_eager(arrays, attrs)[0]
            except TypeError:  # hardsigmoid's eager on a 0-D array (numpy gives a scalar)
                assert not shapes[0]
                continue
        got = kernel(*arrays)[0]
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **tolerance(want.dtype.name),
                                   err_msg=f"{cls.name} {dtype} {shapes}")


def test_float32_math_at_the_edges():
    """exp / log / tanh / erf / sigmoid at overflow, underflow, denormals, zero, inf, nan."""
    x = np.array([0.0, -0.0, 1e-30, 1e-40, -1e-40, 88.7, 88.8, 89.0, -87.0, -100.0, -104.5,
                  1e30, -1e30, np.inf, -np.inf, np.nan, 3.4e38, 0.5, 0.625, -0.63, 4.0, 5.0],
                 dtype=np.float32)
    v = se.arg(0, "float32")
    with np.errstate(all="ignore"):
        for expr, ref in [(se.exp(v), np.exp), (se.tanh(v), np.tanh),
                          (se.erf(v), lambda a: math_unary.Erf.eager(a)),
                          (1 / (1 + se.exp(-v)), lambda a: 1 / (1 + np.exp(-a))),
                          (se.log(v), np.log)]:
            got = elementwise.ElementwiseKernel(expr, ["float32"])(x)[0]
            np.testing.assert_allclose(got, ref(x), rtol=2e-6, atol=1e-37, err_msg=str(ref))
        y = np.abs(x)
        np.testing.assert_allclose(elementwise.ElementwiseKernel(se.log(v), ["float32"])(y)[0],
                                   np.log(y), rtol=2e-6)



def test_max_and_min_with_a_constant_agree_with_numpy_at_the_edges():
    """A nonzero constant takes the one-instruction form (emit._maxmin_constant), zero the
    general one: NaN stays NaN, infinities, values equal to the constant, signed zeros, in
    the elementwise kernel (scalar and vector loops) and a GEMM epilogue (vectors only)."""
    edges = [0.0, -0.0, 6.0, -6.0, 5.999999, 6.000001, -2.5, np.inf, -np.inf, np.nan, 1e-40,
             -1e-40, 3.4e38, -3.4e38, 0.5, -0.5, 7.0]
    x = np.array(edges * 3, dtype=np.float32)  # (33+: whole vectors and a remainder)
    v = se.arg(0, "float32")
    cases = [(se.maximum(v, 6.0), lambda a: np.maximum(a, np.float32(6))),
             (se.minimum(v, -2.5), lambda a: np.minimum(a, np.float32(-2.5))),
             (se.minimum(v, np.inf), lambda a: np.minimum(a, np.float32(np.inf))),
             (se.minimum(se.maximum(v, 0), 6), lambda a: np.minimum(np.maximum(a, 0), 6))]
    for expr, ref in cases:
        got = elementwise.ElementwiseKernel(expr, ["float32"])(x)[0]
        want = ref(x)
        assert np.array_equal(got, want, equal_nan=True), (expr, got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want)), (expr, got, want)
    from tostatic.codegen import gemm
    if gemm.available():  # relu6 in registers after the product: x @ identity is x
        expr, kinds = epilogue.epilogue_expr(("relu6",), "float32")
        rows = x.reshape(3, -1)
        out = np.empty_like(rows)
        gemm.PackedGemm("matmul", np.eye(rows.shape[1], dtype=np.float32), expr, kinds)(
            rows, out, [])
        with np.errstate(invalid="ignore"):
            want = np.minimum(np.maximum(rows @ np.eye(rows.shape[1], dtype=np.float32), 0), 6)
        assert np.array_equal(out, want, equal_nan=True)

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_constants_are_told_apart_by_their_bits(dtype):
    """Kernels are memoised by their expression, and Python's -0.0 == 0.0: max(x, -0.0) must
    not reuse relu's kernel (max(x, 0.0)), nor min, nor an add of -0.0 that of 0.0; both
    zeros in one expression stay two constants; a NaN constant equals itself (one
    kernel). Bits against numpy's, for x = -0.0, 0.0, NaN."""
    x = np.array([-0.0, 0.0, np.nan, 1.0] * 9, dtype=dtype)  # (vector loops and a tail)
    v = se.arg(0, dtype)
    for c in (0.0, -0.0, np.nan):
        want_c = np.asarray(c, dtype)
        cases = [(se.maximum(v, c), np.maximum(x, want_c)), (se.minimum(v, c),
                                                              np.minimum(x, want_c)),
                 (v + c, x + want_c), (se.maximum(v, c) + se.minimum(v, -c),
                                       np.maximum(x, want_c) + np.minimum(x, -want_c))]
        for expr, want in cases:
            got = elementwise.ElementwiseKernel(expr, [dtype])(x)[0]
            assert np.array_equal(got, want, equal_nan=True), (expr, got, want)
            number = ~np.isnan(want)  # (a NaN's sign: the hardware's, numpy's too)
            assert np.array_equal(np.signbit(got[number]), np.signbit(want[number])), (
                expr, got, want)
    assert se.const(0.0, dtype) != se.const(-0.0, dtype)
    assert se.maximum(v, np.nan) == se.maximum(v, np.nan)
    assert len({se.maximum(v, np.nan), se.maximum(v, np.nan), se.maximum(v, 0.0)}) == 2


def test_integer_division_never_traps():
    a = np.array([7, -7, 7, -7, 0, np.iinfo(np.int32).min, 5], dtype=np.int32)
    b = np.array([2, 2, -2, -2, 3, -1, 0], dtype=np.int32)
    x, y = se.arg(0, "int32"), se.arg(1, "int32")
    got = elementwise.ElementwiseKernel(se.trunc_div(x, y), ["int32"] * 2)(a, b)[0]
    assert got[:6].tolist() == [3, -3, -3, 3, 0, np.iinfo(np.int32).min] and got[6] == 0


def _fused_tree(rng, dtype, depth=4):
    """A random tree of elementwise ops over 3 inputs, as (expr, numpy function)."""
    v = [se.arg(i, dtype) for i in range(3)]
    steps = []
    e = v[0]
    for k in range(depth):
        other = v[int(rng.integers(0, 3))]
        choice = int(rng.integers(0, 5))
        cls = [REGISTRY["pd.add"], REGISTRY["pd.multiply"], REGISTRY["pd.maximum"],
               REGISTRY["pd.subtract"], REGISTRY["pd.relu"]][choice]
        ins = [e] if cls.name == "pd.relu" else [e, other]
        e = cls.SCALAR(*ins, **cls.normalize_attrs({}))
        steps.append((cls, None if cls.name == "pd.relu" else v.index(other)))
    return e, steps


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_random_fused_trees_match_op_by_op_numpy(dtype):
    rng = np.random.default_rng([RNG_SEED, 7, ALL_DTYPES.index(dtype)])
    for _ in range(5):
        expr, steps = _fused_tree(rng, dtype)
        kernel = elementwise.ElementwiseKernel(expr, [dtype] * 3)
        arrays = [layout(rng, random_array(rng, s, dtype)) for s in broadcast_shapes(rng, 3)]
        value = arrays[0]
        for cls, other in steps:
            ins = [value] if other is None else [value, arrays[other]]
            value = cls.run_eager(ins, cls.normalize_attrs({}))[0]
        np.testing.assert_allclose(kernel(*arrays)[0], value, **tolerance(dtype))


def _op(cls, input_types, **attrs):
    block = Block(arg_types=input_types)
    emit(block, cls, *block.args, **attrs)
    return block.first_op


def _f(dtype, shape):
    return TensorType(dtypes.BY_NAME[dtype].element_type(), list(shape))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_log_softmax_rows(dtype):
    rng = np.random.default_rng([RNG_SEED, 11])
    for shape, axis in [((7, 129), -1), ((3, 33, 17), 1), ((5, 4, 3), 0), ((1000,), 0),
                        ((2, 3, 1), -1)]:
        x = random_array(rng, shape, dtype)
        for cls in (activation.Softmax, math_unary.LogSoftmax):
            op = _op(cls, [_f(dtype, shape)], axis=axis)
            got = kernel_for(op)(x)[0]
            np.testing.assert_allclose(got, cls.eager(x, axis), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [layer_norm.LayerNorm, layer_norm.LayerNormScaleOnly,
                                 layer_norm.LayerNormBiasOnly, layer_norm.LayerNormPlain])
def test_layer_norm_rows(cls):
    rng = np.random.default_rng([RNG_SEED, 13])
    for dtype, shape, axis in [("float32", (4, 128, 768), 2), ("float64", (3, 5, 7), 1),
                               ("float32", (2, 3, 4, 5), 2)]:
        x = random_array(rng, shape, dtype)
        cols = int(np.prod(shape[axis:]))
        weights = [random_array(rng, (cols,), dtype) for _ in cls.WEIGHTS]
        op = _op(cls, [_f(dtype, shape)] + [_f(dtype, (cols,))] * len(weights),
                 epsilon=1e-5, begin_norm_axis=axis)
        got = kernel_for(op)(x, *weights)
        want = cls.run_eager([x, *weights], op.attr_values())
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("cls", [reduction.Sum, reduction.Mean, reduction.Max, reduction.Min])
def test_reductions_over_random_axes(cls):
    rng = np.random.default_rng([RNG_SEED, 17])
    for dtype in ALL_DTYPES:
        for _ in range(6):
            shape = tuple(int(d) for d in rng.integers(1, 9, int(rng.integers(1, 5))))
            axes = tuple(int(a) for a in rng.choice(len(shape), int(rng.integers(1, len(shape)
                                                                                  + 1)),
                                                   replace=False))
            keepdim = bool(rng.random() < 0.5)
            x = random_array(rng, shape, dtype)
            try:
                op = _op(cls, [_f(dtype, shape)], axis=axes, keepdim=keepdim)
            except Exception:
                continue  # a dtype the op refuses
            want = cls.run_eager([x], op.attr_values())[0]
            got = kernel_for(op)(x)[0]
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, **tolerance(dtype) if dtype in se.INTS
                                       or dtype == "bool" else dict(rtol=1e-5, atol=1e-5))


DEPTHWISE_CASES = [  # (C, multiplier, k, stride, paddings, dilation, H, W)
    (32, 1, 3, 1, (1, 1), 1, 14, 14), (16, 1, 3, 2, (1, 1), 1, 15, 16),
    (8, 2, 3, 1, (0, 0), 1, 9, 7), (6, 1, 5, 2, (2, 2), 2, 17, 19),
    (4, 1, 3, 3, (0, 1, 2, 0), 1, 10, 11), (960, 1, 3, 1, (1, 1), 1, 7, 7),
]


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=str)
@pytest.mark.parametrize("cls", [conv.DepthwiseConv2D, conv.Conv2D])
def test_depthwise_convolution(case, cls):
    c, m, k, s, pads, d, h, w = case
    rng = np.random.default_rng([RNG_SEED, c, k])
    x = random_array(rng, (2, c, h, w), "float32")
    weight = random_array(rng, (c * m, 1, k, k), "float32")
    op = _op(cls, [_f("float32", x.shape), _f("float32", weight.shape)], strides=(s, s),
             paddings=pads, dilations=(d, d), groups=c)
    want = cls.run_eager([x, weight], op.attr_values())[0]
    np.testing.assert_allclose(kernel_for(op)(x, weight)[0], want, rtol=1e-5, atol=1e-5)


def test_depthwise_same_padding_and_epilogue():
    rng = np.random.default_rng([RNG_SEED, 23])
    x = random_array(rng, (1, 24, 13, 13), "float32")
    weight = random_array(rng, (24, 1, 3, 3), "float32")
    op = _op(conv.DepthwiseConv2D, [_f("float32", x.shape), _f("float32", weight.shape)],
             strides=(2, 2), padding_algorithm="SAME", groups=24)
    want = conv.DepthwiseConv2D.run_eager([x, weight], op.attr_values())[0]
    np.testing.assert_allclose(kernel_for(op)(x, weight)[0], want, rtol=1e-5, atol=1e-5)
    from tostatic.codegen.depthwise import depthwise_conv2d
    bias = random_array(rng, (24,), "float32")
    act = epilogue.activation_expr("pd.relu6", se.arg(0, "float32"))
    got = depthwise_conv2d(x, weight, (1, 1), ((1, 1), (1, 1)), (1, 1), bias, act)
    ref = conv.conv2d_kernel(x, weight, (1, 1), (1, 1), "EXPLICIT", (1, 1), 24, "NCHW")
    ref = np.minimum(np.maximum(ref + bias.reshape(1, -1, 1, 1), 0), 6)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


POOL_CASES = [  # (pooling_type, ksize, strides, paddings, ceil_mode, exclusive, algorithm)
    ("max", (3, 3), (2, 2), (1, 1), False, True, "EXPLICIT"),
    ("max", (2, 2), (2, 2), (0, 0), True, True, "EXPLICIT"),
    ("avg", (3, 3), (2, 2), (1, 1), False, True, "EXPLICIT"),
    ("avg", (3, 3), (2, 2), (1, 1), True, False, "EXPLICIT"),
    ("avg", (3, 2), (1, 2), (1, 0, 2, 1), True, True, "EXPLICIT"),
    ("max", (3, 3), (2, 2), (0, 0), False, True, "SAME"),
    ("avg", (2, 2), (2, 2), (0, 0), False, True, "VALID"),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_pool2d(case):
    kind, ksize, strides, pads, ceil_mode, exclusive, algorithm = case
    rng = np.random.default_rng([RNG_SEED, 29])
    for dtype, shape in [("float32", (2, 3, 17, 19)), ("float64", (1, 2, 8, 9))]:
        x = random_array(rng, shape, dtype)
        op = _op(pooling.Pool2D, [_f(dtype, shape)], pooling_type=kind, ksize=ksize,
                 strides=strides, paddings=pads, ceil_mode=ceil_mode, exclusive=exclusive,
                 padding_algorithm=algorithm)
        want = pooling.Pool2D.run_eager([x], op.attr_values())[0]
        np.testing.assert_allclose(kernel_for(op)(x)[0], want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("attrs", [dict(global_pooling=True, pooling_type="avg"),
                                   dict(global_pooling=True, pooling_type="max"),
                                   dict(adaptive=True, pooling_type="avg")])
def test_global_pooling_is_a_reduction(attrs):
    x = random_array(np.random.default_rng(RNG_SEED), (2, 5, 7, 7), "float32")
    op = _op(pooling.Pool2D, [_f("float32", x.shape)], ksize=(1, 1), **attrs)
    want = pooling.Pool2D.run_eager([x], op.attr_values())[0]
    np.testing.assert_allclose(kernel_for(op)(x)[0], want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("act", [None, "pd.relu", "pd.relu6", "pd.hardswish", "pd.sigmoid",
                                 "pd.swish", "pd.gelu", "pd.tanh"])
def test_bias_activation_epilogue_in_place(act):
    rng = np.random.default_rng([RNG_SEED, 31])
    y = random_array(rng, (2, 16, 9, 9), "float32")
    bias = random_array(rng, (16,), "float32")
    t = y + bias.reshape(1, -1, 1, 1)
    want = t if act is None else REGISTRY[act].run_eager([t], REGISTRY[act].normalize_attrs({}))[0]
    out = y.copy()
    got = epilogue.bias_act(out, bias, act, out=out)
    assert got is out
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    rows = random_array(rng, (5, 16), "float32")  # a matmul's output: bias on the last axis
    t = rows + bias
    want = t if act is None else REGISTRY[act].run_eager([t], REGISTRY[act].normalize_attrs({}))[0]
    np.testing.assert_allclose(epilogue.bias_act(rows, bias, act, axis=1), want, rtol=1e-5,
                               atol=1e-6)


def test_an_unsupported_case_runs_the_numpy_kernel():
    """A layout or dtype a kernel does not cover falls back to the op's eager."""
    op = _op(pooling.Pool2D, [_f("float32", (1, 6, 6, 2))], pooling_type="max", ksize=(2, 2),
             strides=(2, 2), data_format="NHWC")
    assert compiled_kernel(op) is None  # NHWC pooling: no generated kernel at all
    assert compiled_kernel(_op(REGISTRY["pd.gelu"], [_f("float32", (4,))])) is None  # small
    op = _op(REGISTRY["pd.gelu"], [TensorType(dtypes.float32.element_type(), [-1])])
    k = compiled_kernel(op)
    x16 = np.ones(4, np.float64)  # the kernel was made for float32
    np.testing.assert_allclose(k(x16)[0], REGISTRY["pd.gelu"].eager(x16, approximate=False))


def test_numpy_switch(monkeypatch):
    op = _op(REGISTRY["pd.sigmoid"], [_f("float32", (4096,))])
    assert compiled_kernel(op) is not None
    monkeypatch.setenv("TOSTATIC_KERNELS", "numpy")
    assert compiled_kernel(op) is None


def test_the_host_vector_instructions_are_in_the_assembly():
    features = engine.host()["features"].split(",")
    if "+avx512f" in features:
        register = "%zmm"
    elif "+avx2" in features:
        register = "%ymm"
    else:
        pytest.skip("the host CPU has neither AVX-512 nor AVX2")
    x, y = se.arg(0, "float32"), se.arg(1, "float32")
    text = elementwise.kernel_ir(1 / (1 + se.exp(-(x * y + 1))), ("float32", "float32"))
    asm = engine.assembly(text.replace("__NAME__", "probe_"))
    vector_ops = [line for line in asm.splitlines()
                  if register in line and any(i in line for i in ("vmulps", "vaddps",
                                                                  "vfmadd", "vdivps"))]
    assert vector_ops, f"no {register} arithmetic in:\n{asm[:3000]}"


def test_threads_split_calls_without_changing_results(monkeypatch):
    """Every family with 3 threads and tiny chunks gives what one thread gives, bit for bit."""
    rng = np.random.default_rng([RNG_SEED, 37])
    x = random_array(rng, (3, 10, 23, 21), "float32")
    w = random_array(rng, (20, 1, 3, 3), "float32")
    v = se.arg(0, "float32")
    sig = elementwise.ElementwiseKernel(1 / (1 + se.exp(-(v * se.arg(1, "float32")))),
                                        ["float32"] * 2)
    dims = pooling._dims("pd.pool2d", (23, 21), (3, 3), (2, 2), (1, 1), True, "avg", False,
                         False, "EXPLICIT")
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    relu_of_bias = epilogue.activation_expr("pd.relu", v + se.arg(1, "float32"))
    # six inputs: more than a parallel_calls row holds (Python parts)
    six = elementwise.ElementwiseKernel(
        v * se.arg(1, "float32") + se.arg(2, "float32") - se.arg(3, "float32")
        + se.arg(4, "float32") * se.arg(5, "float32"), ["float32"] * 6)
    calls = [lambda: sig(x, x[:, :1])[0],
             lambda: sig(x, x[::-1].copy())[0],  # one dim after collapsing: parts of it
             lambda: six(x, x[:, :1], x, x[..., :1], x, x)[0],
             lambda: rows.softmax(x, 1),
             lambda: rows.layer_norm(x, None, x[0, 0, 0, :], 1e-5, 3)[0],
             lambda: reduce.reduce(x, "sum", (1,), False, x.dtype),
             lambda: reduce.reduce(x, "max", (3,), True, x.dtype),
             lambda: depthwise.depthwise_conv2d(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1)),
             lambda: depthwise_nhwc.depthwise_conv2d_nhwc(
                 x_nhwc, w[:10], (2, 2), ((1, 1), (1, 1)), (1, 1), relu_of_bias, ("bias",),
                 [x[0, :, 0, 0]]),
             lambda: pool.pool2d(x, dims, False, True)]
    one = [c() for c in calls]
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_THREAD", 1)
    monkeypatch.setattr(threads, "MIN_NATIVE_ELEMENTS", 1)  # (depthwise: parallel_calls)
    monkeypatch.setattr(depthwise_nhwc, "MIN_PART_ELEMENTS", 1)
    threads.set_num_threads(3)
    try:
        for c, want in zip(calls, one):
            np.testing.assert_array_equal(c(), want)
    finally:
        threads._STATE["n"] = None
    with pytest.raises(ValueError, match="at least 1"):
        threads.set_num_threads(0)


@pytest.mark.parametrize("native", [True, False])
def test_stem_and_max_pool_splits_match_one_thread(monkeypatch, native):
    """The direct NHWC stem (reading the transposed view of an NCHW image in place) and the
    max pool, split over 2 threads as machine-code parts (threads.parallel_calls, up to
    PARTS_PER_THREAD a thread) or as Python parts: bit for bit one thread's result, which
    agrees with the numpy references."""
    rng = np.random.default_rng([RNG_SEED, 41])
    x = random_array(rng, (2, 3, 29, 27), "float32")
    w = random_array(rng, (20, 3, 3, 3), "float32")
    bias = random_array(rng, (20,), "float32")
    relu_of_bias = epilogue.activation_expr("pd.relu", se.arg(0, "float32")
                                            + se.arg(1, "float32"))
    stem = direct_conv_nhwc.DirectConvNHWC((2, 29, 27, 3), w, (2, 2), ((1, 1), (0, 1)), (1, 1),
                                           relu_of_bias, ("bias",))
    dims = pooling._dims("pd.pool2d", (29, 27), (3, 3), (2, 2), (1, 1), False, "max", False,
                         False, "EXPLICIT")
    maxpool = pool.Pool2d(x.shape, x.dtype, dims, True, True)

    def run() -> list[np.ndarray]:
        y = np.empty(stem.shape, np.float32)
        for _ in range(2):  # (the second: the prepared call and its rows again)
            stem.run(x.transpose(0, 2, 3, 1), [bias], y)
        p = np.empty(maxpool.out_shape, np.float32)
        maxpool.run(x, p)
        return [y, p]
    one = run()
    monkeypatch.setattr(direct_conv_nhwc, "NATIVE_SPLIT", native)
    monkeypatch.setattr(pool, "NATIVE_SPLIT", native)
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_THREAD", 1)
    monkeypatch.setattr(threads, "MIN_NATIVE_ELEMENTS", 1)
    threads.set_num_threads(2)
    try:
        for got, want in zip(run(), one):
            np.testing.assert_array_equal(got, want)
    finally:
        threads._STATE["n"] = None
    want_stem = conv.Conv2D.run_eager([x, w], conv.Conv2D.normalize_attrs(dict(
        strides=(2, 2), paddings=(1, 1, 0, 1), dilations=(1, 1), groups=1)))[0]
    want_stem = np.maximum(want_stem + bias[:, None, None], 0).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(one[0], want_stem, rtol=1e-5, atol=1e-5 * np.abs(want_stem).max())
    np.testing.assert_array_equal(one[1], pooling.Pool2D.run_eager([x], pooling.Pool2D.normalize_attrs(
        dict(ksize=(3, 3), strides=(2, 2), paddings=(1, 1), pooling_type="max")))[0])
