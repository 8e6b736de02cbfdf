"""A wait off the GIL: `f(flag, args)` returns once the int64 at `flag` is no longer
args[0], or after args[1] time-stamp-counter cycles, spinning `args[2]` cycles more once it
changed (rdtsc, `pause` between reads). The thread pool's caller (codegen/threads.py) waits
for a pool thread's part with it: blocked in the kernel instead, it took 20-30 us to wake on
this VM after the part ended (ResNet-50 batch 1 on two threads: 25.2 -> 23.0 ms, interleaved
runs). The extra cycles (to let the pool thread drop the GIL first) are 0 by default."""
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


def spinner() -> Any:
    """f(flag address, args address), or None where there is no code for the host (not
    x86-64) or it does not compile."""
    try:
        from tostatic.codegen import engine  # noqa: PLC0415

        if not engine.host()["triple"].startswith("x86_64"):
            return None
        address = emit.compile_recipe(("spin", 3), _module, ["spin"])["spin"]
    except Exception:  # noqa: BLE001 (then the pool only blocks)
        return None
    return ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(address)
