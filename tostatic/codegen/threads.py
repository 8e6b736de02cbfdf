"""The process's one pool of kernel threads, and how many threads kernels use:
`TOSTATIC_NUM_THREADS` (default 1), or what `set_num_threads` was given (what
`Config.set_cpu_math_library_num_threads` calls, through runtime/threads.py).

`parallel(fn, items, workers)` runs fn(lo, hi, part) over contiguous parts of range(items),
part 0 on the calling thread; `parallel_for` is the same for generated kernels, deciding the
split from the work per item. ctypes and numpy's BLAS release the GIL while machine code runs,
so the parts run at once. Every parallel phase of every kernel (codegen's and the runtime's
GEMMs, im2col copies, Winograd transforms) goes through this one pool.

Two hand-offs. `parallel_calls(calls, starts)` takes parts made of machine-code calls (a
compiled kernel's address and its integer / pointer arguments, a row each): a pool thread
spinning in codegen/spin.py's loop claims a part with a compare-and-swap and runs it without
the GIL, so handing a part over costs a microsecond or two. Every hand-off that takes the GIL
costs tens: measured here with a spinning pool thread, a Python part still started 15 us
after the caller's, the pool thread waiting for the GIL the caller drops only inside its own
part's kernel (then a futex wake-up); a sleeping pool thread's wake-up costs 20-30 us more.
The packed GEMM, depthwise, Winograd and im2col splits go through parallel_calls (their
parts are calls of their kernels), so MobileNetV2's 50-100 us kernels split with profit
(MIN_NATIVE_ELEMENTS, a quarter of MIN_ELEMENTS_PER_THREAD). `parallel(fn, ...)` runs Python
parts (numpy's BLAS in attention, the rest): the pool thread returns to Python for them.

The pool threads spin between calls, up to SERVE_US after the last (as onnxruntime's and
OpenMP's threads do), then sleep on their own queue.SimpleQueue until a call or a run wakes
them: begin_run / end_run, which runtime/straight_line.py puts around every run, wake them as
the run starts (their wake-up overlaps its first kernels). They spin only where the pool and the caller are no more
threads than CPUs. Either way the calling thread claims every part no pool thread has
started, so a pool thread not scheduled for milliseconds (a shared machine) costs at most
the split, and waits only for parts a pool thread is running, spinning off the GIL
(at most SPIN_US) before it blocks. The pool's threads are kept off the CPU the caller runs
on (`_keep_off_caller`); a forked child starts a pool of its own.

A call made while the pool is busy (from a worker's part, or a second Python thread running
another predictor) runs its parts on the calling thread, so nested and concurrent calls never
wait for each other. Small calls stay on the calling thread.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import queue
import sys
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

# a split pays only when each part runs well past the hand-off: on this VM a woken pool thread
# starts a part 20-30 us after the caller and the caller sees its end 20 us late (futex
# wake-ups, measured with parts of numpy calls); 1 << 16 split MobileNetV2's 50 us 1x1
# convolutions into 90 us. 1 << 18 elements (or GEMM flops / 64) is 60-250 us a part.
MIN_ELEMENTS_PER_THREAD = 1 << 18
# parallel_calls' parts start on a spinning pool thread within a microsecond or two (no
# GIL switch): a part of 1 << 16 elements (GEMM flops / 64: 4 MFLOP, ~20 us) pays
MIN_NATIVE_ELEMENTS = 1 << 16
# ... and parallel_calls' splits make up to this many parts a thread, claimed by whichever
# thread is free: a pool thread sharing its core with another process (a spinning thread
# keeps no sleeper's priority there) then takes fewer of them, not the caller's wait. Two
# parts of 1 ms of busy work took 2.4-2.6 ms so on this shared VM (one thread: 2 ms).
PARTS_PER_THREAD = 4
# a row of parallel_calls: fn's arguments (integers, pointers; unused: 0); spin.ARGS
CALL_ARGS = 8
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
# a pool thread spins for the next call at most SERVE_US, then sleeps (IDLE_US once no run
# is under way: begin_run / end_run). Spinning through a whole run (50 ms) cost under load:
# other processes, kept off the spinning thread's core, preempted the caller on its own
# (BERT batch 8 on 2 threads under a load of 3: 0.99x one thread's time spinning the whole
# run, 0.86x never spinning, 0.81x with 300 us; MobileNetV2 batch 1: 0.71x, 0.97x, 0.62x).
SERVE_US = 300
IDLE_US = 300
# [serial of the last call handed out, of the last a pool thread finished, runs under way,
#  its task (0: a Python call), pool threads asleep in the native loop's futex wait]
_ctl = (ctypes.c_int64 * 5)()
# a pool thread done spinning sleeps inside the native loop (Linux: a futex wait, woken
# without the GIL); elsewhere it returns to Python and waits on its bell
SLEEP_NATIVE = sys.platform.startswith("linux")
_current: list[Any] = [None]  # the call _ctl[0] names
_serials = itertools.count(1)
_spin: dict[str, Any] = {}
_runs = threading.Lock()


def _cycles_per_us(f: Any) -> float:
    """The spin's time-stamp-counter rate, timed on a flag that never changes."""
    flag, args = (ctypes.c_int64 * 1)(0), (ctypes.c_int64 * 3)(0, 1 << 20, 0)
    start = time.perf_counter()
    f(ctypes.addressof(flag), ctypes.addressof(args))
    return args[1] / max((time.perf_counter() - start) * 1e6, 1.0)


