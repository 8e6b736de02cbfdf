"""Pieces the architectures share: the conv + norm + activation block, channel rounding, and
the refusal of `pretrained=True`."""
from __future__ import annotations

from typing import Any, Callable

from tostatic.nn import BatchNorm2D, Conv2D, ReLU, Sequential


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """`v` rounded to the nearest multiple of `divisor` (at least `min_value`, default
    `divisor`), bumped up one step when rounding lost more than 10% (MobileNet's rule)."""
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


class ConvNormActivation(Sequential):
    """Conv2D, then `norm_layer(out_channels)` unless None, then `activation_layer()` unless
    None (paddle.vision.ops.ConvNormActivation): sublayers '0', '1', '2'. The padding defaults
    to 'same' for odd kernels; the conv has a bias only when there is no norm layer (unless
    `bias` says otherwise)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any = 3,
                 stride: Any = 1, padding: Any = None, groups: int = 1,
                 norm_layer: Callable[..., Any] | None = BatchNorm2D,
                 activation_layer: Callable[..., Any] | None = ReLU, dilation: int = 1,
                 bias: bool | None = None) -> None:
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        with_bias = norm_layer is None if bias is None else bias
        parts = [Conv2D(in_channels, out_channels, kernel_size, stride, padding,
                        dilation=dilation, groups=groups, bias_attr=with_bias)]
        if norm_layer is not None:
            parts.append(norm_layer(out_channels))
        if activation_layer is not None:
            parts.append(activation_layer())
        super().__init__(*parts)


class PretrainedWeightsError(RuntimeError):
    """`pretrained=True` asked for weights tostatic cannot download."""


def refuse_pretrained(arch: str, pretrained: bool) -> None:
    """Raise if `pretrained`: tostatic has no network access and ships no weights."""
    if pretrained:
        raise PretrainedWeightsError(
            f"{arch}(pretrained=True): tostatic does not download pretrained weights (it has "
            f"no network access). Build the model with pretrained=False and load Paddle's "
            f"weights into it: model.set_state_dict(tostatic.load('{arch}.pdparams')), with "
            f"the .pdparams file of paddle.vision.models.{arch} fetched separately (or a "
            f"state dict of numpy arrays, e.g. from a Paddle model's state_dict())")
