"""Values a bound plan computes once, at bind: results of ops that read only their inputs'
shapes (full_like, shape), which a plan bound to one shape signature knows, and of pure ops
whose every input is a weight or such a value. BERT's position ids (full_like, cumsum,
subtract) and their embedding lookup become constants this way: four steps a run fewer.

The inference passes cannot fold these: the input shapes are dynamic in the file ([batch,
seq_len] of -1s), known only when a plan is bound to the shapes of a run.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# ops whose result depends on their inputs' shapes and dtypes alone, not their values (by
# name, as kernels.py's FACTORIES)
SHAPE_ONLY = ("pd.full_like", "pd.full_batch_size_like", "pd.shape")


def bind_constants(body: Any, record: Sequence[Any]) -> dict[int, np.ndarray]:
    """slot -> value of every step result known before running, for the shapes of
    `record` (whose other values may be placeholders: only shapes are read from them)."""
    known = {i: (v.numpy() if hasattr(v, "numpy") else v) for i, v in body.constants}
    folded: dict[int, np.ndarray] = {}
    for op, (kernel, ins, outs) in zip(body.ops, body.steps):
        if op.regions or getattr(op, "EFFECTS", False) or not outs:
            continue
        if op.name not in SHAPE_ONLY and not (ins and all(i in known for i in ins)):
            continue
        try:
            results = kernel([known[i] if i in known else record[i] for i in ins])
        except Exception:  # noqa: BLE001 - the op then runs as a step, and fails there
            continue
        if len(results) != len(outs):
            continue
        for o, r in zip(outs, results):
            known[o] = folded[o] = np.asarray(r)
    return folded
