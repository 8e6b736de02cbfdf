"""The `program` dialect's attributes: Paddle's op attribute values with their AttrType.

An op attribute's Paddle AttrType lives in its encoding (`to_attr` / `from_attr` are the only
places that know it): INT is i32, LONG i64, BOOLEAN i1, FLOAT f32, FLOAT64 f64, lists are
dense arrays, and BLOCK / BLOCKS / VAR / VARS / SCALAR / SCALARS have attributes of their own
so that, for instance, an empty BLOCKS never reads back as an empty INTS.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    f32,
    f64,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute, Data, ParametrizedAttribute
from xdsl.irdl import (
    irdl_attr_definition,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from tostatic.ir.attributes import int_array_attr, int_attr


# framework.proto AttrType, by number.
ATTR_TYPES: tuple[str, ...] = (
    "INT", "FLOAT", "STRING", "INTS", "FLOATS", "STRINGS", "BOOLEAN", "BOOLEANS", "BLOCK",
    "LONG", "BLOCKS", "LONGS", "FLOAT64S", "VAR", "VARS", "FLOAT64", "SCALAR", "SCALARS",
)

# framework.proto VarType.Type, name -> number (both the dtypes and the variable kinds).
VAR_TYPES: dict[str, int] = {
    "BOOL": 0, "INT16": 1, "INT32": 2, "INT64": 3, "FP16": 4, "FP32": 5, "FP64": 6,
    "DENSE_TENSOR": 7, "SELECTED_ROWS": 8, "FEED_MINIBATCH": 9, "FETCH_LIST": 10,
    "STEP_SCOPES": 11, "LOD_RANK_TABLE": 12, "DENSE_TENSOR_ARRAY": 13, "PLACE_LIST": 14,
    "READER": 15, "RAW": 17, "TUPLE": 18, "SIZE_T": 19, "UINT8": 20, "INT8": 21, "BF16": 22,
    "COMPLEX64": 23, "COMPLEX128": 24, "STRING": 25, "STRINGS": 26, "VOCAB": 27,
    "FEED_LIST": 28, "PSTRING": 29, "SPARSE_COO": 30, "SPARSE_CSR": 31, "FP8_E4M3FN": 32,
    "FP8_E5M2": 33, "UINT16": 36, "UINT32": 37, "UINT64": 38,
}
VAR_TYPE_NAMES: dict[int, str] = {v: k for k, v in VAR_TYPES.items()}

_I32_RANGE = (-(2**31), 2**31 - 1)
_I64_RANGE = (-(2**63), 2**63 - 1)


# --------------------------------------------------------------------------------------------
# Attributes for the AttrTypes that have no natural builtin encoding.
# Each gets its own attribute (rather than e.g. a bare ArrayAttr) so that empty lists keep
# their AttrType: an empty BLOCKS must not read back as an empty INTS.
# --------------------------------------------------------------------------------------------


@irdl_attr_definition
class BlockRefAttr(Data[int]):
    """BLOCK: index of a sub-block, `#program.block<1>`."""

    name = "program.block"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> int:
        with parser.in_angle_brackets():
            return parser.parse_integer(allow_boolean=False)

    def print_parameter(self, printer: Printer) -> None:
        printer.print_string(f"<{self.data}>")


@irdl_attr_definition
class BlockRefsAttr(Data[tuple[int, ...]]):
    """BLOCKS: indices of sub-blocks, `#program.blocks<[1, 2]>`."""

    name = "program.blocks"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> tuple[int, ...]:
        with parser.in_angle_brackets():
            return tuple(parser.parse_comma_separated_list(
                parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False)))

    def print_parameter(self, printer: Printer) -> None:
        printer.print_string("<[" + ", ".join(str(i) for i in self.data) + "]>")


@irdl_attr_definition
class VarRefAttr(Data[str]):
    """VAR: a variable name, `#program.var<"x">`."""

    name = "program.var"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> str:
        with parser.in_angle_brackets():
            return parser.parse_str_literal()

    def print_parameter(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string_literal(self.data)


@irdl_attr_definition
class VarRefsAttr(Data[tuple[str, ...]]):
    """VARS: variable names, `#program.vars<["x", "y"]>`."""

    name = "program.vars"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> tuple[str, ...]:
        with parser.in_angle_brackets():
            return tuple(parser.parse_comma_separated_list(
                parser.Delimiter.SQUARE, parser.parse_str_literal))

    def print_parameter(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string("[")
            printer.print_list(self.data, printer.print_string_literal)
            printer.print_string("]")


@irdl_attr_definition
class ScalarAttr(ParametrizedAttribute):
    """SCALAR (paddle::experimental::Scalar): the value's encoding says which Scalar.Type.

    BOOLEAN -> `true : i1`, LONG -> `5 : i64`, FLOAT64 -> `1.5 : f64`,
    COMPLEX128 -> `[re : f64, im : f64]`.
    """

    name = "program.scalar"

    value: Attribute

    @property
    def kind(self) -> str:
        v = self.value
        if isinstance(v, IntegerAttr):
            return "BOOLEAN" if v.type == i1 else "LONG"
        if isinstance(v, FloatAttr):
            return "FLOAT64"
        return "COMPLEX128"

    def to_python(self) -> bool | int | float | complex:
        v = self.value
        if isinstance(v, IntegerAttr):
            return bool(v.value.data) if v.type == i1 else v.value.data
        if isinstance(v, FloatAttr):
            return v.value.data
        assert isinstance(v, ArrayAttr)
        re, im = v.data
        assert isinstance(re, FloatAttr) and isinstance(im, FloatAttr)
        return complex(re.value.data, im.value.data)

    @staticmethod
    def from_python(value: object) -> ScalarAttr:
        """bool -> BOOLEAN, int -> LONG, float -> FLOAT64, complex -> COMPLEX128."""
        value = _py_scalar(value)
        if isinstance(value, bool):
            return ScalarAttr(int_attr(int(value), i1))
        if isinstance(value, int):
            return ScalarAttr(int_attr(_check_int(value, _I64_RANGE, "SCALAR"), i64))
        if isinstance(value, float):
            return ScalarAttr(FloatAttr(value, f64))
        if isinstance(value, complex):
            return ScalarAttr(ArrayAttr([FloatAttr(value.real, f64), FloatAttr(value.imag, f64)]))
        raise TypeError(f"SCALAR value must be bool, int, float or complex, got {value!r}")

    def verify(self) -> None:
        v = self.value
        ok = (
            (isinstance(v, IntegerAttr) and v.type in (i1, i64))
            or (isinstance(v, FloatAttr) and v.type == f64)
            or (isinstance(v, ArrayAttr) and len(v.data) == 2
                and all(isinstance(x, FloatAttr) and x.type == f64 for x in v.data))
        )
        if not ok:
            raise VerifyException(f"#program.scalar value must be i1, i64, f64 or [f64, f64], got {v}")


@irdl_attr_definition
class ScalarsAttr(ParametrizedAttribute):
    """SCALARS: `#program.scalars<[#program.scalar<...>, ...]>`."""

    name = "program.scalars"

    values: ArrayAttr[ScalarAttr]


# --------------------------------------------------------------------------------------------
# AttrType <-> attribute encoding
# --------------------------------------------------------------------------------------------


def _py_scalar(value: object) -> object:
    """numpy scalars to Python scalars (without importing numpy here)."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    return value


