"""The Paddle API dygraph-to-static code leans on: paddle.add_n, paddle.increment,
paddle.assign, paddle.tensor.fill_constant and paddle.full with tensor shapes, and
paddle.to_tensor of a tensor (a copy, also while capturing)."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.frontend.tensor import math as tensor_math
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.naming import helper
from tostatic.frontend.tensor.tensor import Tensor, TensorMethods
from tostatic.frontend.tensor.tensor import to_tensor as _eager_to_tensor
from tostatic.ir import builder as builders
from tostatic.ir import dtypes
from tostatic.ops import accumulate, creation
from tostatic.ops.creation_from_tensors import FullFromShapeList, FullFromShapeTensor
from tostatic.ops.manipulation import Assign


def add_n(inputs: Any, name: str | None = None) -> Any:
    """The sum of a tensor or a list of tensors of one shape (Paddle's `sum` op)."""
    xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    with helper("sum", name):
        return apply(accumulate.AddN, *xs)


def increment(x: Any, value: float = 1.0, name: str | None = None) -> Any:
    """x + value for a one-element x; eagerly in place, as Paddle's."""
    with helper("increment", name):
        out = apply(accumulate.Increment, x, step=float(value))
    if builders.current() is None and isinstance(x, Tensor):
        x._data = out._data
        return x
    return out


def assign(x: Any, output: Any = None) -> Any:
    """A copy of x (a tensor, an array, a list or a number); into `output` when given."""
    if not isinstance(x, TensorMethods):
        x = _eager_to_tensor(np.asarray(x))
    with helper("assign"):
        out = apply(Assign, x)
    if output is None:
        return out
    if isinstance(output, Tensor) and isinstance(out, Tensor):
        output._data = out._data
    else:  # a symbolic tensor: from now on it holds the copy
        output.value = out.value
    return output


def to_tensor(data: Any, dtype: Any = None, place: Any = None,
              stop_gradient: bool = True) -> Any:
    """paddle.to_tensor; of a symbolic tensor while capturing, a copy (assign, cast)."""
    if isinstance(data, TensorMethods) and not isinstance(data, Tensor):
        out = assign(data)
        if dtype is not None and dtypes.convert_dtype(dtype) != out.dtype:
            out = tensor_math.cast(out, dtype)
        out.stop_gradient = stop_gradient
        return out
    return _eager_to_tensor(data, dtype, place, stop_gradient)


def _fill_attrs(value: Any, dtype: Any) -> dict[str, Any]:
    dtype = dtypes.convert_dtype(dtype)
    text = creation.paddle_value_text(value, dtype)
    number = float(text) if text.lstrip("-").isdigit() else float(value)
    return {"value": number, "dtype": dtype, "str_value": text, "force_cpu": False}


def full_from_tensors(shape: Any, fill_value: Any, dtype: Any) -> Any:
    """paddle.full whose shape is a tensor or a list holding tensors (dims known only when
    the program runs); eagerly the tensors' values."""
    if builders.current() is None:
        dims = (np.asarray(shape.numpy()).reshape(-1).tolist() if isinstance(shape, Tensor)
                else [int(d.numpy().reshape(-1)[0]) if isinstance(d, Tensor) else int(d)
                      for d in shape])
        return tensor_math.full([int(d) for d in dims], fill_value, dtype)
    attrs = _fill_attrs(fill_value, dtype)
    with helper("fill_constant"):
        if isinstance(shape, TensorMethods):
            return apply(FullFromShapeTensor, shape, **attrs)
        dims = [d if isinstance(d, TensorMethods) else
                tensor_math.full([1], int(d), "int32") for d in shape]
        known = tuple(-1 if isinstance(d, TensorMethods) else int(d) for d in shape)
        return apply(FullFromShapeList, *dims, shape=known, **attrs)


def fill_constant(shape: Any, dtype: Any, value: Any, force_cpu: bool = False,
                  out: Any = None, name: str | None = None) -> Any:
    """paddle.tensor.fill_constant (shape may hold tensors)."""
    if _has_tensor(shape):
        result = full_from_tensors(shape, value, dtype)
    else:
        result = tensor_math.full(list(shape) if isinstance(shape, (list, tuple)) else [shape],
                                  value, dtype)
    return result if out is None else assign(result, out)


def _has_tensor(shape: Any) -> bool:
    if isinstance(shape, TensorMethods):
        return True
    return isinstance(shape, (list, tuple)) and any(isinstance(d, TensorMethods) for d in shape)


def full(shape: Any, fill_value: Any, dtype: Any = None, name: str | None = None) -> Any:
    """paddle.full; the shape may be a tensor or hold tensors."""
    if dtype is None:
        dtype = "bool" if isinstance(fill_value, bool) else (
            "int64" if isinstance(fill_value, int) else "float32")
    if _has_tensor(shape):
        return full_from_tensors(shape, fill_value, dtype)
    return tensor_math.full(shape, fill_value, dtype, name)


__all__ = ["add_n", "assign", "fill_constant", "full", "increment", "to_tensor"]
