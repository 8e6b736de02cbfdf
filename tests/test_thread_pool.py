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


def test_a_call_row_has_the_arguments_the_pool_passes():
    from tostatic.codegen import spin

    assert threads.CALL_ARGS == spin.ARGS


def _libc(name):
    import ctypes

    return ctypes.cast(getattr(ctypes.CDLL(None), name), ctypes.c_void_p).value


def _rows(calls):
    import numpy as np

    out = np.zeros((len(calls), 1 + threads.CALL_ARGS), np.int64)
    for i, call in enumerate(calls):
        out[i, :len(call)] = call
    return out


@pytest.mark.parametrize("parts,per_part", [(1, 1), (2, 1), (3, 2), (7, 3), (16, 1)])
@pytest.mark.parametrize("native,from_back", [(True, True), (True, False), (False, True)])
def test_parallel_calls_run_every_call_once_in_its_parts_order(parts, per_part, native,
                                                               from_back, monkeypatch):
    """Part p's calls (memset of its own bytes, then a memmove over them, then ...) run in
    order, once: the bytes end as the last call of the part left them (pool threads taking
    parts from the back or, as the caller, from the front)."""
    import numpy as np

    monkeypatch.setitem(threads._STATE, "n", 2)
    monkeypatch.setattr(threads, "NATIVE_HANDOFF", native)
    monkeypatch.setattr(threads, "POOL_FROM_BACK", from_back)
    memset, memmove = _libc("memset"), _libc("memmove")
    buf = np.zeros((parts, 64), np.uint8)
    src = np.arange(64, dtype=np.uint8)
    calls, starts = [], [0]
    for p in range(parts):
        at = buf[p].ctypes.data
        for j in range(per_part):
            calls.append([memset, at, p * 10 + j, 64] if j % 2 == 0 else
                         [memmove, at, src.ctypes.data, 32])  # (the order shows)
        starts.append(len(calls))
    threads.parallel_calls(_rows(calls), np.array(starts, np.int64))
    for p in range(parts):
        j = per_part - 1 if per_part % 2 else per_part - 2  # the last memset
        want = np.full(64, p * 10 + j, np.uint8)
        if per_part % 2 == 0:
            want[:32] = src[:32]
        np.testing.assert_array_equal(buf[p], want)


def test_parallel_calls_run_parts_at_the_same_time(monkeypatch):
    """Part 0 (the caller's) spins until part 1 (a pool thread's) sets the flag: it would
    run for its whole 5 s cap if part 1 waited for it."""
    import time

    monkeypatch.setitem(threads._STATE, "n", 2)
    threads._compiled_waits()
    calls, (flag, _args) = _handshake(5.0)
    start = time.perf_counter()
    threads.parallel_calls(calls)
    assert flag[0] == 1 and time.perf_counter() - start < 2.5


def _handshake(cap_s):
    """Two one-call parts: part 0 spins (up to cap_s) until part 1 sets the flag."""
    import ctypes

    import numpy as np

    from tostatic.codegen.spin import spinner

    flag = np.zeros(1, np.int64)
    per_us = threads._cycles_per_us(spinner())
    args = np.array([0, int(per_us * cap_s * 1e6), 0], np.int64)
    wait = ctypes.cast(spinner(), ctypes.c_void_p).value
    calls = _rows([[wait, flag.ctypes.data, args.ctypes.data],
                   [_libc("memset"), flag.ctypes.data, 1, 1]])
    return calls, (flag, args)


def test_the_pool_thread_takes_parts_from_the_back(monkeypatch):
    """Part 0 (the caller's first) waits for flag A, part 1 for flag B (2 s cap each), part 2
    sets both: the pool's thread takes part 2 first (from the back), so the call ends at
    once; taking part 1 first it would wait out its 2 s cap."""
    import ctypes
    import time

    import numpy as np

    from tostatic.codegen.spin import spinner

    monkeypatch.setitem(threads._STATE, "n", 2)
    monkeypatch.setattr(threads, "POOL_FROM_BACK", True)
    threads._compiled_waits()
    flags = np.zeros(2, np.int64)
    per_us = threads._cycles_per_us(spinner())
    args = np.array([0, int(per_us * 2e6), 0], np.int64)
    wait, memset = ctypes.cast(spinner(), ctypes.c_void_p).value, _libc("memset")
    calls = _rows([[wait, flags[:1].ctypes.data, args.ctypes.data],
                   [wait, flags[1:].ctypes.data, args.ctypes.data],
                   [memset, flags.ctypes.data, 1, 1], [memset, flags[1:].ctypes.data, 1, 1]])
    start = time.perf_counter()
    threads.parallel_calls(calls, np.array([0, 1, 2, 4], np.int64))
    assert list(flags) == [1, 1] and time.perf_counter() - start < 1.5


