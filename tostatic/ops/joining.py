"""Joining and splitting tensors along an axis: concat, split, stack, meshgrid."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic.ir.attributes import INT, INTS, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.shapes import normalize_axis


def _same_dtype(what: str, xs: Sequence[Abstract]) -> None:
    if not xs:
        raise ShapeError(f"{what}: needs at least one input")
    if len({x.dtype for x in xs}) > 1:
        raise ShapeError(f"{what}: inputs have different dtypes "
                         f"{[x.dtype.name for x in xs]}")


def _merge_dim(a: int, b: int) -> int | None:
    """One dim from two that must agree (-1 fits anything); None if they differ."""
    if a < 0:
        return b
    if b < 0 or a == b:
        return a
    return None


def _concat_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    axis = attrs["axis"] % len(e.shape(inputs[0][0]))
    sizes = tuple(e.shape(x)[axis] for x in inputs[0])
    parts = e(Split, cts[0], num=0, sections=sizes, axis=axis)
    return [list(parts) if len(sizes) > 1 else [parts]]


@pd_op
class Concat(PdOp):
    name = "pd.concat"
    INPUTS = ("*xs",)
    ATTRS = {"axis": attr(INT, 0)}
    PADDLE = Legacy("concat", {"X": "*xs"}, {"Out": 0}, {"axis": From("INT", "axis")},
                    optional_inputs=("AxisTensor",))
    NAME_HINT = "concat"
    vjp = classmethod(_concat_vjp)

    @classmethod
    def infer(cls, xs: list[Abstract], axis: int) -> Abstract:
        _same_dtype(cls.name, xs)
        rank = xs[0].ndim
        if any(x.ndim != rank for x in xs):
            raise ShapeError(f"{cls.name}: inputs have different ranks "
                             f"{[list(x.shape) for x in xs]}")
        if rank == 0:
            raise ShapeError(f"{cls.name}: cannot concatenate 0-D tensors")
        ax = normalize_axis(axis, rank, f"{cls.name} axis")
        out = list(xs[0].shape)
        out[ax] = 0
        for x in xs:
            for i, d in enumerate(x.shape):
                if i == ax:
                    out[i] = -1 if d < 0 or out[i] < 0 else out[i] + d
                    continue
                merged = _merge_dim(out[i], d)
                if merged is None:
                    raise ShapeError(f"{cls.name}: inputs differ in dim {i} outside the axis "
                                     f"{axis}: {[list(x.shape) for x in xs]}")
                out[i] = merged
        return Abstract(tuple(out), xs[0].dtype)

    @staticmethod
    def eager(xs: list[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(xs, axis=axis)


def split_sizes(dim: int, num: int, sections: tuple[int, ...], what: str) -> list[int]:
    """The sizes of the pieces (-1 where unknown until run time)."""
    if num > 0:
        if dim >= 0 and dim % num:
            raise ShapeError(f"{what}: dim of size {dim} does not split into {num} equal parts")
        return [dim // num if dim >= 0 else -1] * num
    if not sections:
        raise ShapeError(f"{what}: give num > 0 or sections")
    if list(sections).count(-1) > 1 or any(s < -1 for s in sections):
        raise ShapeError(f"{what}: sections {list(sections)} may hold one -1 and no other "
                         f"negative size")
    sizes = list(sections)
    known = sum(s for s in sizes if s >= 0)
    if dim >= 0:
        if -1 in sizes:
            if known >= dim:  # Paddle's rule: the -1 section gets at least one element
                raise ShapeError(f"{what}: sections {list(sections)} leave nothing for the -1 "
                                 f"section of a dim of size {dim}")
            sizes[sizes.index(-1)] = dim - known
        elif known != dim:
            raise ShapeError(f"{what}: sections {list(sections)} add up to {known}, "
                             f"the dim has size {dim}")
    return sizes


def _split_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    return [e(Concat, *cts, axis=attrs["axis"])]


@pd_op
class Split(PdOp):
    """Pieces along `axis`: `num` equal ones, or `sections` sizes (one may be -1, the rest)."""

    name = "pd.split"
    INPUTS = ("x",)
    ATTRS = {"num": attr(INT, 0), "sections": attr(INTS, ()), "axis": attr(INT, 0)}
    NUM_RESULTS = None
    PADDLE = Legacy("split", {"X": "x"}, {"Out": "*"},
                    {"axis": From("INT", "axis"), "num": From("INT", "num"),
                     "sections": From("INTS", "sections")},
                    optional_inputs=("AxisTensor", "SectionsTensorList"))
    NAME_HINT = "split"
    vjp = classmethod(_split_vjp)

    @classmethod
    def infer(cls, x: Abstract, num: int, sections: tuple[int, ...],
              axis: int) -> list[Abstract]:
        ax = normalize_axis(axis, x.ndim, f"{cls.name} axis")
        sizes = split_sizes(x.shape[ax], num, sections, cls.name)
        return [Abstract(x.shape[:ax] + (s,) + x.shape[ax + 1:], x.dtype) for s in sizes]

    @staticmethod
    def eager(x: np.ndarray, num: int, sections: tuple[int, ...],
              axis: int) -> list[np.ndarray]:
        ax = axis % x.ndim
        sizes = split_sizes(x.shape[ax], num, sections, "pd.split")
        return np.split(x, np.cumsum(sizes)[:-1], axis=ax)


def _stack_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    xs = inputs[0]
    shape = e.shape(xs[0])
    axis = attrs["axis"] % (len(shape) + 1)
    parts = e(Split, cts[0], num=len(xs), sections=(), axis=axis)
    parts = parts if isinstance(parts, list) else [parts]
    return [[A.reshape(e, p, shape) for p in parts]]


@pd_op
class Stack(PdOp):
    name = "pd.stack"
    INPUTS = ("*xs",)
    ATTRS = {"axis": attr(INT, 0)}
    PADDLE = Legacy("stack", {"X": "*xs"}, {"Y": 0}, {"axis": From("INT", "axis")})
    NAME_HINT = "stack"
    vjp = classmethod(_stack_vjp)

    @classmethod
    def infer(cls, xs: list[Abstract], axis: int) -> Abstract:
        _same_dtype(cls.name, xs)
        out = list(xs[0].shape)
        for x in xs[1:]:
            merged = [_merge_dim(a, b) for a, b in zip(out, x.shape)]
            if x.ndim != len(out) or None in merged:
                raise ShapeError(f"{cls.name}: inputs must have one shape, got "
                                 f"{[list(x.shape) for x in xs]}")
            out = merged  # type: ignore[assignment]
        ax = normalize_axis(axis, len(out) + 1, f"{cls.name} axis")
        return Abstract(tuple(out[:ax] + [len(xs)] + out[ax:]), xs[0].dtype)

    @staticmethod
    def eager(xs: list[np.ndarray], axis: int) -> np.ndarray:
        return np.stack(xs, axis=axis)


def _meshgrid_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    xs = inputs[0]
    n = len(xs)
    return [[A.reshape(e, A.sum_axes(e, g, [j for j in range(n) if j != i]), e.shape(x))
             for i, (x, g) in enumerate(zip(xs, cts))]]


@pd_op
class Meshgrid(PdOp):
    """N 1-D tensors (0-D count as one element) -> N grids of shape [n1, ..., nN], 'ij'."""

    name = "pd.meshgrid"
    INPUTS = ("*xs",)
    NUM_RESULTS = None
    PADDLE = Legacy("meshgrid", {"X": "*xs"}, {"Out": "*"}, keeps_extra_attrs=True,
                    out_lod_level=False)
    NAME_HINT = "meshgrid"
    vjp = classmethod(_meshgrid_vjp)

    @classmethod
    def infer(cls, xs: list[Abstract]) -> list[Abstract]:
        _same_dtype(cls.name, xs)
        if any(x.ndim > 1 for x in xs):
            raise ShapeError(f"{cls.name}: inputs must be 1-D (or 0-D), got "
                             f"{[list(x.shape) for x in xs]}")
        shape = tuple(x.shape[0] if x.ndim else 1 for x in xs)
        return [Abstract(shape, x.dtype) for x in xs]

    @staticmethod
    def eager(xs: list[np.ndarray]) -> list[np.ndarray]:
        return np.meshgrid(*[x.reshape(-1) for x in xs], indexing="ij")
