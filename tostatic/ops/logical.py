"""Logical ops on bool tensors (Paddle's `logical_*`): what `static.nn.cond` writes for `not`
and what loop flags (`break`) are combined with. Results are bool; inputs broadcast."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir import scalar_expr as se
from tostatic.ir.opdef import Abstract, Legacy, PdOp, pd_op
from tostatic.ops.shapes import broadcast


@pd_op
class LogicalNot(PdOp):
    name = "pd.logical_not"
    INPUTS = ("x",)
    PADDLE = Legacy("logical_not", {"X": "x"}, {"Out": 0}, keeps_extra_attrs=True)
    NAME_HINT = "logical_not"
    NONDIFF = True
    SCALAR = staticmethod(se.logical_not)

    @staticmethod
    def infer(x: Abstract) -> Abstract:
        return Abstract(x.shape, dtypes.bool_)

    @staticmethod
    def eager(x: np.ndarray) -> np.ndarray:
        return np.logical_not(x)


class LogicalBinary(PdOp):
    INPUTS = ("x", "y")
    FN: ClassVar[Any] = None

    @classmethod
    def infer(cls, x: Abstract, y: Abstract) -> Abstract:
        return Abstract(broadcast(x.shape, y.shape, cls.name), dtypes.bool_)

    @classmethod
    def eager(cls, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(cls.FN(x, y))


def logical(paddle_type: str) -> Legacy:
    return Legacy(paddle_type, {"X": "x", "Y": "y"}, {"Out": 0}, keeps_extra_attrs=True)


@pd_op
class LogicalAnd(LogicalBinary):
    name = "pd.logical_and"
    FN = np.logical_and
    SCALAR = staticmethod(se.logical_and)
    PADDLE = logical("logical_and")
    NAME_HINT = "logical_and"
    NONDIFF = True


@pd_op
class LogicalOr(LogicalBinary):
    name = "pd.logical_or"
    FN = np.logical_or
    SCALAR = staticmethod(se.logical_or)
    PADDLE = logical("logical_or")
    NAME_HINT = "logical_or"
    NONDIFF = True


@pd_op
class LogicalXor(LogicalBinary):
    name = "pd.logical_xor"
    FN = np.logical_xor
    SCALAR = staticmethod(se.logical_xor)
    PADDLE = logical("logical_xor")
    NAME_HINT = "logical_xor"
    NONDIFF = True
