"""Binary elementwise ops, lowered to Paddle's `elementwise_*` and compare ops.

`axis` is Paddle's legacy alignment: -1 (what tracing makes) is numpy broadcasting; axis=k
aligns the lower-rank operand's dims with the other's dims k, k+1, ... (static `fc` writes
`elementwise_add(X[-1,3], Y[3], axis=1)`). Keeping it as an attribute, not rewriting it away,
lets a raised program lower back to the very op Paddle wrote.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir import scalar_expr as se
from tostatic.ir.attributes import INT, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, Fixed, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.shapes import broadcast


def elementwise(paddle_type: str) -> Legacy:
    return Legacy(paddle_type, {"X": "x", "Y": "y"}, {"Out": 0}, {"axis": From("INT", "axis")})


def aligned(x: tuple[int, ...], y: tuple[int, ...], axis: int,
            what: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes that numpy broadcasts the way Paddle's `axis` aligns them: the lower-rank side
    gets trailing 1s so that its first dim lands on dim `axis` of the other (its own trailing
    1s may be dropped to fit). axis=-1, or equal ranks, leave the shapes as they are."""
    if axis == -1 or len(x) == len(y):
        return x, y
    big, small = (x, y) if len(x) > len(y) else (y, x)
    while small and small[-1] == 1 and axis + len(small) > len(big):
        small = small[:-1]
    if not 0 <= axis <= len(big) - len(small):
        raise ShapeError(f"{what}: axis {axis} cannot align shape {list(small)} "
                         f"within shape {list(big)}")
    small = small + (1,) * (len(big) - axis - len(small))
    return (big, small) if len(x) > len(y) else (small, big)


