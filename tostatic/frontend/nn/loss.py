"""paddle.nn loss layers: each keeps its options and calls its nn.functional form."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn import functional_loss as F
from tostatic.frontend.nn.layer import Layer

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "KLDivLoss", "L1Loss", "MSELoss",
           "NLLLoss", "SmoothL1Loss"]


def _check(layer: str, reduction: str, allowed: tuple[str, ...] = F.REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"The value of 'reduction' in {layer} should be "
                         f"{', '.join(repr(r) for r in allowed)}, but received {reduction!r}, "
                         f"which is not allowed.")


class CrossEntropyLoss(Layer):
    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 soft_label: bool = False, axis: int = -1, use_softmax: bool = True,
                 label_smoothing: float = 0.0, name: str | None = None) -> None:
        super().__init__()
        _check("CrossEntropyLoss", reduction)
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction
        self.soft_label, self.axis, self.use_softmax = soft_label, axis, use_softmax
        self.label_smoothing, self.name = label_smoothing, name

    def forward(self, input: Any, label: Any) -> Any:  # noqa: A002
        return F.cross_entropy(input, label, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, soft_label=self.soft_label,
                               axis=self.axis, use_softmax=self.use_softmax,
                               label_smoothing=self.label_smoothing, name=self.name)


class NLLLoss(Layer):
    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 name: str | None = None) -> None:
        super().__init__()
        _check("NLLLoss", reduction)
        self._weight, self._ignore_index, self._reduction = weight, ignore_index, reduction

    def forward(self, input: Any, label: Any) -> Any:  # noqa: A002
        return F.nll_loss(input, label, weight=self._weight, ignore_index=self._ignore_index,
                          reduction=self._reduction)


class MSELoss(Layer):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check("MSELoss", reduction)
        self.reduction = reduction

    def forward(self, input: Any, label: Any) -> Any:  # noqa: A002
        return F.mse_loss(input, label, self.reduction)


class L1Loss(Layer):
    def __init__(self, reduction: str = "mean", name: str | None = None) -> None:
        super().__init__()
        _check("L1Loss", reduction)
        self.reduction = reduction

    def forward(self, input: Any, label: Any) -> Any:  # noqa: A002
        return F.l1_loss(input, label, self.reduction)


class SmoothL1Loss(Layer):
    def __init__(self, reduction: str = "mean", delta: float = 1.0, is_huber: bool = True,
                 name: str | None = None) -> None:
        super().__init__()
        _check("SmoothL1Loss", reduction)
        self.reduction, self.delta, self.is_huber = reduction, delta, is_huber

    def forward(self, input: Any, label: Any) -> Any:  # noqa: A002
        return F.smooth_l1_loss(input, label, self.reduction, self.delta, self.is_huber)


class BCELoss(Layer):
    def __init__(self, weight: Any = None, reduction: str = "mean",
                 name: str | None = None) -> None:
        super().__init__()
        _check("BCELoss", reduction)
        self.weight, self.reduction = weight, reduction

    def forward(self, input: Any, label: Any) -> Any:  # noqa: A002
        return F.binary_cross_entropy(input, label, self.weight, self.reduction)


class BCEWithLogitsLoss(Layer):
    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None,
                 name: str | None = None) -> None:
        super().__init__()
        _check("BCEWithLogitsLoss", reduction)
        self.weight, self.reduction, self.pos_weight = weight, reduction, pos_weight

    def forward(self, logit: Any, label: Any) -> Any:
        return F.binary_cross_entropy_with_logits(logit, label, self.weight, self.reduction,
                                                  self.pos_weight)


class KLDivLoss(Layer):
    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__()
        _check("KLDivLoss", reduction, F.REDUCTIONS + ("batchmean",))
        self.reduction, self.log_target = reduction, log_target

    def forward(self, input: Any, label: Any) -> Any:  # noqa: A002
        return F.kl_div(input, label, self.reduction, self.log_target)
