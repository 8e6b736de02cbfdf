"""Reductions over a list of axes; an empty list (or reduce_all) reduces everything."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, INTS, attr
from tostatic.ir.opdef import Abstract, Fixed, From, Legacy, PdOp, pd_op
from tostatic.ops.shapes import normalize_axis


def reduced_axes(ndim: int, axis: tuple[int, ...], reduce_all: bool) -> tuple[int, ...]:
    if reduce_all or not axis:
        return tuple(range(ndim))
    return tuple(sorted({normalize_axis(a, ndim) for a in axis}))


def reduce(paddle_type: str, out_lod_level: bool = True) -> Legacy:
    return Legacy(paddle_type, {"X": "x"}, {"Out": 0},
                  {"dim": From("INTS", "axis"), "keep_dim": From("BOOLEAN", "keepdim"),
                   "reduce_all": From("BOOLEAN", "reduce_all"),
                   "in_dtype": Fixed("INT", -1), "out_dtype": Fixed("INT", -1)},
                  out_lod_level=out_lod_level)


class Reduce(PdOp):
    INPUTS = ("x",)
    ATTRS = {"axis": attr(INTS, ()), "keepdim": attr(BOOL, False),
             "reduce_all": attr(BOOL, False)}
    FN: ClassVar[Any] = None

    @classmethod
    def result_dtype(cls, dtype: dtypes.DType) -> dtypes.DType:
        return dtype

    @classmethod
    def infer(cls, x: Abstract, axis: tuple[int, ...], keepdim: bool, reduce_all: bool) -> Abstract:
        axes = reduced_axes(x.ndim, axis, reduce_all)
        shape = tuple((1 if i in axes else d) for i, d in enumerate(x.shape) if keepdim or i not in axes)
        return Abstract(shape, cls.result_dtype(x.dtype))

    @classmethod
    def eager(cls, x: np.ndarray, axis: tuple[int, ...], keepdim: bool, reduce_all: bool) -> np.ndarray:
        axes = reduced_axes(x.ndim, axis, reduce_all)
        out = cls.FN(x, axis=axes, keepdims=keepdim)
        return np.asarray(out, dtype=cls.result_dtype(dtypes.convert_dtype(x.dtype)).numpy)


@pd_op
class Sum(Reduce):
    name = "pd.sum"
    FN = np.sum
    PADDLE = reduce("reduce_sum")
    NAME_HINT = "reduce_sum"

    @classmethod
    def result_dtype(cls, dtype: dtypes.DType) -> dtypes.DType:
        return dtypes.int64 if dtype in (dtypes.bool_, dtypes.int32) else dtype


@pd_op
class Mean(Reduce):
    name = "pd.mean"
    FN = np.mean
    PADDLE = reduce("reduce_mean", out_lod_level=False)
    NAME_HINT = "mean"


@pd_op
class Max(Reduce):
    name = "pd.max"
    FN = np.max
    PADDLE = reduce("reduce_max")
    NAME_HINT = "reduce_max"
