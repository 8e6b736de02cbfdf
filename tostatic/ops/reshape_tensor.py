"""reshape2 whose target shape is a tensor's value (its `Shape` slot): what
`x.reshape([y.shape[0], -1, 2, 4])` becomes when dims of another tensor are known only at run
time (Paddle 3.x programs build such shapes with shape64 -> slice -> stack)."""
from __future__ import annotations

import numpy as np

from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, Fixed, Legacy, PdOp, pd_op
from tostatic.ops.manipulation import reshape_target


@pd_op
class ReshapeFromShapeTensor(PdOp):
    """x reshaped to the values of the 1-D int32/int64 tensor `shape`, with pd.reshape's rule
    (0 copies the input's dim, one -1 is inferred). The result's rank is the shape tensor's
    length, which must be known; its dims are known only when it runs."""

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
