"""How many threads the math libraries use: Config.set_cpu_math_library_num_threads(n) and
TOSTATIC_NUM_THREADS.

BLAS (numpy's OpenBLAS, or MKL) is set through threadpoolctl when it is installed, else
through OpenBLAS's own `openblas_set_num_threads` found with ctypes among the libraries
loaded in this process. The setting is process-wide, as the BLAS's own is. `current()` is
what kernels that split work themselves read (codegen's, through TOSTATIC_NUM_THREADS).
"""
from __future__ import annotations

import ctypes
import importlib.util
import os

import numpy  # noqa: F401  (loads the BLAS whose threads are set here)

ENV = "TOSTATIC_NUM_THREADS"
_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
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


def _openblas_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps if "openblas" in line.lower()
                           and line.split()[-1].startswith("/")})
    except OSError:
        return []


def set_num_threads(n: int) -> str:
    """Set the BLAS thread count (and ours); says how it was set."""
    global _requested
    if int(n) < 1:
        raise ValueError(f"the number of threads must be positive, got {n}")
    _requested = int(n)
    if importlib.util.find_spec("threadpoolctl") is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=_requested, user_api="blas")
        return "threadpoolctl"
    for path in _openblas_libraries():
        lib = ctypes.CDLL(path)
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(_requested))
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
