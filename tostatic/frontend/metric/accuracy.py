"""paddle.metric.Metric / Accuracy and paddle.metric.accuracy.

Accuracy.compute marks, per sample, which of the top maxk predictions equal the label (a
float32 [N, maxk] tensor, as Paddle's); update() counts them on the host; accumulate() gives
the running top-k accuracies (a float when there is one k, else a list). accuracy() is the
`accuracy` op on paddle.topk's result.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic.frontend.tensor import math as T
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.naming import helper
from tostatic.frontend.tensor.search import argmax, topk
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ops import metric as metric_ops

__all__ = ["Accuracy", "Metric", "accuracy"]


class Metric:
    """Base: reset / update / accumulate / name, and compute (tensor work before update)."""

    def reset(self) -> None:
        raise NotImplementedError(f"function 'reset' not implemented in {type(self).__name__}.")

    def update(self, *args: Any) -> Any:
        raise NotImplementedError(f"function 'update' not implemented in {type(self).__name__}.")

    def accumulate(self) -> Any:
        raise NotImplementedError(f"function 'accumulate' not implemented in "
                                  f"{type(self).__name__}.")

    def name(self) -> Any:
        raise NotImplementedError(f"function 'name' not implemented in {type(self).__name__}.")

    def compute(self, *args: Any) -> Any:
        return args


def _labels_column(label: Any) -> Any:
    """Class ids as [N, 1]: ids given as [N] or [N, 1]; one-hot / soft labels by their argmax."""
    if len(label.shape) == 1 or (len(label.shape) == 2 and label.shape[-1] == 1):
        return T.reshape(label, [-1, 1])
    return argmax(label, axis=-1, keepdim=True)


class Accuracy(Metric):
    def __init__(self, topk: Sequence[int] = (1,), name: str | None = None, *args: Any,
                 **kwargs: Any) -> None:
        self.topk = tuple(topk)
        self.maxk = max(self.topk)
        base = name or "acc"
        self._name = [f"{base}_top{k}" for k in self.topk] if self.maxk != 1 else [base]
        self.reset()

    def compute(self, pred: Any, label: Any, *args: Any) -> Any:
        _, indices = topk(pred, self.maxk, axis=-1)
        label = _labels_column(label)
        return T.cast(T.equal(indices, T.cast(label, indices.dtype)), "float32")

    def update(self, correct: Any, *args: Any) -> float | list[float]:
        correct = np.asarray(correct.numpy() if isinstance(correct, Tensor) else correct)
        num_samples = int(np.prod(correct.shape[:-1]))
        accs = []
        for i, k in enumerate(self.topk):
            num_corrects = correct[..., :k].sum()
            accs.append(float(num_corrects) / num_samples)
            self.total[i] += num_corrects
            self.count[i] += num_samples
        return accs[0] if len(self.topk) == 1 else accs

    def reset(self) -> None:
        self.total = [0.0] * len(self.topk)
        self.count = [0] * len(self.topk)

    def accumulate(self) -> float | list[float]:
        res = [float(t) / c if c > 0 else 0.0 for t, c in zip(self.total, self.count)]
        return res[0] if len(self.topk) == 1 else res

    def name(self) -> list[str]:
        return self._name


def accuracy(input: Any, label: Any, k: int = 1, correct: Any = None, total: Any = None,  # noqa: A002
             name: str | None = None) -> Any:
    """Top-k accuracy of a batch (0-D float32); label is [N, 1] class ids."""
    if label.dtype.name == "int32":
        label = T.cast(label, "int64")
    values, indices = topk(input, k)
    with helper("accuracy", name):
        acc, n_correct, n_total = apply(metric_ops.Accuracy, values, indices, label)
    if isinstance(correct, Tensor):
        correct.set_value(n_correct.numpy().reshape(correct.shape))
    if isinstance(total, Tensor):
        total.set_value(n_total.numpy().reshape(total.shape))
    return acc
