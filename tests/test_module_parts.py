"""codegen/module_parts.py: a large module cut into parts at its function definitions (every
function defined once, every part a valid module), the parts compiled at once and linked in
the one engine (the packed GEMM's results against numpy, cold and from the disk cache in a
fresh process), and the cache file of several objects (a file cut short is recompiled)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm
import numpy as np
import pytest

from tostatic.codegen import engine, gemm, im2col, module_parts
from tostatic.codegen import epilogue as epi

ROOT = Path(__file__).resolve().parent.parent
DEFINED = re.compile(r'^define (?:internal )?\S+ @"([^"]+)"', re.M)
pytestmark = pytest.mark.usefixtures("compiled_kernels")


def _gemm_text() -> str:
    expr, kinds = epi.epilogue_expr(("bias", "add", "relu"), "float32")
    return gemm.module_text("conv", expr, kinds, gemm.PREFETCH, gemm.COLUMN_TAIL)


@pytest.mark.skipif(not gemm.available(), reason="the packed GEMM needs AVX-512")
def test_parts_define_every_function_once_and_each_is_a_module():
    text = _gemm_text()
    parts = module_parts.split(text, 3)
    assert len(parts) == 3
    defined = [name for p in parts for name in DEFINED.findall(p)]
    assert sorted(defined) == sorted(DEFINED.findall(text))
    assert all("define internal" not in p for p in parts)  # (called from the other parts)
    for p in parts:
        llvm.parse_assembly(p.replace("__NAME__", "k_")).verify()
    sizes = [len(p) for p in parts]
    assert max(sizes) < 0.6 * len(text)  # (balanced by size)


def test_small_modules_and_single_threads_stay_whole():
    text = im2col._module("float32", 3, 3, 2, 2, 1, 1).text()
    assert module_parts.split(text, 2) == [text]
    assert module_parts.split("x" * (module_parts.SPLIT_BYTES + 1), 1) == [
        "x" * (module_parts.SPLIT_BYTES + 1)]


def test_workers_follow_the_environment(monkeypatch):
    monkeypatch.setenv("TOSTATIC_COMPILE_THREADS", "3")
    assert module_parts.workers() == 3
    monkeypatch.setenv("TOSTATIC_COMPILE_THREADS", "1")
    assert module_parts.workers() == 1


def test_pack_and_unpack_and_a_file_cut_short():
    a, b = b"\x7fELF one", b"\x7fELF two and more"
    assert module_parts.pack([a]) == a and module_parts.unpack(a) == [a]
    both = module_parts.pack([a, b])
    assert both.startswith(module_parts.MAGIC) and module_parts.unpack(both) == [a, b]
    for cut in (both[:-1], both[:len(module_parts.MAGIC) + 2]):
        with pytest.raises(ValueError, match="cut short"):
            module_parts.unpack(cut)


SCRIPT = textwrap.dedent("""
    import numpy as np
    from tostatic.codegen import engine, gemm
    from tostatic.codegen import epilogue as epi
    gemm.PREFETCH = 1008  # (a module of its own: no other test's IR)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((29, 70)).astype(np.float32)
    x = rng.standard_normal((70, 49)).astype(np.float32)
    bias, add = rng.standard_normal(29).astype(np.float32), rng.standard_normal((29, 49)).astype(np.float32)
    expr, kinds = epi.epilogue_expr(("bias", "add", "relu"), "float32")
    out = np.empty((29, 49), np.float32)
    gemm.PackedGemm("conv", w, expr, kinds)(x, out, [bias, add])
    want = np.maximum((w.astype(np.float64) @ x).astype(np.float32) + bias[:, None] + add, 0)
    np.testing.assert_allclose(out, want, rtol=2e-5, atol=1e-4)
    print(engine.STATS["compiled"], engine.STATS["loaded_from_disk"])