def test_parallel_calls_nested_in_a_part_run_on_the_calling_thread(monkeypatch):
    import numpy as np

    monkeypatch.setitem(threads._STATE, "n", 2)
    bufs = np.zeros((2, 8), np.uint8)

    def outer(lo, hi, part):
        threads.parallel_calls(_rows([[_libc("memset"), bufs[part].ctypes.data, part + 1, 4],
                                      [_libc("memset"), bufs[part, 4:].ctypes.data, 9, 4]]))
    threads.parallel(outer, 2, 2)
    np.testing.assert_array_equal(bufs, [[1] * 4 + [9] * 4, [2] * 4 + [9] * 4])


def _asleep(worker):
    """The pool thread sleeps: on its bell in Python, or in the native loop's futex wait
    (where every pool thread sleeps: ctl[4] counts them)."""
    return worker.sleeping or threads._ctl[4] >= len(threads._workers)


def _spinning_pool():
    """Pool threads spin after a wake (SERVE_US) only where they and the caller are no more
    threads than CPUs; else they go back to sleep at once."""
    return len(threads._threads) < max(len(threads._allowed), 1)


def _eventually(condition, seconds=5.0, poll=0.001):
    """condition() seen true within `seconds` (poll 0: checked without pause, for a state
    that lasts SERVE_US only)."""
    import time

    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            return False
        if poll:
            time.sleep(poll)
    return True


def test_a_run_wakes_the_pool_and_it_sleeps_again_after(monkeypatch):
    """begin_run wakes the sleeping pool thread (it spins during the run), end_run lets it
    sleep once IDLE_US passed; the run count never goes below 0."""
    monkeypatch.setitem(threads._STATE, "n", 2)
    threads.parallel(lambda lo, hi, part: None, 2, 2)
    worker = threads._workers[0]
    assert _eventually(lambda: _asleep(worker)) or threads._compiled_waits().get("pool") is None
    threads.begin_run()
    try:
        assert threads._ctl[2] >= 1
        assert _eventually(lambda: not _asleep(worker), poll=0) or not _spinning_pool()
    finally:
        threads.end_run()
    threads.end_run()  # (unmatched: stays at 0)
    assert threads._ctl[2] == 0
    assert _eventually(lambda: _asleep(worker))


@pytest.mark.skipif(not threads.SLEEP_NATIVE, reason="the futex sleep is Linux's")
def test_the_pool_thread_sleeps_in_native_code_and_a_call_wakes_it(monkeypatch):
    """Past its spin the pool thread waits in the native loop's futex (counted in ctl[4]),
    not in Python; a native call wakes it there and it takes its part: part 0 (the
    caller's) waits for the flag only part 1 sets, so the call ends at once only if the
    sleeping thread woke and ran part 1 (else the caller runs it after a 2 s wait); a
    Python call wakes it too."""
    import time

    monkeypatch.setitem(threads._STATE, "n", 2)
    monkeypatch.setattr(threads, "POOL_FROM_BACK", True)
    if threads._compiled_waits().get("pool") is None:
        pytest.skip("no native pool on this host")
    threads.parallel(lambda lo, hi, part: None, 2, 2)
    worker = threads._workers[0]
    for _ in range(3):
        assert _eventually(lambda: threads._ctl[4] == len(threads._workers))
        assert not worker.sleeping
        calls, (flag, _args) = _handshake(2.0)
        start = time.perf_counter()
        threads.parallel_calls(calls)
        assert flag[0] == 1 and time.perf_counter() - start < 1.0
    assert _eventually(lambda: threads._ctl[4] == len(threads._workers))
    seen = []
    threads.parallel(lambda lo, hi, part: seen.append(threading.get_ident()), 2, 2)
    assert len(seen) == 2


def test_a_forked_child_starts_its_own_pool(monkeypatch):
    import os

    monkeypatch.setitem(threads._STATE, "n", 2)
    threads.parallel(lambda lo, hi, part: None, 2, 2)
    pid = os.fork()
    if pid == 0:  # the child: no pool thread yet; a split call makes one and finishes
        ok = not threads._threads
        seen = []
        threads.parallel(lambda lo, hi, part: seen.append(part), 4, 2)
        os._exit(0 if ok and sorted(seen) == [0, 1] and len(threads._threads) == 1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_parallel_calls_read_each_table_where_it_is_now(monkeypatch):
    """Call tables' addresses are kept by id (threads._address_of): a table changed in place
    runs its new rows, and fresh tables (dropped after each call, past the cache's size)
    each run their own."""
    import numpy as np

    monkeypatch.setitem(threads._STATE, "n", 2)
    monkeypatch.setattr(threads, "_ADDRESSES", {})
    memset = _libc("memset")
    buf = np.zeros((3, 8), np.uint8)
    calls = _rows([[memset, buf[0].ctypes.data, 1, 8], [memset, buf[1].ctypes.data, 2, 8]])
    threads.parallel_calls(calls)
    calls[1, 1:3] = [buf[2].ctypes.data, 3]
    threads.parallel_calls(calls)
    np.testing.assert_array_equal(buf[:, 0], [1, 2, 3])
    for i in range(1500):
        threads.parallel_calls(_rows([[memset, buf[i % 3].ctypes.data, i % 251, 8]]),
                               np.array([0, 1], np.int64))
        assert buf[i % 3, 7] == i % 251
    assert len(threads._ADDRESSES) <= 1024
