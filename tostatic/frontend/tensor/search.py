"""Public search functions (paddle/tensor/search.py, 3.3.1): where, argmax, topk.

`where` broadcasts as Paddle does in each mode: eagerly by expanding the inputs to one shape;
traced, when the three shapes differ, by adding zeros_like of each (fill_any_like, cast,
elementwise_add), the chain Paddle's static branch writes, since the `where` op itself
does not broadcast. argmax is written as Paddle 2.x wrote it (`arg_max` in helper
`argmax`): Paddle 3.3.1 builds it in the new IR only.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.manipulation import expand, no_tensor
from tostatic.frontend.tensor.naming import helper
from tostatic.frontend.tensor.tensor import to_tensor
from tostatic.ir import builder as builders
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import indexing, ordering, search
from tostatic.ops.shapes import broadcast


def where(condition: Any, x: Any = None, y: Any = None, name: str | None = None) -> Any:
    """condition ? x : y, elementwise with broadcasting; Python scalars become tensors."""
    if np.isscalar(x):
        x = to_tensor(x)
    if np.isscalar(y):
        y = to_tensor(y)
    if x is None and y is None:
        raise UnsupportedError("paddle.where(condition) (nonzero) is not supported; give x "
                               "and y")
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    c_shape, x_shape, y_shape = list(condition.shape), list(x.shape), list(y.shape)
    if builders.current() is None:
        if condition.dtype != dtypes.bool_:
            raise ValueError("The `condition` is expected to be a boolean Tensor, but got a "
                             f"Tensor with dtype paddle.{condition.dtype.name}")
        target = list(broadcast(broadcast(x_shape, y_shape, "where"), c_shape, "where"))
        if c_shape != target:
            condition = expand(condition, target)
        if x_shape != target:
            x = expand(x, target)
        if y_shape != target:
            y = expand(y, target)
    elif not (x_shape == y_shape and c_shape == x_shape):
        zeros_x, zeros_y = math.zeros_like(x), math.zeros_like(y)
        zeros_c = math.cast(math.zeros_like(condition), x.dtype)
        cond = math.cast(condition, x.dtype)
        zeros = math.add(math.add(zeros_x, zeros_y), zeros_c)
        x, y = math.add(x, zeros), math.add(y, zeros)
        condition = math.cast(math.add(cond, zeros), "bool")
    with helper("where", name):
        return apply(indexing.Where, condition, x, y)


def argmax(x: Any, axis: int | None = None, keepdim: bool = False, dtype: Any = "int64",
           name: str | None = None) -> Any:
    """Index of the largest element along `axis` (None: of the flattened tensor)."""
    if axis is not None and not isinstance(axis, int):
        raise TypeError(f"The type of 'axis'  must be int or None in argmax, but received "
                        f"{type(axis)}.")
    if dtype is None:
        raise ValueError("the value of 'dtype' in argmax could not be None, but received None")
    flatten = axis is None
    with helper("argmax", name):
        return apply(search.ArgMax, x, axis=0 if flatten else axis, keepdims=keepdim,
                     flatten=flatten, dtype=dtypes.convert_dtype(dtype))


class TopKRetType(tuple):
    """(values, indices), also by name, as Paddle's topk returns them (a plain tuple
    subclass, so code rebuilding tuples from their items keeps working)."""

    @property
    def values(self) -> Any:
        return self[0]

    @property
    def indices(self) -> Any:
        return self[1]


def topk(x: Any, k: int, axis: int | None = None, largest: bool = True, sorted: bool = True,
         name: str | None = None) -> TopKRetType:
    """The k largest (or smallest) elements along `axis` (default -1) and their indices."""
    no_tensor("topk", "k", k)
    with helper("top_k_v2", name):
        values, indices = apply(search.TopK, x, k=int(k), axis=-1 if axis is None else axis,
                                largest=largest, sorted=sorted)
    indices.stop_gradient = True
    return TopKRetType((values, indices))


def argsort(x: Any, axis: int = -1, descending: bool = False, stable: bool = False,
            name: str | None = None) -> Any:
    """The int64 indices that sort x along `axis` (NaN last ascending, first descending)."""
    with helper("argsort", name):
        _, indices = apply(ordering.Argsort, x, axis=int(axis), descending=bool(descending),
                           stable=bool(stable))
    indices.stop_gradient = True
    return indices


def sort(x: Any, axis: int = -1, descending: bool = False, stable: bool = False,
         name: str | None = None) -> Any:
    """x sorted along `axis` (Paddle writes it as argsort, helper `sort`)."""
    with helper("sort", name):
        values, _ = apply(ordering.Argsort, x, axis=int(axis), descending=bool(descending),
                          stable=bool(stable))
    return values


__all__ = ["TopKRetType", "argmax", "argsort", "sort", "topk", "where"]
