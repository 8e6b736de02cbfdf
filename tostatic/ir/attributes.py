"""Kinds of op attributes for the `pd` dialect: Python value <-> xDSL attribute.

A `pd` op declares its attributes as `{"name": attr(KIND, default)}`; these kinds are the only
place that knows how each one is stored in the IR.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    i64,
)
from xdsl.ir import Attribute

from tostatic.ir import dtypes


@dataclass(frozen=True)
class AttrKind:
    name: str
    constraint: type[Attribute]
    to_attr: Callable[[Any], Attribute]
    from_attr: Callable[[Attribute], Any]


def _bool(v: Any) -> Attribute:
    return IntegerAttr(int(bool(v)), IntegerType(1))


def _ints(v: Any) -> Attribute:
    return DenseArrayBase.from_list(i64, [int(x) for x in v])


def _floats(v: Any) -> Attribute:
    return DenseArrayBase.from_list(Float64Type(), [float(x) for x in v])


BOOL = AttrKind("bool", IntegerAttr, _bool, lambda a: bool(a.value.data))
INT = AttrKind("int", IntegerAttr, lambda v: IntegerAttr(int(v), i64), lambda a: int(a.value.data))
FLOAT = AttrKind("float", FloatAttr, lambda v: FloatAttr(float(v), Float64Type()),
                 lambda a: float(a.value.data))
STR = AttrKind("str", StringAttr, lambda v: StringAttr(str(v)), lambda a: a.data)
INTS = AttrKind("ints", DenseArrayBase, _ints, lambda a: tuple(int(x) for x in a.get_values()))
FLOATS = AttrKind("floats", DenseArrayBase, _floats,
                  lambda a: tuple(float(x) for x in a.get_values()))
STRS = AttrKind("strs", ArrayAttr, lambda v: ArrayAttr([StringAttr(s) for s in v]),
                lambda a: tuple(s.data for s in a.data))
DTYPE = AttrKind("dtype", StringAttr, lambda v: StringAttr(dtypes.convert_dtype(v).name),
                 lambda a: dtypes.BY_NAME[a.data])

DENSE = AttrKind("dense", DenseIntOrFPElementsAttr, lambda v: v, lambda a: a)  # literal tensors


_REQUIRED = object()


@dataclass(frozen=True)
class AttrSpec:
    kind: AttrKind
    default: Any = _REQUIRED

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


def attr(kind: AttrKind, default: Any = _REQUIRED) -> AttrSpec:
    return AttrSpec(kind, default)
