"""Public shape functions (paddle/tensor/manipulation.py, 3.3.1): concat, split, chunk, stack,
squeeze, unsqueeze, flatten, expand, tile, slice, gather, shape, meshgrid.

Each checks its arguments as Paddle's Python API does, then dispatches one op inside the
LayerHelper Paddle's static branch uses (so traced variables are `concat_0.tmp_0`, or
`<name>.tmp_0` with a user's `name`), with the attributes that branch writes (split's axis
made non-negative, squeeze's [] for "every unit dim", ...). Arguments Paddle accepts as
Tensors (a Tensor axis, Tensor sections or repeat counts) are refused: the ops here take
them as attributes only.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.naming import helper
from tostatic.frontend.tensor.tensor import Tensor, TensorMethods
from tostatic.ir import builder as builders
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import indexing, joining, manipulation, rearrange, runtime_bounds
from tostatic.frontend.tensor.math import _full


def is_tensor(x: Any) -> bool:
    return isinstance(x, TensorMethods)


def no_tensor(api: str, what: str, value: Any) -> None:
    """Refuse a Tensor (or a list holding one) where tostatic needs a Python value."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if any(is_tensor(v) for v in values):
        raise UnsupportedError(f"paddle.{api}: {what} given as a Tensor is not supported; "
                               f"give Python ints (the op takes it as an attribute)")


def int_list(value: Any) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)]


# --- joining and splitting --------------------------------------------------------------------

def concat(x: Sequence[Any], axis: int = 0, name: str | None = None) -> Any:
    no_tensor("concat", "axis", axis)
    xs = [x] if is_tensor(x) else list(x)
    if any(t.dtype != xs[0].dtype for t in xs):
        raise TypeError("All the Tensors in the input must have the same data type.")
    with helper("concat", name):
        return apply(joining.Concat, *xs, axis=int(axis))


def split(x: Any, num_or_sections: int | Sequence[int], axis: int = 0,
          name: str | None = None) -> list[Any]:
    """num_or_sections: a count of equal pieces, or their sizes (one may be -1)."""
    no_tensor("split", "axis", axis)
    no_tensor("split", "num_or_sections", num_or_sections)
    shape = x.shape
    if not isinstance(num_or_sections, (int, list, tuple)):
        raise TypeError("The type of 'num_or_sections' in split must be int, list or tuple in "
                        f"imperative mode, but received {type(num_or_sections)}.")
    axis = int(axis)
    if len(shape) + axis < 0:
        raise ValueError("(rank(x) + axis) must >= 0")
    axis = axis + len(shape) if axis < 0 else axis
    if isinstance(num_or_sections, int):
        if num_or_sections <= 0:
            raise ValueError("num_or_sections must be than 0.")
        if shape[axis] > 0 and shape[axis] % num_or_sections:
            raise ValueError("The input's size along the split dimension must be evenly "
                             "divisible by Attr(num_or_sections). But "
                             f"{num_or_sections} is not evenly divisible by {shape[axis]}. ")
        attrs = {"num": num_or_sections, "sections": ()}
    else:
        sections = int_list(num_or_sections)
        if shape[axis] > 0 and len(sections) > shape[axis]:
            raise ValueError("len(num_or_sections) must not be more than input.shape[dim].")
        attrs = {"num": 0, "sections": tuple(sections)}
    with helper("split", name):
        outs = apply(joining.Split, x, axis=axis, **attrs)
    return list(outs)


def chunk(x: Any, chunks: int, axis: int = 0, name: str | None = None) -> list[Any]:
    if not isinstance(chunks, int):
        raise TypeError(f"The type of 'chunks' in chunk must be int, but received "
                        f"{type(chunks)}.")
    dim = x.shape[axis] if isinstance(axis, int) and axis >= 0 else -1
    if chunks <= 0 or (dim not in (0, -1) and chunks > dim):
        raise ValueError("The value of 'chunks' must be greater than 0 and less than or equal "
                         "to the size of the dimension specified by 'axis', but received "
                         f"chunks={chunks} and x.shape[axis]={dim}.")
    return split(x, chunks, axis=axis, name=name)


