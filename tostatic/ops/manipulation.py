"""Ops that move or reinterpret data without arithmetic."""
from __future__ import annotations

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir import scalar_expr as se
from tostatic.ir.attributes import DTYPE, INT, INTS, attr
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, Fixed, From, FromInputs, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.shapes import dim0_kept, normalize_axis, numel


def reshape_target(in_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Paddle's reshape rule: 0 copies the input dim, one -1 is inferred (stays -1 if unknown)."""
    if list(shape).count(-1) > 1:
        raise ShapeError(f"reshape: more than one -1 in shape {list(shape)}")
    out = [in_shape[i] if d == 0 else d for i, d in enumerate(shape)]
    total = numel(in_shape)
    if -1 in shape:
        at = list(shape).index(-1)
        known = numel([d for i, d in enumerate(out) if i != at])
        if known > 0 and total >= 0:
            if total % known:
                raise ShapeError(f"reshape: cannot reshape {list(in_shape)} to {list(shape)}")
            out[at] = total // known
    elif total >= 0 and numel(out) >= 0 and total != numel(out):
        raise ShapeError(f"reshape: {list(in_shape)} has {total} elements, "
                         f"shape {list(shape)} needs {numel(out)}")
    return tuple(out)


@pd_op
class Reshape(PdOp):
    vjp = A.reshape_vjp()
    name = "pd.reshape"
    INPUTS = ("x",)
    ATTRS = {"shape": attr(INTS)}
    PADDLE = Legacy("reshape2", {"X": "x"}, {"Out": 0}, {"shape": From("INTS", "shape")},
                    optional_inputs=("Shape", "ShapeTensor"), extra_outputs=("XShape",))
    NAME_HINT = "reshape2"

    @staticmethod
    def infer(x: Abstract, shape: tuple[int, ...]) -> Abstract:
        return Abstract(reshape_target(x.shape, shape), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


@pd_op
class ReshapeFromShapeTensor(PdOp):
    """reshape2 whose target shape is the value of the 1-D int32/int64 tensor `shape` (its
    Shape slot): what `x.reshape([y.shape[0], -1, 2, 4])` becomes when a dim of another tensor
    is known only at run time (Paddle 3 programs build such shapes with shape64 -> slice ->
    stack). pd.reshape's rule (0 copies the input's dim, one -1 is inferred); the result's
    rank is the shape tensor's length, which must be known, its dims known only when it runs."""

    vjp = A.reshape_vjp()
    name = "pd.reshape_from_shape_tensor"
    INPUTS = ("x", "shape")
    PADDLE = Legacy("reshape2", {"X": "x", "Shape": "shape"}, {"Out": 0},
                    {"shape": Fixed("INTS", [])}, optional_inputs=("ShapeTensor",),
                    extra_outputs=("XShape",))
    NAME_HINT = "reshape2"

    @classmethod
    def infer(cls, x: Abstract, shape: Abstract) -> Abstract:
        if shape.dtype.name not in ("int32", "int64"):
            raise ShapeError(f"{cls.name}: the shape tensor must be int32 or int64, got "
                             f"{shape.dtype.name}")
        if shape.ndim != 1 or shape.shape[0] < 0:
            raise UnsupportedError(f"{cls.name}: the shape tensor must be 1-D of a known length"
                                   f" (the result's rank), got {list(shape.shape)}")
        return Abstract((-1,) * shape.shape[0], x.dtype)

    @staticmethod
    def eager(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
        target = tuple(int(d) for d in np.asarray(shape).reshape(-1))
        if any(d == 0 and i >= x.ndim for i, d in enumerate(target)):
            raise ShapeError(f"reshape: 0 copies an input dim, but {list(x.shape)} has no dim "
                             f"at every such position of {list(target)}")
        return x.reshape(reshape_target(x.shape, target))


@pd_op
class Transpose(PdOp):
    vjp = A.unary_vjp(lambda e, x, out, g, perm: A.transpose(e, g, A.inverse_perm(perm)))
    name = "pd.transpose"
    INPUTS = ("x",)
    ATTRS = {"perm": attr(INTS)}
    PADDLE = Legacy("transpose2", {"X": "x"}, {"Out": 0}, {"axis": From("INTS", "perm")},
                    declared_outputs=("XShape",), out_lod_level=False)
    NAME_HINT = "transpose"

    @staticmethod
    def infer(x: Abstract, perm: tuple[int, ...]) -> Abstract:
        if sorted(p % max(x.ndim, 1) for p in perm) != list(range(x.ndim)):
            raise ShapeError(f"transpose: perm {list(perm)} is not a permutation of "
                             f"{x.ndim} dims (input shape {list(x.shape)})")
        return Abstract(tuple(x.shape[p] for p in perm), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
        return np.transpose(x, perm)


@pd_op
class Cast(PdOp):
    vjp = A.unary_vjp(lambda e, x, out, g, dtype: A.cast(e, g, e.dtype(x)))
    name = "pd.cast"
    INPUTS = ("x",)
    ATTRS = {"dtype": attr(DTYPE)}
    PADDLE = Legacy("cast", {"X": "x"}, {"Out": 0},
                    {"in_dtype": FromInputs("INT", lambda x: x.dtype.var_type),
                     "out_dtype": From("INT", "dtype", lambda d: d.var_type,
                                       lambda n: dtypes.BY_VAR_TYPE[n])})
    NAME_HINT = "cast"
    SCALAR = staticmethod(lambda x, dtype: se.cast(x, dtype.name))

    @staticmethod
    def infer(x: Abstract, dtype: dtypes.DType) -> Abstract:
        return Abstract(x.shape, dtype)

    @staticmethod
    def eager(x: np.ndarray, dtype: dtypes.DType) -> np.ndarray:
        return x.astype(dtype.numpy)


@pd_op
class Assign(PdOp):
    """A copy. Paddle's sub-blocks end with `assign` onto an outer name; raised into SSA form
    that write becomes a yielded value (the copy is kept so the op still names the var)."""

    vjp = A.unary_vjp(lambda e, x, out, g: g)
    name = "pd.assign"
    INPUTS = ("x",)
    PADDLE = Legacy("assign", {"X": "x"}, {"Out": 0}, keeps_extra_attrs=True)
    NAME_HINT = "assign"

    @staticmethod
    def infer(x: Abstract) -> Abstract:
        return x

    @staticmethod
    def eager(x: np.ndarray) -> np.ndarray:
        return x.copy()


# --- adding and removing dims -------------------------------------------------------------------
# squeeze2 / unsqueeze2 / flatten_contiguous_range have an XShape output Paddle marks "extra":
# saved inference files do not write that slot (as for transpose2), so neither does lowering.

def flatten_shape(shape: tuple[int, ...], start_axis: int, stop_axis: int,
                  what: str = "pd.flatten") -> tuple[int, ...]:
    """Dims start_axis..stop_axis multiplied into one (-1 if any is dynamic); a 0-D tensor
    becomes shape [1], as Paddle's flatten makes it."""
    if not shape:
        return (1,)
    start = normalize_axis(start_axis, len(shape), f"{what} start_axis")
    stop = normalize_axis(stop_axis, len(shape), f"{what} stop_axis")
    if start > stop:
        raise ShapeError(f"{what}: start_axis {start_axis} comes after stop_axis {stop_axis} "
                         f"for shape {list(shape)}")
    return shape[:start] + (numel(shape[start:stop + 1]),) + shape[stop + 1:]


@pd_op
class Flatten(PdOp):
    vjp = A.reshape_vjp()
    name = "pd.flatten"
    INPUTS = ("x",)
    ATTRS = {"start_axis": attr(INT, 1), "stop_axis": attr(INT, -1)}
    PADDLE = Legacy("flatten_contiguous_range", {"X": "x"}, {"Out": 0},
                    {"start_axis": From("INT", "start_axis"),
                     "stop_axis": From("INT", "stop_axis")}, declared_outputs=("XShape",))
    NAME_HINT = "flatten"

    @classmethod
    def infer(cls, x: Abstract, start_axis: int, stop_axis: int) -> Abstract:
        return Abstract(flatten_shape(x.shape, start_axis, stop_axis, cls.name), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, start_axis: int, stop_axis: int) -> np.ndarray:
        return x.reshape(flatten_shape(x.shape, start_axis, stop_axis))


def squeeze_shape(shape: tuple[int, ...], axes: tuple[int, ...],
                  what: str = "pd.squeeze") -> tuple[int, ...]:
    """Paddle's squeeze: the listed dims that are 1 go (others stay, silently); no axes: every
    dim of size 1 goes. A listed dynamic dim goes too (Paddle's compile-time rule)."""
    if not axes:
        return tuple(d for d in shape if d != 1)
    drop = {normalize_axis(a, len(shape), f"{what} axis") for a in axes} if shape else set()
    return tuple(d for i, d in enumerate(shape) if not (i in drop and d in (1, -1)))


@pd_op
class Squeeze(PdOp):
    vjp = A.reshape_vjp()
    name = "pd.squeeze"
    INPUTS = ("x",)
    ATTRS = {"axes": attr(INTS, ())}
    PADDLE = Legacy("squeeze2", {"X": "x"}, {"Out": 0}, {"axes": From("INTS", "axes")},
                    declared_outputs=("XShape",))
    NAME_HINT = "squeeze"

    @classmethod
    def infer(cls, x: Abstract, axes: tuple[int, ...]) -> Abstract:
        return Abstract(squeeze_shape(x.shape, axes, cls.name), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return x.reshape(squeeze_shape(x.shape, axes))


def unsqueeze_shape(shape: tuple[int, ...], axes: tuple[int, ...],
                    what: str = "pd.unsqueeze") -> tuple[int, ...]:
    """Paddle's unsqueeze: each axis in turn is a position in the growing output (negative
    counts from its end); a new 1 inserted there pushes the earlier new 1s after it along."""
    out_rank = len(shape) + len(axes)
    marks = [0] * (out_rank + 1)
    cur_rank = len(shape)
    for axis in axes:
        cur = axis + cur_rank + 1 if axis < 0 else axis
        if not 0 <= cur <= cur_rank:
            raise ShapeError(f"{what}: axis {axis} is out of range for a tensor of rank "
                             f"{cur_rank}")
        for i in range(cur_rank, cur - 1, -1):
            if marks[i] == 1:
                marks[i + 1], marks[i] = 1, 0
        marks[cur] = 1
        cur_rank += 1
    dims = iter(shape)
    return tuple(1 if marks[i] else next(dims) for i in range(out_rank))


@pd_op
class Unsqueeze(PdOp):
    vjp = A.reshape_vjp()
    name = "pd.unsqueeze"
    INPUTS = ("x",)
    ATTRS = {"axes": attr(INTS)}
    PADDLE = Legacy("unsqueeze2", {"X": "x"}, {"Out": 0}, {"axes": From("INTS", "axes")},
                    optional_inputs=("AxesTensor", "AxesTensorList"), keeps_extra_attrs=True,
                    declared_outputs=("XShape",), out_lod_level=dim0_kept)
    NAME_HINT = "unsqueeze2"

    @classmethod
    def infer(cls, x: Abstract, axes: tuple[int, ...]) -> Abstract:
        return Abstract(unsqueeze_shape(x.shape, axes, cls.name), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return x.reshape(unsqueeze_shape(x.shape, axes))


# --- repeating ------------------------------------------------------------------------------------

def expand_shape(shape: tuple[int, ...], target: tuple[int, ...],
                 what: str = "pd.expand") -> tuple[int, ...]:
    """expand_v2: `target` has at least x's rank; -1 keeps x's dim, a dim of 1 takes the
    target size, other dims must already equal it; new leading dims must be given (>= 0)."""
    lead = len(target) - len(shape)
    if lead < 0:
        raise ShapeError(f"{what}: shape {list(target)} has fewer dims than the input "
                         f"{list(shape)}")
    out = []
    for i, t in enumerate(target):
        if i < lead:
            if t < 0:
                raise ShapeError(f"{what}: the new leading dim {i} of shape {list(target)} "
                                 f"must be given, not {t}")
            out.append(t)
            continue
        d = shape[i - lead]
        if t == -1:
            out.append(d)
        elif t < -1:
            raise ShapeError(f"{what}: shape {list(target)} has a negative size {t}")
        elif d == 1 or d == -1:
            out.append(t)
        elif d != t:
            raise ShapeError(f"{what}: cannot expand dim {i - lead} of size {d} "
                             f"(input {list(shape)}) to {t}")
        else:
            out.append(t)
    return tuple(out)


@pd_op
class Expand(PdOp):
    vjp = A.unary_vjp(lambda e, x, out, g, shape: A.sum_to(e, g, e.shape(x)))
    name = "pd.expand"
    INPUTS = ("x",)
    ATTRS = {"shape": attr(INTS)}
    PADDLE = Legacy("expand_v2", {"X": "x"}, {"Out": 0}, {"shape": From("INTS", "shape")},
                    optional_inputs=("Shape", "expand_shapes_tensor"), out_lod_level=dim0_kept)
    NAME_HINT = "expand"

    @classmethod
    def infer(cls, x: Abstract, shape: tuple[int, ...]) -> Abstract:
        return Abstract(expand_shape(x.shape, shape, cls.name), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        # a copy (a broadcast view would be read-only and strided by 0); copyto broadcasts
        # without np.broadcast_to's Python-level cost (a third of an 8x8 expand)
        out = np.empty(expand_shape(x.shape, shape), x.dtype)
        np.copyto(out, x)
        return out


def expand_as_shape(shape: tuple[int, ...], target: tuple[int, ...],
                    what: str = "pd.expand_as") -> tuple[int, ...]:
    """x broadcast to a target of at least x's rank (a target's -1 is a dim not known
    yet): x's dims are 1 or the target's."""
    lead = len(target) - len(shape)
    if lead < 0:
        raise ShapeError(f"{what}: the target shape {list(target)} has fewer dims than the "
                         f"input {list(shape)}")
    out = list(target[:lead])
    for i, (d, t) in enumerate(zip(shape, target[lead:])):
        if d not in (1, -1) and t >= 0 and d != t:
            raise ShapeError(f"{what}: cannot expand dim {i} of size {d} (input "
                             f"{list(shape)}) to {t} (target {list(target)})")
        out.append(t if t >= 0 or d == 1 else d)
    return tuple(out)


@pd_op
class ExpandAs(PdOp):
    """x broadcast to y's shape (expand_as_v2 with its Y input; Paddle's kernel takes the
    shape from Y and writes target_shape only for its compile-time shapes)."""

    vjp = classmethod(lambda cls, e, ins, outs, attrs, cts, needs: [A.sum_to(e, cts[0], e.shape(ins[0])), None])
    name = "pd.expand_as"
    INPUTS = ("x", "y")
    PADDLE = Legacy("expand_as_v2", {"X": "x", "Y": "y"}, {"Out": 0},
                    {"target_shape": FromInputs("INTS", lambda x, y: list(y.shape))},
                    keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "expand_as_v2"

    @classmethod
    def infer(cls, x: Abstract, y: Abstract) -> Abstract:
        return Abstract(expand_as_shape(x.shape, y.shape, cls.name), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(x, expand_as_shape(x.shape, y.shape)))


@pd_op
class ExpandAsShape(PdOp):
    """expand_as_v2 without Y: x broadcast to target_shape (every size given)."""

    vjp = A.unary_vjp(lambda e, x, out, g, target_shape: A.sum_to(e, g, e.shape(x)))
    name = "pd.expand_as_shape"
    INPUTS = ("x",)
    ATTRS = {"target_shape": attr(INTS)}
    PADDLE = Legacy("expand_as_v2", {"X": "x"}, {"Out": 0},
                    {"target_shape": From("INTS", "target_shape")}, optional_inputs=("Y",),
                    keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "expand_as_v2"

    @classmethod
    def infer(cls, x: Abstract, target_shape: tuple[int, ...]) -> Abstract:
        if any(t < 0 for t in target_shape):
            raise ShapeError(f"{cls.name}: without Y every size of target_shape "
                             f"{list(target_shape)} must be given")
        return Abstract(expand_as_shape(x.shape, target_shape, cls.name), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, target_shape: tuple[int, ...]) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(x, target_shape))


def tile_shape(shape: tuple[int, ...], repeat_times: tuple[int, ...],
               what: str = "pd.tile") -> tuple[int, ...]:
    if any(r < 0 for r in repeat_times):
        raise ShapeError(f"{what}: repeat_times {list(repeat_times)} has a negative count")
    n = max(len(shape), len(repeat_times))
    shape = (1,) * (n - len(shape)) + tuple(shape)
    reps = (1,) * (n - len(repeat_times)) + tuple(repeat_times)
    return tuple(-1 if d < 0 else d * r for d, r in zip(shape, reps))


@pd_op
class Tile(PdOp):
    vjp = A.unary_vjp(lambda e, x, out, g, repeat_times: A.tile_back(e, g, e.shape(x), repeat_times))
    name = "pd.tile"
    INPUTS = ("x",)
    ATTRS = {"repeat_times": attr(INTS)}
    PADDLE = Legacy("tile", {"X": "x"}, {"Out": 0},
                    {"repeat_times": From("INTS", "repeat_times")},
                    optional_inputs=("RepeatTimes", "repeat_times_tensor"),
                    keeps_extra_attrs=True)
    NAME_HINT = "tile"

    @classmethod
    def infer(cls, x: Abstract, repeat_times: tuple[int, ...]) -> Abstract:
        return Abstract(tile_shape(x.shape, repeat_times, cls.name), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, repeat_times: tuple[int, ...]) -> np.ndarray:
        return np.tile(x, repeat_times)


@pd_op
class Shape(PdOp):
    """The input's shape as a 1-D int32 tensor (Paddle's `shape` op)."""

    NONDIFF = True
    name = "pd.shape"
    INPUTS = ("x",)
    PADDLE = Legacy("shape", {"Input": "x"}, {"Out": 0}, out_lod_level=False)
    NAME_HINT = "shape"

    @staticmethod
    def infer(x: Abstract) -> Abstract:
        return Abstract((x.ndim,), dtypes.int32)

    @staticmethod
    def eager(x: np.ndarray) -> np.ndarray:
        return np.array(x.shape, dtype=np.int32)


# --- the forms Paddle <= 2.0 wrote (raised from older files; Paddle 3.3.1 still runs them) ---------

@pd_op
class FlattenTo2D(PdOp):
    """flatten2 (fluid.layers.flatten): dims before `axis` multiply into rows, the rest into
    columns (axis 0: one row). Its XShape output is not "extra": files write it."""

    vjp = A.reshape_vjp()
    name = "pd.flatten_to_2d"
    INPUTS = ("x",)
    ATTRS = {"axis": attr(INT, 1)}
    PADDLE = Legacy("flatten2", {"X": "x"}, {"Out": 0}, {"axis": From("INT", "axis")},
                    extra_outputs=("XShape",), keeps_extra_attrs=True)
    NAME_HINT = "flatten2"

    @classmethod
    def infer(cls, x: Abstract, axis: int) -> Abstract:
        if not 0 <= axis <= x.ndim:
            raise ShapeError(f"{cls.name}: axis {axis} must be in [0, {x.ndim}] for shape "
                             f"{list(x.shape)}")
        return Abstract((numel(x.shape[:axis]), numel(x.shape[axis:])), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, axis: int) -> np.ndarray:
        return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


@pd_op
class ExpandTimes(PdOp):
    """expand (v1, fluid.layers.expand): each dim repeated expand_times[i] times, one count
    per dim of x (np.tile with equal ranks)."""

    vjp = A.unary_vjp(lambda e, x, out, g, expand_times: A.tile_back(e, g, e.shape(x), expand_times))
    name = "pd.expand_times"
    INPUTS = ("x",)
    ATTRS = {"expand_times": attr(INTS)}
    PADDLE = Legacy("expand", {"X": "x"}, {"Out": 0},
                    {"expand_times": From("INTS", "expand_times")},
                    optional_inputs=("ExpandTimes", "expand_times_tensor"), out_lod_level=False)
    NAME_HINT = "expand"

    @classmethod
    def infer(cls, x: Abstract, expand_times: tuple[int, ...]) -> Abstract:
        if len(expand_times) != x.ndim:
            raise ShapeError(f"{cls.name}: expand_times {list(expand_times)} needs one count "
                             f"per dim of shape {list(x.shape)}")
        return Abstract(tile_shape(x.shape, expand_times, cls.name), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, expand_times: tuple[int, ...]) -> np.ndarray:
        return np.tile(x, expand_times)
