"""paddle.nn.ClipGradBy*: gradient clipping, which the optimizer applies before weight decay.

Each is called with [(param, grad)] and returns the pairs with clipped gradients; a parameter
whose ParamAttr says need_clip=False keeps its gradient (and does not count in the global
norm), as in Paddle. Built from public tensor functions, so a traced step clips too.
"""
from __future__ import annotations

from typing import Any

from tostatic.frontend.tensor import math as T
from tostatic.frontend.tensor.reduction import sum as reduce_sum

__all__ = ["ClipGradBase", "ClipGradByGlobalNorm", "ClipGradByNorm", "ClipGradByValue"]


def _clipped(param: Any) -> bool:
    return getattr(param, "need_clip", True) is not False


def _squared_norm(g: Any) -> Any:
    return reduce_sum(T.square(g))


class ClipGradBase:
    def __call__(self, params_grads: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        return [(p, self._clip(g) if _clipped(p) else g) for p, g in params_grads
                if g is not None]

    def _clip(self, grad: Any) -> Any:
        raise NotImplementedError


class ClipGradByValue(ClipGradBase):
    """Clip every element to [min, max]; min defaults to -max."""

    def __init__(self, max: float, min: float | None = None) -> None:  # noqa: A002
        max = float(max)  # noqa: A001
        self.min = -max if min is None else float(min)
        self.max = max
        if self.min > self.max:
            raise ValueError(f"ClipGradByValue: min ({self.min}) must not exceed max ({self.max})")

    def _clip(self, grad: Any) -> Any:
        return T.clip(grad, self.min, self.max)

    def __str__(self) -> str:
        return f"Clip Gradient By Value, min = {self.min:f}, max={self.max:f}"


class ClipGradByNorm(ClipGradBase):
    """Scale each gradient whose L2 norm exceeds clip_norm down to that norm (Paddle's
    clip_by_norm: g * clip_norm / max(norm, clip_norm))."""

    def __init__(self, clip_norm: float) -> None:
        self.clip_norm = float(clip_norm)

    def _clip(self, grad: Any) -> Any:
        norm = T.sqrt(_squared_norm(grad))
        limit = T.full([], self.clip_norm, grad.dtype)
        return T.multiply(grad, T.divide(limit, T.maximum(norm, limit)))

    def __str__(self) -> str:
        return f"Gradient Clip By Norm, clip_norm={self.clip_norm:f}"


class ClipGradByGlobalNorm(ClipGradBase):
    """Scale all gradients by clip_norm / max(global_norm, clip_norm), the global norm over
    every clipped gradient (auto_skip_clip: leave them alone unless it exceeds clip_norm)."""

    def __init__(self, clip_norm: float, group_name: str = "default_group",
                 auto_skip_clip: bool = False) -> None:
        self.clip_norm = float(clip_norm)
        self.group_name = group_name
        self.auto_skip_clip = auto_skip_clip

    def __call__(self, params_grads: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        pairs = [(p, g) for p, g in params_grads if g is not None]
        squares = [_squared_norm(g) for p, g in pairs if _clipped(p)]
        if not squares:
            return pairs
        total = squares[0]
        for s in squares[1:]:
            total = T.add(total, s)
        norm = T.sqrt(total)
        limit = T.full([], self.clip_norm, norm.dtype)
        if self.auto_skip_clip and not bool(T.greater_than(norm, limit)):
            return pairs
        scale = T.divide(limit, T.maximum(norm, limit))
        return [(p, T.multiply(g, scale) if _clipped(p) else g) for p, g in pairs]

    def __str__(self) -> str:
        return f"Gradient Clip By GlobalNorm, global_norm={self.clip_norm:f}"