def _compiled_waits() -> dict[str, Any]:
    """The caller's spin wait ("wait": f, args [seen, cycles, after]), the native pool
    (codegen/spin.py: "pool", its functions) and the pool threads' spin ("serve": cycles
    [cap, tail]), made once; absent: that side blocks (no code for the host,
    TOSTATIC_KERNELS=numpy, SPIN_US = 0). A pool thread spins only where it and the caller
    are no more threads than CPUs: a spinning thread would take a working one's core."""
    if not _spin:
        _spin["made"] = True
        if os.environ.get("TOSTATIC_KERNELS", "").strip().lower() == "numpy":
            return _spin
        from tostatic.codegen import spin  # noqa: PLC0415 (llvmlite loads here)
        f = spin.spinner() if SPIN_US > 0 else None
        if f is not None:
            per_us = _cycles_per_us(f)
            args = (ctypes.c_int64 * 3)(0, int(per_us * SPIN_US), int(per_us * SPIN_AFTER_US))
            _spin["wait"] = (f, args)
            native = spin.pool()
            if native is not None:
                _spin["pool"] = native
                _spin["serve"] = (int(per_us * SERVE_US), int(per_us * IDLE_US))
                _spin["finish"] = int(per_us * SPIN_US)
    return _spin


def _spinner() -> tuple[Any, Any] | None:
    return _compiled_waits().get("wait")


class _Worker:
    """A pool thread: it runs parts of the call _ctl[0] names, native ones (_ctl[3], a task
    of parallel_calls) in codegen/spin.py's loop without the GIL, Python ones here; between
    calls it spins (off the GIL) up to SERVE_US (IDLE_US once no run is under way), then sleeps
    until a call or a run wakes it (`wake`)."""

    def __init__(self, index: int):
        self.sleeping = False
        self.bell: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self.serve, daemon=True,
                                       name=f"tostatic-{index}")

    def wake(self) -> None:
        if self.sleeping:
            self.sleeping = False
            self.bell.put(None)

    def serve(self) -> None:
        seen, done = -1, -1  # (a call made as the thread started is its to join)
        waits = _compiled_waits()
        native = waits.get("pool")
        if native is not None:
            g = native["serve"]
            args = (ctypes.c_int64 * 5)()
            ctl, address = ctypes.addressof(_ctl), ctypes.addressof(args)
        while True:
            if native is not None:  # native calls, and the spin between calls
                spins = len(_threads) < max(len(_allowed), 1)
                cap, tail = waits["serve"] if spins else (0, 0)
                args[:] = [seen, cap, tail, done, int(SLEEP_NATIVE)]
                g(ctl, address)  # stores `done`, then serves (off the GIL)
                seen, done = args[0], -1
            serial = _ctl[0]
            if serial != seen:
                if _ctl[3] and native is not None:
                    continue  # a native call: the loop above runs it
                seen = serial
                job = _current[0]
                if job is not None and job.serial == serial and job.work():
                    job.last.release()
                    if native is None:
                        _ctl[1] = job.serial
                    else:
                        done = job.serial
                continue
            self.sleeping = True  # (a caller sees it, or we see its call: the GIL orders)
            if _ctl[0] == seen:
                self.bell.get()
            self.sleeping = False


def _wake_all() -> None:
    """Wake the pool's threads asleep in Python (their bells) and in the native loop."""
    for w in _workers:
        w.wake()
    native = _spin.get("pool")
    if native is not None and _ctl[4]:
        native["wake"](ctypes.addressof(_ctl))


