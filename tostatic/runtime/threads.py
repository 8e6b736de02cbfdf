"""How many threads the math libraries use: Config.set_cpu_math_library_num_threads(n) and
TOSTATIC_NUM_THREADS.

With n > 1 the bound kernels (runtime/kernels.py) split each large GEMM and im2col copy over
n threads of their own (numpy releases the GIL), and BLAS (numpy's OpenBLAS, or MKL) runs one
thread per call: measured on a shared 2-core machine, OpenBLAS's own threads spin-wait when
the cores are oversubscribed and took 10-250x longer than one thread (benchmarks/results.md);
splitting ourselves keeps one BLAS call per core. BLAS is set through its own C API
(OpenBLAS's `openblas_set_num_threads`, MKL's `MKL_Set_Num_Threads`), found with ctypes among
the libraries loaded in this process (what threadpoolctl does, without the dependency). The
setting is process-wide, as the BLAS's own is. `current()` is what the kernels read, and
`parallel` is codegen/threads.py's: one pool of threads serves every kernel.
"""
from __future__ import annotations

import ctypes
import os

import numpy  # noqa: F401  (loads the BLAS whose threads are set here)

from tostatic.codegen import set_num_threads as codegen_threads
from tostatic.codegen.threads import (  # noqa: F401 (the one pool: codegen's)
    CALL_ARGS, parallel, parallel_calls)

ENV = "TOSTATIC_NUM_THREADS"
_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads", "MKL_Set_Num_Threads")
_requested: int | None = None


def from_environment() -> int | None:
    value = os.environ.get(ENV)
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{ENV}={value!r}: expected a positive integer") from None
    if n < 1:
        raise ValueError(f"{ENV}={value!r}: expected a positive integer")
    return n


def _blas_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps
                           if ("openblas" in line.lower() or "libmkl_rt" in line)
                           and line.split()[-1].startswith("/")})
    except OSError:
        return []


def set_num_threads(n: int) -> str:
    """Set the BLAS thread count (and ours); says how it was set."""
    global _requested
    if int(n) < 1:
        raise ValueError(f"the number of threads must be positive, got {n}")
    _requested = int(n)
    codegen_threads(_requested)  # the generated kernels split their work themselves too
    return set_blas_threads(1)


def set_blas_threads(n: int) -> str:
    """The BLAS's own thread count, through its C API (ctypes) in the libraries loaded in
    this process: OpenBLAS (numpy's wheels) or MKL; says how it was set."""
    for path in _blas_libraries():
        lib = ctypes.CDLL(path)
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(n))
                return f"{name} ({os.path.basename(path)})"
    return "no BLAS thread control found"


def current() -> int:
    """The thread count asked for (set_num_threads or TOSTATIC_NUM_THREADS), else 1."""
    return _requested or from_environment() or 1


def apply_environment() -> None:
    """Honour TOSTATIC_NUM_THREADS once, if set and nothing was asked for explicitly."""
    n = from_environment()
    if n is not None and _requested is None:
        set_num_threads(n)
