"""`Tensor.__getitem__` for basic indexing: ints, slices with step 1, `...` and `None`, as
Paddle's `_getitem_static` (paddle/base/variable_index.py, 3.3.1) writes it.

One `slice` op takes every int and non-trivial slice (an int `i` is start i, end i + 1 and a
decreased axis; -1 ends at 2**31 - 1; an end at or past a known dim becomes 2**31 - 1), its
result named after the input (`x_slice_0`); `None`s then add unit dims with one `unsqueeze2`.
`x[:]` is x itself. Strided slices and advanced indexing (lists, tensors, bools) are refused
with an error saying so.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.frontend.tensor.manipulation import gather, squeeze, unsqueeze
from tostatic.frontend.tensor.math import reshape
from tostatic.frontend.tensor.naming import apply_as
from tostatic.frontend.tensor.tensor import TensorMethods
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import indexing

MAX_INTEGER = 2**31 - 1


def _expand_ellipsis(shape: list[int], items: list[Any]) -> list[Any]:
    if sum(1 for it in items if it is Ellipsis) > 1:
        raise IndexError("An index can only have a single ellipsis ('...')")
    if Ellipsis not in items:
        return items
    at = items.index(Ellipsis)
    if at == len(items) - 1:
        return items[:-1]
    fill = len(shape) - len(items) + items.count(None) + 1
    return items[:at] + [slice(None)] * fill + items[at + 1:]


def _advanced(item: Any) -> str | None:
    """Why an index item is not basic indexing (None if it is)."""
    if isinstance(item, bool):
        return "a bool"
    if isinstance(item, (list, tuple, range)):
        return "a list"
    if isinstance(item, TensorMethods):
        return "a Tensor"
    if isinstance(item, np.ndarray):
        return "an array"
    return None


def parse_index(shape: list[int], index: Any) -> tuple[list[int], list[int], list[int],
                                                        list[int], list[int]]:
    """(axes, starts, ends, decrease_axes, none_axes) of Paddle's parse_index, for basic
    indexing only."""
    items = list(index) if isinstance(index, tuple) else [index]
    for it in items:
        why = _advanced(it)
        if why is not None:
            raise UnsupportedError(f"Tensor indexing with {why} ({it!r}) is advanced indexing, "
                                   f"not supported yet: use ints, slices, ... and None")
    items = _expand_ellipsis(shape, items)
    none_axes = [i for i, it in enumerate(items) if it is None]
    items = [it for it in items if it is not None]
    if len(items) > len(shape):
        raise IndexError(f"too many indices ({len(items)}) for a tensor of shape {shape}")
    axes: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    decrease: list[int] = []
    for dim, it in enumerate(items):
        if isinstance(it, (int, np.integer)):
            i = int(it)
            if shape[dim] >= 0 and i >= shape[dim]:
                raise IndexError(f"slice_item {i} at dim {dim} should be >= 0 and < "
                                 f"x.shape[{dim}]: {shape[dim]}")
            decrease.append(dim)
            start, end = i, (i + 1 if i != -1 else MAX_INTEGER)
        elif isinstance(it, slice):
            if it.start is None and it.stop is None and it.step is None:
                continue
            step = 1 if it.step is None else int(it.step)
            if step != 1:
                raise UnsupportedError(f"Tensor indexing with step {step} (strided_slice) is "
                                       f"not supported yet; only slices with step 1 are")
            start = 0 if it.start is None else int(it.start)
            end = MAX_INTEGER if it.stop is None else int(it.stop)
            if shape[dim] != -1 and end >= shape[dim]:
                end = MAX_INTEGER
            if start == 0 and end == MAX_INTEGER:
                continue
        else:
            raise IndexError(f"Valid index accept int / bool / slice / ellipsis / list / Tuple "
                             f"/ Ndarray / Tensor, but received {it}.")
        axes.append(dim)
        starts.append(start)
        ends.append(end)
    return axes, starts, ends, decrease, none_axes


def _tensor_row(x: Any, index: Any) -> Any:
    """x[i] for an integer tensor i of one element: a 0-D i picks row i of dim 0 (the dim
    dropped, as an int does), a [1] one keeps it (x[[i]]), as Paddle's indexing does; the
    converted `for row in x` indexes with its counter."""
    if index.dtype.is_floating or index.dtype == dtypes.bool_ or \
            len(index.shape) > 1 or any(d != 1 for d in index.shape):
        raise UnsupportedError(f"Tensor indexing with a Tensor of shape {list(index.shape)} "
                               f"({index.dtype.name}) is advanced indexing, not supported yet: "
                               f"use ints, slices, ... and None, or one integer tensor of one "
                               f"element")
    rows = gather(x, reshape(index, [1]), axis=0)
    return squeeze(rows, axis=[0]) if not index.shape else rows


def getitem(x: Any, index: Any) -> Any:
    if isinstance(index, TensorMethods):
        return _tensor_row(x, index)
    axes, starts, ends, decrease, none_axes = parse_index(list(x.shape), index)
    out = x
    if axes:
        attrs = {"axes": tuple(axes), "starts": tuple(starts), "ends": tuple(ends),
                 "decrease_axis": tuple(decrease)}
        out = apply_as(indexing.Slice, [x], attrs, f"{x.name}_slice")
    if none_axes:
        out = unsqueeze(out, [a - sum(1 for d in decrease if d < a) for a in none_axes])
    return out


__all__ = ["getitem", "parse_index"]
