"""lookup_table_v2's bound kernel for a table known at bind (a loaded model's weights): one
np.take into the planned buffer from a copy of the table whose padding row is zeros, so no
per-run mask of the padding ids. Ids the copy cannot serve (negative: -1 with padding_idx -1
gives zeros in Paddle; out of range: an error naming the op) take the op's eager, the
reference, whose result is copied in.

Where codegen is on, the gather is codegen/gather.py's machine code instead, split into
parts of ids (1 << 16 elements or more each) that threads.parallel_calls runs on the pool
without the GIL (np.take holds it: two Python parts took 170 us where one took 195, BERT's
word embedding at batch 8); an id it cannot serve sets a flag, and the eager path follows."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic import codegen
from tostatic.codegen.calls import CallCache
from tostatic.codegen.threads import (MIN_NATIVE_ELEMENTS, bounds, parallel_calls, part_calls,
                                      parts_for)
from tostatic.runtime.op_info import class_of


def embedding_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                      out: np.ndarray, const: Sequence[bool]
                      ) -> tuple[list, Callable[[list[np.ndarray]], Callable[..., None]], str] | None:
    """(scratch, binder, kind) as runtime.kernels.Bound takes them, or None (eager)."""
    ids, w = ins
    if not const[1] or w.ndim != 2 or ids.dtype.kind != "i":
        return None
    table = np.array(w, copy=True)
    pad = attrs["padding_idx"]
    if 0 <= pad < table.shape[0]:
        table[pad] = 0

    native = codegen.enabled() and ids.dtype.name in ("int32", "int64") and table.ndim == 2
    if native:
        from tostatic.codegen import gather  # llvmlite loads on first use
        take, id_dtype = gather.take_kernel(ids.dtype.name), ids.dtype
        width = table.shape[1] * table.itemsize

    def bind(_: list[np.ndarray]) -> Callable[..., None]:
        flag = np.zeros(1, np.int64)
        prepared = CallCache()

        def prepare(out: np.ndarray, n: int) -> Callable[[int], None]:
            """call(ids address) gathering n rows into `out` (the plan's buffer)."""
            parts = parts_for(n, table.shape[1], MIN_NATIVE_ELEMENTS)
            dims = np.array([[lo, hi, width, table.shape[0], flag.ctypes.data]
                             for lo, hi in bounds(n, parts)], np.int64)
            rows = part_calls(take, [table.ctypes.data, 0, out.ctypes.data], dims)
            if parts == 1:
                t, o, d = table.ctypes.data, out.ctypes.data, dims.ctypes.data
                return lambda ids: take(t, ids, o, d) if dims is not None else None

            def split(ids: int) -> None:
                _keep = dims  # noqa: F841 (the rows point at it)
                rows[:, 2] = ids
                parallel_calls(rows)
            return split

        def run(ids: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
            if native and ids.size and ids.flags.c_contiguous and out.flags.c_contiguous \
                    and out.dtype == table.dtype and ids.dtype == id_dtype \
                    and out.size == ids.size * table.shape[1]:
                flag[0] = 0
                prepared.get((out,), lambda: prepare(out, ids.size))(
                    ids.__array_interface__["data"][0])
                if not flag[0]:
                    return
            elif ids.size and ids.min() >= 0:
                try:
                    np.take(table, ids, axis=0, out=out, mode="raise")
                    return
                except IndexError:
                    pass  # out of range: the eager below raises the op's error, naming it
            np.copyto(out, class_of(op).run_eager([ids, w], attrs)[0])
        return run
    return [], bind, "take"
