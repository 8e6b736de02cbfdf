"""The packed GEMM's weight layouts (codegen/gemm.py), made once at bind time and memoised
across processes by the plan cache (runtime/plan_cache.py)."""
from __future__ import annotations

import numpy as np

from tostatic.codegen.prepared import prepared


@prepared
def pack_rows(w: np.ndarray, mr: int) -> np.ndarray:
    """W [M, K] as mr-row panels [P, K, mr] (rows past M zero): the conv mode's A."""
    m, k = w.shape
    p = -(-m // mr)
    padded = np.zeros((p * mr, k), np.float32)
    padded[:m] = w
    return np.ascontiguousarray(padded.reshape(p, mr, k).transpose(0, 2, 1))


@prepared
def pack_cols(w: np.ndarray, nr: int) -> np.ndarray:
    """W [K, N] as nr-column panels [Q, K, nr] (columns past N zero): the matmul mode's B."""
    k, n = w.shape
    q = -(-n // nr)
    padded = np.zeros((k, q * nr), np.float32)
    padded[:, :n] = w
    return np.ascontiguousarray(padded.reshape(k, q, nr).transpose(1, 0, 2))
