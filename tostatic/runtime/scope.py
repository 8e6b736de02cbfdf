"""Scopes: where static programs keep persistable values between runs (Paddle's Scope)."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np


class Scope:
    """Name -> array: where static programs keep persistable values between runs."""

    def __init__(self) -> None:
        self._vars: dict[str, np.ndarray] = {}

    def get(self, name: str) -> np.ndarray | None:
        return self._vars.get(name)

    def set(self, name: str, value: np.ndarray) -> None:
        self._vars[name] = np.array(value)  # a copy: the caller's array stays theirs

    def find_var(self, name: str) -> "_ScopeVar | None":
        return _ScopeVar(self, name) if name in self._vars else None

    def var(self, name: str) -> "_ScopeVar":
        return _ScopeVar(self, name)

    def local_var_names(self) -> list[str]:
        return list(self._vars)


class _ScopeVar:
    """scope.find_var(name).get_tensor() as Paddle has it (np.array(t) gives the data)."""

    def __init__(self, scope: Scope, name: str):
        self._scope, self._name = scope, name

    def get_tensor(self) -> "DenseTensor":
        return DenseTensor(self._scope, self._name)


class DenseTensor:
    """A scope variable's tensor, live as Paddle's is: np.array(t) reads it, t.set() writes."""

    def __init__(self, scope: Scope, name: str):
        self._scope, self._name = scope, name

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self._scope.get(self._name)
        if copy is False:
            return a if dtype is None else a.astype(dtype, copy=False)
        return np.array(a, dtype=dtype)  # Paddle's np.array(tensor) copies too

    def set(self, value: Any, place: Any = None) -> None:
        self._scope.set(self._name, value)

    def shape(self) -> list[int]:
        return list(self._scope.get(self._name).shape)

    def __repr__(self) -> str:
        return f"DenseTensor({self._name}: {np.asarray(self)!r})"


_global_scope = Scope()


def global_scope() -> Scope:
    return _global_scope


@contextlib.contextmanager
def scope_guard(scope: Scope) -> Iterator[None]:
    """paddle.static.scope_guard: `scope` is the global scope inside the block."""
    global _global_scope
    saved, _global_scope = _global_scope, scope
    try:
        yield
    finally:
        _global_scope = saved
