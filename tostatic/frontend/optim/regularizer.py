"""paddle.regularizer: weight decay added to a gradient before the update (Paddle's
append_regularization_ops, the `sum` of the gradient and this term): L2Decay adds
coeff * param, L1Decay coeff * sign(param). Built from public tensor functions, so it traces."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.tensor import math as T

__all__ = ["L1Decay", "L2Decay", "WeightDecayRegularizer"]


class WeightDecayRegularizer:
    def __init__(self, coeff: float = 0.0) -> None:
        if not isinstance(coeff, (int, float)):
            raise TypeError(f"{type(self).__name__}: coeff must be a float, got "
                            f"{type(coeff).__name__}")
        self._coeff = float(coeff)

    @property
    def coeff(self) -> float:
        return self._coeff

    def __call__(self, param: Any, grad: Any) -> Any:
        """The regularised gradient."""
        return T.add(grad, self.term(param))

    def term(self, param: Any) -> Any:
        raise NotImplementedError

    def __str__(self) -> str:
        return f"{type(self).__name__}, coeff={self._coeff:f}"

    __repr__ = __str__


class L2Decay(WeightDecayRegularizer):
    def term(self, param: Any) -> Any:
        return T.scale(param, self._coeff)


class L1Decay(WeightDecayRegularizer):
    def term(self, param: Any) -> Any:
        return T.scale(T.sign(param), self._coeff)
