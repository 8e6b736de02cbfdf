"""Prepared kernel calls: a plan calls a kernel with the same arrays every run, and reading
an array's address through ctypes costs microseconds (several per call, for kernels that
take 10-50 us), so a call's ctypes arguments are worked out once per set of arrays."""
from __future__ import annotations

import abc
import threading
from typing import Any, Callable, Sequence

import numpy as np

_SCRATCH = threading.local()


class CallCache:
    """Prepared calls by the identity of the arrays they read and write; the arrays are
    kept alive with their entry, so an id is never another array's."""

    def __init__(self, limit: int = 4):
        self.limit = limit
        self.entries: dict[tuple[int, ...], tuple[Sequence[Any], Callable[[], None]]] = {}

    def get(self, arrays: Sequence[Any], prepare: Callable[[], Callable[[], None]]
            ) -> Callable[[], None]:
        key = tuple(map(id, arrays))
        entry = self.entries.get(key)
        if entry is None:
            if len(self.entries) >= self.limit:
                self.entries.clear()
            entry = self.entries[key] = (tuple(arrays), prepare())
        return entry[1]


class PreparedKernel(abc.ABC):
    """A bound kernel whose `run(x, extras, out)` calls the call `_prepare(x, extras, out)`
    makes: cached per set of arrays where all are contiguous and of the kernel's dtype, made
    for contiguous copies otherwise (subclasses set `dtype` and `calls`)."""

    dtype: np.dtype
    calls: CallCache

    def run(self, x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> None:
        arrays = (x, out, *extras)
        if all(a.flags.c_contiguous and a.dtype == self.dtype for a in arrays):
            self.calls.get(arrays, lambda: self._prepare(x, extras, out))()
        else:
            self._prepare(np.ascontiguousarray(x, dtype=self.dtype),
                          [np.ascontiguousarray(e, dtype=self.dtype) for e in extras], out)()

    @abc.abstractmethod
    def _prepare(self, x: np.ndarray, extras: Sequence[np.ndarray],
                 out: np.ndarray) -> Callable[[], None]:
        """The call over these arrays, its ctypes arguments worked out once."""


def scratch_address(nbytes: int) -> int:
    """The address of this thread's scratch buffer of at least `nbytes` (kept between calls:
    kernels on one thread run one at a time)."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _SCRATCH.buf = np.empty(max(nbytes, 1 << 16), np.uint8)
        _SCRATCH.address = buf.ctypes.data
    return _SCRATCH.address
