"""Matrix products (matmul_v2, bmm, the older matmul and mul) and the triangles of matrices."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir.attributes import BOOL, FLOAT, INT, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op

from tostatic.ops import autodiff as A
from tostatic.ops.attr_checks import unsupported, written
from tostatic.ops.shapes import broadcast, numel


def _dims_match(a: int, b: int) -> bool:
    return a == b or a < 0 or b < 0


def matmul_vjp(e: A.Emitter, x: Any, y: Any, g: Any, tx: bool, ty: bool,
               needs: Any) -> list[Any]:
    """d(op_x(x) @ op_y(y)): 1-D sides promoted to matrices, broadcast batch dims summed."""
    xs, ys = e.shape(x), e.shape(y)
    x2 = A.reshape(e, x, (1,) + xs) if len(xs) == 1 else x
    y2 = A.reshape(e, y, ys + (1,)) if len(ys) == 1 else y
    tx, ty = tx and len(xs) > 1, ty and len(ys) > 1
    gs = list(e.shape(g))
    if len(ys) == 1:
        gs.append(1)
    if len(xs) == 1:
        gs.insert(len(gs) - 1, 1)
    g2 = A.reshape(e, g, gs)
    dx = dy = None
    if needs[0]:
        dx = (e(Matmul, y2, g2, transpose_x=ty, transpose_y=True) if tx
              else e(Matmul, g2, y2, transpose_x=False, transpose_y=not ty))
        dx = A.reshape(e, A.sum_to(e, dx, e.shape(x2)), xs)
    if needs[1]:
        dy = (e(Matmul, g2, x2, transpose_x=True, transpose_y=tx) if ty
              else e(Matmul, x2, g2, transpose_x=not tx, transpose_y=False))
        dy = A.reshape(e, A.sum_to(e, dy, e.shape(y2)), ys)
    return [dx, dy]


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
        if x.ndim == 2 and y.ndim == 2:  # np.dot: BLAS for transposed views too (numpy 2.4's
            return np.dot(x, y)          # matmul of an F-ordered right side is ~300x slower)
        return np.matmul(x, y)

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        return matmul_vjp(e, *inputs, cts[0], attrs["transpose_x"], attrs["transpose_y"], needs)


def _flat2d(shape: tuple[int, ...], k: int) -> tuple[int, int]:
    """Paddle's flatten_to_2d: dims before k multiply into rows, the rest into columns."""
    return numel(shape[:k]), numel(shape[k:])


def _as_2d(a: np.ndarray, k: int) -> np.ndarray:
    return a.reshape(int(np.prod(a.shape[:k])), int(np.prod(a.shape[k:])))


@pd_op
class FlattenMatmul(PdOp):
    """Paddle's legacy `mul` (what static `fc` writes): x flattened to 2-D at x_num_col_dims,
    y at y_num_col_dims, one matrix product, then reshaped to x.shape[:x_num_col_dims] +
    y.shape[y_num_col_dims:]. Not `pd.multiply` (elementwise) nor `pd.matmul` (batched)."""

    name = "pd.flatten_matmul"
    INPUTS = ("x", "y")
    ATTRS = {"x_num_col_dims": attr(INT, 1), "y_num_col_dims": attr(INT, 1)}
    PADDLE = Legacy("mul", {"X": "x", "Y": "y"}, {"Out": 0},
                    {"x_num_col_dims": From("INT", "x_num_col_dims"),
                     "y_num_col_dims": From("INT", "y_num_col_dims")})
    NAME_HINT = "mul"

    @staticmethod
    def infer(x: Abstract, y: Abstract, x_num_col_dims: int, y_num_col_dims: int) -> Abstract:
        if x.dtype != y.dtype:
            raise ShapeError(f"pd.flatten_matmul: dtypes differ ({x.dtype.name} vs "
                             f"{y.dtype.name})")
        if not (0 < x_num_col_dims < x.ndim and 0 < y_num_col_dims < y.ndim):
            raise ShapeError(f"pd.flatten_matmul: x_num_col_dims={x_num_col_dims} / "
                             f"y_num_col_dims={y_num_col_dims} do not split shapes "
                             f"{list(x.shape)} and {list(y.shape)} in two")
        k1 = _flat2d(x.shape, x_num_col_dims)[1]
        k2 = _flat2d(y.shape, y_num_col_dims)[0]
        if not _dims_match(k1, k2):
            raise ShapeError(f"pd.flatten_matmul: x {list(x.shape)} flattened at "
                             f"{x_num_col_dims} has {k1} columns, y {list(y.shape)} flattened "
                             f"at {y_num_col_dims} has {k2} rows")
        return Abstract(x.shape[:x_num_col_dims] + y.shape[y_num_col_dims:], x.dtype)

    @staticmethod
    def eager(x: np.ndarray, y: np.ndarray, x_num_col_dims: int,
              y_num_col_dims: int) -> np.ndarray:
        x2, y2 = _as_2d(x, x_num_col_dims), _as_2d(y, y_num_col_dims)
        return (x2 @ y2).reshape(x.shape[:x_num_col_dims] + y.shape[y_num_col_dims:])

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        x, y = inputs
        xs, ys = e.shape(x), e.shape(y)
        x2 = A.reshape(e, x, _flat2d(xs, attrs["x_num_col_dims"]))
        y2 = A.reshape(e, y, _flat2d(ys, attrs["y_num_col_dims"]))
        g2 = A.reshape(e, cts[0], (e.shape(x2)[0], e.shape(y2)[1]))
        dx, dy = matmul_vjp(e, x2, y2, g2, False, False, needs)
        return [None if dx is None else A.reshape(e, dx, xs),
                None if dy is None else A.reshape(e, dy, ys)]


