"""How many threads generated kernels use: `TOSTATIC_NUM_THREADS` (default 1), or what
`set_num_threads` was given (what `Config.set_cpu_math_library_num_threads` should call).

A kernel call with enough work is split into contiguous chunks (rows, planes, the outermost
loop) run by a shared thread pool; ctypes releases the GIL while machine code runs, so the
chunks run in parallel. Small calls stay on the calling thread: a hand-off costs tens of
microseconds.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

MIN_ELEMENTS_PER_THREAD = 1 << 16
_STATE: dict[str, Any] = {"n": None, "pool": None}


def set_num_threads(n: int) -> None:
    if n < 1:
        raise ValueError(f"the number of kernel threads must be at least 1, got {n}")
    _STATE["n"] = int(n)


def num_threads() -> int:
    if _STATE["n"] is not None:
        return _STATE["n"]
    try:
        return max(1, int(os.environ.get("TOSTATIC_NUM_THREADS", "1")))
    except ValueError:
        return 1


def _pool(n: int) -> ThreadPoolExecutor:
    pool = _STATE["pool"]
    if pool is None or pool._max_workers < n:  # noqa: SLF001 (grow, never shrink)
        pool = _STATE["pool"] = ThreadPoolExecutor(max_workers=n,
                                                   thread_name_prefix="tostatic-kernel")
    return pool


def parallel_for(total: int, elements_per_item: int, run: Callable[[int, int], None]) -> None:
    """run(start, stop) over [0, total) in up to num_threads() chunks, when each chunk gets
    at least MIN_ELEMENTS_PER_THREAD elements of work; else one call here."""
    n = min(num_threads(), total,
            max(1, total * max(1, elements_per_item) // MIN_ELEMENTS_PER_THREAD))
    if n <= 1:
        run(0, total)
        return
    bounds = [total * i // n for i in range(n + 1)]
    futures = [_pool(n).submit(run, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
    run(bounds[0], bounds[1])
    for f in futures:
        f.result()
