"""Taking parts of a tensor: slice (basic indexing), gather (an index tensor along an axis),
where (an elementwise choice between two tensors)."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import INT, INTS, attr
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ir.op_rules import slice_bounds  # noqa: F401  (where it was)
from tostatic.ops.shapes import axis0_unsliced, normalize_axis
from tostatic.ops import autodiff as A

INT32_MAX = 2**31 - 1
INT32_MIN = -2**31


def _int32s(values: Any) -> list[int]:
    """slice's starts/ends are INTS (int32): `x[1:]` is written as end 2147483647, so wider
    bounds saturate to the int32 range, which means the same for every real dim."""
    return [min(max(int(v), INT32_MIN), INT32_MAX) for v in values]


def _no_tensor_bounds(flags: Any) -> None:
    """infer_flags -1 marks a start or end Paddle reads from a tensor input at run time."""
    if any(f == -1 for f in flags):
        raise UnsupportedError(f"pd.slice: infer_flags={list(flags)} is not supported (a -1 "
                               f"means starts/ends given as tensors, StartsTensor/EndsTensor"
                               f"[List]); only constant starts and ends are")
    return None


def slice_shape(shape: tuple[int, ...], axes: tuple[int, ...], starts: tuple[int, ...],
                ends: tuple[int, ...], decrease_axis: tuple[int, ...],
                what: str = "pd.slice") -> tuple[int, ...]:
    if not len(axes) == len(starts) == len(ends):
        raise ShapeError(f"{what}: axes {list(axes)}, starts {list(starts)} and ends "
                         f"{list(ends)} must have one entry per sliced axis")
    out = list(shape)
    for axis, start, end in zip(axes, starts, ends):
        ax = normalize_axis(axis, len(shape), f"{what} axis")
        if shape[ax] >= 0:
            s, e = slice_bounds(shape[ax], start, end)
            out[ax] = e - s
    dec = {normalize_axis(a, len(shape), f"{what} decrease_axis") for a in decrease_axis}
    if not dec <= {normalize_axis(a, len(shape)) for a in axes}:
        raise ShapeError(f"{what}: decrease_axis {list(decrease_axis)} must be among the "
                         f"sliced axes {list(axes)}")
    for ax in dec:
        if out[ax] not in (1, -1):
            raise ShapeError(f"{what}: decrease_axis {ax} keeps {out[ax]} elements of dim "
                             f"{shape[ax]}; a decreased axis must keep exactly 1")
    return tuple(d for i, d in enumerate(out) if i not in dec)


def _slice_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """The cotangent written into zeros where the slice came from."""
    x = inputs[0]
    shape = slice_shape(e.shape(x), attrs["axes"], attrs["starts"], attrs["ends"], ())
    return [A.e(e, "pd.set_value_tensor", A.zeros_like(e, x), A.reshape(e, cts[0], shape),
                axes=attrs["axes"], starts=attrs["starts"], ends=attrs["ends"],
                steps=(1,) * len(attrs["axes"]), decrease_axes=(), none_axes=())]


@pd_op
class Slice(PdOp):
    """x[start:end] along some axes (step 1), then the `decrease_axis` dims (each of size 1)
    dropped: `x[:, 1:]` is axes [1], starts [1], ends [2147483647]; `x[:, -1]` adds
    decrease_axis [1]. Starts/ends read from tensors (infer_flags -1) are the ops of
    runtime_bounds.py."""

    name = "pd.slice"
    INPUTS = ("x",)
    ATTRS = {"axes": attr(INTS), "starts": attr(INTS), "ends": attr(INTS),
             "decrease_axis": attr(INTS, ())}
    PADDLE = Legacy("slice", {"Input": "x"}, {"Out": 0},
                    {"axes": From("INTS", "axes"),
                     "decrease_axis": From("INTS", "decrease_axis"),
                     "ends": From("INTS", "ends", _int32s),
                     "infer_flags": From("INTS", "axes", lambda axes: [1] * len(axes),
                                         _no_tensor_bounds),
                     "starts": From("INTS", "starts", _int32s)},
                    optional_inputs=("EndsTensor", "EndsTensorList", "StartsTensor",
                                     "StartsTensorList"), out_lod_level=axis0_unsliced)
    NAME_HINT = "slice"
    vjp = classmethod(_slice_vjp)

    @classmethod
    def infer(cls, x: Abstract, axes: tuple[int, ...], starts: tuple[int, ...],
              ends: tuple[int, ...], decrease_axis: tuple[int, ...]) -> Abstract:
        return Abstract(slice_shape(x.shape, axes, starts, ends, decrease_axis, cls.name),
                        x.dtype)

    @staticmethod
    def eager(x: np.ndarray, axes: tuple[int, ...], starts: tuple[int, ...],
              ends: tuple[int, ...], decrease_axis: tuple[int, ...]) -> np.ndarray:
        index = [slice(None)] * x.ndim
        for axis, start, end in zip(axes, starts, ends):
            ax = axis % x.ndim
            index[ax] = slice(*slice_bounds(x.shape[ax], start, end))
        out = x[tuple(index)]
        if decrease_axis:
            out = out.reshape(slice_shape(x.shape, axes, starts, ends, decrease_axis))
        return out


def _gather_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    x, index = inputs
    g, axis = cts[0], attrs["axis"] % len(e.shape(x))
    if len(e.shape(index)) != 1:  # 0-D (the axis is dropped) or 2-D (flattened)
        gs = list(e.shape(g))
        n = 1 if len(e.shape(index)) == 0 else e.shape(index)[0] * e.shape(index)[1]
        if len(e.shape(index)) == 0:
            gs.insert(axis, 1)
        g = A.reshape(e, g, gs)
        index = A.reshape(e, index, (n,))
    return [A.e(e, "pd.index_add", A.zeros_like(e, x), index, g, axis=axis), None]


@pd_op
class Gather(PdOp):
    """x's entries `index` along `axis` (np.take): a 1-D index keeps the axis with the
    index's length, a 0-D index drops it; [N, 1] counts as 1-D as in Paddle."""

    name = "pd.gather"
    INPUTS = ("x", "index")
    ATTRS = {"axis": attr(INT, 0)}
    PADDLE = Legacy("gather", {"X": "x", "Index": "index"}, {"Out": 0},
                    {"axis": From("INT", "axis")}, optional_inputs=("Axis",),
                    keeps_extra_attrs=True)
    NAME_HINT = "gather"
    vjp = classmethod(_gather_vjp)

    @classmethod
    def infer(cls, x: Abstract, index: Abstract, axis: int) -> Abstract:
        if index.dtype not in (dtypes.int32, dtypes.int64):
            raise ShapeError(f"{cls.name}: index must be int32 or int64, got "
                             f"{index.dtype.name}")
        idx = index.shape
        if len(idx) == 2 and idx[1] in (1, -1):
            idx = idx[:1]
        if len(idx) > 1:
            raise ShapeError(f"{cls.name}: index must be 1-D, 0-D or [N, 1], got shape "
                             f"{list(index.shape)}")
        ax = normalize_axis(axis, x.ndim, f"{cls.name} axis")
        return Abstract(x.shape[:ax] + tuple(idx) + x.shape[ax + 1:], x.dtype)

    @staticmethod
    def eager(x: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
        if index.ndim == 2:
            index = index.reshape(-1)
        return np.take(x, index, axis=axis)


def _where_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    cond, x, y = inputs
    g = cts[0]
    zero = A.zeros_like(e, g)
    return [None, A.where(e, cond, g, zero) if needs[1] else None,
            A.where(e, cond, zero, g) if needs[2] else None]


@pd_op
class Where(PdOp):
    """condition ? x : y elementwise. Paddle's `where` op takes three tensors of one shape
    (paddle.where broadcasts with other ops first), so shapes must match here too."""

    name = "pd.where"
    INPUTS = ("condition", "x", "y")
    PADDLE = Legacy("where", {"Condition": "condition", "X": "x", "Y": "y"}, {"Out": 0},
                    keeps_extra_attrs=True)
    NAME_HINT = "where"
    vjp = classmethod(_where_vjp)

    @classmethod
    def infer(cls, condition: Abstract, x: Abstract, y: Abstract) -> Abstract:
        if condition.dtype != dtypes.bool_:
            raise ShapeError(f"{cls.name}: condition must be bool, got {condition.dtype.name}")
        if x.dtype != y.dtype:
            raise ShapeError(f"{cls.name}: x and y dtypes differ ({x.dtype.name} vs "
                             f"{y.dtype.name})")
        shapes = [condition.shape, x.shape, y.shape]
        if len({len(s) for s in shapes}) > 1 or any(
                len({d for d in dims if d >= 0}) > 1 for dims in zip(*shapes)):
            raise ShapeError(f"{cls.name}: condition, x and y must have one shape (Paddle's "
                             f"where op does not broadcast), got {[list(s) for s in shapes]}")
        shape = tuple(max(dims) for dims in zip(*shapes))
        return Abstract(shape, x.dtype)

    @staticmethod
    def eager(condition: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.where(condition, x, y)
