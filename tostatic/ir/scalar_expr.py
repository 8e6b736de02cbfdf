"""Scalar expressions: what an elementwise op computes for one element, as data.

An elementwise op states its meaning once more, beside its numpy `eager`, as a `SCALAR` rule
written against this tiny builder (`SCALAR = staticmethod(lambda x, y, axis: x + y)`); code
generators read the expression, numpy stays the reference. Nodes are hashable, so a DAG of
ops shares common subexpressions for free. Python numbers mix in as "weak" constants of the
other operand's dtype, as numpy 2 treats them (float32 * 0.5 stays float32).

A rule that cannot express its op for some dtype raises `NotScalar` (the caller then keeps
the op's numpy kernel).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

FLOATS = ("float32", "float64")
INTS = ("int32", "int64")
DTYPES = FLOATS + INTS + ("bool",)
_FLOAT_BITS = struct.Struct("<d")


class NotScalar(TypeError):
    """This op (or this dtype of it) has no scalar expression."""


@dataclass(frozen=True, eq=False)
class Expr:
    """`kind` is an input (`arg`, index in `value`), a constant (`const`), or an operation
    on `args`; `dtype` a numpy dtype name of DTYPES. Equal (and hashed) with float
    constants told apart by their bits: kernels are memoised by expression, and -0.0 ==
    0.0 (max(x, -0.0) is not relu), while NaN != NaN (each op its own kernel object)."""

    kind: str
    dtype: str
    args: tuple["Expr", ...] = ()
    value: Any = None

    def _identity(self) -> tuple[Any, ...]:
        v = self.value
        return (self.kind, self.dtype, self.args,
                _FLOAT_BITS.pack(v) if type(v) is float else v)

    def __eq__(self, o: object) -> bool:
        return self is o or (type(o) is Expr and self._identity() == o._identity())

    def __hash__(self) -> int:
        return hash(self._identity())

    # --- arithmetic, numpy style --------------------------------------------------------
    def __add__(self, o: Any) -> "Expr":
        return _binary("add", self, o)

    def __radd__(self, o: Any) -> "Expr":
        return _binary("add", o, self)

    def __sub__(self, o: Any) -> "Expr":
        return _binary("sub", self, o)

    def __rsub__(self, o: Any) -> "Expr":
        return _binary("sub", o, self)

    def __mul__(self, o: Any) -> "Expr":
        return _binary("mul", self, o)

    def __rmul__(self, o: Any) -> "Expr":
        return _binary("mul", o, self)

    def __truediv__(self, o: Any) -> "Expr":
        return _binary("div", self, o, floats=True)

    def __rtruediv__(self, o: Any) -> "Expr":
        return _binary("div", o, self, floats=True)

    def __neg__(self) -> "Expr":
        if self.dtype == "bool":
            raise NotScalar("negating a bool")
        return Expr("neg", self.dtype, (self,))

    def __lt__(self, o: Any) -> "Expr":  # type: ignore[override]
        return _compare("lt", self, o)

    def __le__(self, o: Any) -> "Expr":  # type: ignore[override]
        return _compare("le", self, o)

    def __gt__(self, o: Any) -> "Expr":  # type: ignore[override]
        return _compare("gt", self, o)

    def __ge__(self, o: Any) -> "Expr":  # type: ignore[override]
        return _compare("ge", self, o)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOATS

    def nodes(self) -> list["Expr"]:
        """Every distinct node, operands before their users."""
        seen: dict[Expr, None] = {}

        def visit(e: Expr) -> None:
            if e in seen:
                return
            for a in e.args:
                visit(a)
            seen[e] = None
        visit(self)
        return list(seen)


def arg(index: int, dtype: str) -> Expr:
    if dtype not in DTYPES:
        raise NotScalar(f"dtype {dtype} has no scalar expressions")
    return Expr("arg", dtype, value=index)


def const(value: Any, dtype: str) -> Expr:
    if dtype == "bool":
        return Expr("const", dtype, value=bool(value))
    return Expr("const", dtype, value=float(value) if dtype in FLOATS else int(value))


def _lift(a: Any, like: Expr) -> Expr:
    if isinstance(a, Expr):
        return a
    if like.dtype == "bool" or (isinstance(a, float) and like.dtype in INTS and a != int(a)):
        raise NotScalar(f"a constant {a!r} with a {like.dtype} operand")
    return const(a, like.dtype)


def _pair(a: Any, b: Any) -> tuple[Expr, Expr]:
    a = _lift(a, b) if not isinstance(a, Expr) else a
    b = _lift(b, a)
    if a.dtype != b.dtype:
        raise NotScalar(f"operands of different dtypes ({a.dtype}, {b.dtype})")
    return a, b


def _binary(kind: str, a: Any, b: Any, floats: bool = False) -> Expr:
    a, b = _pair(a, b)
    if a.dtype == "bool" or (floats and not a.is_float):
        raise NotScalar(f"{kind} on {a.dtype}")
    return Expr(kind, a.dtype, (a, b))


def _compare(kind: str, a: Any, b: Any) -> Expr:
    a, b = _pair(a, b)
    return Expr(kind, "bool", (a, b))


def equal(a: Any, b: Any) -> Expr:
    return _compare("eq", a, b)


def not_equal(a: Any, b: Any) -> Expr:
    return _compare("ne", a, b)


def maximum(a: Any, b: Any) -> Expr:
    """numpy's maximum: a NaN on either side wins."""
    return _binary("max", a, b)


def minimum(a: Any, b: Any) -> Expr:
    return _binary("min", a, b)


def trunc_div(a: Any, b: Any) -> Expr:
    """Integer division rounding toward zero (C's, Paddle's); x / 0 gives 0, not a trap."""
    a, b = _pair(a, b)
    if a.dtype not in INTS:
        raise NotScalar(f"trunc_div on {a.dtype}")
    return Expr("tdiv", a.dtype, (a, b))


def power(a: Any, b: Any) -> Expr:
    return _binary("pow", a, b, floats=True)


def where(cond: Expr, a: Any, b: Any) -> Expr:
    if cond.dtype != "bool":
        raise NotScalar("where needs a bool condition")
    a, b = _pair(a, b)
    return Expr("select", a.dtype, (cond, a, b))


def cast(x: Expr, dtype: str) -> Expr:
    """numpy's astype: float to int truncates, anything to bool is `!= 0`."""
    if dtype not in DTYPES:
        raise NotScalar(f"cast to {dtype}")
    return x if x.dtype == dtype else Expr("cast", dtype, (x,))


def _float_fn(kind: str) -> Any:
    def fn(x: Expr) -> Expr:
        if not x.is_float:
            raise NotScalar(f"{kind} of {x.dtype}")
        return Expr(kind, x.dtype, (x,))
    fn.__name__ = kind
    return fn


exp, log, sqrt, tanh, erf, floor = (_float_fn(k) for k in
                                    ("exp", "log", "sqrt", "tanh", "erf", "floor"))


def absolute(x: Expr) -> Expr:
    if x.dtype == "bool":
        raise NotScalar("abs of bool")
    return Expr("abs", x.dtype, (x,))


def _logical(kind: str) -> Any:
    def fn(*xs: Expr) -> Expr:
        return Expr(kind, "bool", tuple(cast(x, "bool") for x in xs))
    fn.__name__ = f"logical_{kind}"
    return fn


logical_and, logical_or, logical_xor, logical_not = (_logical(k)
                                                     for k in ("and", "or", "xor", "not"))
