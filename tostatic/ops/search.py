"""Finding elements by value: arg_max (index of the largest) and top_k_v2 (the k largest or
smallest with their indices)."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, DTYPE, INT, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.attr_checks import unsupported
from tostatic.ops.shapes import normalize_axis


def _index_dtype(n: int) -> dtypes.DType | None:
    """arg_max's dtype attribute: a VarType number, -1 (the op default) meaning int64."""
    return None if n < 0 else dtypes.BY_VAR_TYPE[n]


@pd_op
class ArgMax(PdOp):
    """Index of the largest element along `axis` (of the flattened tensor with `flatten`);
    NaNs are passed over as Paddle's kernel does, the first of equal maxima wins.

    Paddle 3.3.1 cannot write arg_max in the legacy format (paddle.argmax only builds the new
    IR); files from Paddle 2.x hold it, with axis as a LONG attribute and dtype as a VarType."""

    name = "pd.argmax"
    INPUTS = ("x",)
    ATTRS = {"axis": attr(INT, -1), "keepdims": attr(BOOL, False), "flatten": attr(BOOL, False),
             "dtype": attr(DTYPE, "int64")}
    PADDLE = Legacy("arg_max", {"X": "x"}, {"Out": 0},
                    {"axis": From("LONG", "axis"),
                     "dtype": From("INT", "dtype", lambda d: d.var_type, _index_dtype),
                     "flatten": From("BOOLEAN", "flatten"),
                     "keepdims": From("BOOLEAN", "keepdims")},
                    keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "arg_max"
    NONDIFF = True

    @classmethod
    def infer(cls, x: Abstract, axis: int, keepdims: bool, flatten: bool,
              dtype: dtypes.DType) -> Abstract:
        dtype = dtypes.convert_dtype(dtype)
        if dtype not in (dtypes.int32, dtypes.int64):
            raise unsupported(cls.name, "dtype", dtype.name, ("int32", "int64"))
        if flatten or x.ndim == 0:
            return Abstract((1,) * x.ndim if keepdims else (), dtype)
        ax = normalize_axis(axis, x.ndim, f"{cls.name} axis")
        if x.shape[ax] == 0:
            raise ShapeError(f"{cls.name}: axis {axis} of shape {list(x.shape)} is empty")
        shape = tuple(1 if i == ax else d for i, d in enumerate(x.shape) if keepdims or i != ax)
        return Abstract(shape, dtype)

    @staticmethod
    def eager(x: np.ndarray, axis: int, keepdims: bool, flatten: bool,
              dtype: dtypes.DType) -> np.ndarray:
        if np.issubdtype(x.dtype, np.floating):
            nan = np.isnan(x)
            if nan.any():
                x = np.where(nan, -np.inf, x)
        if flatten or x.ndim == 0:
            out = np.argmax(x.reshape(-1)).reshape((1,) * x.ndim if keepdims else ())
        else:
            out = np.argmax(x, axis=axis, keepdims=keepdims)
        return np.asarray(out, dtype=dtypes.convert_dtype(dtype).numpy)


def _topk_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """The values' cotangent added back at the indices."""
    x = inputs[0]
    axis = attrs.get("axis", -1)
    return [A.e(e, "pd.put_along_axis_add", A.zeros_like(e, x), outputs[1], cts[0], axis=axis)]


@pd_op
class TopK(PdOp):
    """The k largest (or smallest) elements along `axis` and their int64 indices, sorted
    (largest first, or smallest first). NaN counts as the largest value, as in Paddle; the
    first of equal values comes first (Paddle's kernel does not promise an order among them)."""

    name = "pd.topk"
    INPUTS = ("x",)
    ATTRS = {"k": attr(INT), "axis": attr(INT, -1), "largest": attr(BOOL, True),
             "sorted": attr(BOOL, True)}
    NUM_RESULTS = 2
    PADDLE = Legacy("top_k_v2", {"X": "x"}, {"Out": 0, "Indices": 1},
                    {"axis": From("INT", "axis"), "k": From("INT", "k"),
                     "largest": From("BOOLEAN", "largest"), "sorted": From("BOOLEAN", "sorted")},
                    optional_inputs=("K",), keeps_extra_attrs=True)
    NAME_HINT = "top_k_v2"
    vjp = classmethod(_topk_vjp)

    @classmethod
    def infer(cls, x: Abstract, k: int, axis: int, largest: bool,
              sorted: bool) -> list[Abstract]:
        if x.ndim == 0:
            raise ShapeError(f"{cls.name}: needs a tensor of rank >= 1")
        ax = normalize_axis(axis, x.ndim, f"{cls.name} axis")
        if k < 1 or (x.shape[ax] >= 0 and k > x.shape[ax]):
            raise ShapeError(f"{cls.name}: k={k} must be in [1, {x.shape[ax]}] for axis {axis} "
                             f"of shape {list(x.shape)}")
        shape = x.shape[:ax] + (k,) + x.shape[ax + 1:]
        return [Abstract(shape, x.dtype), Abstract(shape, dtypes.int64)]

    @staticmethod
    def eager(x: np.ndarray, k: int, axis: int, largest: bool,
              sorted: bool) -> list[np.ndarray]:
        a = np.moveaxis(x, axis, -1)
        n = a.shape[-1]
        # an ascending sort key: NaN is the largest value, as Paddle orders it
        if np.issubdtype(a.dtype, np.floating):
            nan = np.isnan(a)
            key = np.where(nan, -np.inf, -a) if largest else np.where(nan, np.inf, a)
        else:
            key = -a.astype(np.int64) if largest else a
        if k < n:
            # the k smallest keys; of keys equal to the k-th, the first ones by index
            kth = np.partition(key, k - 1, axis=-1)[..., k - 1:k]
            less, tie = key < kth, key == kth
            need = k - less.sum(axis=-1, keepdims=True)
            chosen = less | (tie & (np.cumsum(tie, axis=-1) <= need))
            part = np.argsort(~chosen, axis=-1, kind="stable")[..., :k]
        else:
            part = np.broadcast_to(np.arange(n), a.shape)
        # sorted by key, then by index
        order = np.lexsort((part, np.take_along_axis(key, part, axis=-1)), axis=-1)
        idx = np.take_along_axis(part, order, axis=-1)
        out = np.take_along_axis(a, idx, axis=-1)
        return [np.moveaxis(out, -1, axis), np.moveaxis(idx, -1, axis).astype(np.int64)]


@pd_op
class TopKLastAxis(PdOp):
    """top_k (v1, what Paddle <= 2.0 wrote): the k largest along the last axis, sorted."""

    name = "pd.topk_last_axis"
    INPUTS = ("x",)
    ATTRS = {"k": attr(INT)}
    NUM_RESULTS = 2
    PADDLE = Legacy("top_k", {"X": "x"}, {"Out": 0, "Indices": 1}, {"k": From("INT", "k")},
                    optional_inputs=("K",), keeps_extra_attrs=True)
    NAME_HINT = "top_k"
    vjp = classmethod(_topk_vjp)

    @classmethod
    def infer(cls, x: Abstract, k: int) -> list[Abstract]:
        return TopK.infer(x, k=k, axis=-1, largest=True, sorted=True)

    @staticmethod
    def eager(x: np.ndarray, k: int) -> list[np.ndarray]:
        return TopK.eager(x, k=k, axis=-1, largest=True, sorted=True)
