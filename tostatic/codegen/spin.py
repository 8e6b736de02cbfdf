"""A wait off the GIL: `f(flag, args)` returns once the int64 at `flag` is no longer
args[0], or after args[1] time-stamp-counter cycles, spinning `args[2]` cycles more once it
changed (rdtsc, `pause` between reads). The thread pool's caller (codegen/threads.py) waits
for a pool thread's part with it: blocked in the kernel instead, it took 20-30 us to wake on
this VM after the part ended (ResNet-50 batch 1 on two threads: 25.2 -> 23.0 ms, interleaved
runs). The extra cycles (to let the pool thread drop the GIL first) are 0 by default.

`pool()` is the thread pool's machine code (threads.parallel_calls), no GIL anywhere:
`work(task)` claims and runs parts of a call; `serve(ctl, args)` is a pool thread's loop: it
stores args[3] (when >= 0) into ctl[1] first, the Python call it finished (stored here, off
the GIL, so a caller seeing it never waits for the GIL the pool thread still holds), then
runs every machine-code call handed out (ctl[0] its serial, ctl[3] its task) and returns on
a Python call (ctl[3] 0); after args[1] cycles without a call, or args[2] cycles after
ctl[2] (the runs under way) fell to 0, it returns too, or, where args[4] is set (Linux),
sleeps in a futex wait on ctl[0] (counted in ctl[4]) and goes on serving when woken: woken
into Python instead, a pool thread needed the GIL to get back here, which it held ~0.3 ms
on a vCPU just woken from an idle (the first kernels of a run after the benchmark's 0.3 s
idle waited for it). args[0] is the last serial it saw. `wake(ctl)` wakes the sleepers
(a run starting, a Python call); `finish(task, args)` is the caller's: it wakes the sleepers
(args[2]: ctl, or 0), works on its own call, then spins until its parts all ended."""
from __future__ import annotations

import ctypes
from typing import Any

from llvmlite import ir

from tostatic.codegen import emit
from tostatic.codegen.emit import I64, PTR


