"""The dtype table every stage reads: numpy, Paddle's VarType numbers, xDSL element types.

One row a dtype, so that the eager core, the IR and the file formats can never disagree
about what `float32` is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    Signedness,
)
from xdsl.ir import Attribute


@dataclass(frozen=True, eq=False)
class DType:
    """A Paddle dtype: `paddle.float32` and friends are instances of this class."""

    name: str
    var_type: int  # framework.proto VarType.Type number
    numpy: np.dtype | None  # None where numpy has no such type (bfloat16)

    def __repr__(self) -> str:
        return f"paddle.{self.name}"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return self is other
        try:
            return convert_dtype(other) is self
        except (TypeError, ValueError):
            return False

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def itemsize(self) -> int:
        return 2 if self.numpy is None else self.numpy.itemsize

    @property
    def is_floating(self) -> bool:
        return self.name in ("float16", "bfloat16", "float32", "float64")

    def element_type(self) -> Attribute:
        """The xDSL element type of this dtype (bool is i1, ints are signless)."""
        return _ELEMENT_TYPES[self.name]()


bool_ = DType("bool", 0, np.dtype(np.bool_))
int16 = DType("int16", 1, np.dtype(np.int16))
int32 = DType("int32", 2, np.dtype(np.int32))
int64 = DType("int64", 3, np.dtype(np.int64))
float16 = DType("float16", 4, np.dtype(np.float16))
float32 = DType("float32", 5, np.dtype(np.float32))
float64 = DType("float64", 6, np.dtype(np.float64))
uint8 = DType("uint8", 20, np.dtype(np.uint8))
int8 = DType("int8", 21, np.dtype(np.int8))
bfloat16 = DType("bfloat16", 22, None)
complex64 = DType("complex64", 23, np.dtype(np.complex64))
complex128 = DType("complex128", 24, np.dtype(np.complex128))

ALL = (bool_, int16, int32, int64, float16, float32, float64, uint8, int8, bfloat16,
       complex64, complex128)

_ELEMENT_TYPES = {
    "bool": lambda: IntegerType(1),
    "int8": lambda: IntegerType(8),
    "int16": lambda: IntegerType(16),
    "int32": lambda: IntegerType(32),
    "int64": lambda: IntegerType(64),
    "uint8": lambda: IntegerType(8, Signedness.UNSIGNED),
    "float16": Float16Type,
    "bfloat16": BFloat16Type,
    "float32": Float32Type,
    "float64": Float64Type,
    "complex64": lambda: _complex(Float32Type()),
    "complex128": lambda: _complex(Float64Type()),
}


def _complex(inner: Attribute) -> Attribute:
    from xdsl.dialects.builtin import ComplexType

    return ComplexType(inner)


BY_NAME = {d.name: d for d in ALL}
BY_VAR_TYPE = {d.var_type: d for d in ALL}
_BY_NUMPY = {d.numpy: d for d in ALL if d.numpy is not None}
_ALIASES = {"bool_": bool_, "float": float32, "int": int64, "double": float64,
            "half": float16, "fp32": float32, "fp64": float64, "fp16": float16}


def convert_dtype(dtype: object) -> DType:
    """Any spelling of a dtype (DType, 'float32', np.float32, np.dtype) to our DType."""
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str):
        key = dtype.removeprefix("paddle.")
        if key in BY_NAME:
            return BY_NAME[key]
        if key in _ALIASES:
            return _ALIASES[key]
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(BY_NAME)}")
    if dtype is bool:
        return bool_
    if dtype is float:
        return float32
    if dtype is int:
        return int64
    try:
        npd = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"cannot interpret {dtype!r} as a dtype") from None
    if npd in _BY_NUMPY:
        return _BY_NUMPY[npd]
    raise ValueError(f"numpy dtype {npd} has no Paddle equivalent")


def from_element_type(element_type: Attribute) -> DType:
    """Inverse of DType.element_type() (memoised: building xDSL types to compare is slow)."""
    found = _FROM_ELEMENT.get(element_type)
    if found is not None:
        return found
    for d in ALL:
        if _ELEMENT_TYPES[d.name]() == element_type:
            _FROM_ELEMENT[element_type] = d
            return d
    raise ValueError(f"no dtype for element type {element_type}")


_FROM_ELEMENT: dict[Attribute, DType] = {}


def default_float() -> DType:
    return float32
