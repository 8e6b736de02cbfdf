"""Ops converted dygraph code leans on for counters and sums: `sum` (paddle.add_n) and
`increment` (a loop counter's step)."""
from __future__ import annotations

import numpy as np

from tostatic.ir.attributes import FLOAT, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.control_flow import join_all


@pd_op
class AddN(PdOp):
    """The elementwise sum of tensors of one shape and dtype (Paddle's `sum` op)."""

    name = "pd.add_n"
    INPUTS = ("*xs",)
    PADDLE = Legacy("sum", {"X": "*xs"}, {"Out": 0})
    NAME_HINT = "sum"
    # every input gets the sum's cotangent
    vjp = classmethod(lambda cls, e, inputs, outputs, attrs, cts, needs:
                      [[cts[0] for _ in inputs[0]]])

    @staticmethod
    def infer(xs: list[Abstract]) -> Abstract:
        return join_all(xs, "add_n")

    @staticmethod
    def eager(xs: list[np.ndarray]) -> np.ndarray:
        out = np.array(xs[0], copy=True)
        for x in xs[1:]:
            if x.shape != out.shape:
                raise ShapeError(f"add_n: inputs of shapes {list(out.shape)} and "
                                 f"{list(x.shape)}; they must agree")
            out = out + x
        return out.astype(xs[0].dtype)


@pd_op
class Increment(PdOp):
    """x + step for a one-element x, in x's dtype (Paddle's `increment`)."""

    name = "pd.increment"
    INPUTS = ("x",)
    ATTRS = {"step": attr(FLOAT, 1.0)}
    PADDLE = Legacy("increment", {"X": "x"}, {"Out": 0}, {"step": From("FLOAT", "step")})
    NAME_HINT = "increment"
    vjp = A.unary_vjp(lambda e, x, out, g, step: g)

    @staticmethod
    def infer(x: Abstract, step: float) -> Abstract:
        if any(d > 1 for d in x.shape):
            raise ShapeError(f"increment: x must hold one element, got shape {list(x.shape)}")
        return x

    @staticmethod
    def eager(x: np.ndarray, step: float) -> np.ndarray:
        if x.size != 1:
            raise ShapeError(f"increment: x must hold one element, got shape {list(x.shape)}")
        return (x + step).astype(x.dtype)
