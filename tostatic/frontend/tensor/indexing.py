"""`Tensor.__getitem__` and `__setitem__`, as Paddle 3.3.1's `_getitem_static` /
`_setitem_static` (paddle/base/variable_index.py) write them; eager tensors run the same ops.

Basic indexing (ints, slices, `...`, None) is one `slice` (`strided_slice` when a step is not
1) named after its input (`x_slice_0`), then one `unsqueeze2` for the Nones; `x[:]` is x. A
0-D int tensor index is a slice whose bounds are tensors (StartsTensorList / EndsTensorList).
Advanced indexing (lists, arrays, int and bool tensors, a Python bool) then moves the indexed
dims to the front (`transpose2`), gathers with `gather_nd` (one bool mask: `masked_select`,
or `where_index` + `gather_nd` when it covers fewer dims) and moves the new dims back.

`x[index] = value` is `set_value` (a literal in `values` / `shape`, or a ValueTensor); with
advanced indexing, the indexed part is updated by `index_put` (Paddle's eager semantics: a
mask's value broadcasts to the selected elements; Paddle's legacy static mode cannot write
it) and written back with `set_value`. Eager tensors change in place; a traced or static Variable is rebound to the
result (Paddle's static mode asks for `paddle.static.setitem(x, index, value)`, which returns it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.manipulation import stack, unsqueeze
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.naming import apply_as, helper, renamable
from tostatic.frontend.tensor.selecting import (broadcast_tensors, index_put, masked_select,
                                                nonzero)
from tostatic.frontend.tensor.tensor import Tensor, TensorMethods, to_tensor
from xdsl.dialects.builtin import DictionaryAttr

from tostatic.dialects.program import to_attr
from tostatic.ir import builder as builders
from tostatic.ir.attr_keys import LEGACY_ATTRS_ATTR
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import advanced_indexing, indexing, runtime_bounds, slicing
from tostatic.ops.core import Constant, array_to_dense

MAX_INTEGER = 2**31 - 1
MIN_INTEGER = -2**31
INT_DTYPES = (dtypes.int8, dtypes.uint8, dtypes.int16, dtypes.int32, dtypes.int64)


def _is_tensor(x: Any) -> bool:
    return isinstance(x, TensorMethods)


def _constant(data: Any, dtype: Any = None) -> Any:
    """A literal index or value: an eager tensor (a trace captures it), or in static mode
    Paddle's `paddle.assign` of it (assign_value, `assign_0.tmp_0`)."""
    t = to_tensor(data, dtype=dtype)
    builder = builders.current()
    if builder is None or renamable(builder):
        return t
    with helper("assign"):
        out = apply(Constant, value=array_to_dense(t.numpy()))
    # to_tensor in Paddle's static mode: assign under device_guard("cpu"), its variable
    # declared without a lod_level
    out.value.owner.attributes[LEGACY_ATTRS_ATTR] = DictionaryAttr(
        {"op_device": to_attr("STRING", "cpu")})
    out._fields.pop("lod_level", None)
    return out


def _is_scalar_tensor(x: Any) -> bool:
    return _is_tensor(x) and len(x.shape) == 0 and x.dtype != dtypes.bool_


@dataclass
class Index:
    """Paddle's parse_index: the basic part (one slice op), and the advanced indices by the
    dim they index after it (`advanced[d]`, None where a dim is not indexed)."""
    axes: list[int] = field(default_factory=list)
    starts: list[Any] = field(default_factory=list)  # ints, or 0-D int tensors
    ends: list[Any] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    decrease: list[int] = field(default_factory=list)
    none_axes: list[int] = field(default_factory=list)
    advanced: list[Any] = field(default_factory=list)
    strided: bool = False

    @property
    def has_advanced(self) -> bool:
        return any(a is not None for a in self.advanced)


def _expand_ellipsis(ndim: int, items: list[Any]) -> list[Any]:
    plain = [it for it in items if not _is_tensor(it) and not isinstance(it, np.ndarray)
             and it is not None]
    count = sum(1 for it in plain if it is Ellipsis)
    if count == 0:
        return items
    if count > 1:
        raise IndexError("An index can only have a single ellipsis ('...')")
    at = next(i for i, it in enumerate(items) if it is Ellipsis)
    if at == len(items) - 1:
        return items[:-1]
    fill = ndim - len(items) + sum(1 for it in items if it is None) + 1
    return items[:at] + [slice(None)] * fill + items[at + 1:]


