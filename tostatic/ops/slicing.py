"""Strided slicing and writing into slices: what `x[a:b:c, i]` and `x[...] = v` become.

strided_slice takes x[start:end:stride] along some axes, then drops the `decrease_axis`
dims (each of size 1). set_value writes a value into such a slice of a copy of x: a literal
held in the op (`values` with its `shape`) or a tensor (ValueTensor); the value broadcasts to
the slice's shape without its decreased dims, with a 1 for each of `none_axes` (the `None`s of
the index). Bounds follow Python's slice rules (Paddle 3.3.1's normalize_interval): negative
bounds count from the end, then clamp; with a negative step, an end below -size means "through
index 0" (`x[::-1]` is written as start 2147483647, end -2147483648). Bounds given as tensors
(infer_flags -1, the *TensorList slots) are refused on loading.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic.ir.attributes import DENSE, INTS, attr
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, From, FromInputs, Legacy, PdOp, pd_op
from tostatic.ops.attr_checks import written
from tostatic.ops.core import array_to_dense, dense_to_array
from tostatic.ops.shapes import broadcast, normalize_axis
from tostatic.ops import autodiff as A

INT32_MAX = 2**31 - 1
INT32_MIN = -2**31


def _int32s(values: Any) -> list[int]:
    """strided_slice's starts/ends/strides are INTS (int32): wider bounds saturate."""
    return [min(max(int(v), INT32_MIN), INT32_MAX) for v in values]


def _constant_bounds(flags: Any) -> None:
    if any(f == -1 for f in flags):
        raise UnsupportedError(f"pd.strided_slice: infer_flags={list(flags)} is not supported "
                               f"(a -1 means bounds given as tensors); only constant starts, "
                               f"ends and strides are")
    return None


def slices(op: str, shape: Sequence[int], axes: Sequence[int], starts: Sequence[int],
           ends: Sequence[int], steps: Sequence[int]) -> list[slice]:
    """One Python slice per dim of `shape` (the whole dim where no axis names it)."""
    if not len(axes) == len(starts) == len(ends) == len(steps):
        raise ShapeError(f"{op}: axes {list(axes)}, starts {list(starts)}, ends {list(ends)} "
                         f"and steps {list(steps)} must have one entry per axis")
    out = [slice(None)] * len(shape)
    seen: set[int] = set()
    for axis, s, e, st in zip(axes, starts, ends, steps):
        ax = normalize_axis(axis, len(shape), f"{op} axis")
        if ax in seen:
            raise ShapeError(f"{op}: axis {ax} is sliced twice (axes {list(axes)})")
        if st == 0:
            raise ShapeError(f"{op}: the step of axis {ax} must not be 0")
        seen.add(ax)
        out[ax] = slice(int(s), int(e), int(st))
    return out


def sliced_shape(shape: Sequence[int], index: Sequence[slice]) -> tuple[int, ...]:
    """Each known dim's length after its slice; dynamic dims that are sliced stay dynamic."""
    return tuple(d if sl == slice(None) else (-1 if d < 0 else len(range(*sl.indices(d))))
                 for d, sl in zip(shape, index))


def decreased(op: str, shape: tuple[int, ...], decrease: Sequence[int],
              sliced_axes: set[int]) -> tuple[int, ...]:
    """`shape` without the decreased dims, each of which must be a sliced dim of size 1."""
    dec = {normalize_axis(a, len(shape), f"{op} decrease axis") for a in decrease}
    if not dec <= sliced_axes:
        raise ShapeError(f"{op}: decrease axes {list(decrease)} must be among the sliced axes "
                         f"{sorted(sliced_axes)}")
    for ax in sorted(dec):
        if shape[ax] not in (1, -1):
            raise ShapeError(f"{op}: decreased axis {ax} keeps {shape[ax]} elements; a "
                             f"decreased axis must keep exactly 1")
    return tuple(d for i, d in enumerate(shape) if i not in dec)


def _sliced_axes(ndim: int, axes: Sequence[int]) -> set[int]:
    return {normalize_axis(a, ndim) for a in axes}


def _strided_slice_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """The cotangent written into zeros where the slice came from."""
    x = inputs[0]
    index = slices(cls.name, e.shape(x), attrs["axes"], attrs["starts"], attrs["ends"],
                   attrs["strides"])
    g = A.reshape(e, cts[0], sliced_shape(e.shape(x), index))
    return [e(SetValueTensor, A.zeros_like(e, x), g, axes=attrs["axes"], starts=attrs["starts"],
              ends=attrs["ends"], steps=attrs["strides"], decrease_axes=(), none_axes=())]


