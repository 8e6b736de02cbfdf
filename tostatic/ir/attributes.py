"""Kinds of op attributes for the `pd` dialect: Python value <-> xDSL attribute.

A `pd` op declares its attributes as `{"name": attr(KIND, default)}`; these kinds are the only
place that knows how each one is stored in the IR.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Sequence

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
from xdsl.ir import Attribute, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from tostatic.ir import dtypes


@dataclass(frozen=True)
class AttrKind:
    name: str
    constraint: Any  # an attribute class, or a union of them
    to_attr: Callable[[Any], Attribute]
    from_attr: Callable[[Attribute], Any]


@lru_cache(maxsize=4096)
def int_attr(value: int, type_: Attribute) -> IntegerAttr:
    """IntegerAttr(value, type_), made once per value: attributes are immutable, and building
    one (xDSL checks its range) was a sixth of reading a model's program (a few thousand
    bools and small ints)."""
    return IntegerAttr(value, type_)


@lru_cache(maxsize=4096)
def int_array_attr(values: tuple[int, ...], type_: Attribute = i64) -> DenseArrayBase:
    """DenseArrayBase.from_list(type_, values), made once per value (shapes, strides,
    paddings repeat through a program)."""
    return DenseArrayBase.from_list(type_, list(values))


_BOOLS = (IntegerAttr(0, IntegerType(1)), IntegerAttr(1, IntegerType(1)))
_FLOAT_ATTRS: dict[str, FloatAttr] = {}  # by float.hex(): -0.0 and 0.0 stay apart


def _bool(v: Any) -> Attribute:
    """(Made once: building IntegerType(1) and hashing it for int_attr's cache took 13 us a
    bool, 12 ms of ResNet-50's load.)"""
    return _BOOLS[bool(v)]


def _float(v: Any) -> Attribute:
    """FloatAttr(v, f64), made once per value (~11 us an attribute in xDSL); a
    NaN is made afresh (its payload is not in the key)."""
    v = float(v)
    key = v.hex()
    a = _FLOAT_ATTRS.get(key)
    if a is None:
        a = FloatAttr(v, Float64Type())
        if v == v and len(_FLOAT_ATTRS) < 4096:
            _FLOAT_ATTRS[key] = a
    return a


def _ints(v: Any) -> Attribute:
    return int_array_attr(tuple(int(x) for x in v))


def _floats(v: Any) -> Attribute:
    # FloatAttrs, not a dense array: xDSL's parser reads `array<f64: 0x7FF0000000000000>` (inf)
    # back as an error, but a hex FloatAttr as the float it is.
    return ArrayAttr([_float(x) for x in v])


BOOL = AttrKind("bool", IntegerAttr, _bool, lambda a: bool(a.value.data))
INT = AttrKind("int", IntegerAttr, lambda v: int_attr(int(v), i64), lambda a: int(a.value.data))
FLOAT = AttrKind("float", FloatAttr, _float,
                 lambda a: float(a.value.data))
STR = AttrKind("str", StringAttr, lambda v: StringAttr(str(v)), lambda a: a.data)
INTS = AttrKind("ints", DenseArrayBase, _ints, lambda a: tuple(int(x) for x in a.get_values()))
FLOATS = AttrKind("floats", ArrayAttr, _floats,
                  lambda a: tuple(float(x.value.data) for x in a.data))
STRS = AttrKind("strs", ArrayAttr, lambda v: ArrayAttr([StringAttr(s) for s in v]),
                lambda a: tuple(s.data for s in a.data))
DTYPE = AttrKind("dtype", StringAttr, lambda v: StringAttr(dtypes.convert_dtype(v).name),
                 lambda a: dtypes.BY_NAME[a.data])


@irdl_attr_definition
class DenseBitsAttr(ParametrizedAttribute):
    """A literal tensor written as its bytes: `#pd.dense_bits<dense<"0x0000807F"> : tensor<1xf32>>`.

    xDSL prints a float it cannot write exactly in decimal (inf, nan, 123456792.0 in f32) as its
    bit pattern, `dense<[0x7F800000]>`, which its parser reads back as the integer 2139095040.
    The DENSE kind keeps such tensors in this attribute, whose hex-string text every parser reads
    back bit for bit; every other literal stays a plain, readable `dense<[...]>`.
    """

    name = "pd.dense_bits"

    value: DenseIntOrFPElementsAttr

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            value = parser.parse_attribute()
        if not isinstance(value, DenseIntOrFPElementsAttr):
            parser.raise_error(f"#pd.dense_bits holds a dense<...> literal, got {value}")
        return (value,)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f'<dense<"0x{self.value.data.data.hex().upper()}"> : ')
        printer.print_attribute(self.value.type)
        printer.print_string(">")

    def verify(self) -> None:
        if not isinstance(self.value, DenseIntOrFPElementsAttr):
            raise VerifyException(f"#pd.dense_bits holds a dense literal, got {self.value}")


def _dense(v: DenseIntOrFPElementsAttr) -> Attribute:
    """Plain `dense<[...]>` when xDSL prints every value exactly (as no hex float)."""
    values_text = str(v).rsplit(" : ", 1)[0]  # not the type: tensor<2x0x3xf32> has "0x" too
    return DenseBitsAttr(v) if "0x" in values_text else v


DENSE = AttrKind("dense", DenseIntOrFPElementsAttr | DenseBitsAttr, _dense,
                 lambda a: a.value if isinstance(a, DenseBitsAttr) else a)  # literal tensors

ATTRIBUTES = [DenseBitsAttr]  # attribute definitions the `pd` dialect registers


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
