"""Unary activations and math: same shape, same dtype."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir.attributes import BOOL, FLOAT, attr
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op


class Unary(PdOp):
    INPUTS = ("x",)
    FN: ClassVar[Any] = None

    @staticmethod
    def infer(x: Abstract, **_: Any) -> Abstract:
        return x

    @classmethod
    def eager(cls, x: np.ndarray, **attrs: Any) -> np.ndarray:
        return np.asarray(cls.FN(x, **attrs), dtype=x.dtype)


def unary(paddle_type: str, **attrs: From) -> Legacy:
    return Legacy(paddle_type, {"X": "x"}, {"Out": 0}, dict(attrs))


@pd_op
class Relu(Unary):
    name = "pd.relu"
    FN = staticmethod(lambda x: np.maximum(x, 0))
    PADDLE = unary("relu")
    NAME_HINT = "relu"


@pd_op
class Sigmoid(Unary):
    name = "pd.sigmoid"
    FN = staticmethod(lambda x: 1.0 / (1.0 + np.exp(-x)))
    PADDLE = unary("sigmoid")
    NAME_HINT = "sigmoid"


@pd_op
class Tanh(Unary):
    name = "pd.tanh"
    FN = np.tanh
    PADDLE = unary("tanh")
    NAME_HINT = "tanh"


@pd_op
class Exp(Unary):
    name = "pd.exp"
    FN = np.exp
    PADDLE = unary("exp")
    NAME_HINT = "exp"


@pd_op
class Sqrt(Unary):
    name = "pd.sqrt"
    FN = np.sqrt
    PADDLE = unary("sqrt")
    NAME_HINT = "sqrt"


@pd_op
class Abs(Unary):
    name = "pd.abs"
    FN = np.abs
    PADDLE = unary("abs")
    NAME_HINT = "abs"


@pd_op
class Neg(Unary):
    """-x; Paddle writes it as scale(-1) so it has no legacy op of its own."""

    name = "pd.neg"
    FN = np.negative
    NAME_HINT = "scale"


@pd_op
class Scale(Unary):
    """scale * x + bias (bias_after_scale), else scale * (x + bias): how Paddle writes x*2, x+1."""

    name = "pd.scale"
    ATTRS = {"scale": attr(FLOAT, 1.0), "bias": attr(FLOAT, 0.0),
             "bias_after_scale": attr(BOOL, True)}
    PADDLE = Legacy("scale", {"X": "x"}, {"Out": 0},
                    {"scale": From("FLOAT", "scale"), "bias": From("FLOAT", "bias"),
                     "bias_after_scale": From("BOOLEAN", "bias_after_scale")},
                    optional_inputs=("ScaleTensor", "BiasTensor"))
    NAME_HINT = "scale"

    @staticmethod
    def eager(x: np.ndarray, scale: float, bias: float, bias_after_scale: bool) -> np.ndarray:
        if np.issubdtype(x.dtype, np.integer):
            out = x * scale + bias if bias_after_scale else (x + bias) * scale
            return np.asarray(out).astype(x.dtype)
        s, b = x.dtype.type(scale), x.dtype.type(bias)
        return (x * s + b) if bias_after_scale else (x + b) * s


def _gelu(x: np.ndarray, approximate: bool) -> np.ndarray:
    if approximate:
        c = np.sqrt(2.0 / np.pi)
        return 0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x ** 3)))
    from math import erf

    return 0.5 * x * (1.0 + np.vectorize(erf, otypes=[x.dtype])(x / np.sqrt(2.0)))


@pd_op
class Gelu(Unary):
    name = "pd.gelu"
    ATTRS = {"approximate": attr(BOOL, False)}
    FN = staticmethod(_gelu)
    PADDLE = unary("gelu", approximate=From("BOOLEAN", "approximate"))
    NAME_HINT = "gelu"
