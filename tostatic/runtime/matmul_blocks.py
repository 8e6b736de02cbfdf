"""Products of a few rows by a weight, as GEMMs by column blocks of the weight, copied apart
once at bind time.

OpenBLAS (SkylakeX kernels, as numpy ships it) multiplies small problems, m * n * k up to
about 10^6, with a kernel that packs nothing; above that it packs the whole weight on every
call, which dominates when the rows are few. Measured here, one thread: 8 x 256 by 256 x 512
takes 33 us in one call, 12 us as two column blocks; 8 x 512 by 512 x 512, 67 us against
28 us. With 128 rows (BERT's GEMMs) the packed path is the faster one (80 against 95 us), so
only products of up to MAX_ROWS rows are split. With several threads, the blocks are shared
out among them only for large products: the MLP's 8 x 512 by 512 x 512 (4 MFLOP, 28 us)
took 1.5x longer on two threads than on one, the hand-off costing more than it saves.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tostatic.runtime import threads

SMALL_MNK = 1_000_000  # m * n * k OpenBLAS still runs with its unpacked small-matrix kernel
MAX_ROWS = 16
MIN_COLS = 16
# the blocks are a copy of the weight: a bigger one (a 1 GiB model's 8192 x 8192 layers) stays
# whole, its product bound by memory anyway, and the model's memory is not doubled
MAX_WEIGHT_BYTES = 4 << 20


def column_blocks(weight: np.ndarray, rows: int) -> list[tuple[int, int, np.ndarray]] | None:
    """The weight [K, N] as contiguous column blocks (lo, hi, block) each small enough for
    the unpacked kernel with `rows` rows; None when one GEMM is as good."""
    k, n = weight.shape
    if rows > MAX_ROWS or rows * k * n <= SMALL_MNK or rows * k * MIN_COLS > SMALL_MNK \
            or weight.nbytes > MAX_WEIGHT_BYTES:
        return None
    cols = max(MIN_COLS, SMALL_MNK // (rows * k) // MIN_COLS * MIN_COLS)
    parts = -(-n // max(MIN_COLS, cols - MIN_COLS))  # room for the edges' rounding
    # edges at multiples of MIN_COLS (whole vectors), the widths as even as that allows
    edges = [min(n, -(-n * i // parts) // MIN_COLS * MIN_COLS) for i in range(parts)] + [n]
    bounds = [(lo, hi) for lo, hi in zip(edges, edges[1:]) if hi > lo]
    return [(lo, hi, np.ascontiguousarray(weight[:, lo:hi])) for lo, hi in bounds]


def blocked_gemm(blocks: list[tuple[int, int, np.ndarray]],
                 workers: int) -> Callable[[np.ndarray, np.ndarray], None]:
    """gemm(x2, out2): out2 = x2 @ weight, a GEMM per column block (shared out among
    `workers` threads when several)."""
    def some(x2: np.ndarray, out2: np.ndarray, first: int, last: int) -> None:
        for lo, hi, w in blocks[first:last]:
            np.matmul(x2, w, out=out2[:, lo:hi])

    if workers <= 1 or len(blocks) < 2:
        return lambda x2, out2: some(x2, out2, 0, len(blocks))
    return lambda x2, out2: threads.parallel(lambda a, b, part: some(x2, out2, a, b),
                                             len(blocks), workers)
