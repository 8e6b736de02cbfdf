"""Ordering and finding: argsort (the sorted values and their int64 indices along one axis,
what paddle.argsort and paddle.sort write) and nonzero (Paddle's where_index: the int64
coordinates of the non-zero elements, one row each, so the row count is known only when it
runs)."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, INT, attr
from tostatic.ops import autodiff as A
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops.shapes import normalize_axis


def sort_order(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Indices sorting x along `axis`, as Paddle's kernel orders: NaN is the largest value
    (last ascending, first descending); equal values keep their order (a stable sort, which
    Paddle promises only with `stable`, and which its kernel gives on these sizes)."""
    a = np.moveaxis(x, axis, -1)
    if np.issubdtype(a.dtype, np.floating):
        nan = np.isnan(a)
        value = np.where(nan, 0, a)
    else:
        nan = np.zeros(a.shape, bool)
        value = a.astype(np.int64) if a.dtype != np.bool_ else a.astype(np.int8)
    # lexsort: the last key is the primary one
    keys = (-value, ~nan) if descending else (value, nan)
    return np.moveaxis(np.lexsort(keys, axis=-1), -1, axis)


def _argsort_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any],
                 attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
    """The sorted values' cotangent put back where each value came from (Indices)."""
    return [A.e(e, "pd.put_along_axis_add", A.zeros_like(e, inputs[0]), outputs[1], cts[0],
                axis=attrs["axis"])]


@pd_op
class Argsort(PdOp):
    """x sorted along `axis` (Out) and the int64 indices that sort it (Indices)."""

    name = "pd.argsort"
    INPUTS = ("x",)
    ATTRS = {"axis": attr(INT, -1), "descending": attr(BOOL, False),
             "stable": attr(BOOL, False)}
    NUM_RESULTS = 2
    PADDLE = Legacy("argsort", {"X": "x"}, {"Out": 0, "Indices": 1},
                    {"axis": From("INT", "axis"), "descending": From("BOOLEAN", "descending"),
                     "stable": From("BOOLEAN", "stable")}, keeps_extra_attrs=True)
    NAME_HINT = "argsort"
    vjp = classmethod(_argsort_vjp)

    @classmethod
    def infer(cls, x: Abstract, axis: int, descending: bool, stable: bool) -> list[Abstract]:
        normalize_axis(axis, x.ndim, f"{cls.name} axis")
        return [x, Abstract(x.shape, dtypes.int64)]

    @staticmethod
    def eager(x: np.ndarray, axis: int, descending: bool, stable: bool) -> list[np.ndarray]:
        if x.ndim == 0:
            return [x.copy(), np.zeros((), np.int64)]
        idx = sort_order(x, normalize_axis(axis, x.ndim), descending)
        return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]