@pd_op
class StridedSlice(PdOp):
    name = "pd.strided_slice"
    INPUTS = ("x",)
    ATTRS = {"axes": attr(INTS), "starts": attr(INTS), "ends": attr(INTS),
             "strides": attr(INTS), "decrease_axis": attr(INTS, ())}
    PADDLE = Legacy("strided_slice", {"Input": "x"}, {"Out": 0},
                    {"axes": From("INTS", "axes"), "starts": From("INTS", "starts", _int32s),
                     "ends": From("INTS", "ends", _int32s),
                     "strides": From("INTS", "strides", _int32s),
                     "infer_flags": From("INTS", "axes", lambda axes: [1] * len(axes),
                                         _constant_bounds),
                     "decrease_axis": From("INTS", "decrease_axis")},
                    optional_inputs=("EndsTensor", "EndsTensorList", "StartsTensor",
                                     "StartsTensorList", "StridesTensor", "StridesTensorList"),
                    keeps_extra_attrs=True)
    NAME_HINT = "strided_slice"
    vjp = classmethod(_strided_slice_vjp)

    @classmethod
    def infer(cls, x: Abstract, axes: tuple[int, ...], starts: tuple[int, ...],
              ends: tuple[int, ...], strides: tuple[int, ...],
              decrease_axis: tuple[int, ...]) -> Abstract:
        index = slices(cls.name, x.shape, axes, starts, ends, strides)
        shape = sliced_shape(x.shape, index)
        return Abstract(decreased(cls.name, shape, decrease_axis,
                                  _sliced_axes(x.ndim, axes)), x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, axes: tuple[int, ...], starts: tuple[int, ...],
              ends: tuple[int, ...], strides: tuple[int, ...],
              decrease_axis: tuple[int, ...]) -> np.ndarray:
        out = x[tuple(slices(cls.name, x.shape, axes, starts, ends, strides))]
        if decrease_axis:
            out = out.reshape(decreased(cls.name, out.shape, decrease_axis,
                                        _sliced_axes(x.ndim, axes)))
        return np.ascontiguousarray(out)


# --- writing into a slice ------------------------------------------------------------------------

def assign_shape(op: str, shape: tuple[int, ...], decrease_axes: Sequence[int],
                 none_axes: Sequence[int], sliced_axes: set[int]) -> tuple[int, ...]:
    """The shape a value broadcasts to: the slice's dims without the decreased ones, with a 1
    inserted before dim i for each none axis <= i (Paddle's set_value kernel)."""
    dec = {normalize_axis(a, len(shape), f"{op} decrease axis") for a in decrease_axes}
    decreased(op, shape, decrease_axes, sliced_axes)  # the checks
    nones = sorted(none_axes)
    out: list[int] = []
    k = 0
    for i, d in enumerate(shape):
        while k < len(nones) and nones[k] <= i:
            out.append(1)
            k += 1
        if i not in dec:
            out.append(d)
    return tuple(out + [1] * (len(nones) - k))


def _fits(op: str, value: tuple[int, ...], target: tuple[int, ...]) -> None:
    """A value of shape `value` must broadcast to `target` without growing it (leading 1s
    beyond target's rank are dropped: `x[1, 2] = 3.0` writes a [1] value into a 0-D slice)."""
    value = _squeezed(value, len(target))
    try:
        grown = broadcast(value, target, op)
    except ShapeError:
        grown = None
    if grown is None or len(value) > len(target) or any(
            g >= 0 and t >= 0 and g != t for g, t in zip(grown, target)):
        raise ShapeError(f"{op}: a value of shape {list(value)} does not broadcast to the "
                         f"slice's shape {list(target)}")