def begin_run() -> None:
    """A bound plan's run starts: the pool's threads wake now (their wake-up overlaps the
    run's first kernels) and spin between its parallel calls instead of sleeping."""
    with _runs:
        _ctl[2] += 1
    if _workers and num_threads() > 1:
        _keep_off_caller()  # (before they wake: a spinning thread on our CPU halves us)
        _wake_all()


def end_run() -> None:
    """The run begin_run announced ended (also by an error): the pool's threads spin at
    most IDLE_US more, then sleep."""
    with _runs:
        _ctl[2] = max(0, _ctl[2] - 1)


_workers: list[_Worker] = []


def _reset_after_fork() -> None:
    """A forked child has none of the parent's threads: the pool starts anew there."""
    global _busy, _runs
    _threads.clear()
    _workers.clear()
    _busy, _runs = threading.Lock(), threading.Lock()
    _ctl[:] = [0, 0, 0, 0, 0]
    _current[0] = None
    _placement["cpu"] = -1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _start_workers(n: int) -> None:
    while len(_threads) < n:
        _compiled_waits()  # (before the thread starts: it reads them)
        _workers.append(_Worker(len(_threads) + 1))
        _threads.append(_workers[-1].thread)
        _threads[-1].start()
        _placement["cpu"] = -1  # (the new thread's affinity is set below)
    _keep_off_caller()


def parallel(fn: Callable[[int, int, int], None], items: int, workers: int) -> None:
    """fn(lo, hi, part) over `workers` contiguous parts of range(items), at once: the calling
    thread takes part 0, then any part no pool thread has started yet."""
    workers = min(workers, items)
    if workers <= 1:
        fn(0, items, 0)
        return
    spans = bounds(items, workers)
    if not _busy.acquire(blocking=False):  # nested or concurrent: this thread does it all
        for part, (lo, hi) in enumerate(spans):
            fn(lo, hi, part)
        return
    try:
        _start_workers(workers - 1)
        job = _Job(fn, spans)
        first = next(job.claims)  # part 0 is the caller's
        _current[0] = job
        _ctl[3] = 0  # (a Python call)
        _ctl[0] = job.serial  # (seen by a spinning pool thread)
        _wake_all()
        last = job.run(first)
        if not (job.work() or last):  # a pool thread is finishing the last part
            spin = _spinner()
            if spin is not None and _ctl[1] != job.serial:
                f, args = spin
                args[0] = _ctl[1]
                f(ctypes.addressof(_ctl) + 8, ctypes.addressof(args))  # (off the GIL)
            if _ctl[1] != job.serial:
                job.last.acquire()
        if job.errors:
            raise job.errors[0]
    finally:
        _busy.release()


def part_calls(f: Any, args: Sequence[int], rows: np.ndarray,
               after: Sequence[int] | np.ndarray = ()) -> np.ndarray:
    """parallel_calls rows, a part each: f(*args, &rows[p], *after[p]) for each row p of
    `rows` (int64 [parts, k]: a part's dims), `after` an address per part or none."""
    parts = len(rows)
    calls = np.zeros((parts, 1 + CALL_ARGS), np.int64)
    calls[:, 0] = ctypes.cast(f, ctypes.c_void_p).value
    calls[:, 1:1 + len(args)] = args
    calls[:, 1 + len(args)] = rows.ctypes.data + np.arange(parts) * rows.strides[0]
    if len(after):
        calls[:, 2 + len(args)] = after
    return calls


