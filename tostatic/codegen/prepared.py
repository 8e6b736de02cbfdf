"""Arrays a kernel prepares from its weights when a plan is bound (packed GEMM panels, Winograd
filter transforms), memoised across processes.

A function that turns weights into such arrays is decorated with `@prepared`; it must be a
pure function of its arguments (arrays, and plain values: numbers, strings, None, tuples of
them) returning an array or a tuple of arrays. Outside a binding nothing changes. While the
runtime binds a plan it makes a `Store` active on the binding thread (`active`,
runtime/plan_cache.py): every call is then numbered in order and asked of the store first,
with its function, its arguments' shapes and dtypes and its plain values as the key; a call
the store does not hold runs and is handed to the store to keep. The arrays' values are not
in the key: the store answers only for the same model files, code, CPU and thread count,
which decide them. So a new kernel gets its preparation cached by one decorator line, and a
kernel without one prepares at bind as before.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Protocol, TypeVar

import numpy as np

from tostatic.ir.thread_setting import set_for_block

F = TypeVar("F", bound=Callable[..., Any])


class Store(Protocol):
    def fetch(self, key: str) -> Any:
        """The result kept for the next call if its key is `key`, else None."""

    def keep(self, key: str, result: Any) -> None:
        """The result of the call just fetched (and missed), to keep."""


_ACTIVE = threading.local()


def active(store: Store | None) -> contextlib.AbstractContextManager[None]:
    """`store` answers the decorated calls this thread makes inside the block."""
    return set_for_block(_ACTIVE, "store", store)


def _describe(value: Any) -> str | None:
    """The key text of an argument, None where it cannot be told by shape and plain value."""
    if isinstance(value, np.ndarray):
        return f"array{value.shape}{value.dtype.str}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        parts = [_describe(v) for v in value]
        return None if None in parts else "(" + ",".join(parts) + ")"  # type: ignore[arg-type]
    return None


def _keepable(a: Any) -> bool:
    return (isinstance(a, np.ndarray) and a.flags.c_contiguous and a.dtype.kind in "biufc"
            and np.dtype(a.dtype.str) == a.dtype)


def is_result(value: Any) -> bool:
    """A C-contiguous array of a plain numeric dtype (one its name gives back), or a tuple
    of them: what a store can keep and give back with the same strides and dtype."""
    if isinstance(value, np.ndarray):
        return _keepable(value)
    return isinstance(value, tuple) and all(_keepable(v) for v in value)


def prepared(fn: F) -> F:
    name = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        store = getattr(_ACTIVE, "store", None)
        if store is None:
            return fn(*args, **kwargs)
        parts = [_describe(a) for a in args] + [
            None if _describe(v) is None else f"{k}={_describe(v)}"
            for k, v in sorted(kwargs.items())]
        if None in parts:
            return fn(*args, **kwargs)
        key = f"{name}({','.join(parts)})"  # type: ignore[arg-type]
        hit = store.fetch(key)
        if hit is not None:
            return hit
        result = fn(*args, **kwargs)
        if is_result(result):
            store.keep(key, result)
        return result
    return call  # type: ignore[return-value]
