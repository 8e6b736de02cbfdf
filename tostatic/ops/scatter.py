"""Scatter-adds: the adjoints of the gathers (gather, index_select, embedding, gather_nd,
take_along_axis, top-k), which their VJPs emit. Paddle has them as index_add, scatter_nd_add
and put_along_axis(reduce='add'); here they are used by the gradients only, so they are not
mapped to legacy ops. Duplicate indices accumulate."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir.attributes import INT, attr
from tostatic.ir.opdef import Abstract, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.gathering import GatherNd, IndexSelect, TakeAlongAxis


class AddAt(PdOp):
    """x with the values added at the positions an index names: the adjoint of a gather
    (GATHER), so its VJP is that gather of the cotangent (and the cotangent itself for x)."""

    GATHER: ClassVar[type[PdOp]]
    # and each says where its index points: positions(x, index, **attrs) -> an index tuple

    @staticmethod
    def infer(x: Abstract, index: Abstract, values: Abstract, **attrs: Any) -> Abstract:
        return x

    @classmethod
    def eager(cls, x: np.ndarray, index: np.ndarray, values: np.ndarray,
              **attrs: Any) -> np.ndarray:
        out = x.copy()
        np.add.at(out, cls.positions(x, index, **attrs), values)
        return out

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        g = cts[0]
        return [g, None, e(cls.GATHER, g, inputs[1], **cls.gather_attrs(attrs))
                if needs[2] else None]

    @staticmethod
    def gather_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
        return {}


@pd_op
class IndexAdd(AddAt):
    """x with `value`'s slices added at positions `index` (1-D) along `axis`."""

    name = "pd.index_add"
    INPUTS = ("x", "index", "value")
    ATTRS = {"axis": attr(INT, 0)}
    GATHER = IndexSelect

    @staticmethod
    def positions(x: np.ndarray, index: np.ndarray, axis: int) -> tuple[Any, ...]:
        return (slice(None),) * (axis % x.ndim) + (index.astype(np.intp),)

    @staticmethod
    def gather_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
        return {"dim": attrs["axis"]}


@pd_op
class ScatterNdAdd(AddAt):
    """x with `updates` added at the index tuples in index's last dim (gather_nd's adjoint)."""

    name = "pd.scatter_nd_add"
    INPUTS = ("x", "index", "updates")
    GATHER = GatherNd

    @staticmethod
    def positions(x: np.ndarray, index: np.ndarray) -> tuple[Any, ...]:
        return tuple(np.moveaxis(index.astype(np.intp), -1, 0))


@pd_op
class PutAlongAxisAdd(AddAt):
    """x with value[..., i, ...] added at x[..., index[..., i, ...], ...] along `axis`
    (take_along_axis's adjoint; index may be shorter than x away from the axis, as there)."""

    name = "pd.put_along_axis_add"
    INPUTS = ("x", "index", "value")
    ATTRS = {"axis": attr(INT, -1)}
    GATHER = TakeAlongAxis

    @staticmethod
    def positions(x: np.ndarray, index: np.ndarray, axis: int) -> tuple[Any, ...]:
        grids = list(np.indices(index.shape, sparse=True))
        grids[axis % max(x.ndim, 1)] = index.astype(np.intp)
        return tuple(grids)

    @staticmethod
    def gather_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
        return {"axis": attrs["axis"]}
