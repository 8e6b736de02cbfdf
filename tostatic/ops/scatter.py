"""Scatter-adds: the adjoints of the gathers (gather, index_select, embedding, gather_nd,
take_along_axis, top-k), which their VJPs emit. Paddle has them as index_add, scatter_nd_add
and put_along_axis(reduce='add'); here they are used by the gradients only, so they are not
mapped to legacy ops. Duplicate indices accumulate."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir.attributes import INT, attr
from tostatic.ir.opdef import Abstract, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.gathering import GatherNd, IndexSelect, TakeAlongAxis


@pd_op
class IndexAdd(PdOp):
    """x with `value`'s slices added at positions `index` (1-D) along `axis`."""

    name = "pd.index_add"
    INPUTS = ("x", "index", "value")
    ATTRS = {"axis": attr(INT, 0)}

    @staticmethod
    def infer(x: Abstract, index: Abstract, value: Abstract, axis: int) -> Abstract:
        return x

    @staticmethod
    def eager(x: np.ndarray, index: np.ndarray, value: np.ndarray, axis: int) -> np.ndarray:
        out = x.copy()
        ax = axis % x.ndim
        np.add.at(out, (slice(None),) * ax + (index.astype(np.intp),), value)
        return out

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        g = cts[0]
        dv = e(IndexSelect, g, inputs[1], dim=attrs["axis"]) if needs[2] else None
        return [g, None, dv]


@pd_op
class ScatterNdAdd(PdOp):
    """x with `updates` added at the index tuples in index's last dim (gather_nd's adjoint)."""

    name = "pd.scatter_nd_add"
    INPUTS = ("x", "index", "updates")

    @staticmethod
    def infer(x: Abstract, index: Abstract, updates: Abstract) -> Abstract:
        return x

    @staticmethod
    def eager(x: np.ndarray, index: np.ndarray, updates: np.ndarray) -> np.ndarray:
        out = x.copy()
        np.add.at(out, tuple(np.moveaxis(index.astype(np.intp), -1, 0)), updates)
        return out

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        g = cts[0]
        return [g, None, e(GatherNd, g, inputs[1]) if needs[2] else None]


@pd_op
class PutAlongAxisAdd(PdOp):
    """x with value[..., i, ...] added at x[..., index[..., i, ...], ...] along `axis`
    (take_along_axis's adjoint; index may be shorter than x away from the axis, as there)."""

    name = "pd.put_along_axis_add"
    INPUTS = ("x", "index", "value")
    ATTRS = {"axis": attr(INT, -1)}

    @staticmethod
    def infer(x: Abstract, index: Abstract, value: Abstract, axis: int) -> Abstract:
        return x

    @staticmethod
    def eager(x: np.ndarray, index: np.ndarray, value: np.ndarray, axis: int) -> np.ndarray:
        out = x.copy()
        ax = axis % max(x.ndim, 1)
        grids = list(np.indices(index.shape, sparse=True))
        grids[ax] = index.astype(np.intp)
        np.add.at(out, tuple(grids), value)
        return out

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        g = cts[0]
        dv = e(TakeAlongAxis, g, inputs[1], axis=attrs["axis"]) if needs[2] else None
        return [g, None, dv]