def parse_index(x: Any, index: Any) -> Index:
    items = list(index) if isinstance(index, tuple) else [index]
    items = [_constant(it) if isinstance(it, np.ndarray) else
             list(it) if isinstance(it, range) else it for it in items]
    items = _expand_ellipsis(len(x.shape), items)
    shape = list(x.shape)
    out = Index(advanced=[None] * 2 * len(shape))
    out.none_axes = [i for i, it in enumerate(items) if it is None]
    items = [it for it in items if it is not None]
    estimated = dim = 0
    for it in items:
        if dim >= len(shape) and not (isinstance(it, bool) or _is_tensor(it) and
                                      it.dtype == dtypes.bool_ and len(it.shape) == 0):
            raise IndexError(f"too many indices for a tensor of shape {shape}: {index!r}")
        start = end = step = None
        if isinstance(it, (int, np.integer)) and not isinstance(it, (bool, np.bool_)):
            i = int(it)
            if shape[dim] >= 0 and i >= shape[dim]:
                raise IndexError(f"slice_item {i} at dim {dim} should be >= 0 and < "
                                 f"x.shape[{dim}]: {shape[dim]}")
            out.decrease.append(dim)
            start, end, step = i, (i + 1 if i != -1 else MAX_INTEGER), 1
            dim += 1
        elif _is_scalar_tensor(it):
            if it.dtype not in INT_DTYPES:
                raise IndexError(f"a 0-D tensor index must be an integer, got {it.dtype.name}")
            out.decrease.append(dim)
            start, end, step = it, it + 1, 1
            dim += 1
        elif isinstance(it, (bool, np.bool_)):
            out.none_axes.append(dim)
            out.advanced[estimated] = _constant([bool(it)])
            estimated += 1
        elif isinstance(it, slice):
            start, end, step = it.start, it.stop, it.step
            if start is None and end is None and step is None:
                estimated += 1
                dim += 1
                continue
            tensor_bound = any(_is_tensor(v) for v in (start, end))
            if _is_tensor(step) or (tensor_bound and step not in (None, 1)):
                raise UnsupportedError(f"Tensor indexing with a tensor step, or tensor bounds "
                                       f"with a step ({it!r}), is not supported; give the "
                                       f"step as a Python int and bounds with step 1")
            step = 1 if step is None else int(step)
            if step == 0:
                raise ValueError("slice step cannot be zero")
            start = (0 if step > 0 else MAX_INTEGER) if start is None else _bound(start)
            end = (MAX_INTEGER if step > 0 else MIN_INTEGER) if end is None else _bound(end)
            if not _is_tensor(end) and shape[dim] != -1 and end >= shape[dim]:
                end = MAX_INTEGER if step > 0 else shape[dim]
            estimated += 1
            dim += 1
        elif isinstance(it, (list, tuple)) or _is_tensor(it):
            t = it if _is_tensor(it) else _constant(list(it))
            if t.dtype == dtypes.bool_:
                if len(t.shape) == 0:
                    out.none_axes.append(dim)
                elif t.shape[0] not in (-1, shape[dim]) and shape[dim] != -1:
                    raise IndexError(f"The shape of boolean index {t.shape[0]} did not match "
                                     f"indexed tensor {shape[dim]} along axis {dim}")
            elif t.dtype not in INT_DTYPES:
                raise IndexError(f"a tensor index must be int or bool, got {t.dtype.name}")
            out.advanced[estimated] = t
            estimated += 1
            dim += 1
        else:
            raise IndexError(f"Valid index accept int / bool / slice / ellipsis / list / Tuple "
                             f"/ Ndarray / Tensor, but received {it!r}.")
        if start is None or (isinstance(start, int) and start == 0 and
                             isinstance(end, int) and end == MAX_INTEGER and step == 1):
            continue
        out.axes.append(dim - 1)
        out.starts.append(start)
        out.ends.append(end)
        out.steps.append(step)
        out.strided = out.strided or step != 1
    return out


def _bound(v: Any) -> Any:
    """A slice bound: a Python int, or a 1-element int tensor (read at run time)."""
    if _is_tensor(v):
        if v.dtype not in INT_DTYPES:
            raise IndexError(f"a slice bound must be an integer, got a {v.dtype.name} tensor")
        return v
    return int(v)


def _slice_attrs(ix: Index, keep: list[int]) -> dict[str, Any]:
    return {"axes": tuple(ix.axes[k] for k in keep), "starts": tuple(ix.starts[k] for k in keep),
            "ends": tuple(ix.ends[k] for k in keep),
            "decrease_axis": tuple(d for d in ix.decrease if d in {ix.axes[k] for k in keep})}


