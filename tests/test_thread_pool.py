"""The one pool of kernel threads (codegen/threads.py): parts cover the range once, run at
the same time, errors reach the caller, nested and concurrent calls finish, and a part no
pool thread has started is run by the caller."""
import threading

import pytest

from tostatic.codegen import threads
from tostatic.runtime import threads as runtime_threads

pytestmark = pytest.mark.usefixtures("compiled_kernels")


def record(items, workers):
    seen, names, me = [], set(), threading.current_thread().name

    def fn(lo, hi, part):
        seen.append((lo, hi, part))
        names.add(threading.current_thread().name)
        assert part or threading.current_thread().name == me  # part 0 is the caller's
    threads.parallel(fn, items, workers)
    return sorted(seen), names


@pytest.mark.parametrize("items,workers", [(10, 2), (7, 3), (2, 5), (1, 2), (5, 1)])
def test_parts_cover_the_range_once(items, workers):
    seen, names = record(items, workers)
    parts = min(workers, items)
    assert [p for _, _, p in seen] == list(range(parts))
    assert seen[0][0] == 0 and seen[-1][1] == items
    assert all(a[1] == b[0] for a, b in zip(seen, seen[1:]))
    assert threading.current_thread().name in names  # part 0, and any part not yet started


def test_parts_run_at_the_same_time():
    barrier = threading.Barrier(3, timeout=10)  # every part waits for the two others
    threads.parallel(lambda lo, hi, part: barrier.wait(), 3, 3)


def test_an_error_in_any_part_reaches_the_caller_and_the_pool_goes_on():
    def fn(lo, hi, part):
        if part == 1:
            raise ZeroDivisionError("part 1")
    with pytest.raises(ZeroDivisionError, match="part 1"):
        threads.parallel(fn, 4, 2)
    assert record(4, 2)[0] == [(0, 2, 0), (2, 4, 1)]


def test_nested_and_concurrent_calls_run_on_the_calling_thread():
    inner = []

    def outer(lo, hi, part):
        inner.append(record(6, 2)[0])  # the pool is busy: all parts here
    threads.parallel(outer, 2, 2)
    assert inner == [[(0, 3, 0), (3, 6, 1)]] * 2
    results = []
    callers = [threading.Thread(target=lambda: results.append(record(100, 2)[0]))
               for _ in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(10)
    assert results == [[(0, 50, 0), (50, 100, 1)]] * 4


def test_runtime_and_codegen_share_the_pool(monkeypatch):
    assert runtime_threads.parallel is threads.parallel
    monkeypatch.setitem(threads._STATE, "n", 2)
    got = []
    threads.parallel_for(10, 1 << 20, lambda a, b: got.append((a, b)))
    assert sorted(got) == [(0, 5), (5, 10)]
    got.clear()
    threads.parallel_for(10, 1, lambda a, b: got.append((a, b)))  # too little work to split
    assert got == [(0, 10)]


def test_the_caller_runs_the_parts_a_busy_pool_thread_has_not_started():
    started, release = threading.Event(), threading.Event()

    def blocking(lo, hi, part):
        if part:  # the pool's one thread: it waits here until released
            started.set()
            release.wait(10)
        else:
            started.wait(10)
    hold = threading.Thread(target=lambda: threads.parallel(blocking, 2, 2))
    hold.start()
    assert started.wait(10)
    threads._busy.release()  # the pool is free for the next caller, its thread still busy
    try:
        seen, names = record(6, 2)  # its part 1 waits in the queue, unstarted: ours to run
        assert seen == [(0, 3, 0), (3, 6, 1)] and names == {threading.current_thread().name}
    finally:
        threads._busy.acquire()  # (the held call releases it when it returns)
        release.set()
        hold.join(10)
    assert record(4, 2)[0] == [(0, 2, 0), (2, 4, 1)]


def test_pool_threads_are_kept_off_the_callers_cpu():
    import os

    if len(os.sched_getaffinity(0)) < 2 or threads._getcpu is None:
        pytest.skip("one CPU")
    threads.parallel(lambda lo, hi, part: None, 2, 2)
    caller = threads._placement["cpu"]
    for t in threads._threads:
        assert caller not in os.sched_getaffinity(t.native_id)


@pytest.mark.parametrize("spin_us", [0, 2000])
def test_the_caller_waits_for_a_long_pool_part_spinning_or_blocked(spin_us, monkeypatch):
    """A pool part longer than the spin (50 ms against 2 ms): the caller spins, then blocks,
    and returns only once the part is done."""
    import time

    monkeypatch.setattr(threads, "SPIN_US", spin_us)
    monkeypatch.setattr(threads, "_spin", {})
    done = []

    def fn(lo, hi, part):
        if part:
            time.sleep(0.05)
            done.append(part)
    start = time.perf_counter()
    threads.parallel(fn, 2, 2)
    assert done == [1] and time.perf_counter() - start >= 0.05
    assert (threads._spinner() is None) == (spin_us == 0)


def test_the_spin_wait_returns_when_the_flag_changes_or_times_out():
    import ctypes
    import time

    from tostatic.codegen.spin import spinner

    f = spinner()
    flag = (ctypes.c_int64 * 1)(5)
    args = (ctypes.c_int64 * 3)(4, 1 << 40, 0)  # flag != seen: at once, however long allowed
    start = time.perf_counter()
    f(ctypes.addressof(flag), ctypes.addressof(args))
    assert time.perf_counter() - start < 0.5
    args[0], args[1] = 5, 1 << 20  # unchanged: ~1M cycles (under a millisecond at 1+ GHz)
    start = time.perf_counter()
    f(ctypes.addressof(flag), ctypes.addressof(args))
    assert 1e-4 < time.perf_counter() - start < 0.5
    setter = threading.Timer(0.02, lambda: flag.__setitem__(0, 6))  # changed while it spins
    args[1] = 1 << 40
    setter.start()
    start = time.perf_counter()
    f(ctypes.addressof(flag), ctypes.addressof(args))
    assert 0.015 < time.perf_counter() - start < 5
    setter.join()
