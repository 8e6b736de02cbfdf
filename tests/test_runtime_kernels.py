"""The kernels a bound plan runs (runtime/kernels.py: convolutions as im2col + GEMM, depthwise
as a batched matrix-vector product, matmuls, ufuncs, in-place epilogues) against the ops' own
numpy `eager` on random shapes, broadcasts, dtypes and epilogues (hypothesis); the fused ops'
`eager` against direct loops (an independent reference)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects import func
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block, Region

from conftest import emit
from tostatic.ir import dtypes
from tostatic.ops.activation import Relu, Relu6, Sigmoid, Tanh
from tostatic.ops.core import Persistable
from tostatic.ops.elementwise import Add, Maximum, Multiply, Subtract
from tostatic.ops.fused import EPILOGUE_ACTIVATIONS, FusedConv2D, FusedMatmul
from tostatic.runtime.plan import ExecutionPlan

pytestmark = pytest.mark.usefixtures("compiled_kernels")

SETTINGS = settings(max_examples=40, deadline=None)


def bound_plan(cls, arrays, weight_mask, attrs):
    """A plan of one op whose operands marked in `weight_mask` are persistables; it runs
    twice: the first run is the generic one, the second the bound kernels."""
    args = [a for a, w in zip(arrays, weight_mask) if not w]
    block = Block(arg_types=[TensorType(dtypes.convert_dtype(a.dtype).element_type(),
                                        list(a.shape)) for a in args])
    operands, weights, k = [], {}, 0
    for i, (a, w) in enumerate(zip(arrays, weight_mask)):
        if w:
            t = TensorType(dtypes.convert_dtype(a.dtype).element_type(), list(a.shape))
            op = Persistable.make([], {"var_name": f"w{i}"}, [t])
            block.add_op(op)
            operands.append(op.results[0])
            weights[f"w{i}"] = a
        else:
            operands.append(block.args[k])
            k += 1
    result = emit(block, cls, *operands, **attrs)
    block.add_op(func.ReturnOp(result))
    fn = func.FuncOp("main", ([a.type for a in block.args], [result.type]), Region(block))
    plan = ExecutionPlan(fn, weights, specialize=True)
    first = plan.run(args)[0]
    second = plan.run(args)[0]
    (bound,) = plan.bound.values()
    return first, second, bound


def close(got, want, dtype):
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max()))


EPILOGUE_STEPS = st.lists(st.sampled_from(["bias", "add", *EPILOGUE_ACTIVATIONS]), max_size=3)


@st.composite
def conv_cases(draw):
    depthwise = draw(st.booleans())
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 5))
    cout = c * draw(st.integers(1, 2)) if depthwise else draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.lists(st.integers(0, 2), min_size=2, max_size=2))) if \
        draw(st.booleans()) else tuple(draw(st.lists(st.integers(0, 2), min_size=4,
                                                     max_size=4)))
    h, w = draw(st.integers(5, 11)), draw(st.integers(5, 11))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return dict(n=n, c=c, cout=cout, k=(kh, kw), strides=strides, dil=dil, pads=pads,
                hw=(h, w), dtype=dtype, groups=c if depthwise and c > 1 else 1,
                epilogue=tuple(draw(EPILOGUE_STEPS)), seed=draw(st.integers(0, 2**16)))


@SETTINGS
@given(conv_cases())
def test_bound_convolution_matches_the_fused_ops_eager(case):
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x = rng.standard_normal((case["n"], case["c"], *case["hw"])).astype(dt)
    w = rng.standard_normal((case["cout"], case["c"] // case["groups"], *case["k"])).astype(dt)
    attrs = dict(strides=case["strides"], paddings=case["pads"], dilations=case["dil"],
                 groups=case["groups"], epilogue=case["epilogue"])
    out = FusedConv2D.run_eager([x, w], {**FusedConv2D.normalize_attrs(
        {k: v for k, v in attrs.items() if k != "epilogue"}), "epilogue": ()})[0]
    extras, mask = [], []
    for step in case["epilogue"]:
        if step == "bias":  # a weight, as Paddle's [C] or a folded [1, C, 1, 1]
            shape = (case["cout"],) if rng.random() < 0.5 else (1, case["cout"], 1, 1)
            extras.append(rng.standard_normal(shape).astype(dt))
            mask.append(True)
        elif step == "add":  # a residual the program computes
            extras.append(rng.standard_normal(out.shape).astype(dt))
            mask.append(False)
    want = FusedConv2D.run_eager([x, w, *extras],
                                 FusedConv2D.normalize_attrs(attrs))[0]
    first, second, bound = bound_plan(FusedConv2D, [x, w, *extras], [False, True, *mask],
                                      attrs)
    close(first, want, dt)
    close(second, want, dt)
    kind = bound.labels[0][1]
    assert kind in ("im2col-gemm", "im2col-gen", "gemm-1x1", "gemm-1x1-packed",
                    "depthwise-matvec",
                    "depthwise"), kind


@pytest.mark.parametrize("c,cout,size,k,stride,pad,dil,dtype", [
    (3, 8, 45, 7, 2, 3, 1, np.float32),  # a ResNet stem (several bands, vector + tail columns)
    (5, 6, 70, 3, 2, 1, 1, np.float32),
    (4, 3, 41, 3, 2, (0, 1, 2, 1), 2, np.float32),
    (3, 5, 39, 5, 2, 2, 1, np.float64),
    (2, 4, 33, 3, 1, 1, 1, np.float32),
    (6, 8, 41, 1, 2, 0, 1, np.float32),  # a downsample read in place (even width)
    (6, 8, 40, 1, 2, 0, 1, np.float32),  # ... through the padded copy (odd width)
])
def test_generated_im2col_matches_eager_on_wide_planes(c, cout, size, k, stride, pad, dil,
                                                       dtype, monkeypatch):
    """Planes wide enough for the kernel's vector path (16 columns and more) and, with a
    small band budget, several bands a image."""
    from tostatic.runtime import conv_im2col, conv_winograd

    monkeypatch.setattr(conv_im2col, "BAND_BYTES", 16 << 10)
    monkeypatch.setattr(conv_winograd, "MIN_CHANNELS", 1 << 30)
    rng = np.random.default_rng(size)
    x = rng.standard_normal((2, c, size, size + 3)).astype(dtype)
    w = rng.standard_normal((cout, c, k, k)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    pads = pad if isinstance(pad, tuple) else (pad, pad)
    attrs = dict(strides=(stride, stride), paddings=pads, dilations=(dil, dil), groups=1,
                 epilogue=("bias", "relu"))
    want = FusedConv2D.run_eager([x, w, b], FusedConv2D.normalize_attrs(attrs))[0]
    _, second, bound = bound_plan(FusedConv2D, [x, w, b], [False, True, True], attrs)
    close(second, want, dtype)
    assert bound.labels[0][1] == "im2col-gen"
    if stride == 1 and pad == 1 and k == 3:  # the independent reference too
        ref = np.maximum(naive_conv(x.astype(np.float64), w.astype(np.float64), 1, 1, 1)
                         + b[None, :, None, None], 0)
        close(second, ref, dtype)


def naive_conv(x, w, stride, pad, groups):
    """Direct loops over every output element: the independent reference."""
    n, c, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, cout, oh, ow))
    per = cout // groups
    for b in range(n):
        for o in range(cout):
            g = o // per
            for i in range(oh):
                for j in range(ow):
                    patch = xp[b, g * cg:(g + 1) * cg, i * stride:i * stride + kh,
                               j * stride:j * stride + kw]
                    out[b, o, i, j] = np.sum(patch * w[o])
    return out


@pytest.mark.parametrize("groups", [1, 4])
def test_fused_convolution_is_conv_then_bias_residual_and_activation(groups):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((4, 4 // groups, 3, 3))
    bias, res = rng.standard_normal(4), rng.standard_normal((2, 4, 4, 3))
    conv = naive_conv(x, w, 2, 1, groups)
    want = np.clip(conv + bias.reshape(1, 4, 1, 1) + res, 0, 6)
    attrs = FusedConv2D.normalize_attrs(dict(strides=(2, 2), paddings=(1, 1), groups=groups,
                                             epilogue=("bias", "add", "relu6")))
    np.testing.assert_allclose(FusedConv2D.run_eager([x, w, bias, res], attrs)[0], want,
                               rtol=1e-12)
    _, second, _ = bound_plan(FusedConv2D, [x, w, bias, res], [False, True, True, False],
                              {k: attrs[k] for k in ("strides", "paddings", "groups",
                                                     "epilogue")})
    np.testing.assert_allclose(second, want, rtol=1e-12)


@st.composite
def matmul_cases(draw):
    m, k, n = (draw(st.integers(1, 9)) for _ in range(3))
    batch = draw(st.sampled_from([(), (2,), (3, 2)]))
    tx, ty = draw(st.booleans()), draw(st.booleans())
    y_batch = draw(st.sampled_from([(), batch[-1:] if batch else ()]))
    return dict(x=(*batch, *((k, m) if tx else (m, k))), y=(*y_batch, *((n, k) if ty else (k, n))),
                tx=tx, ty=ty, out=(*batch, m, n), dtype=draw(st.sampled_from([np.float32,
                                                                              np.float64])),
                epilogue=tuple(draw(EPILOGUE_STEPS)), weight=not y_batch and draw(st.booleans()),
                seed=draw(st.integers(0, 2**16)))


@SETTINGS
@given(matmul_cases())
def test_bound_matmul_matches_the_fused_ops_eager(case):
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x, y = (rng.standard_normal(case[s]).astype(dt) for s in ("x", "y"))
    extras, mask = [], []
    for step in case["epilogue"]:
        if step == "bias":
            extras.append(rng.standard_normal(case["out"][-1]).astype(dt))
            mask.append(True)
        elif step == "add":
            extras.append(rng.standard_normal(case["out"]).astype(dt))
            mask.append(False)
    attrs = dict(transpose_x=case["tx"], transpose_y=case["ty"], epilogue=case["epilogue"])
    want = FusedMatmul.run_eager([x, y, *extras], FusedMatmul.normalize_attrs(attrs))[0]
    first, second, _ = bound_plan(FusedMatmul, [x, y, *extras],
                                  [False, case["weight"], *mask], attrs)
    close(first, want, dt)
    close(second, want, dt)


@SETTINGS
@given(st.sampled_from([Add, Subtract, Multiply, Maximum]),
       st.sampled_from([((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((5,), (5,)), ((1,), (2, 2))]),
       st.sampled_from([np.float32, np.float64, np.int32, np.int64]), st.integers(0, 99))
def test_bound_binary_ops_broadcast_as_eager(cls, shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = ((rng.standard_normal(s) * 10).astype(dtype) for s in shapes)
    want = cls.run_eager([a, b], cls.normalize_attrs({}))[0]
    _, second, bound = bound_plan(cls, [a, b], [False, False], {})
    np.testing.assert_array_equal(second, want)
    assert bound.labels[0][1] == "ufunc"


@pytest.mark.parametrize("cls", [Relu, Relu6, Sigmoid, Tanh])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bound_activations_match_eager(cls, dtype):
    x = (np.random.default_rng(5).standard_normal((3, 40)) * 8).astype(dtype)
    want = cls.run_eager([x], cls.normalize_attrs({}))[0]
    _, second, _ = bound_plan(cls, [x], [False], {})
    close(second, want, dtype)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.booleans(),
       st.sampled_from([np.float32, np.float64]), st.integers(5, 13), st.integers(0, 99),
       st.booleans())
def test_bound_max_pooling_matches_eager(kh, kw, stride, pad, ceil_mode, dtype, size, seed,
                                         numpy_kernels):
    from tostatic.ops.pooling import Pool2D

    pad = min(pad, kh - 1, kw - 1)  # Paddle needs pad < ksize
    x = np.random.default_rng(seed).standard_normal((2, 3, size, size + 3)).astype(dtype)
    attrs = dict(pooling_type="max", ksize=(kh, kw), strides=(stride, stride),
                 paddings=(pad, pad), ceil_mode=ceil_mode)
    want = Pool2D.run_eager([x], Pool2D.normalize_attrs(attrs))[0]
    with pytest.MonkeyPatch.context() as mp:
        if numpy_kernels:
            mp.setenv("TOSTATIC_KERNELS", "numpy")
        _, second, bound = bound_plan(Pool2D, [x], [False], attrs)
    np.testing.assert_array_equal(second, want)
    assert bound.labels[0][1] == ("max-taps" if numpy_kernels else "max-windows")


@pytest.mark.parametrize("pad", [0, 1])
def test_bound_max_pooling_split_over_threads_matches_eager(pad, monkeypatch):
    from tostatic.ops.pooling import Pool2D
    from tostatic.runtime import pool_kernel, threads

    monkeypatch.setattr(threads, "_requested", 2)
    monkeypatch.setattr(pool_kernel, "PARALLEL_ELEMENTS", 1)
    monkeypatch.setattr(pool_kernel, "COMPILED_MAX_POOL", False)  # the numpy path's split
    x = np.random.default_rng(pad).standard_normal((2, 5, 9, 8)).astype(np.float32)
    attrs = dict(pooling_type="max", ksize=(3, 3), strides=(2, 2), paddings=(pad, pad))
    want = Pool2D.run_eager([x], Pool2D.normalize_attrs(attrs))[0]
    _, second, bound = bound_plan(Pool2D, [x], [False], attrs)
    np.testing.assert_array_equal(second, want)
    assert bound.steps[0][0].func.__name__ == "run_parallel"


@pytest.mark.parametrize("attrs", [dict(global_pooling=True), dict(adaptive=True),
                                   dict(ksize=(5, 4))])
def test_bound_average_over_whole_planes_matches_eager(attrs):
    from tostatic.ops.pooling import Pool2D

    x = np.random.default_rng(1).standard_normal((2, 3, 5, 4)).astype(np.float32)
    attrs = dict(pooling_type="avg", **{"ksize": (1, 1), **attrs})
    want = Pool2D.run_eager([x], Pool2D.normalize_attrs(attrs))[0]
    _, second, bound = bound_plan(Pool2D, [x], [False], attrs)
    close(second, want, np.float32)
    assert bound.labels[0][1] == "plane-mean"


# (input channels, size, output channels); one image: the patch copy split by (channel,
# kernel row) (5 x 3 rows: a channel's rows on both threads), the GEMM by output columns
# (in blocks of 16: 27 x 27 leaves a partial one) or, with few columns, by output channels
CONVS = {"conv": (16, 28, 32), "conv_1": (16, 27, 32), "conv5_1": (5, 56, 32),
         "convwide_1": (64, 14, 256), "depthwise": (64, 64, 64), "depthwise_1": (64, 64, 64)}


@pytest.mark.parametrize("case", [*CONVS, "matmul"])
def test_kernels_split_over_threads_give_the_same_results(case, monkeypatch):
    from tostatic.runtime import conv_winograd, kernels, threads

    monkeypatch.setattr(threads, "_requested", 2)
    monkeypatch.setattr(conv_winograd, "MIN_CHANNELS", 1 << 30)  # im2col's split (not Winograd)
    monkeypatch.setattr(kernels, "GENERATED_IM2COL", False)  # BLAS's (tests/test_conv_im2col.py)
    rng = np.random.default_rng(7)
    if case == "matmul":
        x, y, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 32, 256), (256, 256),
                                                                       (256,)))
        cls, arrays, mask = FusedMatmul, [x, y, b], [False, True, True]
        attrs = dict(transpose_x=False, transpose_y=False, epilogue=("bias", "gelu"))
    else:
        batch = 1 if case.endswith("_1") else 2
        c, hw, cout = CONVS[case]
        case = "depthwise" if case.startswith("depthwise") else "conv"
        x = rng.standard_normal((batch, c, hw, hw)).astype(np.float32)
        w = rng.standard_normal((cout, 1 if case == "depthwise" else c, 3, 3)
                                ).astype(np.float32)
        r = rng.standard_normal((batch, w.shape[0], hw, hw)).astype(np.float32)
        b = rng.standard_normal(w.shape[0]).astype(np.float32)
        # the epilogue runs on each thread's images or channels: a bias and a residual
        cls, arrays, mask = FusedConv2D, [x, w, b, r], [False, True, True, False]
        attrs = dict(paddings=(1, 1), groups=c if case == "depthwise" else 1,
                     epilogue=("bias", "add", "relu"))
    if case in ("depthwise", "matmul"):  # codegen's kernels, split by their own threads
        from tostatic.codegen import threads as codegen_threads
        monkeypatch.setitem(codegen_threads._STATE, "n", 2)
    want = cls.run_eager(arrays, cls.normalize_attrs(attrs))[0]
    _, second, bound = bound_plan(cls, arrays, mask, attrs)
    close(second, want, np.float32)
    if case == "depthwise" or bound.labels[0][1] == "gemm-packed":  # (codegen/gemm.py)
        return
    assert bound.steps[0][0].func.__name__.startswith("run_") and \
        bound.steps[0][0].func.__name__.endswith("parallel")


@pytest.mark.parametrize("planes,h,w,hp,wp,top,left", [(3, 7, 7, 9, 9, 1, 1), (2, 5, 13, 8, 16, 2, 0),
                                                        (1, 4, 3, 4, 3, 0, 0), (4, 1, 17, 3, 20, 0, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_generated_padding_matches_numpy_pad(planes, h, w, hp, wp, top, left, dtype):
    from tostatic.codegen.pad import pad_planes

    x = np.random.default_rng(h * w).standard_normal((planes, h, w)).astype(dtype)
    xp = np.full((planes, hp, wp), np.nan, dtype)
    dims = np.array([planes, h, w, hp, wp, top, left], np.int64)
    pad_planes(np.dtype(dtype).name)(x.ctypes.data, xp.ctypes.data, dims.ctypes.data)
    want = np.pad(x, ((0, 0), (top, hp - h - top), (left, wp - w - left)))
    np.testing.assert_array_equal(xp, want)