def basic_indexing(x: Any, ix: Index) -> Any:
    """Paddle's get_tensor_with_basic_indexing: one slice / strided_slice, then unsqueeze2."""
    out = x
    by_tensor = [k for k, (s, e) in enumerate(zip(ix.starts, ix.ends))
                 if _is_tensor(s) or _is_tensor(e)]
    const = [k for k in range(len(ix.axes)) if k not in by_tensor]
    if const:
        attrs = _slice_attrs(ix, const)
        if ix.strided:
            attrs["strides"] = tuple(ix.steps[k] for k in const)
            out = apply_as(slicing.StridedSlice, [x], attrs, f"{x.name}_strided_slice")
        else:
            out = apply_as(indexing.Slice, [x], attrs, f"{x.name}_slice")
    for k in sorted(by_tensor, key=lambda k: -ix.axes[k]):  # (a decision: Paddle writes one
        axis = ix.axes[k]                                  # slice, its constants as tensors)
        pos = axis - sum(1 for d in _slice_attrs(ix, const)["decrease_axis"] if d < axis)
        bounds = {"starts": ix.starts[k], "ends": ix.ends[k]}
        forms = tuple("list" if _is_tensor(v) else "attr" for v in bounds.values())
        attrs: dict[str, Any] = {"axes": (pos,), "infer_flags": (-1,),
                                 "decrease_axis": (pos,) if axis in ix.decrease else (),
                                 **{side: (-1,) if _is_tensor(v) else (v,)
                                    for side, v in bounds.items()}}
        inputs = [out] + [v for v in bounds.values() if _is_tensor(v)]
        out = apply_as(runtime_bounds.SLICE_OPS[forms], inputs, attrs, f"{x.name}_slice")
    if ix.none_axes:
        out = unsqueeze(out, [a - sum(1 for d in ix.decrease if d < a) for a in ix.none_axes])
    return out


def _front(x: Any, advanced: list[Any]) -> tuple[Any, list[Any], list[int], int, int]:
    """Paddle's deal_advanced_index: x with the indexed dims moved to the front, the index
    tensors, the permutation used, where the new dims go, their rank."""
    dims: list[int] = []
    indices: list[Any] = []
    pos, rank = MAX_INTEGER, 1
    for i, t in enumerate(advanced):
        if t is None:
            continue
        if i == 0 or (dims and dims[-1] != i - 1):
            pos = 0
        else:
            pos = min(pos, i)
        rank = max(rank, len(t.shape))
        dims.append(i)
        indices.append(t)
    dims += [i for i in range(len(x.shape)) if advanced[i] is None]
    moved = x if dims == list(range(len(x.shape))) else math.transpose(x, dims)
    return moved, indices, dims, pos, rank


def _bool_select(x: Any, mask: Any) -> Any:
    if len(mask.shape) > len(x.shape):
        raise IndexError(f"The dims of bool index doesn't match indexed array, the dims of "
                         f"bool index except to be equal or less than {len(x.shape)}, but "
                         f"received {len(mask.shape)}.")
    for i, (m, d) in enumerate(zip(mask.shape, x.shape)):
        if m != -1 and d != -1 and m != d:
            raise IndexError(f"The dimension of bool index doesn't match indexed array along "
                             f"dimension {i}, the target dimension is {d}, but received {m}.")
    if len(mask.shape) == len(x.shape):
        return masked_select(x, mask)
    return math.gather_nd(x, nonzero(mask))


def _int_indices(indices: list[Any]) -> list[Any]:
    """Paddle's parse_bool_and_broadcast_indices."""
    indices = [nonzero(t)[:, 0] if t.dtype == dtypes.bool_ else t for t in indices]
    return broadcast_tensors(indices) if len(indices) > 1 else indices


def getitem(x: Any, index: Any) -> Any:
    ix = parse_index(x, index)
    out = basic_indexing(x, ix)
    if not ix.has_advanced:
        return out
    moved, indices, _, pos, rank = _front(out, ix.advanced)
    if len(indices) == 1 and indices[0].dtype == dtypes.bool_:
        out = _bool_select(moved, indices[0])
    else:
        indices = _int_indices(indices)
        stacked = (stack(indices, axis=-1) if len(indices) > 1
                   else unsqueeze(indices[0], -1))
        out = math.gather_nd(moved, stacked)
    if pos != 0:
        ndim = len(out.shape)
        perm = (list(range(rank, pos + rank)) + list(range(rank))
                + list(range(pos + rank, ndim)))
        out = math.transpose(out, perm)
    return out


# --- __setitem__ ---------------------------------------------------------------------------------

