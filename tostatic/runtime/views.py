"""Ops that only move elements (reshape, squeeze, unsqueeze, flatten, transpose, slice) as
numpy views made with what a bound plan knows: the input's shape, so the index or target
shape is computed once. A generic step (the op's eager through run_eager) costs 3-6 us of
Python; BERT runs 46 of them a pass, 0.2 ms at batch 1.

Each view is checked once, at bind time, against the op's eager kernel on the same input and
the shape the plan recorded; an op whose view disagrees (or has other inputs, or several
results) keeps its eager kernel.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic.ir.op_rules import slice_bounds

View = Callable[[np.ndarray], np.ndarray]


def _reshape(attrs: dict[str, Any], x: np.ndarray, out: np.ndarray) -> View:
    shape = out.shape
    return lambda x: x.reshape(shape)


def _transpose(attrs: dict[str, Any], x: np.ndarray, out: np.ndarray) -> View:
    perm = tuple(attrs["perm"])
    return lambda x: x.transpose(perm)


def _slice(attrs: dict[str, Any], x: np.ndarray, out: np.ndarray) -> View:
    index = [slice(None)] * x.ndim
    for axis, start, end in zip(attrs["axes"], attrs["starts"], attrs["ends"]):
        ax = axis % x.ndim
        index[ax] = slice(*slice_bounds(x.shape[ax], start, end))
    key, shape = tuple(index), out.shape
    if attrs["decrease_axis"]:
        return lambda x: x[key].reshape(shape)
    return lambda x: x[key]


# by op name: a warm start (runtime/warm_start.py) binds from names, with no op class loaded
VIEWS: dict[str, Callable[[dict[str, Any], np.ndarray, np.ndarray], View]] = {
    "pd.reshape": _reshape, "pd.squeeze": _reshape, "pd.unsqueeze": _reshape,
    "pd.flatten": _reshape, "pd.flatten_to_2d": _reshape, "pd.transpose": _transpose,
    "pd.slice": _slice,
}


def view_kernel(op: Any, attrs: dict[str, Any], ins: Sequence[Any], out: Any,
                checked: bool = False) -> Callable[..., list[np.ndarray]] | None:
    """A step kernel `(x) -> [view of x]` for `op` on these recorded shapes, or None.
    `checked`: this very view was checked against the op's kernel before (a warm start's
    record of a bind that did), so it is not run again (it would need the op's class)."""
    make = VIEWS.get(op.name)
    if make is None or len(ins) != 1 or len(op.results) != 1 \
            or not isinstance(ins[0], np.ndarray) or not isinstance(out, np.ndarray) \
            or out.dtype.kind not in "biufc":
        return None
    view = make(attrs, ins[0], out)
    if checked:
        return lambda x: [view(x)]
    got = view(ins[0])
    # the op's own kernel on the same input (the recorded values may be placeholders the
    # first run has not filled yet: plan.py's shapes ahead), compared bit for bit
    want = np.asarray(type(op).run_eager([ins[0]], attrs)[0])
    if got.shape != out.shape or got.dtype != out.dtype or want.shape != out.shape or \
            not np.array_equal(np.ascontiguousarray(got).view(np.uint8),
                               np.ascontiguousarray(want).view(np.uint8)):
        return None
    return lambda x: [view(x)]