def _check_int(value: object, bounds: tuple[int, int], what: str) -> int:
    value = _py_scalar(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} value must be an int, got {value!r}")
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{what} value {value} out of range [{bounds[0]}, {bounds[1]}]")
    return value


def _check_float(value: object, what: str) -> float:
    value = _py_scalar(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} value must be a float, got {value!r}")
    return float(value)


def _check_bool(value: object, what: str) -> bool:
    value = _py_scalar(value)
    if not isinstance(value, bool) and value not in (0, 1):
        raise TypeError(f"{what} value must be a bool, got {value!r}")
    return bool(value)


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} value must be a str, got {value!r}")
    return str(value)


def _seq(value: object, what: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{what} value must be a list, got {value!r}")
    return list(value)  # type: ignore[arg-type]


def attr_type_name(attr_type: str | int) -> str:
    """Normalise an AttrType given by name or framework.proto number to its name."""
    if isinstance(attr_type, int) and not isinstance(attr_type, bool):
        if 0 <= attr_type < len(ATTR_TYPES):
            return ATTR_TYPES[attr_type]
    elif isinstance(attr_type, str) and attr_type.upper() in ATTR_TYPES:
        return attr_type.upper()
    raise ValueError(f"unknown AttrType {attr_type!r}; expected one of {', '.join(ATTR_TYPES)}")


def to_attr(attr_type: str | int, value: object) -> Attribute:
    """Encode a Python value of the given Paddle AttrType as an xDSL attribute."""
    t = attr_type_name(attr_type)
    if t == "INT":
        return int_attr(_check_int(value, _I32_RANGE, t), i32)
    if t == "LONG":
        return int_attr(_check_int(value, _I64_RANGE, t), i64)
    if t == "BOOLEAN":
        return int_attr(int(_check_bool(value, t)), i1)
    if t == "FLOAT":
        return FloatAttr(_check_float(value, t), f32)
    if t == "FLOAT64":
        return FloatAttr(_check_float(value, t), f64)
    if t == "STRING":
        return StringAttr(_check_str(value, t))
    if t == "INTS":
        return int_array_attr(tuple(_check_int(v, _I32_RANGE, t) for v in _seq(value, t)), i32)
    if t == "LONGS":
        return int_array_attr(tuple(_check_int(v, _I64_RANGE, t) for v in _seq(value, t)), i64)
    if t == "FLOATS":
        return DenseArrayBase.from_list(f32, [_check_float(v, t) for v in _seq(value, t)])
    if t == "FLOAT64S":
        return DenseArrayBase.from_list(f64, [_check_float(v, t) for v in _seq(value, t)])
    if t == "BOOLEANS":
        return DenseArrayBase.from_list(i1, [int(_check_bool(v, t)) for v in _seq(value, t)])
    if t == "STRINGS":
        return ArrayAttr([StringAttr(_check_str(v, t)) for v in _seq(value, t)])
    if t == "BLOCK":
        return BlockRefAttr(_check_int(value, _I32_RANGE, t))
    if t == "BLOCKS":
        return BlockRefsAttr(tuple(_check_int(v, _I32_RANGE, t) for v in _seq(value, t)))
    if t == "VAR":
        return VarRefAttr(_check_str(value, t))
    if t == "VARS":
        return VarRefsAttr(tuple(_check_str(v, t) for v in _seq(value, t)))
    if t == "SCALAR":
        return value if isinstance(value, ScalarAttr) else ScalarAttr.from_python(value)
    assert t == "SCALARS"
    return ScalarsAttr(ArrayAttr([
        v if isinstance(v, ScalarAttr) else ScalarAttr.from_python(v) for v in _seq(value, t)]))


def from_attr(attr: Attribute) -> tuple[str, Any]:
    """Decode an op attribute: (AttrType name, Python value). Lists come back as lists."""
    if isinstance(attr, IntegerAttr):
        t = attr.type
        if t == i32:
            return "INT", attr.value.data
        if t == i64:
            return "LONG", attr.value.data
        if t == i1:
            return "BOOLEAN", bool(attr.value.data)
    elif isinstance(attr, FloatAttr):
        if isinstance(attr.type, Float32Type):
            return "FLOAT", attr.value.data
        if isinstance(attr.type, Float64Type):
            return "FLOAT64", attr.value.data
    elif isinstance(attr, StringAttr):
        return "STRING", attr.data
    elif isinstance(attr, DenseArrayBase):
        et = attr.elt_type
        if et == i1:
            return "BOOLEANS", [bool(v) for v in attr.iter_values()]
        kind = {i32: "INTS", i64: "LONGS", f32: "FLOATS", f64: "FLOAT64S"}.get(et)
        if kind is not None:
            return kind, list(attr.iter_values())
    elif isinstance(attr, ArrayAttr):
        if all(isinstance(s, StringAttr) for s in attr.data):
            return "STRINGS", [s.data for s in attr.data]  # type: ignore[union-attr]
    elif isinstance(attr, BlockRefAttr):
        return "BLOCK", attr.data
    elif isinstance(attr, BlockRefsAttr):
        return "BLOCKS", list(attr.data)
    elif isinstance(attr, VarRefAttr):
        return "VAR", attr.data
    elif isinstance(attr, VarRefsAttr):
        return "VARS", list(attr.data)
    elif isinstance(attr, ScalarAttr):
        return "SCALAR", attr.to_python()
    elif isinstance(attr, ScalarsAttr):
        return "SCALARS", [s.to_python() for s in attr.values.data]
    raise ValueError(f"{attr} is not an encoded Paddle op attribute")
