"""Ops that move or reinterpret data without arithmetic."""
from __future__ import annotations

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import DTYPE, INTS, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, FromInputs, Legacy, PdOp, pd_op
from tostatic.ops.shapes import numel


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
class Transpose(PdOp):
    name = "pd.transpose"
    INPUTS = ("x",)
    ATTRS = {"perm": attr(INTS)}
    PADDLE = Legacy("transpose2", {"X": "x"}, {"Out": 0}, {"axis": From("INTS", "perm")})
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
    name = "pd.cast"
    INPUTS = ("x",)
    ATTRS = {"dtype": attr(DTYPE)}
    PADDLE = Legacy("cast", {"X": "x"}, {"Out": 0},
                    {"in_dtype": FromInputs("INT", lambda x: x.dtype.var_type),
                     "out_dtype": From("INT", "dtype", lambda d: d.var_type,
                                       lambda n: dtypes.BY_VAR_TYPE[n])})
    NAME_HINT = "cast"

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
