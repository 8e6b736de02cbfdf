"""The eager Tensor: a numpy array plus what Paddle tracks about it.

Operators dispatch to the public functions in `math.py` (operators.py installs them), so the
same code runs on eager tensors and, during tracing, on symbolic `Variable`s (which share
`TensorMethods`).
Autograd hangs off `_grad_node` (set by `dispatch.apply` once gradients exist).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir import names as unique_name
from tostatic.frontend.tensor.repr import format_tensor
from tostatic.ir import dtypes
from tostatic.ir.dtypes import DType


class TensorMethods:
    """Operators and methods shared by eager Tensors and symbolic Variables (operators.py
    installs the operators and the Paddle methods that dispatch to public functions)."""

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return self.ndim


class Tensor(TensorMethods):
    """An eager tensor on the CPU."""

    __array_priority__ = 100  # numpy scalars on the left defer to our operators
    # set per tensor by register_hook / retain_grads; class defaults keep backward's checks
    # plain attribute reads
    _hooks: dict[int, Any] | None = None
    _retain_grad = False

    def __init__(self, data: np.ndarray, stop_gradient: bool = True, name: str | None = None,
                 persistable: bool = False):
        self._data = data
        self.stop_gradient = stop_gradient
        self.persistable = persistable
        self._name = name  # None: named when first asked (most eager results never are)
        self.grad: Tensor | None = None
        self._grad_node: Any = None  # set by autograd when this tensor has a history

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = unique_name.generate("generated_tensor")
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    # --- what Paddle reports about a tensor ---
    @property
    def shape(self) -> list[int]:
        return list(self._data.shape)

    @property
    def dtype(self) -> DType:
        return dtypes.convert_dtype(self._data.dtype)

    @property
    def size(self) -> int:
        return int(self._data.size)

    @property
    def place(self) -> str:
        return "Place(cpu)"

    def numpy(self) -> np.ndarray:
        return self._data

    def item(self):
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def __len__(self) -> int:
        if not self._data.shape:
            raise TypeError("len() of a 0-D tensor")
        return self._data.shape[0]

    def __bool__(self) -> bool:
        return bool(self._data)

    def __float__(self) -> float:
        return float(self._data)

    def __int__(self) -> int:
        return int(self._data)

    def __index__(self) -> int:
        return int(self._data)

    def __repr__(self) -> str:
        return format_tensor(self._data, self.dtype.name, self.stop_gradient)

    __str__ = __repr__

    def __hash__(self) -> int:
        return id(self)

    # --- mutation, as Paddle allows on eager tensors ---
    def set_value(self, value: Any) -> None:
        arr = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
        if tuple(arr.shape) != tuple(self._data.shape):
            raise ValueError(f"set_value: shape {list(arr.shape)} does not match the tensor's "
                             f"shape {self.shape} ({self.name})")
        self._data = arr.astype(self._data.dtype, copy=True)

    def detach(self) -> "Tensor":
        return Tensor(self._data, stop_gradient=True)

    def clone(self) -> "Tensor":
        return Tensor(self._data.copy(), stop_gradient=self.stop_gradient)


class Parameter(Tensor):
    """A trainable, persistable tensor owned by a Layer (Paddle's EagerParamBase)."""

    def __init__(self, data: np.ndarray, name: str, trainable: bool = True):
        super().__init__(data, stop_gradient=not trainable, name=name, persistable=True)
        self.trainable = trainable

    def __repr__(self) -> str:
        return "Parameter containing:\n" + format_tensor(self._data, self.dtype.name,
                                                          self.stop_gradient)

    __str__ = __repr__


def to_tensor(data: Any, dtype: Any = None, place: Any = None, stop_gradient: bool = True) -> Tensor:
    """paddle.to_tensor: Python floats become float32 (Paddle's default), ints int64; a
    scalar becomes a 0-D tensor (shape []), as in Paddle 3."""
    if isinstance(data, Tensor):
        arr = data.numpy()
    else:
        arr = np.array(data)
        if dtype is None and arr.dtype == np.float64 and not isinstance(data, np.ndarray):
            arr = arr.astype(np.float32)
    if dtype is not None:
        arr = arr.astype(dtypes.convert_dtype(dtype).numpy)
    else:
        dtypes.convert_dtype(arr.dtype)  # rejects object arrays and other unsupported dtypes
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would make a 0-D array 1-D)
        arr = arr.copy(order="C")
    return Tensor(arr, stop_gradient=stop_gradient)
