"""lookup_table_v2's bound kernel for a table known at bind (a loaded model's weights): one
np.take into the planned buffer from a copy of the table whose padding row is zeros, so no
per-run mask of the padding ids. Ids the copy cannot serve (negative: -1 with padding_idx -1
gives zeros in Paddle; out of range: an error naming the op) take the op's eager, the
reference, whose result is copied in."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic.ops.embedding import LookupTableV2


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

    def bind(_: list[np.ndarray]) -> Callable[..., None]:
        def run(ids: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
            if ids.size and ids.min() >= 0:
                try:
                    np.take(table, ids, axis=0, out=out, mode="raise")
                    return
                except IndexError:
                    pass  # out of range: the eager below raises the op's error, naming it
            np.copyto(out, LookupTableV2.run_eager([ids, w], attrs)[0])
        return run
    return [], bind, "take"
