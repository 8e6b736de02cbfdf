"""Reductions over a list of axes (an empty list, or reduce_all, reduces everything), and the
running sum along one axis (cumsum)."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, DTYPE, INT, INTS, attr
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.attr_checks import written
from tostatic.ops.shapes import normalize_axis


def reduced_axes(ndim: int, axis: tuple[int, ...], reduce_all: bool) -> tuple[int, ...]:
    """Paddle's rule: reduce_all, no axes, or every axis listed all reduce everything (a 0-D
    tensor, whose axis 0 / -1 Paddle accepts, has nothing to reduce)."""
    if ndim == 0:
        return ()
    if reduce_all or not axis:
        return tuple(range(ndim))
    return tuple(sorted({normalize_axis(a, ndim) for a in axis}))


def reduce(paddle_type: str, out_dtype: From | None = None) -> Legacy:
    """reduce_* as Paddle writes it: dim, keep_dim, reduce_all, and in_dtype/out_dtype = -1.
    Paddle 3.3.1's kernels read out_dtype for reduce_sum only and in_dtype never, so the others
    are written as Paddle writes them and any value a file holds is accepted."""
    return Legacy(paddle_type, {"X": "x"}, {"Out": 0},
                  {"dim": From("INTS", "axis"), "keep_dim": From("BOOLEAN", "keepdim"),
                   "reduce_all": From("BOOLEAN", "reduce_all"),
                   "in_dtype": written("INT", -1),
                   "out_dtype": out_dtype or written("INT", -1)},
                  out_lod_level=False)


class Reduce(PdOp):
    INPUTS = ("x",)
    ATTRS = {"axis": attr(INTS, ()), "keepdim": attr(BOOL, False),
             "reduce_all": attr(BOOL, False)}
    FN: ClassVar[Any] = None

    @classmethod
    def infer(cls, x: Abstract, axis: tuple[int, ...], keepdim: bool, reduce_all: bool,
              dtype: dtypes.DType | None = None) -> Abstract:
        axes = reduced_axes(x.ndim, axis, reduce_all)
        shape = tuple((1 if i in axes else d) for i, d in enumerate(x.shape)
                      if keepdim or i not in axes)
        return Abstract(shape, cls.result_dtype(x.dtype, dtype))

    @classmethod
    def result_dtype(cls, x: dtypes.DType, dtype: dtypes.DType | None) -> dtypes.DType:
        return x

    @classmethod
    def eager(cls, x: np.ndarray, axis: tuple[int, ...], keepdim: bool,
              reduce_all: bool) -> np.ndarray:
        axes = reduced_axes(x.ndim, axis, reduce_all)
        out = cls.FN(x, axis=axes, keepdims=keepdim)
        return np.asarray(out, dtype=x.dtype)


def reduce_vjp(grad: Any) -> classmethod:
    """The vjp of a reduction from `grad(e, x, out_b, g_b, axes)`, where out_b and g_b are the
    result and its cotangent broadcast back to x's shape."""
    def vjp(cls: type, e: A.Emitter, inputs: list[Any], outputs: list[Any],
            attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
        x = inputs[0]
        shape = e.shape(x)
        axes = reduced_axes(len(shape), attrs["axis"], attrs["reduce_all"])
        g = A.cast(e, A.unreduce(e, cts[0], shape, axes), e.dtype(x))
        out = (lambda: A.unreduce(e, outputs[0], shape, axes))
        return [grad(e, x, out, g, axes)]
    return classmethod(vjp)


def _ties(e: A.Emitter, x: Any, out: Any, g: Any, axes: tuple[int, ...]) -> Any:
    """max / min: the cotangent shared equally by the elements equal to the result (Paddle)."""
    hit = A.mask(e, A.e(e, "pd.equal", x, out), x)
    return A.mul(e, g, A.div(e, hit, A.unreduce(e, A.sum_axes(e, hit, axes), e.shape(x), axes)))


def _count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


@pd_op
class Sum(Reduce):
    """Sum; `dtype` (reduce_sum's out_dtype) casts x first, as Paddle's kernel does. Without
    it bool and int32 sum into int64, other dtypes keep theirs."""

    name = "pd.sum"
    ATTRS = {**Reduce.ATTRS, "dtype": attr(DTYPE, None)}
    PADDLE = reduce("reduce_sum", From("INT", "dtype", lambda d: -1 if d is None else d.var_type,
                                       lambda n: None if n < 0 else dtypes.BY_VAR_TYPE[n]))
    NAME_HINT = "reduce_sum"
    vjp = reduce_vjp(lambda e, x, out, g, axes: g)

    @classmethod
    def result_dtype(cls, x: dtypes.DType, dtype: dtypes.DType | None) -> dtypes.DType:
        if dtype is not None:
            return dtypes.convert_dtype(dtype)
        return dtypes.int64 if x in (dtypes.bool_, dtypes.int32) else x

    @classmethod
    def eager(cls, x: np.ndarray, axis: tuple[int, ...], keepdim: bool, reduce_all: bool,
              dtype: dtypes.DType | None = None) -> np.ndarray:
        out = cls.result_dtype(dtypes.convert_dtype(x.dtype), dtype).numpy
        axes = reduced_axes(x.ndim, axis, reduce_all)
        return np.asarray(np.sum(x.astype(out, copy=False), axis=axes, keepdims=keepdim,
                                 dtype=out))


@pd_op
class Mean(Reduce):
    name = "pd.mean"
    FN = np.mean
    PADDLE = reduce("reduce_mean")
    NAME_HINT = "mean"
    vjp = reduce_vjp(lambda e, x, out, g, axes: A.scale(e, g, 1.0 / max(_count(e.shape(x), axes), 1)))


@pd_op
class Max(Reduce):
    name = "pd.max"
    FN = np.max
    PADDLE = reduce("reduce_max")
    NAME_HINT = "max"
    vjp = reduce_vjp(lambda e, x, out, g, axes: _ties(e, x, out(), g, axes))


@pd_op
class Min(Reduce):
    name = "pd.min"
    FN = np.min
    PADDLE = reduce("reduce_min")
    NAME_HINT = "min"
    vjp = reduce_vjp(lambda e, x, out, g, axes: _ties(e, x, out(), g, axes))


@pd_op
class Prod(Reduce):
    name = "pd.prod"
    FN = np.prod
    PADDLE = reduce("reduce_prod")
    NAME_HINT = "reduce_prod"
    vjp = reduce_vjp(lambda e, x, out, g, axes: A.div(e, A.mul(e, g, out()), x))


# --- running sums -----------------------------------------------------------------------------

@pd_op
class Cumsum(PdOp):
    """Running sum along `axis` (of the flattened tensor with `flatten`, a 1-D result);
    `exclusive` starts from 0 and leaves the last element out, `reverse` sums from the end.
    Integers wrap around in their own dtype as Paddle's kernel does; a one-element tensor is
    copied as it is, `exclusive` or not (Paddle's kernel returns it so)."""

    name = "pd.cumsum"
    INPUTS = ("x",)
    ATTRS = {"axis": attr(INT, -1), "flatten": attr(BOOL, False),
             "exclusive": attr(BOOL, False), "reverse": attr(BOOL, False)}
    PADDLE = Legacy("cumsum", {"X": "x"}, {"Out": 0},
                    {"axis": From("INT", "axis"), "exclusive": From("BOOLEAN", "exclusive"),
                     "flatten": From("BOOLEAN", "flatten"), "reverse": From("BOOLEAN", "reverse")},
                    keeps_extra_attrs=True)
    NAME_HINT = "cumsum"

    @classmethod
    def infer(cls, x: Abstract, axis: int, flatten: bool, exclusive: bool,
              reverse: bool) -> Abstract:
        # Paddle checks the axis against the result's rank (1 when flattened)
        normalize_axis(axis, 1 if flatten else x.ndim, f"{cls.name} axis")
        if flatten or x.ndim == 0:
            n = 1
            for d in x.shape:
                n = -1 if d < 0 or n < 0 else n * d
            return Abstract((n,) if flatten else (), x.dtype)
        return x

    @staticmethod
    def eager(x: np.ndarray, axis: int, flatten: bool, exclusive: bool,
              reverse: bool) -> np.ndarray:
        if flatten or x.ndim == 0:
            normalize_axis(axis, 1, "pd.cumsum axis")
            shape = (x.size,) if flatten else ()
            x, axis = x.reshape(-1), 0
        else:
            shape, axis = x.shape, axis % x.ndim
        if x.size == 1:  # Paddle's kernel copies a one-element tensor, even when exclusive
            return x.reshape(shape).copy()
        if reverse:
            x = np.flip(x, axis)
        out = np.cumsum(x, axis=axis, dtype=x.dtype)
        if exclusive and out.shape[axis]:
            out = np.roll(out, 1, axis=axis)
            out[(slice(None),) * axis + (0,)] = 0
        if reverse:
            out = np.flip(out, axis)
        return np.ascontiguousarray(out).reshape(shape)

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        """The running sum run the other way (exclusive stays exclusive)."""
        x, g = inputs[0], cts[0]
        shape = e.shape(x)
        if attrs["flatten"] or len(shape) == 0:
            g = A.reshape(e, g, (max(_count(shape, tuple(range(len(shape)))), 1),))
            axis = 0
        else:
            axis = attrs["axis"]
        dx = e(Cumsum, g, axis=axis, flatten=False, exclusive=attrs["exclusive"],
               reverse=not attrs["reverse"])
        return [A.reshape(e, dx, shape)]
