"""Compiled kernels (llvmlite), between the passes and the runtime.

`compiled_kernel(op)` is what the execution plan asks for each step: a callable
`(*input_arrays, out=None) -> list of output arrays` running generated machine code for the op,
or None when the op has none (then the op's numpy `eager` runs). Families: fused elementwise
trees with broadcasting (`elementwise`), softmax / log_softmax / layer_norm rows (`rows`),
reductions (`reduce`), depthwise convolution (`depthwise`), pooling (`pool`), and bias +
activation epilogues over a GEMM's output (`epilogue.bias_act`, and a fused conv's whole
epilogue in one pass, `epilogue.RowsEpilogue`); `calls` prepares a kernel's ctypes arguments
once per set of arrays. `engine` compiles for the
host CPU and caches the machine code on disk; `TOSTATIC_KERNELS=numpy` turns all of it off.
Kernels split large calls over `TOSTATIC_NUM_THREADS` threads (`set_num_threads`).
"""
from __future__ import annotations

import os
from typing import Any, Callable

from tostatic.codegen.threads import num_threads, set_num_threads

__all__ = ["compiled_kernel", "enabled", "num_threads", "set_num_threads"]


def enabled() -> bool:
    """False when TOSTATIC_KERNELS=numpy: the numpy reference kernels run everywhere."""
    return os.environ.get("TOSTATIC_KERNELS", "").strip().lower() != "numpy"


def compiled_kernel(op: Any) -> Callable[..., list[Any]] | None:
    """A generated kernel for `op` (a pd op), or None (also when TOSTATIC_KERNELS=numpy).
    Building it compiles nothing: code is generated on the first call, per dtype and
    broadcast pattern, and then reused (and cached on disk across processes)."""
    if not enabled():
        return None
    from tostatic.codegen.kernels import kernel_for  # llvmlite loads on first use only
    return kernel_for(op)
