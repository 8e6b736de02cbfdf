"""The process's one pool of kernel threads, and how many threads kernels use:
`TOSTATIC_NUM_THREADS` (default 1), or what `set_num_threads` was given (what
`Config.set_cpu_math_library_num_threads` calls, through runtime/threads.py).

`parallel(fn, items, workers)` runs fn(lo, hi, part) over contiguous parts of range(items),
part 0 on the calling thread; `parallel_for` is the same for generated kernels, deciding the
split from the work per item. ctypes and numpy's BLAS release the GIL while machine code runs,
so the parts run at once. Every parallel phase of every kernel (codegen's and the runtime's
GEMMs, im2col copies, Winograd transforms) goes through this one pool.

The hand-off is a queue.SimpleQueue the pool's threads block on: the caller puts the call's
job there once per other part, runs part 0, then claims whatever part no pool thread has
started, and waits only for parts a pool thread is running. On a shared machine a pool thread
may not be scheduled for milliseconds; then the caller runs that part itself, so a split call
never takes longer than one thread plus the hand-off (with a plain split, MobileNetV2 on two
threads took twice its one-thread time under load). Measured on an idle core, the hand-off
costs about two thirds of a ThreadPoolExecutor's submit + result (12 against 18 us for an
empty part). Pool threads do not spin: on this shared 2-core machine a spinning waiter slowed
a 25 MFLOP GEMM split in two (470 against 270 us). The caller, once its own parts are done,
waits for the pool's last part spinning off the GIL (codegen/spin.py, at most SPIN_US) before
it blocks: woken from the kernel it returned 20-30 us after the part ended. The pool's
threads are kept off the CPU the caller runs on (`_keep_off_caller`).

A call made while the pool is busy (from a worker's part, or a second Python thread running
another predictor) runs its parts on the calling thread, so nested and concurrent calls never
wait for each other. Small calls stay on the calling thread: a hand-off costs tens of
microseconds.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import queue
import threading
import time
from typing import Any, Callable

# a split pays only when each part runs well past the hand-off: on this VM a woken pool thread
# starts a part 20-30 us after the caller and the caller sees its end 20 us late (futex
# wake-ups, measured with parts of numpy calls); 1 << 16 split MobileNetV2's 50 us 1x1
# convolutions into 90 us. 1 << 18 elements (or GEMM flops / 64) is 60-250 us a part.
MIN_ELEMENTS_PER_THREAD = 1 << 18
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


class _Job:
    """One call's parts, claimed one at a time by whichever thread is free (the caller too)."""

    def __init__(self, fn: Callable[[int, int, int], None],
                 bounds: list[tuple[int, int]]):
        self.fn, self.bounds = fn, bounds
        self.claims = iter(range(len(bounds)))  # next() is atomic under the GIL
        self.finishes = itertools.count(1)
        self.last = threading.Lock()  # released by a pool thread finishing the last part
        self.last.acquire()
        self.errors: list[BaseException] = []
        self.serial = next(_serials)

    def run(self, part: int) -> bool:
        """Run one claimed part; True when it was the call's last to finish."""
        try:
            self.fn(*self.bounds[part], part)
        except BaseException as e:  # noqa: BLE001 (re-raised on the calling thread)
            self.errors.append(e)
        return next(self.finishes) == len(self.bounds)

    def work(self) -> bool:
        """Run unclaimed parts; True when this thread finished the call's last part."""
        last = False
        for part in self.claims:
            last = self.run(part)
        return last


_jobs: queue.SimpleQueue = queue.SimpleQueue()
_threads: list[threading.Thread] = []
_busy = threading.Lock()  # held while a call's parts may run on the pool's threads
_placement: dict[str, Any] = {"cpu": -1}


def _sched_getcpu() -> Callable[[], int] | None:
    try:
        f = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None
    f.restype = ctypes.c_int
    return f


_getcpu = _sched_getcpu()
_allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _keep_off_caller() -> None:
    """Keep the pool's threads off the CPU the caller runs on. A blocked pool thread woken
    by the caller is placed on the caller's CPU by Linux (wake-affine) and, with parts of a
    few hundred microseconds, is not moved before it finishes: both halves then share one
    core and two threads take longer than one (ResNet-50 batch 1 with idle gaps between
    runs, as the benchmark leaves: 43 ms on two threads against 37 on one). Only when the
    caller's CPU changed (sched_getcpu, 0.1 us; an affinity call, 1 us a thread)."""
    if _getcpu is None or len(_allowed) < 2:
        return
    cpu = _getcpu()
    if cpu == _placement["cpu"]:
        return
    _placement["cpu"] = cpu
    others = [c for c in _allowed if c != cpu] or _allowed
    for t in _threads:
        try:
            os.sched_setaffinity(t.native_id, others)
        except OSError:
            pass  # a thread that ended, or a CPU set we may not use: placement is a hint


SPIN_US = 2000  # the caller spins this long for a pool thread's part, then blocks
SPIN_AFTER_US = 0  # ... and this much more once it ended (10 us measured slower)
_done = (ctypes.c_int64 * 1)()  # the serial number of the last call a pool thread finished
_serials = itertools.count(1)
_spin: dict[str, Any] = {}


def _spinner() -> tuple[Any, Any] | None:
    """(codegen's spin wait, its args [seen, cycles, after]), made once; None: the caller
    blocks (no code for the host, TOSTATIC_KERNELS=numpy, SPIN_US = 0)."""
    if "wait" not in _spin:
        _spin["wait"] = None
        if SPIN_US > 0 and os.environ.get("TOSTATIC_KERNELS", "").strip().lower() != "numpy":
            from tostatic.codegen.spin import spinner  # noqa: PLC0415 (llvmlite loads here)
            f = spinner()
            if f is not None:
                args = (ctypes.c_int64 * 3)(-1, 1 << 18, 0)  # (a value never seen: timed)
                start = time.perf_counter()
                f(ctypes.addressof(_done), ctypes.addressof(args))
                per_us = (1 << 18) / max((time.perf_counter() - start) * 1e6, 1.0)
                args[1], args[2] = int(per_us * SPIN_US), int(per_us * SPIN_AFTER_US)
                _spin["wait"] = (f, args)
    return _spin["wait"]


def _serve() -> None:
    while True:
        job = _jobs.get()
        if job.work():
            _done[0] = job.serial  # (seen by a spinning caller)
            job.last.release()


def parallel(fn: Callable[[int, int, int], None], items: int, workers: int) -> None:
    """fn(lo, hi, part) over `workers` contiguous parts of range(items), at once: the calling
    thread takes part 0, then any part no pool thread has started yet."""
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
        while len(_threads) < workers - 1:
            _threads.append(threading.Thread(target=_serve, daemon=True,
                                             name=f"tostatic-{len(_threads) + 1}"))
            _threads[-1].start()
            _placement["cpu"] = -1  # (the new thread's affinity is set below)
        _keep_off_caller()
        job = _Job(fn, bounds)
        first = next(job.claims)  # part 0 is the caller's
        for _ in range(workers - 1):
            _jobs.put(job)
        last = job.run(first)
        if not (job.work() or last):  # a pool thread is finishing the last part
            spin = _spinner()
            if spin is not None and _done[0] != job.serial:
                f, args = spin
                args[0] = _done[0]
                f(ctypes.addressof(_done), ctypes.addressof(args))  # (off the GIL)
            if _done[0] != job.serial:
                job.last.acquire()
        if job.errors:
            raise job.errors[0]
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
