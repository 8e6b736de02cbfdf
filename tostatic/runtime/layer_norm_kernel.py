"""layer_norm's bound kernel, for a plan that reads only its Y (inference: Mean and
Variance are training's): codegen's row kernel (codegen.rows) writing Y into the planned
buffer and the statistics into scratch, its ctypes arguments prepared once per set of
arrays (codegen.calls.CallCache). The generic compiled kernel allocated three results and
read five addresses a call: 19 us a call on BERT's [128, 256] rows for a 5 us kernel. With
several threads, rows of 1 << 16 elements or more split into parts run by
threads.parallel_calls (machine code, no GIL switch; rows.layer_norm_split)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic import codegen
from tostatic.codegen.calls import CallCache
from tostatic.codegen.threads import MIN_NATIVE_ELEMENTS, parts_for


def layer_norm_factory(weights: Sequence[str], attrs: dict[str, Any],
                       ins: Sequence[np.ndarray], out: np.ndarray
                       ) -> tuple[list[tuple[str, tuple[int, ...], Any]],
                                  Callable[[list[np.ndarray]], Callable[..., None]], str] | None:
    """(scratch, binder, kind) as runtime.kernels.Bound takes them, or None (eager)."""
    x = ins[0]
    if not codegen.enabled() or x.dtype.name not in ("float32", "float64") \
            or any(w.dtype != x.dtype for w in ins[1:]):
        return None
    axis = attrs["begin_norm_axis"]
    rows, n = int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))
    if not rows or not n or any(w.size != n for w in ins[1:]):
        return None
    from tostatic.codegen import rows as row_kernels  # llvmlite loads on first use
    eps = float(attrs["epsilon"])
    dtype, has = x.dtype.name, ("scale" in weights, "bias" in weights)
    row_kernels.layer_norm_part(dtype, *has)  # (compiled now, not in the first run)
    parts = parts_for(rows, n, MIN_NATIVE_ELEMENTS)

    def bind(arrays: list[np.ndarray]) -> Callable[..., None]:
        stats = arrays[0]
        calls = CallCache()

        def prepare(x: np.ndarray, given: tuple[np.ndarray, ...], out: np.ndarray
                    ) -> Callable[[], None]:
            named = dict(zip(weights, (w.reshape(-1) for w in given)))  # contiguous: views
            keep = (x, out, stats, *named.values())  # alive as long as the call
            sc, bi = named.get("scale"), named.get("bias")
            addresses = (x.ctypes.data, 0 if sc is None else sc.ctypes.data,
                         0 if bi is None else bi.ctypes.data, out.ctypes.data,
                         stats.ctypes.data, stats.ctypes.data + rows * x.itemsize)
            call = row_kernels.layer_norm_split(dtype, *has, addresses, rows, n, eps, parts)
            return lambda: call() if keep else None

        def run(x: np.ndarray, *given: np.ndarray, out: np.ndarray) -> None:
            if x.flags.c_contiguous and all(w.flags.c_contiguous for w in given):
                calls.get((x, out, *given), lambda: prepare(x, given, out))()
            else:  # copies of this run's values, prepared for this call alone
                prepare(np.ascontiguousarray(x),
                        tuple(np.ascontiguousarray(w) for w in given), out)()
        return run
    return [("layer-norm-stats", (2, rows), x.dtype)], bind, "rows"
