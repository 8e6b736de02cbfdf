"""What advanced indexing (`x[mask]`, `x[[0, 2]]`, `x[i]` with a 0-D tensor `i`, and their
`__setitem__` forms) is made of, as Paddle 3.3.1's variable_index.py writes it: set_value
with its bounds from tensors, where_index (nonzero), masked_select, broadcast_tensors,
index_put. (A slice with bounds from tensors is runtime_bounds' slice.)

where_index and masked_select have data-dependent shapes: their first dim is -1 until run.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, DENSE, INTS, attr
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, Fixed, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops import slicing
from tostatic.ops.core import dense_to_array
from tostatic.ops.gathering import check_index
from tostatic.ops.runtime_bounds import SLICE_OPS
from tostatic.ops.shapes import broadcast, normalize_axis

INDEX_DTYPES = (dtypes.int32, dtypes.int64)


def _one_bound(op: str, what: str, bound: Abstract) -> None:
    if bound.dtype not in INDEX_DTYPES or bound.ndim > 1 or (bound.ndim == 1 and
                                                            bound.shape[0] not in (1, -1)):
        raise ShapeError(f"{op}: {what} must be an int32/int64 tensor of one element, got "
                         f"{bound.dtype.name} {list(bound.shape)}")


@pd_op
class WhereIndex(PdOp):
    """The coordinates of the true entries of a condition, [n, rank] int64 (paddle.nonzero)."""

    name = "pd.where_index"
    INPUTS = ("condition",)
    PADDLE = Legacy("where_index", {"Condition": "condition"}, {"Out": 0},
                    keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "where_index"
    NONDIFF = True

    @classmethod
    def infer(cls, condition: Abstract) -> Abstract:
        return Abstract((-1, condition.ndim), dtypes.int64)

    @staticmethod
    def eager(condition: np.ndarray) -> np.ndarray:
        return np.argwhere(condition).astype(np.int64)


def _masked_select_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any],
                       attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
    """The cotangent put back where the mask picked, summed over what x was broadcast to."""
    x, mask = inputs
    xb, mb = A.e(e, "pd.broadcast_tensors", x, mask)
    dx = A.e(e, "pd.index_put", A.zeros_like(e, xb), mb, cts[0])
    return [A.sum_to(e, dx, e.shape(x)), None]


def _broadcast_tensors_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any],
                           attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
    return [[A.sum_to(e, g, e.shape(x)) for x, g in zip(inputs[0], cts)]]


def _picked(e: A.Emitter, g: Any, indices: list[Any]) -> Any:
    """g[indices] as numpy reads it: one bool mask, or int tensors broadcast together."""
    if len(indices) == 1 and e.dtype(indices[0]) == dtypes.bool_:
        return A.e(e, "pd.masked_select", g, indices[0])
    ints = [A.cast(e, i, dtypes.int64) for i in indices]
    if len(ints) > 1:
        ints = A.e(e, "pd.broadcast_tensors", *ints)
    return A.e(e, "pd.gather_nd", g, A.e(e, "pd.stack", *ints, axis=-1))


def _index_put_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any],
                   attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
    """x's cotangent is zero where a value replaced it (all of it flows on when
    accumulating); the value's is the cotangent read at the written positions, summed over
    what the value was broadcast to."""
    x, indices, value = inputs
    g = cts[0]
    dx = g if attrs["accumulate"] else A.e(e, "pd.index_put", g, *indices,
                                             A.zeros_like(e, value))
    dvalue = None
    if needs[2]:
        dvalue = A.sum_to(e, _picked(e, g, indices), e.shape(value))
    return [dx, None, dvalue]


@pd_op
class MaskedSelect(PdOp):
    """x's entries where a bool mask (broadcast against x) is true, flattened."""

    name = "pd.masked_select"
    INPUTS = ("x", "mask")
    PADDLE = Legacy("masked_select", {"X": "x", "Mask": "mask"}, {"Y": 0},
                    keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "masked_select"
    vjp = classmethod(_masked_select_vjp)

    @classmethod
    def infer(cls, x: Abstract, mask: Abstract) -> Abstract:
        if mask.dtype != dtypes.bool_:
            raise ShapeError(f"{cls.name}: mask must be bool, got {mask.dtype.name}")
        broadcast(x.shape, mask.shape, cls.name)
        return Abstract((-1,), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(x.shape, mask.shape)
        return np.broadcast_to(x, shape)[np.broadcast_to(mask, shape)]


@pd_op
class BroadcastTensors(PdOp):
    """Each input broadcast to the shape all of them broadcast to."""

    name = "pd.broadcast_tensors"
    INPUTS = ("*xs",)
    NUM_RESULTS = None
    PADDLE = Legacy("broadcast_tensors", {"X": "*xs"}, {"Out": "*"}, keeps_extra_attrs=True)
    NAME_HINT = "broadcast_tensors"
    vjp = classmethod(_broadcast_tensors_vjp)

    @classmethod
    def infer(cls, xs: list[Abstract]) -> list[Abstract]:
        shape: tuple[int, ...] = ()
        for x in xs:
            shape = broadcast(shape, x.shape, cls.name)
        return [Abstract(shape, x.dtype) for x in xs]

    @staticmethod
    def eager(xs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.ascontiguousarray(a) for a in np.broadcast_arrays(*xs)]


@pd_op
class IndexPut(PdOp):
    """x with `value` written (or added, `accumulate`) at the positions the index tensors
    pick, as numpy's `x[i0, i1, ...] = value`: int tensors broadcast together, or one bool
    mask."""

    name = "pd.index_put"
    INPUTS = ("x", "*indices", "value")
    ATTRS = {"accumulate": attr(BOOL, False)}
    PADDLE = Legacy("index_put", {"x": "x", "indices": "*indices", "value": "value"},
                    {"out": 0}, {"accumulate": From("BOOLEAN", "accumulate")},
                    keeps_extra_attrs=True)
    NAME_HINT = "index_put"
    vjp = classmethod(_index_put_vjp)

    @classmethod
    def infer(cls, x: Abstract, indices: list[Abstract], value: Abstract,
              accumulate: bool) -> Abstract:
        if value.dtype != x.dtype:
            raise ShapeError(f"{cls.name}: the value is {value.dtype.name}, x {x.dtype.name}")
        if not indices or any(i.dtype not in INDEX_DTYPES + (dtypes.bool_,) for i in indices):
            raise ShapeError(f"{cls.name}: indices must be int32/int64/bool tensors, got "
                             f"{[i.dtype.name for i in indices]}")
        return x

    @classmethod
    def eager(cls, x: np.ndarray, indices: list[np.ndarray], value: np.ndarray,
              accumulate: bool) -> np.ndarray:
        for d, i in enumerate(indices):
            if i.dtype != np.bool_:
                check_index(cls.name, i, x.shape[d], f"index of dim {d}")
        out = x.copy()
        key = tuple(indices)
        if accumulate:
            np.add.at(out, key, value)
        else:
            out[key] = value
        return out


# --- set_value at a tensor index: `x[i] = value` for a 0-D int tensor i --------------------------

def _at(op: str, x_shape: tuple[int, ...], start: Any, end: Any, axes: tuple[int, ...],
        decrease_axes: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Constant (starts, ends) for the one axis: at run time from the tensors; at build time
    the element 0 (what the value must broadcast to does not depend on which)."""
    if len(axes) != 1 or list(decrease_axes) != [axes[0]]:
        raise UnsupportedError(f"{op}: bounds from tensors are supported for one indexed "
                               f"(decreased) axis, got axes {list(axes)}, decrease_axes "
                               f"{list(decrease_axes)}")
    if isinstance(start, Abstract):
        _one_bound(op, "start", start)
        _one_bound(op, "end", end)
        return (0,), (1,)
    s, e = int(start.reshape(-1)[0]), int(end.reshape(-1)[0])
    size = x_shape[normalize_axis(axes[0], len(x_shape))]
    if not -size <= s < size:
        raise IndexError(f"{op}: index {s} is out of range for axis {axes[0]} of size {size}")
    return (s,), (e,)


def _writes_nothing(starts: tuple[int, ...], ends: tuple[int, ...]) -> bool:
    """Paddle's set_value kernel reads `x[i] = v` for i = -1 (start -1, end 0) as an empty
    slice and writes nothing (its slice kernel takes the same bounds as the last element):
    Paddle's Executor and paddle.inference do so on its own static setitem; kept here."""
    return starts == (-1,) and ends == (0,)


AT_ATTRS = {k: v for k, v in slicing.SLICE_ATTRS.items() if k not in ("starts", "ends")}
AT_LEGACY = {**{k: v for k, v in slicing.SLICE_LEGACY.items() if k not in ("starts", "ends")},
             "starts": Fixed("LONGS", []), "ends": Fixed("LONGS", [])}


def _zeros_at(cls: Any, e: A.Emitter, x: Any, g: Any, attrs: dict[str, Any]) -> Any:
    """Zeros of the shape a value written at one tensor index broadcasts to."""
    _, target = cls.target(e.shape(x), **{k: attrs[k] for k in AT_ATTRS},
                           starts=(0,), ends=(1,))
    return A.e(e, "pd.full", shape=target, value=0.0, dtype=e.dtype(g))


def _set_value_at_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any],
                      attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
    """x's cotangent is zero at the index written (the same tensor bounds)."""
    x, start, end = inputs[0], inputs[-2], inputs[-1]
    g = cts[0]
    at = {k: attrs[k] for k in AT_ATTRS}
    dx = e(SetValueTensorAt, g, _zeros_at(cls, e, x, g, attrs), start, end, **at)
    if cls is SetValueAt:
        return [dx, None, None]
    dvalue = None
    if needs[1]:
        part = e(SLICE_OPS[("list", "list")], g, start, end, axes=attrs["axes"],
                 starts=(-1,), ends=(-1,), decrease_axis=attrs["decrease_axes"],
                 infer_flags=(-1,))
        value = inputs[1]
        rank = len(e.shape(part))
        dvalue = A.reshape(e, A.sum_to(e, part, slicing._squeezed(e.shape(value), rank)),
                           e.shape(value))
    return [dx, dvalue, None, None]


@pd_op
class SetValueAt(slicing.SetValueBase):
    """set_value of a literal at an index read from a tensor (StartsTensorList /
    EndsTensorList: start i, end i + 1)."""

    name = "pd.set_value_at"
    INPUTS = ("x", "start", "end")
    ATTRS = {**AT_ATTRS, "values": attr(DENSE), "shape": attr(INTS, ())}
    PADDLE = Legacy("set_value", {"Input": "x", "StartsTensorList": "start",
                                  "EndsTensorList": "end"}, {"Out": 0},
                    {**AT_LEGACY, **{k: slicing.SetValue.PADDLE.attrs[k]
                                     for k in ("values", "shape")}},
                    optional_inputs=("StepsTensorList", "ValueTensor"), keeps_extra_attrs=True,
                    out_lod_level=False)
    NAME_HINT = "set_value"
    vjp = classmethod(_set_value_at_vjp)

    @classmethod
    def infer(cls, x: Abstract, start: Abstract, end: Abstract, values: Any,
              shape: tuple[int, ...], **attrs: Any) -> Abstract:
        starts, ends = _at(cls.name, x.shape, start, end, attrs["axes"], attrs["decrease_axes"])
        slicing.SetValue.infer(x, values,
                               shape, starts=starts, ends=ends, **attrs)
        return x

    @classmethod
    def eager(cls, x: np.ndarray, start: np.ndarray, end: np.ndarray, values: Any,
              shape: tuple[int, ...], **attrs: Any) -> np.ndarray:
        starts, ends = _at(cls.name, x.shape, start, end, attrs["axes"], attrs["decrease_axes"])
        if _writes_nothing(starts, ends):
            return x.copy()
        return cls.write(x, dense_to_array(values).reshape(shape),
                         {**attrs, "starts": starts, "ends": ends})


@pd_op
class SetValueTensorAt(slicing.SetValueBase):
    """set_value of a tensor (ValueTensor) at an index read from a tensor."""

    name = "pd.set_value_tensor_at"
    INPUTS = ("x", "value", "start", "end")
    ATTRS = dict(AT_ATTRS)
    PADDLE = Legacy("set_value", {"Input": "x", "ValueTensor": "value",
                                  "StartsTensorList": "start", "EndsTensorList": "end"},
                    {"Out": 0}, {**AT_LEGACY, **{k: slicing.SetValueTensor.PADDLE.attrs[k]
                                                 for k in ("values", "shape")}},
                    optional_inputs=("StepsTensorList",), keeps_extra_attrs=True,
                    out_lod_level=False)
    NAME_HINT = "set_value"
    vjp = classmethod(_set_value_at_vjp)

    @classmethod
    def infer(cls, x: Abstract, value: Abstract, start: Abstract, end: Abstract,
              **attrs: Any) -> Abstract:
        starts, ends = _at(cls.name, x.shape, start, end, attrs["axes"], attrs["decrease_axes"])
        slicing.SetValueTensor.infer(x,
                                     value, starts=starts, ends=ends, **attrs)
        return x

    @classmethod
    def eager(cls, x: np.ndarray, value: np.ndarray, start: np.ndarray, end: np.ndarray,
              **attrs: Any) -> np.ndarray:
        starts, ends = _at(cls.name, x.shape, start, end, attrs["axes"], attrs["decrease_axes"])
        if _writes_nothing(starts, ends):
            return x.copy()
        return cls.write(x, value, {**attrs, "starts": starts, "ends": ends})
