"""Public reductions (paddle/tensor/math.py and stat.py, 3.3.1): sum, mean, max, min, prod
over any axes with keepdim, and cumsum.

The axes are written as the user gave them (negative ones too) and `reduce_all` is Paddle's
rule: no axes, or as many axes as x has dims. A `dtype` casts x first (a `cast` op) for
mean, prod, cumsum and sum, as Paddle does (Paddle 2.x wrote sum's as reduce_sum's
out_dtype, which Paddle Inference 3.3.1 ignores). Each op runs
in the helper Paddle's static branch names it by (`sum_0`, `mean_0`, `max_0`, `min_0`,
`reduce_prod_0`, `cumsum_0`). Paddle 3.3.1 builds paddle.sum in the new IR only; it is
written as Paddle 2.x wrote it.
"""
from __future__ import annotations

from typing import Any, Sequence

from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.math import cast
from tostatic.frontend.tensor.naming import helper
from tostatic.frontend.tensor.manipulation import no_tensor
from tostatic.ir import dtypes
from tostatic.ops import reduction


def reduce_axes(axis: Any, x: Any, api: str) -> tuple[tuple[int, ...], bool]:
    """Paddle's _get_reduce_axis: (the axes as given, reduce_all)."""
    no_tensor(api, "axis", axis)
    if axis is None:
        axes: list[int] = []
    elif isinstance(axis, (list, tuple, range)):
        axes = [int(a) for a in axis]
    elif isinstance(axis, int):
        axes = [axis]
    else:
        raise TypeError(f"The type of axis must be int, list or tuple, but received "
                        f"{type(axis)}")
    return tuple(axes), axes == [] or len(axes) == len(x.shape)


def _reduce(op_cls: Any, key: str, api: str, x: Any, axis: Any, keepdim: bool,
            name: str | None, **attrs: Any) -> Any:
    axes, reduce_all = reduce_axes(axis, x, api)
    with helper(key, name):
        return apply(op_cls, x, axis=axes, keepdim=bool(keepdim), reduce_all=reduce_all,
                     **attrs)


def _cast_to(x: Any, dtype: Any) -> Any:
    if dtype is None:
        return x
    dtype = dtypes.convert_dtype(dtype)
    return x if x.dtype == dtype else cast(x, dtype)


def sum(x: Any, axis: int | Sequence[int] | None = None, dtype: Any = None,  # noqa: A001
        keepdim: bool = False, name: str | None = None) -> Any:
    """Sum; bool and int32 sum into int64 unless `dtype` says otherwise (x is cast to it
    first: Paddle Inference 3.3.1 does not honour reduce_sum's out_dtype)."""
    return _reduce(reduction.Sum, "sum", "sum", _cast_to(x, dtype), axis, keepdim, name)


def mean(x: Any, axis: int | Sequence[int] | None = None, keepdim: bool = False,
         name: str | None = None, *, dtype: Any = None) -> Any:
    return _reduce(reduction.Mean, "mean", "mean", _cast_to(x, dtype), axis, keepdim, name)


def max(x: Any, axis: int | Sequence[int] | None = None, keepdim: bool = False,  # noqa: A001
        name: str | None = None) -> Any:
    return _reduce(reduction.Max, "max", "max", x, axis, keepdim, name)


def min(x: Any, axis: int | Sequence[int] | None = None, keepdim: bool = False,  # noqa: A001
        name: str | None = None) -> Any:
    return _reduce(reduction.Min, "min", "min", x, axis, keepdim, name)


def prod(x: Any, axis: int | Sequence[int] | None = None, keepdim: bool = False,
         dtype: Any = None, name: str | None = None) -> Any:
    return _reduce(reduction.Prod, "reduce_prod", "prod", _cast_to(x, dtype), axis, keepdim,
                   name)


SMALL_INTS = (dtypes.uint8, dtypes.int8, dtypes.int16, dtypes.int32)


def cumsum(x: Any, axis: int | None = None, dtype: Any = None, name: str | None = None) -> Any:
    """Running sum along `axis` (None: of the flattened tensor); integers narrower than
    int64 are summed as int64 unless `dtype` is given, as Paddle does."""
    if dtype is None and x.dtype in SMALL_INTS:
        x = cast(x, dtypes.int64)
    else:
        x = _cast_to(x, dtype)
    with helper("cumsum", name):
        return apply(reduction.Cumsum, x, axis=-1 if axis is None else int(axis),
                     flatten=axis is None)


__all__ = ["cumsum", "max", "mean", "min", "prod", "reduce_axes", "sum"]
