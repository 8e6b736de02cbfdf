"""Rounding and sign, elementwise: floor, ceil, round (half to even, to `decimals` places, as
C's nearbyint in Paddle's kernel) and sign. Same shape and dtype as the input.
Paddle 3.3.1 builds these in the new IR only; the legacy ops are Paddle 2.x's (round's
`decimals` as its op proto declares it)."""
from __future__ import annotations

import numpy as np

from tostatic.ir.attributes import INT, attr
from tostatic.ops import autodiff as A
from tostatic.ir.opdef import Abstract, From, pd_op
from tostatic.ops.activation import FloatUnary, Unary, unary


@pd_op
class Floor(FloatUnary):
    name = "pd.floor"
    FN = np.floor
    PADDLE = unary("floor")
    NAME_HINT = "floor"
    vjp = A.zero_vjp()


@pd_op
class Ceil(FloatUnary):
    name = "pd.ceil"
    FN = np.ceil
    PADDLE = unary("ceil")
    NAME_HINT = "ceil"
    vjp = A.zero_vjp()


@pd_op
class Round(FloatUnary):
    """Half to even (2.5 -> 2, 3.5 -> 4); with `decimals` d, rint(x * 10^d) / 10^d (d < 0:
    rint(x / 10^-d) * 10^-d) in x's dtype, as Paddle's kernel."""

    name = "pd.round"
    ATTRS = {"decimals": attr(INT, 0)}
    PADDLE = unary("round", decimals=From("INT", "decimals"))
    NAME_HINT = "round"
    vjp = A.zero_vjp()

    @classmethod
    def infer(cls, x: Abstract, decimals: int = 0) -> Abstract:
        return super().infer(x)

    @staticmethod
    def eager(x: np.ndarray, decimals: int = 0) -> np.ndarray:
        if decimals == 0:
            return np.rint(x)
        if decimals > 0:
            p = x.dtype.type(10.0 ** decimals)
            return (np.rint(x * p) / p).astype(x.dtype)
        p = x.dtype.type(10.0 ** -decimals)
        return (np.rint(x / p) * p).astype(x.dtype)


@pd_op
class Sign(Unary):
    """-1, 0 or 1 by the sign of each element (0 for 0; NaN stays NaN), any numeric dtype."""

    name = "pd.sign"
    FN = np.sign
    PADDLE = unary("sign", keeps_extra_attrs=True)
    NAME_HINT = "sign"
    NONDIFF = True  # its derivative is 0 wherever it exists (Paddle's sign_grad: zeros)