def _slice_attrs_for_set(ix: Index) -> dict[str, Any]:
    return {"axes": tuple(ix.axes), "starts": tuple(ix.starts), "ends": tuple(ix.ends),
            "steps": tuple(ix.steps), "decrease_axes": tuple(ix.decrease),
            "none_axes": tuple(ix.none_axes)}


def _literal(x: Any, value: Any) -> np.ndarray | None:
    if isinstance(value, (bool, int, float, complex, np.number, np.bool_)):
        return np.array([value]).astype(x.dtype.numpy)
    if isinstance(value, np.ndarray):
        return value.astype(x.dtype.numpy)
    if _is_tensor(value):
        return None
    raise TypeError(f"Only support to assign an integer, float, numpy.ndarray or paddle.Tensor "
                    f"to a paddle.Tensor, but received {type(value)}")


def _set_value_at(x: Any, ix: Index, at: list[int], value: Any) -> Any:
    """`x[i] = value` with a 0-D int tensor i, in a program: set_value with its bounds in
    StartsTensorList / EndsTensorList (one such index, no other slicing)."""
    if len(ix.axes) != 1 or ix.none_axes or not ix.decrease or not _is_tensor(ix.starts[0]):
        raise UnsupportedError("x[index] = value: a tensor in the index is supported in a "
                               "program as its only item, x[i] = value for a 0-D int tensor "
                               "i; index with Python ints")
    attrs = {"axes": tuple(ix.axes), "steps": tuple(ix.steps),
             "decrease_axes": tuple(ix.decrease), "none_axes": ()}
    bounds = [ix.starts[0], ix.ends[0]]
    literal = _literal(x, value)
    if literal is not None:
        with helper("set_value"):
            return apply(advanced_indexing.SetValueAt, x, *bounds, **attrs,
                         values=array_to_dense(literal), shape=tuple(literal.shape))
    if value.dtype != x.dtype:
        value = math.cast(value, x.dtype)
    with helper("set_value"):
        return apply(advanced_indexing.SetValueTensorAt, x, value, *bounds, **attrs)


def set_value(x: Any, index: Any, value: Any) -> Any:
    """x with `value` written at `index`, as a new tensor (paddle.static.setitem)."""
    ix = parse_index(x, index)
    at = [k for k, (s, e) in enumerate(zip(ix.starts, ix.ends))
          if _is_tensor(s) or _is_tensor(e)]
    if at and (builders.current() is None or ix.has_advanced):
        ix.starts = [int(s) if _is_tensor(s) else s for s in ix.starts]
        ix.ends = [int(e) if _is_tensor(e) else e for e in ix.ends]
        at = []
    if at:
        return _set_value_at(x, ix, at, value)
    attrs = _slice_attrs_for_set(ix)
    if not ix.has_advanced:
        literal = _literal(x, value)
        if literal is not None:
            with helper("set_value"):
                return apply(slicing.SetValue, x, **attrs, values=array_to_dense(literal),
                             shape=tuple(literal.shape))
        if value.dtype != x.dtype:
            value = math.cast(value, x.dtype)
        with helper("set_value"):
            return apply(slicing.SetValueTensor, x, value, **attrs)
    if not _is_tensor(value):
        value = _constant(np.asarray(value), dtype=x.dtype)
    if value.dtype != x.dtype:
        value = math.cast(value, x.dtype)
    sub = basic_indexing(x, ix)
    moved, indices, dims, pos, _ = _front(sub, ix.advanced)
    if len(value.shape) > 1 and pos != 0 and dims != list(range(len(dims))):
        value = math.transpose(value, dims)
    moved = index_put(moved, indices, value)
    back = moved if dims == list(range(len(dims))) else math.transpose(
        moved, np.argsort(dims).tolist())
    with helper("set_value"):
        return apply(slicing.SetValueTensor, x, back, **attrs)


def setitem(x: Any, index: Any, value: Any) -> None:
    """`x[index] = value`: an eager tensor changes in place (views of it see the change, as in
    Paddle); a traced Variable now names the result (static mode refuses, as Paddle does)."""
    if getattr(x, "block", None) is not None:
        raise RuntimeError("In static mode, the __setitem__ (looks like: x[indices] = values) "
                           "should not be used. Please use x = paddle.static.setitem(x, "
                           "indices, values)")
    out = set_value(x, index, value)
    if isinstance(x, Tensor):
        if x._data.flags.writeable:
            x._data[...] = out._data
        else:
            x._data = out._data
        return
    x.value, x.name = out.value, out.name


__all__ = ["getitem", "parse_index", "set_value", "setitem"]
