"""What a loaded model accepts as inputs: checked and converted before anything runs.

Every refusal is a FeedError naming the input, its spec (dtype and shape, -1 = any size) and
what was given. Accepted and converted, as paddle.to_tensor converts them:
- Python scalars and (nested) lists or tuples: floats become float32 (Paddle's default
  dtype), ints int64, bools bool; then they must fit the spec like any array. A ragged list,
  or one of strings or objects, is refused.
- a non-contiguous numpy array (a slice, a transpose): copied into a contiguous one.
- a numpy scalar or 0-d array for a 0-d input.
Not converted: a numpy array of another dtype (float64 for a float32 input is refused, as
numpy makes float64 by default and a silent cast would hide it), object, string and
structured arrays.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tostatic.ir.errors import FeedError
from tostatic.ir.opdef import Abstract

__all__ = ["check_feeds", "describe", "first_non_finite"]

_PY_DEFAULTS = {"f": np.float32, "i": np.int64, "u": np.int64, "b": np.bool_, "c": np.complex64}


def describe(spec: Abstract) -> str:
    return f"shape {list(spec.shape)} dtype {spec.dtype.name} (-1 = any size)"


def _given(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {list(value.shape)} dtype {value.dtype}"
    return f"a {type(value).__name__}"


def _array(name: str, spec: Abstract, value: Any) -> np.ndarray:
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # a Tensor
        value = value.numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    if isinstance(value, (bool, int, float, complex, list, tuple)):
        try:
            arr = np.array(value)
        except ValueError as e:  # ragged nesting
            raise FeedError(f"input {name!r} expects {describe(spec)}, but was given a "
                            f"{type(value).__name__} that is not a rectangular array "
                            f"({e})") from None
        kind = arr.dtype.kind
        if kind not in _PY_DEFAULTS:
            raise FeedError(f"input {name!r} expects {describe(spec)}, but was given a "
                            f"{type(value).__name__} of {arr.dtype} values")
        return arr.astype(_PY_DEFAULTS[kind])
    raise FeedError(f"input {name!r} expects {describe(spec)}, but was given "
                    f"{_given(value)}; pass a numpy array, a Tensor or a Python list")


def check_feeds(names: Sequence[str], specs: Sequence[Abstract],
                values: Sequence[Any]) -> list[np.ndarray]:
    """The feeds as contiguous arrays that fit the specs, or a FeedError."""
    if len(values) != len(specs):
        want = ", ".join(f"{n} ({describe(s)})" for n, s in zip(names, specs))
        what = "missing" if len(values) < len(specs) else "extra"
        raise FeedError(f"expected {len(specs)} inputs [{want}], but was given {len(values)} "
                        f"({what}: "
                        + (", ".join(names[len(values):]) if what == "missing" else
                           f"{len(values) - len(specs)} more") + ")")
    out = []
    for name, spec, value in zip(names, specs, values):
        arr = _array(name, spec, value)
        shape = tuple(arr.shape)
        if arr.dtype.kind in "OUSVM" or arr.dtype.fields is not None:
            raise FeedError(f"input {name!r} expects {describe(spec)}, but was given an array "
                            f"of dtype {arr.dtype}")
        if len(shape) != len(spec.shape):
            raise FeedError(f"input {name!r} expects {describe(spec)}, but was given shape "
                            f"{list(shape)} dtype {arr.dtype} (rank {len(shape)}, not "
                            f"{len(spec.shape)})")
        want_dtype = spec.dtype.numpy
        if any(s >= 0 and s != d for s, d in zip(spec.shape, shape)) or (
                want_dtype is not None and arr.dtype != want_dtype):
            raise FeedError(f"input {name!r} expects {describe(spec)}, but was given shape "
                            f"{list(shape)} dtype {arr.dtype}")
        # (not np.ascontiguousarray: it makes a 0-d array 1-d)
        out.append(arr if arr.flags.c_contiguous else arr.copy(order="C"))
    return out


def first_non_finite(arr: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first NaN or infinity in a float array, or None."""
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return None
    bad = ~np.isfinite(arr)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.argwhere(bad)[0])