def stack(x: Sequence[Any], axis: int = 0, name: str | None = None) -> Any:
    if not isinstance(x, (list, tuple)):
        raise TypeError("The type of 'x' in stack must be list[Tensor], tuple[Tensor] or "
                        f"TensorArray, but received {type(x)}")
    with helper("stack", name):
        return apply(joining.Stack, *x, axis=0 if axis is None else int(axis))


def meshgrid(*args: Any, **kwargs: Any) -> list[Any]:
    """meshgrid(x, y, ...) or meshgrid([x, y, ...]); indexing 'ij' (default) or 'xy' (the
    first two inputs swapped in, and their grids swapped out, as Paddle does)."""
    name = kwargs.get("name")
    indexing_ = kwargs.pop("indexing", None) or "ij"
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = tuple(args[0])
    if indexing_ not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', but got {indexing_}")
    swap = indexing_ == "xy" and len(args) >= 2
    if swap:
        args = (args[1], args[0], *args[2:])
    with helper("meshgrid", name):
        out = list(apply(joining.Meshgrid, *args))
    if swap:
        out[0], out[1] = out[1], out[0]
    return out


# --- adding and removing dims -------------------------------------------------------------------

def squeeze(x: Any, axis: int | Sequence[int] | None = None, name: str | None = None) -> Any:
    no_tensor("squeeze", "axis", axis)
    axes = () if axis is None else tuple(int_list(axis))
    with helper("squeeze", name):
        return apply(manipulation.Squeeze, x, axes=axes)


def unsqueeze(x: Any, axis: int | Sequence[int], name: str | None = None) -> Any:
    no_tensor("unsqueeze", "axis", axis)
    with helper("unsqueeze2", name):
        return apply(manipulation.Unsqueeze, x, axes=tuple(int_list(axis)))


def flatten(x: Any, start_axis: int = 0, stop_axis: int = -1, name: str | None = None) -> Any:
    """Dims start_axis..stop_axis merged into one; the axes written non-negative."""
    if not is_tensor(x):
        raise ValueError("The input x should be a Tensor")
    rank = len(x.shape)
    if rank == 0:
        for what, v in (("start_axis", start_axis), ("stop_axis", stop_axis)):
            if not isinstance(v, int) or v not in (0, -1):
                raise ValueError(f"The {what} should be int, and should be 0 or -1 when the "
                                 f"input tensor is a 0-D-Tensor")
        start_axis = stop_axis = 0
    else:
        for what, v in (("start_axis", start_axis), ("stop_axis", stop_axis)):
            if not isinstance(v, int) or v > rank - 1 or v < -rank:
                raise ValueError(f"The {what} should be a int, and in range "
                                 f"[-rank(x), rank(x))")
        start_axis, stop_axis = start_axis % rank, stop_axis % rank
        if start_axis > stop_axis:
            raise ValueError("The stop_axis should be larger than stat_axis")
    with helper("flatten", name):
        return apply(manipulation.Flatten, x, start_axis=start_axis, stop_axis=stop_axis)


# --- repeating --------------------------------------------------------------------------------

def expand(x: Any, shape: Sequence[int], name: str | None = None) -> Any:
    """x broadcast to `shape` (-1 keeps a dim); an empty shape returns x itself."""
    if isinstance(shape, (list, tuple)) and len(shape) == 0:
        return x
    no_tensor("expand", "shape", shape)
    target = int_list(shape)
    if any(not (s > 0 or s == -1) for s in target):
        raise ValueError("All elements in shape of expand must be positive or -1.")
    with helper("expand", name):
        return apply(manipulation.Expand, x, shape=tuple(target))


