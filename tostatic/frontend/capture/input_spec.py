"""`InputSpec`: the signature of one model input, as `paddle.static.InputSpec` (Paddle 3.3.1).

Behaviour follows Paddle 3.3.1 to the letter, quirks included (see FORMAT.md §7):

* the shape is checked element by element (int or None, bool passes as int); None and any
  value below -1 become -1 *in place* — so a list the caller passed is modified, and a tuple
  holding None (or a value < -1) raises TypeError "'tuple' object does not support item
  assignment";
* only `str` and `np.dtype` dtypes are converted; anything else (a DType, `np.float32`, `float`,
  None, ...) is stored exactly as given, like Paddle does (`repr` then shows it raw);
* `batch`/`unbatch` mutate and return self; `batch` does not re-verify the shape;
* `__eq__` compares shape/dtype/name/stop_gradient and needs the exact same class; `__hash__`
  leaves the name out so same-signature inputs share a program.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir import dtypes as _dt
from tostatic.ir.dtypes import DType

__all__ = ["InputSpec"]

# Paddle's string table (pir/core.py `str_to_paddle_type`; looked up after lower().strip(),
# as in 3.3.1's default PIR mode). Strings not in it go through np.dtype(...).
_STR_TO_DTYPE: dict[str, DType] = {
    "float32": _dt.float32,
    "float64": _dt.float64,
    "float16": _dt.float16,
    "int32": _dt.int32,
    "int16": _dt.int16,
    "int64": _dt.int64,
    "bool": _dt.bool_,
    "bool_": _dt.bool_,
    "uint16": _dt.bfloat16,  # Paddle stores bfloat16 as uint16
    "uint8": _dt.uint8,
    "int8": _dt.int8,
    "complex64": _dt.complex64,
    "complex128": _dt.complex128,
    "bfloat16": _dt.bfloat16,
}
# Dtypes Paddle knows but our dtype table has no row for.
_UNSUPPORTED_STR = ("float8_e4m3fn", "float8_e5m2")

# Paddle's numpy table: exact np.dtype keys, so byte-swapped ('>f4') dtypes are rejected.
_NP_TO_DTYPE: dict[np.dtype, DType] = {
    np.dtype(name): d
    for name, d in (
        ("float32", _dt.float32),
        ("float64", _dt.float64),
        ("float16", _dt.float16),
        ("int32", _dt.int32),
        ("int16", _dt.int16),
        ("int64", _dt.int64),
        ("bool_", _dt.bool_),
        ("uint16", _dt.bfloat16),
        ("uint8", _dt.uint8),
        ("int8", _dt.int8),
        ("complex64", _dt.complex64),
        ("complex128", _dt.complex128),
    )
}


def _convert_np_dtype(dtype: np.dtype | str) -> DType:
    """Paddle's `convert_np_dtype_to_dtype_` for a str or np.dtype, returning our DType."""
    if isinstance(dtype, str):
        key = dtype.lower().strip()
        if key in _STR_TO_DTYPE:
            return _STR_TO_DTYPE[key]
        if key in _UNSUPPORTED_STR:
            raise ValueError(f"Not supported dtype {key}: tostatic has no {key} type")
    npd = np.dtype(dtype)  # TypeError "data type 'foo' not understood", as in Paddle
    if npd in _NP_TO_DTYPE:
        return _NP_TO_DTYPE[npd]
    raise ValueError(f"Not supported numpy dtype {npd}")


def _same_dtype(a: Any, b: Any) -> bool:
    # Paddle dtypes never compare equal to numpy types or strings; our DType.__eq__ would
    # convert the other side, so keep DType-vs-DType to identity and DType-vs-other False.
    if isinstance(a, DType) or isinstance(b, DType):
        return a is b
    return bool(a == b)


class InputSpec:
    """Describes one model input: ``shape`` (-1 for unknown dims), ``dtype``, ``name``.

    >>> InputSpec([None, 784], 'float32', 'x')
    InputSpec(shape=(-1, 784), dtype=paddle.float32, name=x, stop_gradient=False)
    """

    def __init__(
        self,
        shape: list[int | None] | tuple[int | None, ...],
        dtype: Any = "float32",
        name: str | None = None,
        stop_gradient: bool = False,
    ) -> None:
        self.shape = self._verify(shape)
        if dtype is not None and isinstance(dtype, (np.dtype, str)):
            dtype = _convert_np_dtype(dtype)
        self.dtype = dtype
        self.name = name
        self.stop_gradient = stop_gradient

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}, "
            f"name={self.name}, stop_gradient={self.stop_gradient})"
        )

    @classmethod
    def from_tensor(cls, tensor: Any, name: str | None = None) -> InputSpec:
        """Spec with the tensor's shape and dtype; name is `name` or else the tensor's name."""
        if not _is_tensor_like(tensor):
            raise ValueError(
                f"Input `tensor` should be a Tensor, but received {type(tensor).__name__}."
            )
        return cls(tensor.shape, tensor.dtype, name or tensor.name)

    @classmethod
    def from_numpy(cls, ndarray: np.ndarray, name: str | None = None) -> InputSpec:
        """Spec with the array's shape and dtype (stop_gradient stays False)."""
        return cls(ndarray.shape, ndarray.dtype, name)

    def batch(self, batch_size: int | list[int] | tuple[int]) -> InputSpec:
        """Prepend `batch_size` to the shape (in place); returns self."""
        if isinstance(batch_size, (list, tuple)):
            if len(batch_size) != 1:
                raise ValueError(
                    f"Length of batch_size: {batch_size} shall be 1, "
                    f"but received {len(batch_size)}."
                )
            batch_size = batch_size[0]
        elif not isinstance(batch_size, int):
            raise TypeError(
                f"type(batch_size) shall be `int`, but received {type(batch_size).__name__}."
            )
        self.shape = (batch_size, *self.shape)
        return self

    def unbatch(self) -> InputSpec:
        """Drop the first dim of the shape (in place); returns self."""
        if len(self.shape) == 0:
            raise ValueError("Not support to unbatch a InputSpec when len(shape) == 0.")
        self.shape = self._verify(self.shape[1:])
        return self

    def _verify(self, shape: Any) -> tuple:
        """Check the shape and turn None / values < -1 into -1, in place like Paddle."""
        if not isinstance(shape, (list, tuple)):
            raise TypeError(
                "Type of `shape` in InputSpec should be one of (tuple, list), "
                f"but received {type(shape).__name__}."
            )
        for i, ele in enumerate(shape):
            if ele is not None and not isinstance(ele, int):
                raise ValueError(
                    f"shape[{i}] should be an `int`, but received `{type(ele).__name__}`:{ele}."
                )
            if ele is None or ele < -1:
                shape[i] = -1  # TypeError on a tuple: Paddle's quirk, kept on purpose
        return tuple(shape)

    def __hash__(self) -> int:
        # The name is left out: two inputs with the same signature share one program.
        return hash((tuple(self.shape), self.dtype, self.stop_gradient))

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and self.shape == other.shape  # type: ignore[attr-defined]
            and _same_dtype(self.dtype, other.dtype)  # type: ignore[attr-defined]
            and self.name == other.name  # type: ignore[attr-defined]
            and self.stop_gradient == other.stop_gradient  # type: ignore[attr-defined]
        )

    def __ne__(self, other: object) -> bool:
        return not self == other


def _is_tensor_like(obj: Any) -> bool:
    """Duck-typed stand-in for Paddle's isinstance(Variable, Tensor, Value) check."""
    if isinstance(obj, np.ndarray):
        return False
    return all(hasattr(obj, attr) for attr in ("shape", "dtype", "name"))