""")


@pytest.mark.skipif(not gemm.available(), reason="the packed GEMM needs AVX-512")
def test_a_module_in_parts_computes_and_loads_from_the_cache(tmp_path):
    env = {**os.environ, "TOSTATIC_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT),
           "TOSTATIC_COMPILE_THREADS": "2"}
    env.pop("TOSTATIC_KERNELS", None)

    def start() -> tuple[int, ...]:
        run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, text=True,
                             capture_output=True)
        assert run.returncode == 0, run.stderr[-2000:]
        return tuple(int(n) for n in run.stdout.split())
    assert start() == (1, 0)  # compiled, in two parts
    objects = list(tmp_path.glob("*.o"))
    assert len(objects) == 1 and objects[0].read_bytes().startswith(module_parts.MAGIC)
    assert start() == (0, 1)  # a fresh process links both parts from the one file
    objects[0].write_bytes(objects[0].read_bytes()[:-100])
    assert start() == (1, 0)  # cut short: compiled again
    assert start() == (0, 1)


def test_compiling_in_parts_leaves_llvmlites_lock_working():
    assert module_parts.run(["a", "b"], lambda text, slot: text.encode() * (slot + 1)) == [
        b"a", b"bb"]
    if module_parts.parallel():  # the lock serves every other thread as before
        from llvmlite.binding import ffi
        with ffi.lib._lock:
            assert engine.host()["cpu"]


def _storing_kernel() -> tuple[float, Any]:
    """A random value (IR of its own: compiled, not found in a cache) and the IR text of
    f(a, out, b) storing it in out[0]."""
    from tostatic.codegen import emit

    value = float(np.random.default_rng().integers(1, 1 << 20))

    def build() -> str:
        km = emit.KernelModule()
        fn, b = km.function("f", [emit.PTR] * 3)
        b.store(emit.F32(value), fn.args[1])
        b.ret_void()
        return km.text()
    return value, build


def test_a_kernel_compiled_meanwhile_waits_when_called_or_cast(tmp_path, monkeypatch):
    """emit.function_later: a generator's error raised at once; the function (compiled on
    a thread of its own) waits for its machine code when cast to an address or called."""
    import ctypes

    from tostatic.codegen import emit
    from tostatic.ir import scalar_expr as se

    monkeypatch.setenv("TOSTATIC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TOSTATIC_COMPILE_THREADS", "2")

    def bad() -> str:
        raise se.NotScalar("no code for this")
    with pytest.raises(se.NotScalar):
        emit.function_later(("test-bad", str(tmp_path)), bad, "__NAME__f", 3)
    value, build = _storing_kernel()
    f = emit.function_later(("test-later", value), build, "__NAME__f", 3)
    if module_parts.parallel():
        assert isinstance(f, emit.LaterFunction)
    assert ctypes.cast(f, ctypes.c_void_p).value
    out = np.zeros(2, np.float32)
    f(0, out.ctypes.data, 0)
    assert out.tolist() == [value, 0.0]
    again = emit.function_later(("test-later", value), build, "__NAME__f", 3)
    assert not isinstance(again, emit.LaterFunction)  # (in the process's engine now)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_fork_waits_for_kernels_compiling_meanwhile(tmp_path, monkeypatch):
    """A fork while a kernel compiles on a thread of its own (a first-ever start) waits for
    it: the child inherits no half-done LLVM state, and its kernels run."""
    from tostatic.codegen import emit

    monkeypatch.setenv("TOSTATIC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TOSTATIC_COMPILE_THREADS", "2")
    if not module_parts.parallel():
        pytest.skip("no second compile thread here")
    compile_now = engine._compile

    def slow_compile(*args: Any, **kwargs: Any) -> Any:  # still compiling at the fork
        time.sleep(0.3)
        return compile_now(*args, **kwargs)
    monkeypatch.setattr(engine, "_compile", slow_compile)
    value, build = _storing_kernel()
    f = emit.function_later(("test-fork", value), build, "__NAME__f", 3)
    assert isinstance(f, emit.LaterFunction) and engine._COMPILING  # compiling now
    pid = os.fork()
    if pid == 0:  # the child: its kernel runs
        out = np.zeros(2, np.float32)
        f(0, out.ctypes.data, 0)
        os._exit(0 if out.tolist() == [value, 0.0] else 3)
    assert not engine._COMPILING  # the fork waited for the compile
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child hung on its kernel")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0