def tile(x: Any, repeat_times: Sequence[int], name: str | None = None) -> Any:
    no_tensor("tile", "repeat_times", repeat_times)
    if not isinstance(repeat_times, (list, tuple)):
        raise TypeError("The type of 'repeat_times' in tile must be list, tuple or Tensor, "
                        f"but received {type(repeat_times)}.")
    with helper("tile", name):
        return apply(manipulation.Tile, x, repeat_times=tuple(int_list(repeat_times)))


# --- taking parts ---------------------------------------------------------------------------------

def slice(input: Any, axes: Sequence[int], starts: Sequence[int],  # noqa: A001 (Paddle's name)
          ends: Sequence[int]) -> Any:
    """input[starts:ends] along `axes` (axes clamped into the rank as Paddle clamps them).
    starts / ends may be a Tensor (read when the program runs, StartsTensor) or a list
    holding Tensors (StartsTensorList, its ints as one-element tensors)."""
    if not isinstance(axes, (list, tuple)):
        raise ValueError(f"Input axes must be a python list or tuple, but received "
                         f"{type(axes)}")
    if len(axes) == 0:
        raise ValueError("Input axes should not be an empty list/tuple.")
    rank = len(input.shape)
    axes = [max(0, a + rank) if a < 0 else min(rank - 1, a) for a in int_list(axes)]
    (sf, sv), (ef, ev) = _bound_form(starts, len(axes)), _bound_form(ends, len(axes))
    with helper("slice"):
        if (sf, ef) == ("attr", "attr"):
            return apply(indexing.Slice, input, axes=tuple(axes), starts=sv, ends=ev)
        operands = [v for f, v in ((sf, sv), (ef, ev)) if f != "attr"]
        flat = [t for v in operands for t in (v if isinstance(v, list) else [v])]
        return apply(runtime_bounds.SLICE_OPS[(sf, ef)], input, *flat, axes=tuple(axes),
                     starts=sv if sf == "attr" else (-1,) * len(axes) if sf == "list" else (),
                     ends=ev if ef == "attr" else (-1,) * len(axes) if ef == "list" else (),
                     infer_flags=(-1,) * len(axes))


def _bound_form(value: Any, n: int) -> tuple[str, Any]:
    """slice's starts or ends as ("attr", ints), ("tensor", a 1-D int Tensor) or ("list",
    one-element int Tensors, one an axis)."""
    if is_tensor(value):
        return "tensor", value
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not any(is_tensor(v) for v in values):
        return "attr", tuple(int_list(values))
    if len(values) != n:
        raise ValueError(f"slice: {len(values)} bounds for {n} axes")
    return "list", [v if is_tensor(v) else _full([1], int(v), dtypes.int64, force_cpu=True)
                    for v in values]


def gather(x: Any, index: Any, axis: int | None = None, name: str | None = None) -> Any:
    """x's entries `index` along `axis` (default 0)."""
    if isinstance(index, int):
        raise UnsupportedError("paddle.gather(input, dim, index): the take_along_axis form is "
                               "not supported; call gather(x, index, axis)")
    no_tensor("gather", "axis", axis)
    with helper("gather", name):
        return apply(indexing.Gather, x, index, axis=0 if axis is None else int(axis))


def shape(input: Any) -> Any:
    """The shape as a 1-D tensor: int64 eagerly (Paddle's shape64), the `shape` op's int32
    when traced, as Paddle's static branch writes it."""
    if builders.current() is None:
        return Tensor(np.array(input.shape, dtype=np.int64))
    with helper("shape"):
        return apply(manipulation.Shape, input)


__all__ = ["chunk", "concat", "expand", "flatten", "flip", "gather", "meshgrid",
           "shape", "slice", "split", "squeeze", "stack", "tile", "unsqueeze"]


def flip(x: Any, axis: int | Sequence[int], name: str | None = None) -> Any:
    """x reversed along `axis` (an int or a list of them)."""
    no_tensor("flip", "axis", axis)
    axes = [axis] if isinstance(axis, int) else int_list(axis)
    with helper("flip", name):
        return apply(rearrange.Flip, x, axis=tuple(axes))