def _squeezed(shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
    while len(shape) > rank and shape[0] == 1:
        shape = shape[1:]
    return shape


class SetValueBase(PdOp):
    """The slice rules set_value's two forms share."""

    @classmethod
    def target(cls, shape: tuple[int, ...], axes: tuple[int, ...], starts: tuple[int, ...],
               ends: tuple[int, ...], steps: tuple[int, ...], decrease_axes: tuple[int, ...],
               none_axes: tuple[int, ...]) -> tuple[list[slice], tuple[int, ...]]:
        """(the index of the slice, the shape a value must broadcast to)."""
        index = slices(cls.name, shape, axes, starts, ends, steps or (1,) * len(axes))
        return index, assign_shape(cls.name, sliced_shape(shape, index), decrease_axes,
                                   none_axes, _sliced_axes(len(shape), axes))

    @classmethod
    def write(cls, x: np.ndarray, value: np.ndarray, attrs: dict[str, Any]) -> np.ndarray:
        index, shape = cls.target(x.shape, **attrs)
        _fits(cls.name, value.shape, shape)
        out = x.copy()
        part = out[tuple(index)]
        value = value.reshape(_squeezed(value.shape, len(shape)))
        part[...] = np.broadcast_to(value.astype(x.dtype, copy=False), shape).reshape(part.shape)
        return out


SLICE_ATTRS = {"axes": attr(INTS), "starts": attr(INTS), "ends": attr(INTS),
               "steps": attr(INTS, ()), "decrease_axes": attr(INTS, ()),
               "none_axes": attr(INTS, ())}
SLICE_LEGACY = {"axes": From("LONGS", "axes"), "starts": From("LONGS", "starts"),
                "ends": From("LONGS", "ends"), "steps": From("LONGS", "steps"),
                "decrease_axes": From("LONGS", "decrease_axes"),
                "none_axes": From("LONGS", "none_axes"),
                "dtype": FromInputs("INT", lambda x, *_: x.dtype.var_type)}
TENSOR_SLOTS = ("EndsTensorList", "StartsTensorList", "StepsTensorList")


def _scalars(values: Any) -> list[Any]:
    """The literal as set_value's SCALARS: float64 / int64 / bool by its dtype."""
    return dense_to_array(values).reshape(-1).tolist()


def _from_scalars(values: Sequence[Any]) -> Any:
    return array_to_dense(np.asarray(list(values)))


def _set_value_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    return [_overwritten(cls, e, inputs[0], cts[0], attrs)]


@pd_op
class SetValue(SetValueBase):
    """x with a literal written into a slice: `values` (flat) reshaped to `shape`."""

    name = "pd.set_value"
    INPUTS = ("x",)
    # no default: a set_value of Paddle <= 2.x keeps its literal in fp32_values /
    # int64_values / ... instead, which are not read (refused by name when raised)
    ATTRS = {**SLICE_ATTRS, "values": attr(DENSE, None), "shape": attr(INTS, ())}
    PADDLE = Legacy("set_value", {"Input": "x"}, {"Out": 0},
                    {**SLICE_LEGACY, "values": From("SCALARS", "values", _scalars,
                                                    _from_scalars),
                     "shape": From("LONGS", "shape")},
                    optional_inputs=TENSOR_SLOTS + ("ValueTensor",), keeps_extra_attrs=True,
                    out_lod_level=False)
    NAME_HINT = "set_value"
    vjp = classmethod(_set_value_vjp)

    @classmethod
    def infer(cls, x: Abstract, values: Any, shape: tuple[int, ...],
              **slice_attrs: Any) -> Abstract:
        if values is None:
            raise UnsupportedError(f"{cls.name}: no `values` attribute (Paddle <= 2.x's "
                                   f"fp32_values / int64_values / ... are not supported)")
        n = dense_to_array(values).size
        if n != int(np.prod(shape)) or n == 0:
            raise ShapeError(f"{cls.name}: {n} values do not fill shape {list(shape)}")
        _fits(cls.name, tuple(shape), cls.target(x.shape, **slice_attrs)[1])
        return x

    @classmethod
    def eager(cls, x: np.ndarray, values: Any, shape: tuple[int, ...],
              **slice_attrs: Any) -> np.ndarray:
        return cls.write(x, dense_to_array(values).reshape(shape), slice_attrs)


def _set_value_tensor_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    x, value = inputs
    g = cts[0]
    dvalue = None
    if needs[1]:
        index, target = cls.target(e.shape(x), **_slice_attrs(attrs))
        part = e(StridedSlice, g, axes=attrs["axes"], starts=attrs["starts"], ends=attrs["ends"],
                 strides=attrs["steps"] or (1,) * len(attrs["axes"]), decrease_axis=())
        vs = _squeezed(e.shape(value), len(target))
        dvalue = A.reshape(e, A.sum_to(e, A.reshape(e, part, target), vs), e.shape(value))
    return [_overwritten(cls, e, x, g, attrs), dvalue]


def _slice_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: attrs[k] for k in SLICE_ATTRS}


def _overwritten(cls: Any, e: A.Emitter, x: Any, g: Any, attrs: dict[str, Any]) -> Any:
    """x's cotangent through a write into a slice: zero where the slice was overwritten."""
    _, target = cls.target(e.shape(x), **_slice_attrs(attrs))
    zeros = A.e(e, "pd.full", shape=target, value=0.0, dtype=e.dtype(g))
    return e(SetValueTensor, g, zeros, **_slice_attrs(attrs))


@pd_op
class SetValueTensor(SetValueBase):
    """x with a tensor (of x's dtype) written into a slice."""

    name = "pd.set_value_tensor"
    INPUTS = ("x", "value")
    ATTRS = dict(SLICE_ATTRS)
    PADDLE = Legacy("set_value", {"Input": "x", "ValueTensor": "value"}, {"Out": 0},
                    {**SLICE_LEGACY, "values": written("SCALARS", []),
                     "shape": written("LONGS", [])},
                    optional_inputs=TENSOR_SLOTS, keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "set_value"
    vjp = classmethod(_set_value_tensor_vjp)

    @classmethod
    def infer(cls, x: Abstract, value: Abstract, **slice_attrs: Any) -> Abstract:
        if value.dtype != x.dtype:
            raise ShapeError(f"{cls.name}: the value is {value.dtype.name}, x "
                             f"{x.dtype.name}; cast it first")
        _fits(cls.name, value.shape, cls.target(x.shape, **slice_attrs)[1])
        return x

    @classmethod
    def eager(cls, x: np.ndarray, value: np.ndarray, **slice_attrs: Any) -> np.ndarray:
        return cls.write(x, value, slice_attrs)

