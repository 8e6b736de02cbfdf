"""Public functions that select by masks and index tensors (paddle.nonzero, masked_select,
broadcast_tensors, index_put): what `Tensor.__getitem__` / `__setitem__` use for advanced
indexing, with the names Paddle's LayerHelpers give their results."""
from __future__ import annotations

from typing import Any, Sequence

from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.math import cast
from tostatic.frontend.tensor.naming import helper
from tostatic.frontend.tensor.tensor import TensorMethods, to_tensor
from tostatic.ir import dtypes
from tostatic.ops import advanced_indexing as ops


def nonzero(x: Any, as_tuple: bool = False) -> Any:
    """The coordinates of x's non-zero entries, [n, rank] int64 (a tuple of [n] columns with
    `as_tuple`)."""
    if x.dtype != dtypes.bool_:
        x = cast(x, "bool")
    with helper("where_index"):
        out = apply(ops.WhereIndex, x)
    if not as_tuple:
        return out
    return tuple(out[:, i] for i in range(len(x.shape)))


def masked_select(x: Any, mask: Any, name: str | None = None) -> Any:
    with helper("masked_select", name):
        return apply(ops.MaskedSelect, x, mask)


def broadcast_tensors(input: Sequence[Any], name: str | None = None) -> list[Any]:  # noqa: A002
    with helper("broadcast_tensors", name):
        return list(apply(ops.BroadcastTensors, *input))


def index_put(x: Any, indices: Sequence[Any], value: Any, accumulate: bool = False,
              name: str | None = None) -> Any:
    """x with `value` put at `indices` (a tuple of int tensors, or one bool tensor)."""
    if not isinstance(value, TensorMethods):
        value = to_tensor(value, dtype=x.dtype)
    with helper("index_put", name):
        return apply(ops.IndexPut, x, *indices, value, accumulate=bool(accumulate))


__all__ = ["broadcast_tensors", "index_put", "masked_select", "nonzero"]