class Binary(PdOp):
    INPUTS = ("x", "y")
    ATTRS = {"axis": attr(INT, -1)}
    FN: ClassVar[Any] = None
    RESULT_DTYPE: ClassVar[Any] = None  # None: same as inputs (bool for comparisons)

    @classmethod
    def infer(cls, x: Abstract, y: Abstract, axis: int = -1) -> Abstract:
        if x.dtype != y.dtype:
            raise ShapeError(f"{cls.name}: dtypes differ ({x.dtype.name} vs {y.dtype.name}); "
                             f"cast one side first")
        shape = broadcast(*aligned(x.shape, y.shape, axis, cls.name), cls.name)
        return Abstract(shape, cls.RESULT_DTYPE or x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        if axis != -1 and x.ndim != y.ndim:
            xs, ys = aligned(x.shape, y.shape, axis, cls.name)
            x, y = x.reshape(xs), y.reshape(ys)
        out = cls.FN(x, y)
        dtype = cls.RESULT_DTYPE.numpy if cls.RESULT_DTYPE else x.dtype
        return np.asarray(out, dtype=dtype)


def binary_vjp(grads: Any) -> classmethod:
    """The vjp of a broadcasting binary op from `grads(e, x, y, out, g, axis) -> (dx, dy)` in
    the result's shape (emitting binary ops with the same `axis`): each is summed back to its
    input's shape."""
    def vjp(cls: type, e: A.Emitter, inputs: list[Any], outputs: list[Any],
            attrs: dict[str, Any], cts: list[Any], needs: list[bool]) -> list[Any]:
        x, y = inputs
        axis = attrs["axis"]
        dx, dy = grads(e, x, y, outputs[0], cts[0], axis, needs)
        xs, ys = aligned(e.shape(x), e.shape(y), axis, cls.name)
        return [None if dx is None or not needs[0] else A.reshape(e, A.sum_to(e, dx, xs), e.shape(x)),
                None if dy is None or not needs[1] else A.reshape(e, A.sum_to(e, dy, ys), e.shape(y))]
    return classmethod(vjp)


def _mul(e: A.Emitter, a: Any, b: Any, axis: int) -> Any:
    return e(Multiply, a, b, axis=axis)


def _div(e: A.Emitter, a: Any, b: Any, axis: int) -> Any:
    return e(Divide, a, b, axis=axis)


def _minmax_grads(wins: str) -> Any:
    """Paddle's rule for maximum / minimum: the winner takes the cotangent, a tie splits it."""
    def grads(e: A.Emitter, x: Any, y: Any, out: Any, g: Any, axis: int, needs: Any) -> Any:
        tie = A.scale(e, A.mask(e, e(Equal, x, y, axis=axis), g), 0.5)
        dx = _mul(e, g, A.add(e, A.mask(e, e(_BY_NAME[wins], x, y, axis=axis), g), tie), axis)
        dy = _mul(e, g, A.add(e, A.mask(e, e(_BY_NAME[wins], y, x, axis=axis), g), tie), axis)
        return dx, dy
    return grads


def _pow_grads(e: A.Emitter, x: Any, y: Any, out: Any, g: Any, axis: int, needs: Any) -> Any:
    dx = dy = None
    if needs[0]:
        ym1 = A.scale(e, y, 1.0, -1.0)
        dx = _mul(e, g, _mul(e, e(Pow, x, ym1, axis=axis), y, axis), axis)
    if needs[1]:
        dy = _mul(e, A.mul(e, g, out), A.e(e, "pd.log", x), axis)
    return dx, dy


@pd_op
class Add(Binary):
    name = "pd.add"
    FN = np.add
    SCALAR = staticmethod(lambda x, y, axis: x + y)
    PADDLE = elementwise("elementwise_add")
    NAME_HINT = "elementwise_add"
    vjp = binary_vjp(lambda e, x, y, out, g, axis, needs: (g, g))


@pd_op
class Subtract(Binary):
    name = "pd.subtract"
    FN = np.subtract
    SCALAR = staticmethod(lambda x, y, axis: x - y)
    PADDLE = elementwise("elementwise_sub")
    NAME_HINT = "elementwise_sub"
    vjp = binary_vjp(lambda e, x, y, out, g, axis, needs: (g, A.neg(e, g)))


@pd_op
class Multiply(Binary):
    name = "pd.multiply"
    FN = np.multiply
    SCALAR = staticmethod(lambda x, y, axis: x * y)
    PADDLE = elementwise("elementwise_mul")
    NAME_HINT = "elementwise_mul"
    vjp = binary_vjp(lambda e, x, y, out, g, axis, needs: (_mul(e, g, y, axis) if needs[0] else None, _mul(e, g, x, axis) if needs[1] else None))


def _divide(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if np.issubdtype(x.dtype, np.integer):  # Paddle's integer kernel truncates like C++
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.trunc(np.true_divide(x, y)).astype(x.dtype)
    return np.true_divide(x, y)


@pd_op
class Divide(Binary):
    name = "pd.divide"
    FN = staticmethod(_divide)
    SCALAR = staticmethod(lambda x, y, axis: x / y if x.is_float else se.trunc_div(x, y))
    PADDLE = elementwise("elementwise_div")
    NAME_HINT = "elementwise_div"
    vjp = binary_vjp(lambda e, x, y, out, g, axis, needs: (_div(e, g, y, axis) if needs[0] else None, A.neg(e, _div(e, A.mul(e, g, out), y, axis)) if needs[1] else None))


@pd_op
class FloorDivide(Binary):
    NONDIFF = True  # piecewise constant: Paddle has no gradient for it either
    name = "pd.floor_divide"
    FN = np.floor_divide  # floor, as Python's //: Paddle's kernel rounds toward -inf too
    PADDLE = elementwise("elementwise_floordiv")
    NAME_HINT = "elementwise_floordiv"


def _mod(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.mod(x, y)  # Paddle's remainder takes the divisor's sign, like Python and numpy


@pd_op
class Remainder(Binary):
    name = "pd.remainder"
    FN = staticmethod(_mod)
    PADDLE = elementwise("elementwise_mod")
    NAME_HINT = "elementwise_mod"
    vjp = binary_vjp(lambda e, x, y, out, g, axis, needs: (g, A.neg(e, _mul(e, g, e(FloorDivide, x, y, axis=axis), axis)) if needs[1] else None))


@pd_op
class Pow(Binary):
    name = "pd.pow"
    FN = np.power
    SCALAR = staticmethod(lambda x, y, axis: se.power(x, y))
    PADDLE = elementwise("elementwise_pow")
    NAME_HINT = "elementwise_pow"
    vjp = binary_vjp(_pow_grads)


@pd_op
class Maximum(Binary):
    name = "pd.maximum"
    FN = np.maximum
    SCALAR = staticmethod(lambda x, y, axis: se.maximum(x, y))
    PADDLE = elementwise("elementwise_max")
    NAME_HINT = "elementwise_max"
    vjp = binary_vjp(_minmax_grads("pd.greater_than"))


@pd_op
class Minimum(Binary):
    name = "pd.minimum"
    FN = np.minimum
    SCALAR = staticmethod(lambda x, y, axis: se.minimum(x, y))
    PADDLE = elementwise("elementwise_min")
    NAME_HINT = "elementwise_min"
    vjp = binary_vjp(_minmax_grads("pd.less_than"))


def compare(paddle_type: str) -> Legacy:
    return Legacy(paddle_type, {"X": "x", "Y": "y"}, {"Out": 0},
                  {"axis": From("INT", "axis"), "force_cpu": Fixed("BOOLEAN", False)},
                  keeps_extra_attrs=True)


class Compare(Binary):
    RESULT_DTYPE = dtypes.bool_
    NONDIFF = True


@pd_op
class Equal(Compare):
    name = "pd.equal"
    FN = np.equal
    SCALAR = staticmethod(lambda x, y, axis: se.equal(x, y))
    PADDLE = compare("equal")
    NAME_HINT = "equal"


@pd_op
class NotEqual(Compare):
    name = "pd.not_equal"
    FN = np.not_equal
    SCALAR = staticmethod(lambda x, y, axis: se.not_equal(x, y))
    PADDLE = compare("not_equal")
    NAME_HINT = "not_equal"


@pd_op
class LessThan(Compare):
    name = "pd.less_than"
    FN = np.less
    SCALAR = staticmethod(lambda x, y, axis: x < y)
    PADDLE = compare("less_than")
    NAME_HINT = "less_than"


@pd_op
class LessEqual(Compare):
    name = "pd.less_equal"
    FN = np.less_equal
    SCALAR = staticmethod(lambda x, y, axis: x <= y)
    PADDLE = compare("less_equal")
    NAME_HINT = "less_equal"


@pd_op
class GreaterThan(Compare):
    name = "pd.greater_than"
    FN = np.greater
    SCALAR = staticmethod(lambda x, y, axis: x > y)
    PADDLE = compare("greater_than")
    NAME_HINT = "greater_than"


@pd_op
class GreaterEqual(Compare):
    name = "pd.greater_equal"
    FN = np.greater_equal
    SCALAR = staticmethod(lambda x, y, axis: x >= y)
    PADDLE = compare("greater_equal")
    NAME_HINT = "greater_equal"


_BY_NAME = {c.name: c for c in (GreaterThan, LessThan)}
