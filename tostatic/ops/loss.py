"""Losses read from exported programs: softmax_with_cross_entropy (what
paddle.nn.functional.cross_entropy writes), loaded and run.

Two results in Paddle's slot order: Softmax (softmax of the logits along `axis`, or the logits
themselves when use_softmax is off: they are probabilities already) and Loss (the logits'
shape with a 1 on `axis`). Hard labels (int32/int64, a 1 on `axis`) pick -log p[label], 0
where the label is ignore_index; soft labels (the logits' shape and dtype) give
-sum(label * log p). As in Paddle's kernel, log p is the log of the softmax, with log 0 taken
as -1e20 (its TolerableValue), and a label outside [0, classes) is an error when it runs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir.attributes import BOOL, INT, attr
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.activation import Softmax
from tostatic.ops.embedding import INDEX_DTYPES, check_ids
from tostatic.ops.shapes import normalize_axis

APPROX_INF = 1e20


def _softmax_ce_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """(softmax - onehot(label)) times the loss cotangent (0 where ignored), plus softmax's own."""
    logits, label = inputs
    softmax, _ = outputs
    g_soft, g_loss = cts
    if not attrs["use_softmax"]:
        raise UnsupportedError(f"{cls.name}: no gradient for use_softmax=False")
    axis = attrs["axis"] % len(e.shape(logits))
    if attrs["soft_label"]:
        d = A.sub(e, A.mul(e, softmax, A.e(e, "pd.sum", label, axis=(axis,), keepdim=True)), label)
    else:
        depth = e.shape(logits)[axis]
        keep = A.mask(e, A.e(e, "pd.not_equal", label, A.full_like(e, label, attrs["ignore_index"])),
                      logits)
        safe = A.mul(e, A.cast(e, label, e.dtype(logits)), keep)
        onehot = A.e(e, "pd.one_hot", A.e(e, "pd.squeeze", A.cast(e, safe, e.dtype(label)),
                                          axes=(axis,)), depth=depth, dtype=e.dtype(logits))
        if axis != len(e.shape(logits)) - 1:
            perm = list(range(len(e.shape(logits)) - 1))
            perm.insert(axis, len(perm))
            onehot = A.transpose(e, onehot, perm)
        d = A.mul(e, A.sub(e, softmax, onehot), keep)
    d = A.mul(e, d, g_loss)
    soft = softmax  # the Softmax result's own cotangent
    back = A.mul(e, soft, A.sub(e, g_soft, A.e(e, "pd.sum", A.mul(e, g_soft, soft), axis=(axis,),
                                                 keepdim=True)))
    return [A.add(e, d, back), None]


@pd_op
class SoftmaxWithCrossEntropy(PdOp):
    name = "pd.softmax_with_cross_entropy"
    INPUTS = ("logits", "label")
    ATTRS = {"soft_label": attr(BOOL, False), "use_softmax": attr(BOOL, True),
             "numeric_stable_mode": attr(BOOL, True), "ignore_index": attr(INT, -100),
             "axis": attr(INT, -1)}
    NUM_RESULTS = 2
    PADDLE = Legacy("softmax_with_cross_entropy", {"Logits": "logits", "Label": "label"},
                    {"Softmax": 0, "Loss": 1},
                    {"axis": From("INT", "axis"), "ignore_index": From("INT", "ignore_index"),
                     "numeric_stable_mode": From("BOOLEAN", "numeric_stable_mode"),
                     "soft_label": From("BOOLEAN", "soft_label"),
                     "use_softmax": From("BOOLEAN", "use_softmax")},
                    keeps_extra_attrs=True)
    NAME_HINT = "softmax_with_cross_entropy"
    vjp = classmethod(_softmax_ce_vjp)

    @classmethod
    def infer(cls, logits: Abstract, label: Abstract, soft_label: bool, use_softmax: bool,
              numeric_stable_mode: bool, ignore_index: int, axis: int) -> list[Abstract]:
        if not logits.dtype.is_floating:
            raise ShapeError(f"{cls.name}: logits must be floating, got {logits.dtype.name}")
        ax = normalize_axis(axis, logits.ndim, f"{cls.name} axis")
        loss_shape = tuple(1 if i == ax else d for i, d in enumerate(logits.shape))
        want = logits.shape if soft_label else loss_shape
        if label.ndim != logits.ndim or any(
                a >= 0 and b >= 0 and a != b for a, b in zip(label.shape, want)):
            raise ShapeError(f"{cls.name}: label must have shape {list(want)} "
                             f"({'soft' if soft_label else 'hard'} labels for logits "
                             f"{list(logits.shape)}, axis {axis}), got {list(label.shape)}")
        if soft_label and label.dtype != logits.dtype:
            raise ShapeError(f"{cls.name}: soft labels must be {logits.dtype.name}, got "
                             f"{label.dtype.name}")
        if not soft_label and label.dtype not in INDEX_DTYPES:
            raise ShapeError(f"{cls.name}: hard labels must be int32 or int64, got "
                             f"{label.dtype.name}")
        return [logits, Abstract(loss_shape, logits.dtype)]

    @classmethod
    def eager(cls, logits: np.ndarray, label: np.ndarray, soft_label: bool, use_softmax: bool,
              numeric_stable_mode: bool, ignore_index: int, axis: int) -> list[np.ndarray]:
        ax = axis % logits.ndim
        p = Softmax.eager(logits, ax) if use_softmax else logits
        with np.errstate(divide="ignore"):
            log_p = np.log(p)
        np.maximum(log_p, logits.dtype.type(-APPROX_INF), out=log_p)
        if soft_label:
            loss = -(label * log_p).sum(axis=ax, keepdims=True)
            return [p, loss.astype(logits.dtype, copy=False)]
        ignored = label == ignore_index
        check_ids(cls.name, "label", label, 0, logits.shape[ax], ignore_index)
        picked = np.take_along_axis(log_p, np.where(ignored, 0, label), axis=ax)
        return [p, np.where(ignored, logits.dtype.type(0), -picked)]
