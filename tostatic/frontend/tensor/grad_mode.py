"""Whether eager ops record their history (`paddle.no_grad`, `enable_grad`, `set_grad_enabled`).

A module attribute rather than a thread-local: dispatch.apply reads it on every op, and the
frontend is single-threaded like Paddle's dygraph default.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

ENABLED = [True]  # a one-item list: read and written by reference from dispatch.apply


def is_grad_enabled() -> bool:
    return ENABLED[0]


class _DecoratorContextManager:
    """A context manager that also decorates functions and generators (Paddle's)."""

    mode = True

    def __enter__(self) -> None:
        self._prev = ENABLED[0]
        ENABLED[0] = self.mode

    def __exit__(self, *exc: Any) -> None:
        ENABLED[0] = self._prev

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isgeneratorfunction(func):
            @functools.wraps(func)
            def generator(*args: Any, **kwargs: Any) -> Any:
                gen = func(*args, **kwargs)
                with self.__class__.__new__(self.__class__)._like(self):
                    yield from gen
            return generator

        @functools.wraps(func)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            with self.__class__.__new__(self.__class__)._like(self):
                return func(*args, **kwargs)
        return decorated

    def _like(self, other: "_DecoratorContextManager") -> "_DecoratorContextManager":
        self.mode = other.mode  # a fresh manager a call, so recursion restores correctly
        return self


class no_grad(_DecoratorContextManager):
    """`with paddle.no_grad():` / `@paddle.no_grad()`: results have stop_gradient=True."""

    mode = False

    def __new__(cls, func: Any = None) -> Any:
        self = super().__new__(cls)
        if callable(func):  # `@paddle.no_grad` without the call
            return self(func)
        return self

    def __init__(self, func: Any = None) -> None:
        pass


class enable_grad(_DecoratorContextManager):
    """Records history again inside a `no_grad` region."""

    mode = True


class set_grad_enabled(_DecoratorContextManager):
    """`paddle.set_grad_enabled(mode)`: sets the mode now, and restores it when used with `with`."""

    def __init__(self, mode: bool) -> None:
        self._prev = ENABLED[0]
        self.mode = bool(mode)
        ENABLED[0] = self.mode

    def __enter__(self) -> None:
        ENABLED[0] = self.mode

    def __exit__(self, *exc: Any) -> None:
        ENABLED[0] = self._prev
