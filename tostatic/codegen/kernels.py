"""Which ops have generated kernels: a table from op class to a factory that binds the op's
attributes once and returns `callable(*arrays, out=None) -> list of arrays`.

Every callable falls back to the op's numpy kernel (its `eager`, the reference) for what the
generated code does not cover (a dtype, a layout, adaptive pooling, an empty tensor...): a
kernel raises `NotScalar` and the wrapper runs `run_eager` instead. So choosing a generated
kernel never changes what runs, only how fast (and the last bits of rounding).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tostatic.codegen import depthwise, elementwise, pool, reduce, rows
from tostatic.ir import scalar_expr as se
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops import activation, conv, layer_norm, math_unary, pooling, reduction
from tostatic.ops.fused_elementwise import FusedElementwise

Impl = Callable[..., list[np.ndarray]]
_HEAVY = {"exp", "log", "tanh", "erf", "pow", "sqrt", "div"}  # numpy needs several passes
SMALL = 1024  # elements: fewer, known before running, and a single op keeps numpy


def _with_fallback(op: PdOp, impl: Impl) -> Impl:
    attrs = op.attr_values()
    run = op.run_eager if isinstance(op, FusedElementwise) else type(op).run_eager

    def call(*arrays: Any, out: list[np.ndarray] | None = None) -> list[np.ndarray]:
        try:
            return impl(*arrays, out=out)
        except se.NotScalar:
            return run(list(arrays), attrs)
    return call


def _elementwise(op: PdOp) -> Impl | None:
    """A fused op always; a single op when numpy would take several passes over memory
    (two operations or more, or a division or a transcendental: relu6, sigmoid, gelu...)."""
    inputs = [Abstract.of_value(v) for v in op.operands]
    dtypes = [a.dtype.name for a in inputs]
    if op.attr_values().get("axis", -1) != -1 and len({a.ndim for a in inputs}) > 1:
        return None  # Paddle's legacy axis alignment, not numpy broadcasting
    result = Abstract.of_value(op.results[0]).shape
    if not isinstance(op, FusedElementwise) and min(result, default=1) >= 0 \
            and int(np.prod(result)) < SMALL:
        return None  # shape arithmetic and the like: not worth a compile
    try:
        if isinstance(op, FusedElementwise):
            expr = op.scalar_expr()
        else:
            expr = op.SCALAR(*(se.arg(i, d) for i, d in enumerate(dtypes)),  # type: ignore
                             **op.attr_values())
            ops = [e.kind for e in expr.nodes() if e.kind not in ("arg", "const")]
            if len(ops) < 2 and not _HEAVY & set(ops):
                return None
    except se.NotScalar:
        return None
    kernel = elementwise.ElementwiseKernel(expr, dtypes)

    def impl(*arrays: Any, out: Any = None) -> list[np.ndarray]:
        if tuple(np.asarray(a).dtype for a in arrays) != kernel.np_dtypes:
            raise se.NotScalar("other dtypes than the op was built for")
        return kernel(*arrays, out=out)
    return impl


def _softmax(op: PdOp) -> Impl:
    axis, log = op.attr_values()["axis"], isinstance(op, math_unary.LogSoftmax)
    return lambda x, out=None: [rows.softmax(np.asarray(x), axis, log)]


def _layer_norm(op: PdOp) -> Impl:
    a = op.attr_values()
    names = type(op).WEIGHTS  # type: ignore[attr-defined]

    def impl(x: Any, *weights: Any, out: Any = None) -> list[np.ndarray]:
        given = dict(zip(names, weights))
        return rows.layer_norm(np.asarray(x), given.get("scale"), given.get("bias"),
                               a["epsilon"], a["begin_norm_axis"])
    return impl


_REDUCE_KINDS = {reduction.Sum: "sum", reduction.Mean: "mean", reduction.Max: "max",
                 reduction.Min: "min"}


def _reduce(op: PdOp) -> Impl:
    a = op.attr_values()
    kind = _REDUCE_KINDS[type(op)]
    out_dtype = Abstract.of_value(op.results[0]).dtype.numpy

    def impl(x: Any, out: Any = None) -> list[np.ndarray]:
        x = np.asarray(x)
        axes = reduction.reduced_axes(x.ndim, a["axis"], a["reduce_all"])
        return [reduce.reduce(x, kind, axes, a["keepdim"], out_dtype)]
    return impl


def _conv(op: PdOp) -> Impl | None:
    a = op.attr_values()
    w_shape = Abstract.of_value(op.operands[1]).shape
    if conv.DATA_FORMATS.get(a["data_format"]) is not False or w_shape[1] != 1 \
            or a["groups"] == 1:
        return None  # not depthwise: the numpy kernel's GEMM
    name = op.name

    def impl(x: Any, w: Any, out: Any = None) -> list[np.ndarray]:
        x, w = np.asarray(x), np.asarray(w)
        if w.shape[1] != 1 or a["groups"] != x.shape[1] or a["groups"] == 1:
            raise se.NotScalar("not depthwise")
        st = conv.pair(name, "strides", a["strides"])
        dil = conv.pair(name, "dilations", a["dilations"])
        pads, dil = conv.resolve_pads(name, (x.shape[2], x.shape[3]), w.shape[2:], st,
                                      a["paddings"], a["padding_algorithm"], dil)
        return [depthwise.depthwise_conv2d(x, w, st, tuple(pads), dil)]  # type: ignore[arg-type]
    return impl


def _pool(op: PdOp) -> Impl | None:
    a = op.attr_values()
    is_max = a["pooling_type"] == "max"
    whole = a["global_pooling"] or (a["adaptive"] and not is_max and tuple(a["ksize"]) == (1, 1))
    if a["data_format"] != "NCHW" or (a["adaptive"] and not whole):
        return None

    def impl(x: Any, out: Any = None) -> list[np.ndarray]:
        x = np.asarray(x)
        if whole:  # one window per plane: a reduction over H and W
            return [reduce.reduce(x, "max" if is_max else "mean", (2, 3), True, x.dtype)]
        dims = pooling._dims(op.name, (x.shape[2], x.shape[3]), a["ksize"], a["strides"],
                             a["paddings"], a["ceil_mode"], a["pooling_type"], False, False,
                             a["padding_algorithm"])
        return [pool.pool2d(x, dims, is_max, a["exclusive"])]
    return impl


FACTORIES: dict[type, Callable[[PdOp], Impl | None]] = {
    activation.Softmax: _softmax, math_unary.LogSoftmax: _softmax,
    **{cls: _layer_norm for cls in (layer_norm.LayerNorm, layer_norm.LayerNormScaleOnly,
                                    layer_norm.LayerNormBiasOnly, layer_norm.LayerNormPlain)},
    **{cls: _reduce for cls in _REDUCE_KINDS},
    conv.DepthwiseConv2D: _conv, conv.Conv2D: _conv, pooling.Pool2D: _pool,
}


def kernel_for(op: PdOp) -> Impl | None:
    factory = FACTORIES.get(type(op))
    if factory is None and (isinstance(op, FusedElementwise) or type(op).SCALAR is not None):
        factory = _elementwise
    impl = factory(op) if factory is not None else None
    return _with_fallback(op, impl) if impl is not None else None
