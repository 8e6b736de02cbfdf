"""Gathering by index tensors: gather_nd (index tuples), index_select (one axis),
take_along_axis (an index per position). Negative indices count from the end, as in Paddle's
kernels; an index outside [-size, size) names the op and the index when it runs."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir.attributes import INT, attr
from tostatic.ir.errors import OutOfRangeError, ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.embedding import INDEX_DTYPES
from tostatic.ops.shapes import normalize_axis


def _check_index_dtype(op: str, index: Abstract) -> None:
    if index.dtype not in INDEX_DTYPES:
        raise ShapeError(f"{op}: index must be int32 or int64, got {index.dtype.name}")


def check_index(op: str, index: np.ndarray, size: int, what: str = "index") -> None:
    """Raise naming `op` and the first index outside [-size, size)."""
    if index.size == 0:
        return
    bad = (index < -size) | (index >= size)
    if bad.any():
        first = index.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
        raise OutOfRangeError(f"{op}: {what} {int(first)} is out of range [{-size}, {size})")


def _gather_nd_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    x, index = inputs
    return [A.e(e, "pd.scatter_nd_add", A.zeros_like(e, x), index, cts[0]), None]


@pd_op
class GatherNd(PdOp):
    """x at the index tuples in index's last dim: index [..., k] (k <= rank of x) gives
    index.shape[:-1] + x.shape[k:]; k = 0 repeats all of x."""

    name = "pd.gather_nd"
    INPUTS = ("x", "index")
    PADDLE = Legacy("gather_nd", {"X": "x", "Index": "index"}, {"Out": 0},
                    keeps_extra_attrs=True)
    NAME_HINT = "gather_nd"
    vjp = classmethod(_gather_nd_vjp)

    @classmethod
    def infer(cls, x: Abstract, index: Abstract) -> Abstract:
        _check_index_dtype(cls.name, index)
        if index.ndim < 1:
            raise ShapeError(f"{cls.name}: index must have at least one dim, got a 0-D tensor")
        k = index.shape[-1]
        if k < 0:
            raise ShapeError(f"{cls.name}: the last dim of index (the tuple length) must be "
                             f"known, got shape {list(index.shape)}")
        if k > x.ndim:
            raise ShapeError(f"{cls.name}: index tuples of length {k} are longer than the "
                             f"rank of x {list(x.shape)}")
        return Abstract(index.shape[:-1] + x.shape[k:], x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        k = index.shape[-1]
        for d in range(k):
            check_index(cls.name, index[..., d], x.shape[d], f"index of dim {d}")
        if k == 0:
            return np.ascontiguousarray(np.broadcast_to(x, index.shape[:-1] + x.shape))
        return x[tuple(np.moveaxis(index, -1, 0))]


def _index_select_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    x, index = inputs
    return [A.e(e, "pd.index_add", A.zeros_like(e, x), index, cts[0], axis=attrs["dim"]), None]


@pd_op
class IndexSelect(PdOp):
    """x's entries `index` (1-D) along `dim` (np.take)."""

    name = "pd.index_select"
    INPUTS = ("x", "index")
    ATTRS = {"dim": attr(INT, 0)}
    PADDLE = Legacy("index_select", {"X": "x", "Index": "index"}, {"Out": 0},
                    {"dim": From("INT", "dim")}, keeps_extra_attrs=True)
    NAME_HINT = "index_select"
    vjp = classmethod(_index_select_vjp)

    @classmethod
    def infer(cls, x: Abstract, index: Abstract, dim: int) -> Abstract:
        _check_index_dtype(cls.name, index)
        if index.ndim != 1 or x.ndim < 1:
            raise ShapeError(f"{cls.name}: index must be 1-D and x at least 1-D, got shapes "
                             f"{list(index.shape)} and {list(x.shape)}")
        ax = normalize_axis(dim, x.ndim, f"{cls.name} dim")
        return Abstract(x.shape[:ax] + index.shape + x.shape[ax + 1:], x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, index: np.ndarray, dim: int) -> np.ndarray:
        ax = dim % x.ndim
        check_index(cls.name, index, x.shape[ax])
        return np.take(x, index, axis=ax)


def _take_along_axis_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    x, index = inputs
    return [A.e(e, "pd.put_along_axis_add", A.zeros_like(e, x), index, cts[0],
                axis=attrs["axis"]), None]


@pd_op
class TakeAlongAxis(PdOp):
    """out[..., i, ...] = x[..., index[..., i, ...], ...] along `axis`: the result has
    index's shape. Away from the axis, index's dims may be shorter than x's (it reads their
    first entries); Paddle's API expands both to one shape first."""

    name = "pd.take_along_axis"
    INPUTS = ("x", "index")
    ATTRS = {"axis": attr(INT)}
    PADDLE = Legacy("take_along_axis", {"Input": "x", "Index": "index"}, {"Result": 0},
                    {"Axis": From("INT", "axis")}, keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "take_along_axis"
    vjp = classmethod(_take_along_axis_vjp)

    @classmethod
    def infer(cls, x: Abstract, index: Abstract, axis: int) -> Abstract:
        _check_index_dtype(cls.name, index)
        if index.ndim != x.ndim:
            raise ShapeError(f"{cls.name}: index must have the rank of x {list(x.shape)}, "
                             f"got shape {list(index.shape)}")
        ax = normalize_axis(axis, x.ndim, f"{cls.name} axis")
        for d, (i, n) in enumerate(zip(index.shape, x.shape)):
            if d != ax and i >= 0 and n >= 0 and i > n:
                raise ShapeError(f"{cls.name}: index {list(index.shape)} is longer than x "
                                 f"{list(x.shape)} in dim {d} (only the axis {ax} may be)")
        return Abstract(index.shape, x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
        ax = axis % max(x.ndim, 1)
        if any(d != ax and i > n for d, (i, n) in enumerate(zip(index.shape, x.shape))):
            raise ShapeError(f"{cls.name}: index {list(index.shape)} is longer than x "
                             f"{list(x.shape)} away from axis {ax}")
        check_index(cls.name, index, x.shape[ax])
        part = x[tuple(slice(None) if d == ax else slice(0, i)
                       for d, i in enumerate(index.shape))]
        return np.take_along_axis(part, index, axis=ax)
