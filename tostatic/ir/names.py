"""Paddle's unique names (`linear_0`, `tmp_3`): a counter per key, scoped by `guard()`."""
from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Iterator


class NameGenerator:
    def __init__(self) -> None:
        self._counters: dict[str, int] = defaultdict(int)

    def __call__(self, key: str) -> str:
        n = self._counters[key]
        self._counters[key] = n + 1
        return f"{key}_{n}"


_current = NameGenerator()


def generate(key: str) -> str:
    return _current(key)


@contextlib.contextmanager
def guard(generator: NameGenerator | None = None) -> Iterator[NameGenerator]:
    """Fresh names inside (Paddle's `unique_name.guard()`): each traced program starts at _0."""
    global _current
    saved, _current = _current, generator or NameGenerator()
    try:
        yield _current
    finally:
        _current = saved