def parallel_calls(calls: Any, starts: Any = None) -> None:
    """Run machine code over the pool: part p is the rows starts[p] .. starts[p + 1] of
    `calls` (int64 [rows, 1 + CALL_ARGS], a row [fn address, a0, ..., a7]: fn(a0, ..., a7),
    integers and pointers), in order; starts (int64 [parts + 1]) None: a part a row. A pool
    thread spinning in codegen/spin.py's loop takes a part without the GIL or a wake-up
    (~1 us: no GIL switch, which costs tens of us), the calling thread runs the parts no
    pool thread took, then waits for the others. Both arrays stay unchanged while it runs."""
    starts_at = 0
    if starts is None:
        if len(calls) < len(_ONE_A_ROW):
            starts, starts_at = _ONE_A_ROW[:len(calls) + 1], _ONE_A_ROW_AT
        else:
            starts = np.arange(len(calls) + 1, dtype=np.int64)
            starts_at = starts.ctypes.data
    parts = len(starts) - 1
    native = _compiled_waits().get("pool")
    if native is None or not NATIVE_HANDOFF or parts >= 1 << 16:
        # no pool code for the host (or to compare; or more parts than a claim word holds)
        rows = [[int(v) for v in row] for row in calls]
        bounds_ = [int(v) for v in starts]

        def part(lo: int, hi: int, _: int) -> None:
            for p in range(lo, hi):
                for row in rows[bounds_[p]:bounds_[p + 1]]:
                    _CALL(row[0])(*row[1:])
        parallel(part, parts, min(parts, num_threads()))
        return
    if parts <= 1 or num_threads() <= 1 or not _busy.acquire(blocking=False):
        task = (ctypes.c_int64 * 4)(parts << 16, 0, _address_of(calls),
                                    starts_at or _address_of(starts))
        native["work"](ctypes.addressof(task))  # all here: nested, concurrent or small
        return
    try:
        _start_workers(min(parts, num_threads()) - 1)
        serial = next(_serials)
        _task[1], _task[2], _task[3] = 0, _address_of(calls), starts_at or _address_of(starts)
        _task[0] = (serial & 0x7FFFFFFF) << 32 | parts << 16 | (_FROM_BACK if POOL_FROM_BACK
                                                                 else 0)  # (claims open)
        _ctl[3] = ctypes.addressof(_task)
        _ctl[0] = serial  # (seen by a spinning pool thread)
        for w in _workers:
            w.wake()
        _finish_args[:] = [parts, _spin["finish"], ctypes.addressof(_ctl)]  # (wakes)
        native["finish"](ctypes.addressof(_task), ctypes.addressof(_finish_args))
        interrupted = None
        while _task[1] < parts:  # a pool thread's part is running: its memory stays ours
            try:
                time.sleep(2e-5)
            except BaseException as e:  # noqa: BLE001 (KeyboardInterrupt: once it ended)
                interrupted = e
        if interrupted is not None:
            raise interrupted
    finally:
        _busy.release()


_ONE_A_ROW = np.arange(65, dtype=np.int64)
_ONE_A_ROW_AT = _ONE_A_ROW.ctypes.data
# parallel_calls' arrays' addresses by id (`.ctypes.data` costs 0.9 us, two a call: a third
# of the call): a kernel's call table is made once and passed every run; the array is kept
# with its entry, so its id is never another array's
_ADDRESSES: dict[int, tuple[np.ndarray, int]] = {}


def _address_of(a: np.ndarray) -> int:
    hit = _ADDRESSES.get(id(a))
    if hit is None:
        if len(_ADDRESSES) >= 1024:
            _ADDRESSES.clear()
        hit = _ADDRESSES[id(a)] = (a, a.ctypes.data)
    return hit[1]


NATIVE_HANDOFF = True  # False: parallel_calls hands its parts over as Python calls do
# parallel_calls' pool threads take parts from the back, the caller from the front
# (codegen/spin.py `work_back`): each core keeps the same end of every layer's rows in its
# cache (MobileNetV2 / ResNet-50 at batch 1 on two threads: see benchmarks/results.md)
POOL_FROM_BACK = True
_FROM_BACK = -(1 << 63)  # the claim word's top bit
_CALL_TYPE = ctypes.CFUNCTYPE(None, *[ctypes.c_int64] * CALL_ARGS)


def _CALL(address: int) -> Any:  # noqa: N802
    return _CALL_TYPE(address)
_task = (ctypes.c_int64 * 4)()  # parallel_calls' call: [claim word, finished, fn, calls]
_finish_args = (ctypes.c_int64 * 3)()


def parts_for(total: int, elements_per_item: int, minimum: int | None = None) -> int:
    """How many parts parallel_for splits [0, total) into (1: no split): each at least
    `minimum` elements (MIN_ELEMENTS_PER_THREAD), one a thread; with `minimum` given (for
    parallel_calls, MIN_NATIVE_ELEMENTS) up to PARTS_PER_THREAD a thread."""
    if num_threads() <= 1:
        return 1
    most = num_threads() * (PARTS_PER_THREAD if minimum else 1)
    return min(most, total, max(1, total * max(1, elements_per_item) // (
        minimum or MIN_ELEMENTS_PER_THREAD)))


def bounds(total: int, parts: int) -> list[tuple[int, int]]:
    """The contiguous parts of range(total) parallel and parallel_for run."""
    return [(i * total // parts, (i + 1) * total // parts) for i in range(parts)]


def parallel_for(total: int, elements_per_item: int, run: Callable[[int, int], None]) -> None:
    """run(start, stop) over [0, total) in up to num_threads() chunks, when each chunk gets
    at least MIN_ELEMENTS_PER_THREAD elements of work; else one call here."""
    n = parts_for(total, elements_per_item)
    if n <= 1:
        run(0, total)
        return
    parallel(lambda lo, hi, _: run(lo, hi), total, n)