def _wait_until(b: ir.IRBuilder, fn: ir.Function, tsc: Any, pause: Any, end: Any,
                keep_going: Any) -> None:
    """Spin with `pause` while keep_going() (built at the loop head) and rdtsc < end."""
    head, body, done = (fn.append_basic_block(n) for n in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    b.cbranch(keep_going(), body, done)
    b.position_at_end(body)
    b.call(pause, [])
    b.cbranch(b.icmp_unsigned("<", b.call(tsc, []), end), head, done)
    b.position_at_end(done)


def _module() -> emit.KernelModule:
    """void k(i64 *flag, i64 *args = [seen, cycles, after])."""
    km = emit.KernelModule()
    fn, b = km.function("spin", [PTR] * 2)
    flag, args = fn.args
    m = km.module
    tsc = ir.Function(m, ir.FunctionType(I64, []), "llvm.readcyclecounter")
    pause = ir.Function(m, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")

    def arg(i: int) -> Any:
        return b.load(b.gep(args, [emit.i64(i)], source_etype=I64), typ=I64)
    seen = arg(0)
    _wait_until(b, fn, tsc, pause, b.add(b.call(tsc, []), arg(1)),
                lambda: b.icmp_signed("==", b.load_atomic(flag, "acquire", 8, typ=I64), seen))
    _wait_until(b, fn, tsc, pause, b.add(b.call(tsc, []), arg(2)), lambda: ir.Constant(
        ir.IntType(1), 1))
    b.ret_void()
    return km


ARGS = 8  # a call is fn(a0, ..., a7): integers or pointers (extra ones unread); threads.CALL_ARGS


class _Indirect:
    """A function pointer to call: llvmlite (opaque pointers) takes the callee's type from a
    `function_type` attribute only a Function has."""

    def __init__(self, value: Any, function_type: ir.FunctionType):
        self.value, self.function_type = value, function_type

    def __getattr__(self, name: str) -> Any:
        return getattr(self.value, name)


def _work(km: emit.KernelModule, name: str = "work", from_back: bool = False) -> ir.Function:
    """void work(i64 *task = [claim, finished, calls, starts]): claims parts one at a time
    (the claim word is serial << 32 | end << 16 | next part, end = parts at first: a
    compare-and-swap on it takes the next part of that very call), runs part p's calls (rows
    starts[p] .. starts[p + 1] of `calls`, each [fn, a0, ..., a7]: fn(a0, ..., a7)) and
    counts it finished. from_back (the pool threads' `work_back`): where the claim word's
    top bit is set, the last unclaimed part instead (end - 1, end lowered), so the caller
    takes parts from the front and the pool's thread from the back: each thread then takes
    the same end of every layer (the rows it wrote are in its cache: a read of what the
    other core wrote costs 1.5-1.8x here), and a late thread still costs the caller no wait."""
    fn, b = km.function(name, [PTR])
    task, = fn.args

    def at(p: Any, i: Any) -> Any:
        return b.gep(p, [emit.i64(i) if isinstance(i, int) else i], source_etype=I64)
    head, try_, run, out = (fn.append_basic_block(n) for n in ("head", "try", "run", "out"))
    b.branch(head)
    b.position_at_end(head)
    c = b.load_atomic(at(task, 0), "acquire", 8, typ=I64)
    front = b.and_(c, emit.i64(0xFFFF))
    parts = b.and_(b.lshr(c, emit.i64(16)), emit.i64(0xFFFF))
    b.cbranch(b.icmp_unsigned("<", front, parts), try_, out)
    b.position_at_end(try_)
    part, new = front, b.add(c, emit.i64(1))
    if from_back:
        back = b.icmp_signed("<", c, emit.i64(0))  # (the top bit)
        part = b.select(back, b.sub(parts, emit.i64(1)), front)
        new = b.select(back, b.sub(c, emit.i64(1 << 16)), new)
    ok = b.extract_value(b.cmpxchg(at(task, 0), c, new, "acq_rel", "acquire"), 1)
    b.cbranch(ok, run, head)
    b.position_at_end(run)
    calls = b.inttoptr(b.load(at(task, 2), typ=I64), PTR)
    starts = b.inttoptr(b.load(at(task, 3), typ=I64), PTR)
    first = b.load(at(starts, part), typ=I64)
    last = b.load(at(starts, b.add(part, emit.i64(1))), typ=I64)
    with emit.loop(b, first, last) as r:
        row = at(calls, b.mul(r, emit.i64(ARGS + 1)))
        target = b.inttoptr(b.load(row, typ=I64), PTR)
        values = [b.load(at(row, i + 1), typ=I64) for i in range(ARGS)]
        b.call(_Indirect(target, ir.FunctionType(ir.VoidType(), [I64] * ARGS)), values)
    b.atomic_rmw("add", at(task, 1), emit.i64(1), "release")
    b.branch(head)
    b.position_at_end(out)
    b.ret_void()
    return fn


SYS_FUTEX, FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE = 202, 128, 129  # Linux x86-64


def _futex(b: ir.IRBuilder, word: Any, op: int, value: Any) -> None:
    """The futex system call on the int32 at `word` (no timeout), as an instruction: no
    library address in the cached machine code."""
    ftype = ir.FunctionType(I64, [I64, PTR, I64, I64, I64])
    b.asm(ftype, "syscall", "={rax},{rax},{rdi},{rsi},{rdx},{r10},~{rcx},~{r11},~{memory}",
          [emit.i64(SYS_FUTEX), word, emit.i64(op), value, emit.i64(0)], True)


def _wake_sleepers(b: ir.IRBuilder, fn: ir.Function, ctl: Any) -> None:
    """After the caller's store of ctl[0]: wake the pool threads asleep on it, if any. The
    fence orders that store before the read of ctl[4] (the sleepers count theirs before
    they read ctl[0]: either this read sees them or they see the new serial)."""
    count, call, done = (fn.append_basic_block(n) for n in ("count", "wake", "woken"))
    b.cbranch(b.icmp_unsigned("!=", b.ptrtoint(ctl, I64), emit.i64(0)), count, done)
    b.position_at_end(count)
    b.fence("seq_cst")
    sleepers = b.load_atomic(b.gep(ctl, [emit.i64(4)], source_etype=I64), "monotonic", 8,
                             typ=I64)
    b.cbranch(b.icmp_signed(">", sleepers, emit.i64(0)), call, done)
    b.position_at_end(call)
    _futex(b, ctl, FUTEX_WAKE_PRIVATE, emit.i64(0x7FFFFFFF))
    b.branch(done)
    b.position_at_end(done)


def _pool_module() -> emit.KernelModule:
    """work (above); serve(i64 *ctl, i64 *args) and finish(i64 *task, i64 *args) below."""
    km = emit.KernelModule()
    work = _work(km)
    work_back = _work(km, "work_back", from_back=True)
    m = km.module
    tsc = ir.Function(m, ir.FunctionType(I64, []), "llvm.readcyclecounter")
    pause = ir.Function(m, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")

    # serve(ctl = [handed out, finished, runs, task, sleepers],
    #       args = [seen, cap, tail, done, sleep])
    fn, b = km.function("serve", [PTR] * 2)
    ctl, args = fn.args

    def at(p: Any, i: int) -> Any:
        return b.gep(p, [emit.i64(i)], source_etype=I64)
    seen0, cap, tail, done, may_sleep = (b.load(at(args, i), typ=I64) for i in range(5))
    entry = b.block
    store, spin, head, new, native, body, over_, sleep, wait, woke, out = (
        fn.append_basic_block(n) for n in ("store", "spin", "head", "new", "native", "body",
                                           "over", "sleep", "wait", "woke", "out"))
    b.cbranch(b.icmp_signed(">=", done, emit.i64(0)), store, spin)
    b.position_at_end(store)
    b.fence("release")  # (llvmlite's store_atomic wants typed pointers)
    b.store(done, at(ctl, 1))
    b.branch(spin)
    b.position_at_end(spin)
    start0 = b.call(tsc, [])
    b.branch(head)
    b.position_at_end(head)
    seen, start, idle = b.phi(I64), b.phi(I64), b.phi(I64)  # idle: runs last under way
    for phi, v in ((seen, seen0), (start, start0), (idle, start0)):
        phi.add_incoming(v, spin)
    now_serial = b.load_atomic(at(ctl, 0), "acquire", 8, typ=I64)
    b.cbranch(b.icmp_signed("!=", now_serial, seen), new, body)
    b.position_at_end(new)
    task = b.load_atomic(at(ctl, 3), "acquire", 8, typ=I64)
    b.cbranch(b.icmp_signed("==", task, emit.i64(0)), out, native)  # 0: a Python call
    b.position_at_end(native)
    b.call(work_back, [b.inttoptr(task, PTR)])
    after = b.call(tsc, [])
    for phi, v in ((seen, now_serial), (start, after), (idle, after)):
        phi.add_incoming(v, native)
    b.branch(head)
    b.position_at_end(body)
    b.call(pause, [])
    now = b.call(tsc, [])
    running = b.icmp_signed("!=", b.load_atomic(at(ctl, 2), "monotonic", 8, typ=I64),
                            emit.i64(0))
    since = b.select(running, now, idle)
    for phi, v in ((seen, seen), (start, start), (idle, since)):
        phi.add_incoming(v, body)
    over = b.or_(b.icmp_unsigned(">", b.sub(now, start), cap),
                 b.icmp_unsigned(">", b.sub(now, since), tail))
    b.cbranch(over, over_, head)
    b.position_at_end(over_)
    b.cbranch(b.icmp_signed("!=", may_sleep, emit.i64(0)), sleep, out)
    b.position_at_end(sleep)  # counted first, then ctl[0] read (see _wake_sleepers)
    b.atomic_rmw("add", at(ctl, 4), emit.i64(1), "seq_cst")
    latest = b.load_atomic(at(ctl, 0), "seq_cst", 8, typ=I64)
    b.cbranch(b.icmp_signed("==", latest, seen), wait, woke)
    b.position_at_end(wait)  # (returns at once where ctl[0] changed meanwhile)
    _futex(b, at(ctl, 0), FUTEX_WAIT_PRIVATE, b.and_(seen, emit.i64(0xFFFFFFFF)))
    b.branch(woke)
    b.position_at_end(woke)
    b.atomic_rmw("sub", at(ctl, 4), emit.i64(1), "seq_cst")
    awake = b.call(tsc, [])
    for phi, v in ((seen, seen), (start, awake), (idle, awake)):
        phi.add_incoming(v, woke)
    b.branch(head)
    b.position_at_end(out)
    b.store(seen, at(args, 0))  # the last native call run here
    b.ret_void()
    del entry

    # wake(ctl): the sleepers woken (a run starting, a Python call handed out)
    fn, b = km.function("wake", [PTR])
    _wake_sleepers(b, fn, fn.args[0])
    b.ret_void()

    # finish(task, args = [parts, cap, ctl]): wake the sleepers (ctl 0: none), work, then
    # spin until every part finished or cap
    fn, b = km.function("finish", [PTR] * 2)
    task_p, args = fn.args
    _wake_sleepers(b, fn, b.inttoptr(b.load(at(args, 2), typ=I64), PTR))
    b.call(work, [task_p])
    parts, cap = (b.load(at(args, i), typ=I64) for i in range(2))
    end = b.add(b.call(tsc, []), cap)
    head, body, out = (fn.append_basic_block(n) for n in ("head", "body", "out"))
    b.branch(head)
    b.position_at_end(head)
    finished = b.load_atomic(at(task_p, 1), "acquire", 8, typ=I64)
    b.cbranch(b.icmp_signed("<", finished, parts), body, out)
    b.position_at_end(body)
    b.call(pause, [])
    b.cbranch(b.icmp_unsigned("<", b.call(tsc, []), end), head, out)
    b.position_at_end(out)
    b.ret_void()
    return km


def pool() -> dict[str, Any] | None:
    """{"serve": g(ctl, args), "finish": h(task, args), "work": w(task), "wake": v(ctl)}
    (ctypes functions of two / one addresses), or None as for `spinner`."""
    names = ["serve", "finish", "work", "wake"]
    addresses = _addresses(("spin-pool", 4), _pool_module, names)
    if addresses is None:
        return None
    two = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
    one = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    return {"serve": two(addresses["serve"]), "finish": two(addresses["finish"]),
            "work": one(addresses["work"]), "wake": one(addresses["wake"])}


def _addresses(recipe: tuple[Any, ...], build: Any, names: list[str]) -> dict[str, int] | None:
    try:
        from tostatic.codegen import engine  # noqa: PLC0415

        if not engine.host()["triple"].startswith("x86_64"):
            return None
        return emit.compile_recipe(recipe, build, names)
    except Exception:  # noqa: BLE001 (then the pool only blocks)
        return None


def spinner() -> Any:
    """f(flag address, args address), or None where there is no code for the host (not
    x86-64) or it does not compile."""
    addresses = _addresses(("spin", 3), _module, ["spin"])
    return None if addresses is None else ctypes.CFUNCTYPE(
        None, ctypes.c_void_p, ctypes.c_void_p)(addresses["spin"])
