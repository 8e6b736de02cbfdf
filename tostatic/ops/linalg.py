"""Matrix products."""
from __future__ import annotations

import numpy as np

from tostatic.ir.attributes import BOOL, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops.shapes import broadcast


def _dims_match(a: int, b: int) -> bool:
    return a == b or a < 0 or b < 0


@pd_op
class Matmul(PdOp):
    """numpy.matmul with optional transposes of the last two dims of either side."""

    name = "pd.matmul"
    INPUTS = ("x", "y")
    ATTRS = {"transpose_x": attr(BOOL, False), "transpose_y": attr(BOOL, False)}
    PADDLE = Legacy("matmul_v2", {"X": "x", "Y": "y"}, {"Out": 0},
                    {"trans_x": From("BOOLEAN", "transpose_x"),
                     "trans_y": From("BOOLEAN", "transpose_y")})
    NAME_HINT = "matmul_v2"

    @staticmethod
    def infer(x: Abstract, y: Abstract, transpose_x: bool, transpose_y: bool) -> Abstract:
        if x.dtype != y.dtype:
            raise ShapeError(f"pd.matmul: dtypes differ ({x.dtype.name} vs {y.dtype.name})")
        xs, ys = list(x.shape), list(y.shape)
        if not xs or not ys:
            raise ShapeError("pd.matmul: inputs must have at least one dimension")
        if len(xs) >= 2 and transpose_x:
            xs[-1], xs[-2] = xs[-2], xs[-1]
        if len(ys) >= 2 and transpose_y:
            ys[-1], ys[-2] = ys[-2], ys[-1]
        x1, y1 = len(xs) == 1, len(ys) == 1
        if x1:
            xs = [1] + xs
        if y1:
            ys = ys + [1]
        if not _dims_match(xs[-1], ys[-2]):
            raise ShapeError(f"pd.matmul: contracted dims differ: x {list(x.shape)} "
                             f"(transpose_x={transpose_x}) and y {list(y.shape)} "
                             f"(transpose_y={transpose_y})")
        batch = broadcast(xs[:-2], ys[:-2], "pd.matmul batch dims")
        out = list(batch) + [xs[-2], ys[-1]]
        if x1:
            out.pop(-2)
        if y1:
            out.pop(-1)
        return Abstract(tuple(out), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, y: np.ndarray, transpose_x: bool, transpose_y: bool) -> np.ndarray:
        if transpose_x and x.ndim >= 2:
            x = np.swapaxes(x, -1, -2)
        if transpose_y and y.ndim >= 2:
            y = np.swapaxes(y, -1, -2)
        return np.matmul(x, y)
