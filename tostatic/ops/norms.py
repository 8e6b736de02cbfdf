"""Vector p-norms (Paddle's p_norm, what paddle.linalg.norm / vector_norm / paddle.norm write
for a number p): along one axis, or over every element (`asvector`). p = inf / -inf is the
largest / smallest magnitude, p = 0 counts the non-zero elements, as Paddle's kernel; the
result keeps x's dtype. `epsilon` only guards the gradient."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir.attributes import BOOL, FLOAT, INT, attr
from tostatic.ir.errors import ShapeError
from tostatic.ops import autodiff as A
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops.shapes import normalize_axis


def _p_norm_grad(e: A.Emitter, x: Any, out: Any, g: Any, porder: float, axis: int,
                 epsilon: float, keepdim: bool, asvector: bool) -> Any:
    """d|x|_p = sign(x) |x|^(p-1) / |x|_p^(p-1); for p = +-inf the cotangent goes to the
    entries equal to the norm (with their sign); p = 0 counts, with no gradient."""
    shape = e.shape(x)
    axes = tuple(range(len(shape))) if asvector else (normalize_axis(axis, len(shape)),)
    n = A.unreduce(e, out, shape, axes)
    gb = A.unreduce(e, g, shape, axes)
    if porder == 0:
        return A.zeros_like(e, x)
    sign = A.e(e, "pd.sign", x)
    a = A.e(e, "pd.abs", x)
    if porder in (np.inf, -np.inf):
        return A.mul(e, gb, A.mul(e, sign, A.mask(e, A.e(e, "pd.equal", a, n), x)))
    p1 = porder - 1.0
    ratio = A.div(e, A.e(e, "pd.pow", a, A.full_like(e, a, p1)),
                  A.e(e, "pd.pow", n, A.full_like(e, n, p1)))
    return A.mul(e, gb, A.mul(e, sign, ratio))


@pd_op
class PNorm(PdOp):
    name = "pd.p_norm"
    INPUTS = ("x",)
    ATTRS = {"porder": attr(FLOAT, 2.0), "axis": attr(INT, -1), "epsilon": attr(FLOAT, 1e-12),
             "keepdim": attr(BOOL, False), "asvector": attr(BOOL, False)}
    PADDLE = Legacy("p_norm", {"X": "x"}, {"Out": 0},
                    {"asvector": From("BOOLEAN", "asvector"), "axis": From("INT", "axis"),
                     "epsilon": From("FLOAT", "epsilon"), "keepdim": From("BOOLEAN", "keepdim"),
                     "porder": From("FLOAT", "porder")},
                    keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "p_norm"
    vjp = A.unary_vjp(_p_norm_grad)

    @classmethod
    def infer(cls, x: Abstract, porder: float, axis: int, epsilon: float, keepdim: bool,
              asvector: bool) -> Abstract:
        if not x.dtype.is_floating:
            raise ShapeError(f"{cls.name}: expects a floating tensor, got {x.dtype.name}")
        if asvector:
            return Abstract((1,) * x.ndim if keepdim else (), x.dtype)
        ax = normalize_axis(axis, x.ndim, f"{cls.name} axis")
        shape = tuple(1 if i == ax else d for i, d in enumerate(x.shape) if keepdim or i != ax)
        return Abstract(shape, x.dtype)

    @staticmethod
    def eager(x: np.ndarray, porder: float, axis: int, epsilon: float, keepdim: bool,
              asvector: bool) -> np.ndarray:
        axes = tuple(range(x.ndim)) if asvector else (normalize_axis(axis, x.ndim),)
        a = np.abs(x)
        if porder == np.inf:
            out = a.max(axis=axes, keepdims=keepdim)
        elif porder == -np.inf:
            out = a.min(axis=axes, keepdims=keepdim)
        elif porder == 0:
            out = (x != 0).sum(axis=axes, keepdims=keepdim)
        else:
            out = np.power(np.power(a, porder).sum(axis=axes, keepdims=keepdim), 1.0 / porder)
        return np.asarray(out, dtype=x.dtype)
