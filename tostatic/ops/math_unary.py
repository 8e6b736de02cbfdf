"""Unary math of the Transformer family: erf (exact gelu's core), rsqrt, square, log, log1p,
and log_softmax along one axis. Same shape and dtype as the input; floating inputs only, except
square, which Paddle also runs on int32 / int64."""
from __future__ import annotations

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir import scalar_expr as se
from tostatic.ir.attributes import INT, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.activation import AlongAxis, FloatUnary, Unary, unary
from tostatic.ops.special import erf


@pd_op
class Erf(FloatUnary):
    name = "pd.erf"
    FN = staticmethod(erf)
    PADDLE = unary("erf", keeps_extra_attrs=True)
    NAME_HINT = "erf"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, A.scale(e, A.e(e, "pd.exp", A.neg(e, A.mul(e, x, x))), 2.0 / np.sqrt(np.pi))))
    SCALAR = staticmethod(se.erf)


def _rsqrt(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):  # 1/sqrt(0) = inf, negative: nan
        out = np.sqrt(x)
        return np.divide(1, out, out=out)


@pd_op
class Rsqrt(FloatUnary):
    name = "pd.rsqrt"
    FN = staticmethod(_rsqrt)
    PADDLE = unary("rsqrt")
    NAME_HINT = "rsqrt"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, A.scale(e, A.mul(e, out, A.mul(e, out, out)), -0.5)))
    SCALAR = staticmethod(lambda x: 1 / se.sqrt(x))


SQUARE_DTYPES = (dtypes.float32, dtypes.float64, dtypes.int32, dtypes.int64)


@pd_op
class Square(Unary):
    name = "pd.square"
    FN = np.square
    PADDLE = unary("square")
    NAME_HINT = "square"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, A.scale(e, x, 2.0)))
    SCALAR = staticmethod(lambda x: x * x)

    @classmethod
    def infer(cls, x: Abstract) -> Abstract:
        if x.dtype not in SQUARE_DTYPES:
            raise ShapeError(f"{cls.name}: expects a float32, float64, int32 or int64 tensor, "
                             f"got {x.dtype.name}")
        return x


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, negative: nan
        return np.log(x)


@pd_op
class Log(FloatUnary):
    name = "pd.log"
    FN = staticmethod(_log)
    PADDLE = unary("log")
    NAME_HINT = "log"
    vjp = A.unary_vjp(lambda e, x, out, g: A.div(e, g, x))
    SCALAR = staticmethod(se.log)


def _log1p(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):  # log1p(-1) = -inf, below: nan
        return np.log1p(x)


@pd_op
class Log1p(FloatUnary):
    """log(1 + x), exact for small x. Paddle 3.3.1 builds it in the new IR only; the legacy
    op is Paddle 2.x's."""

    name = "pd.log1p"
    FN = staticmethod(_log1p)
    PADDLE = unary("log1p")
    NAME_HINT = "log1p"
    vjp = A.unary_vjp(lambda e, x, out, g: A.div(e, g, A.scale(e, x, 1.0, 1.0)))


@pd_op
class LogSoftmax(AlongAxis):
    """x - max - log(sum(exp(x - max))) along one axis."""

    name = "pd.log_softmax"
    ATTRS = {"axis": attr(INT, -1)}
    PADDLE = unary("log_softmax", axis=From("INT", "axis"))
    NAME_HINT = "log_softmax"
    vjp = A.unary_vjp(lambda e, x, out, g, axis: A.sub(e, g, A.mul(e, A.e(e, "pd.exp", out), A.e(e, "pd.sum", g, axis=(axis,), keepdim=True))))

    @staticmethod
    def eager(x: np.ndarray, axis: int) -> np.ndarray:
        if x.ndim == 0:
            return np.zeros_like(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        e = np.exp(shifted)
        shifted -= np.log(e.sum(axis=axis, keepdims=True))
        return shifted
