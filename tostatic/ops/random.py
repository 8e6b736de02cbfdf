"""The global random state behind `seed`, `rand`, `randn` and parameter initialisers."""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def seed(value: int) -> None:
    global _generator
    _generator = np.random.default_rng(int(value))


def generator() -> np.random.Generator:
    return _generator
