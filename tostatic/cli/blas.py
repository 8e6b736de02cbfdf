"""The thread count of numpy's BLAS (OpenBLAS), read and set at run time through its C API.

OpenBLAS reads OPENBLAS_NUM_THREADS only when it is loaded, which `import tostatic` (numpy)
has done before any option is parsed; its set/get functions work at any time. numpy's wheels
bundle OpenBLAS under a mangled name (scipy_openblas64_), found here among the libraries the
process has loaded. Elsewhere (another BLAS, not Linux), `set_threads` says it could not.
"""
from __future__ import annotations

import ctypes
import re
from functools import lru_cache

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
            "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
            "openblas_get_num_threads")


@lru_cache(maxsize=1)
def _openblas() -> ctypes.CDLL | None:
    import numpy  # noqa: F401  (loads the library we look for)

    try:
        with open("/proc/self/maps") as f:
            paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", f.read())))
    except OSError:
        return None
    for path in paths:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _function(names: tuple[str, ...]):  # type: ignore[no-untyped-def]
    lib = _openblas()
    for name in names if lib is not None else ():
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn
    return None


def get_threads() -> int | None:
    fn = _function(_GETTERS)
    return int(fn()) if fn is not None else None


def set_threads(n: int) -> bool:
    """Set BLAS's thread count; False when this process's BLAS cannot be reached."""
    fn = _function(_SETTERS)
    if fn is None:
        return False
    fn(ctypes.c_int(n))
    return True
