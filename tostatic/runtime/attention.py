"""pd.fused_attention's bound kernel: per head, q_h k_h^T by BLAS straight from the rows of
the QKV projection (a head's columns are a strided matrix BLAS reads as it is: no split copy),
the mask added and the softmax taken in place by one compiled row kernel
(codegen.rows.masked_softmax_kernel), and p v_h by BLAS straight into the head's columns of
the [batch, seq, heads * head_dim] result (no merge copy). The scores are kept head-major
([heads, batch, seq_q, seq_k], one scratch buffer), so with several threads each takes a
range of heads and its rows are one contiguous block for the row kernel.

Masks the kernel takes: none, or [batch or 1, 1, 1, seq_k] (padding masks, as BERT's);
another shape keeps the op's eager (the reference, which broadcasts any).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic import codegen
from tostatic.codegen.calls import CallCache
from tostatic.runtime import threads

# below this many flops a call runs on one thread (a hand-off costs 20-50 us)
PARALLEL_FLOPS = 4_000_000


def _heads(x: np.ndarray, heads: int) -> np.ndarray:
    """[b, s, heads * d] -> [heads, b, s, d], a view (the last dim is unit-stride)."""
    b, s, hd = x.shape
    return x.reshape(b, s, heads, hd // heads).transpose(2, 0, 1, 3)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def attention_factory(attrs: dict[str, Any], ins: Sequence[np.ndarray], out: np.ndarray
                      ) -> tuple[list[tuple[str, tuple[int, ...], Any]],
                                 Callable[[list[np.ndarray]], Callable[..., None]], str] | None:
    """(scratch, binder, kind) as runtime.kernels.Bound takes them, or None (eager)."""
    if not codegen.enabled():
        return None
    q, k, v = ins[:3]
    mask = ins[3] if len(ins) > 3 else None
    heads = attrs["num_heads"]
    b, sq, hd = q.shape
    sk = k.shape[1]
    if q.dtype.name not in ("float32", "float64") or any(a.dtype != q.dtype for a in ins) \
            or k.shape != (b, sk, hd) or v.shape != (b, sk, hd) or not sq * sk:
        return None
    if mask is not None and (mask.shape[1:] != (1, 1, sk) or mask.shape[0] not in (1, b)):
        return None
    from tostatic.codegen import rows  # llvmlite loads on first use
    kernel = rows.masked_softmax_kernel(q.dtype.name)
    # mask row of score row r: (r / sq) % b, or row 0 of a one-row mask
    mask_step = sk if mask is not None and mask.shape[0] == b else 0
    workers = threads.current()
    flops = 4 * b * sq * sk * hd
    parts = min(workers, heads) if workers > 1 and flops >= PARALLEL_FLOPS else 1
    row_bytes = b * sq * sk * q.itemsize  # one head's scores

    def bind(arrays: list[np.ndarray]) -> Callable[..., None]:
        scores = arrays[0]  # [heads, b, sq, sk]
        base = _address(scores)
        zeros = np.zeros(sk, q.dtype)
        calls = CallCache()

        def prepare(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: tuple[np.ndarray, ...],
                    out: np.ndarray) -> Callable[[], None]:
            m = _address(mask[0] if mask else zeros)  # contiguous (run sees to it)
            q4, k4, v4, o4 = (_heads(a, heads) for a in (q, k, v, out))
            kt = k4.swapaxes(-1, -2)

            def heads_range(lo: int, hi: int, _: int = 0) -> None:
                np.matmul(q4[lo:hi], kt[lo:hi], out=scores[lo:hi])
                kernel(base + lo * row_bytes, m, (hi - lo) * b * sq, sk, sq, b, mask_step)
                np.matmul(scores[lo:hi], v4[lo:hi], out=o4[lo:hi])

            def whole() -> None:
                np.matmul(q4, kt, out=scores)
                kernel(base, m, heads * b * sq, sk, sq, b, mask_step)
                np.matmul(scores, v4, out=o4)
            return whole if parts == 1 else (
                lambda: threads.parallel(heads_range, heads, parts))

        def run(q: np.ndarray, k: np.ndarray, v: np.ndarray, *mask: np.ndarray,
                out: np.ndarray) -> None:
            if mask and not mask[0].flags.c_contiguous:  # a copy of this run's values
                prepare(q, k, v, (np.ascontiguousarray(mask[0]),), out)()
            else:  # the arrays stay alive with their prepared call
                calls.get((q, k, v, *mask, out), lambda: prepare(q, k, v, mask, out))()
        return run
    return [("attention-scores", (heads, b, sq, sk), q.dtype)], bind, "attention"