@pd_op
class Bmm(PdOp):
    """Batched matrix product of two 3-D tensors with one batch size: [B, M, K] x [B, K, N]."""

    name = "pd.bmm"
    INPUTS = ("x", "y")
    PADDLE = Legacy("bmm", {"X": "x", "Y": "y"}, {"Out": 0}, keeps_extra_attrs=True)
    NAME_HINT = "bmm"

    @staticmethod
    def infer(x: Abstract, y: Abstract) -> Abstract:
        if x.dtype != y.dtype:
            raise ShapeError(f"pd.bmm: dtypes differ ({x.dtype.name} vs {y.dtype.name})")
        if x.ndim != 3 or y.ndim != 3:
            raise ShapeError(f"pd.bmm: both inputs must be 3-D, got {list(x.shape)} and "
                             f"{list(y.shape)}")
        if not _dims_match(x.shape[0], y.shape[0]) or not _dims_match(x.shape[2], y.shape[1]):
            raise ShapeError(f"pd.bmm: [B, M, K] x [B, K, N] do not fit: {list(x.shape)} and "
                             f"{list(y.shape)}")
        b = x.shape[0] if x.shape[0] >= 0 else y.shape[0]
        return Abstract((b, x.shape[1], y.shape[2]), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.matmul(x, y)

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        return matmul_vjp(e, *inputs, cts[0], False, False, needs)


@pd_op
class ScaledMatmul(PdOp):
    """Paddle's first matmul (files before 2.0; BERT-era attention writes alpha = 1/sqrt(d)):
    alpha * (x @ y) with optional transposes of the last two dims. Unlike matmul_v2, batch
    dims do not broadcast: both sides have the same ones, or one side has none. head_number
    other than 1 (a fused multi-head form) is refused."""

    name = "pd.scaled_matmul"
    INPUTS = ("x", "y")
    ATTRS = {"transpose_x": attr(BOOL, False), "transpose_y": attr(BOOL, False),
             "alpha": attr(FLOAT, 1.0), "head_number": attr(INT, 1)}
    PADDLE = Legacy("matmul", {"X": "x", "Y": "y"}, {"Out": 0},
                    {"alpha": From("FLOAT", "alpha"), "head_number": From("INT", "head_number"),
                     "transpose_X": From("BOOLEAN", "transpose_x"),
                     "transpose_Y": From("BOOLEAN", "transpose_y"),
                     "use_mkldnn": written("BOOLEAN", False)})
    NAME_HINT = "matmul"

    @classmethod
    def infer(cls, x: Abstract, y: Abstract, transpose_x: bool, transpose_y: bool,
              alpha: float, head_number: int) -> Abstract:
        if head_number != 1:
            raise unsupported(cls.name, "head_number", head_number, "1 (no fused heads)")
        bx, by = x.shape[:-2], y.shape[:-2]
        if bx and by and (len(bx) != len(by) or not all(map(_dims_match, bx, by))):
            raise ShapeError(f"{cls.name}: batch dims differ: x {list(x.shape)} and y "
                             f"{list(y.shape)} (this matmul does not broadcast them)")
        return Matmul.infer(x, y, transpose_x, transpose_y)

    @staticmethod
    def eager(x: np.ndarray, y: np.ndarray, transpose_x: bool, transpose_y: bool,
              alpha: float, head_number: int) -> np.ndarray:
        out = Matmul.eager(x, y, transpose_x, transpose_y)
        if alpha != 1.0:
            out = out * out.dtype.type(alpha)
        return out

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        g = cts[0] if attrs["alpha"] == 1.0 else A.scale(e, cts[0], attrs["alpha"])
        return matmul_vjp(e, *inputs, g, attrs["transpose_x"], attrs["transpose_y"], needs)


@pd_op
class TrilTriu(PdOp):
    """The lower (tril) or upper (triu) triangle of the last two dims, from `diagonal` on
    (0: the main diagonal, > 0 above it, < 0 below); the rest zeros."""

    name = "pd.tril_triu"
    INPUTS = ("x",)
    ATTRS = {"diagonal": attr(INT, 0), "lower": attr(BOOL)}
    PADDLE = Legacy("tril_triu", {"X": "x"}, {"Out": 0},
                    {"diagonal": From("INT", "diagonal"), "lower": From("BOOLEAN", "lower")},
                    keeps_extra_attrs=True)
    NAME_HINT = "tril_triu"

    @classmethod
    def infer(cls, x: Abstract, diagonal: int, lower: bool) -> Abstract:
        if x.ndim < 2:
            raise ShapeError(f"{cls.name}: input must have at least 2 dims, got "
                             f"{list(x.shape)}")
        return x

    @staticmethod
    def eager(x: np.ndarray, diagonal: int, lower: bool) -> np.ndarray:
        return np.tril(x, diagonal) if lower else np.triu(x, diagonal)

    vjp = A.unary_vjp(lambda e, x, out, g, diagonal, lower:
                      e(TrilTriu, g, diagonal=diagonal, lower=lower))
