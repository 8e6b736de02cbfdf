"""Paddle's accuracy op (what paddle.metric.accuracy runs): the share of samples whose label
is among their top-k indices.

Inputs in Paddle's slot order: Out (the top-k values, unused but required), Indices [N, k]
and Label [N, 1] (int64); results Accuracy (float32, 0-D), Correct and Total (int32, 0-D).
"""
from __future__ import annotations

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, Legacy, PdOp, pd_op

INDEX_DTYPES = (dtypes.int32, dtypes.int64)


@pd_op
class Accuracy(PdOp):
    name = "pd.accuracy"
    INPUTS = ("out", "indices", "label")
    NUM_RESULTS = 3
    PADDLE = Legacy("accuracy", {"Out": "out", "Indices": "indices", "Label": "label"},
                    {"Accuracy": 0, "Correct": 1, "Total": 2})
    NAME_HINT = "accuracy"
    NONDIFF = True  # counts

    @staticmethod
    def infer(out: Abstract, indices: Abstract, label: Abstract) -> list[Abstract]:
        if indices.ndim != 2 or label.ndim != 2 or (label.shape[1] not in (1, -1)):
            raise ShapeError(f"pd.accuracy: indices must be [N, k] and label [N, 1], got "
                             f"{list(indices.shape)} and {list(label.shape)}")
        if indices.dtype not in INDEX_DTYPES or label.dtype not in INDEX_DTYPES:
            raise ShapeError(f"pd.accuracy: indices and label must be integers, got "
                             f"{indices.dtype.name} and {label.dtype.name}")
        return [Abstract((), dtypes.float32), Abstract((), dtypes.int32),
                Abstract((), dtypes.int32)]

    @staticmethod
    def eager(out: np.ndarray, indices: np.ndarray, label: np.ndarray) -> list[np.ndarray]:
        total = indices.shape[0]
        correct = int((indices == label.reshape(-1, 1)).any(axis=1).sum())
        acc = np.float32(correct / total) if total else np.float32(0)
        return [np.asarray(acc, np.float32), np.asarray(correct, np.int32),
                np.asarray(total, np.int32)]
