"""The process's one pool of kernel threads, and how many threads kernels use:
`TOSTATIC_NUM_THREADS` (default 1), or what `set_num_threads` was given (what
`Config.set_cpu_math_library_num_threads` calls, through runtime/threads.py).

`parallel(fn, items, workers)` runs fn(lo, hi, part) over contiguous parts of range(items),
part 0 on the calling thread; `parallel_for` is the same for generated kernels, deciding the
split from the work per item. ctypes and numpy's BLAS release the GIL while machine code runs,
so the parts run at once. Every parallel phase of every kernel (codegen's and the runtime's
GEMMs, im2col copies, Winograd transforms) goes through this one pool.

The hand-off is a pair of plain locks per worker thread (a worker blocks on its `go` lock; the
caller releases it, runs its own part, then blocks on `done`), which costs about two thirds
of a ThreadPoolExecutor's submit + result (measured: 12 against 18 us for an empty part on
an idle machine): no futures, no queue, no condition variables. Workers do not spin: on this
shared 2-core machine a spinning waiter slowed a 25 MFLOP GEMM split in two (470 against
270 us), and nothing spins after a call returns.

A call made while the pool is busy (from a worker's part, or a second Python thread running
another predictor) runs its parts on the calling thread, so nested and concurrent calls never
wait for each other. Small calls stay on the calling thread: a hand-off costs tens of
microseconds.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

MIN_ELEMENTS_PER_THREAD = 1 << 16
_STATE: dict[str, Any] = {"n": None}


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


class _Worker:
    """A daemon thread running one part at a time, woken by its `go` lock."""

    def __init__(self, index: int):
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.task: tuple[Callable[..., None], tuple[Any, ...]] | None = None
        self.error: BaseException | None = None
        threading.Thread(target=self._loop, daemon=True, name=f"tostatic-{index}").start()

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            fn, args = self.task  # type: ignore[misc]
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 (re-raised on the calling thread)
                self.error = e
            self.task = None
            self.done.release()

    def start(self, fn: Callable[..., None], *args: Any) -> None:
        self.task = (fn, args)
        self.go.release()

    def join(self) -> BaseException | None:
        self.done.acquire()
        error, self.error = self.error, None
        return error


_workers: list[_Worker] = []
_busy = threading.Lock()  # held while the pool's workers run a call's parts


def parallel(fn: Callable[[int, int, int], None], items: int, workers: int) -> None:
    """fn(lo, hi, part) over `workers` contiguous parts of range(items), at once: part 0 on
    the calling thread, the others on the pool's threads."""
    workers = min(workers, items)
    if workers <= 1:
        fn(0, items, 0)
        return
    bounds = [(i * items // workers, (i + 1) * items // workers) for i in range(workers)]
    if not _busy.acquire(blocking=False):  # nested or concurrent: this thread does it all
        for part, (lo, hi) in enumerate(bounds):
            fn(lo, hi, part)
        return
    try:
        while len(_workers) < workers - 1:
            _workers.append(_Worker(len(_workers) + 1))
        for part in range(1, workers):
            _workers[part - 1].start(fn, *bounds[part], part)
        error: BaseException | None = None
        try:
            fn(*bounds[0], 0)
        except BaseException as e:  # noqa: BLE001 (the others must finish first)
            error = e
        for w in _workers[:workers - 1]:
            error = w.join() or error
        if error is not None:
            raise error
    finally:
        _busy.release()


def parallel_for(total: int, elements_per_item: int, run: Callable[[int, int], None]) -> None:
    """run(start, stop) over [0, total) in up to num_threads() chunks, when each chunk gets
    at least MIN_ELEMENTS_PER_THREAD elements of work; else one call here."""
    n = min(num_threads(), total,
            max(1, total * max(1, elements_per_item) // MIN_ELEMENTS_PER_THREAD))
    if n <= 1:
        run(0, total)
        return
    parallel(lambda lo, hi, _: run(lo, hi), total, n)
