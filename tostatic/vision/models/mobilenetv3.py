"""MobileNetV3 small and large (Howard et al. 2019), as paddle.vision.models builds them:
inverted residual blocks with optional squeeze-excitation (hard sigmoid gate), ReLU or hard
swish, batch norms with epsilon 0.001 and momentum 0.99."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from tostatic import nn
from tostatic.nn import functional as F
from tostatic.vision.models._utils import ConvNormActivation, _make_divisible, refuse_pretrained

_ACTIVATIONS: dict[str | None, Any] = {None: None, "relu": nn.ReLU, "hardswish": nn.Hardswish}


class SqueezeExcitation(nn.Layer):
    """Channel gate: global average pool, 1x1 conv (`fc1`), activation, 1x1 conv (`fc2`),
    scale activation; the input times the gate."""

    def __init__(self, input_channels: int, squeeze_channels: int,
                 activation: Callable[..., nn.Layer] = nn.ReLU,
                 scale_activation: Callable[..., nn.Layer] = nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.fc1 = nn.Conv2D(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2D(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, input: Any) -> Any:
        gate = self.activation(self.fc1(self.avgpool(input)))
        return self.scale_activation(self.fc2(gate))

    def forward(self, input: Any) -> Any:
        return self._scale(input) * input


class InvertedResidualConfig:
    """One block's settings; channel counts are scaled and rounded to multiples of 8."""

    def __init__(self, in_channels: int, kernel: int, expanded_channels: int,
                 out_channels: int, use_se: bool, activation: str | None, stride: int,
                 scale: float = 1.0) -> None:
        self.in_channels = self.adjust_channels(in_channels, scale=scale)
        self.kernel = kernel
        self.expanded_channels = self.adjust_channels(expanded_channels, scale=scale)
        self.out_channels = self.adjust_channels(out_channels, scale=scale)
        self.use_se = use_se
        if activation not in _ACTIVATIONS:
            raise RuntimeError(f"The activation function is not supported: {activation}")
        self.activation_layer = _ACTIVATIONS[activation]
        self.stride = stride

    @staticmethod
    def adjust_channels(channels: float, scale: float = 1.0) -> int:
        return _make_divisible(channels * scale, 8)


class InvertedResidual(nn.Layer):
    """`expand_conv` (1x1, when the expanded width differs), `bottleneck_conv` (depthwise
    k x k), `mid_se` (when use_se), `linear_conv` (1x1, no activation); the input is added
    when stride is 1 and the width stays."""

    def __init__(self, in_channels: int, expanded_channels: int, out_channels: int,
                 filter_size: int, stride: int, use_se: bool,
                 activation_layer: Callable[..., nn.Layer] | None,
                 norm_layer: Callable[..., nn.Layer]) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and in_channels == out_channels
        self.use_se = use_se
        self.expand = in_channels != expanded_channels
        conv = partial(ConvNormActivation, norm_layer=norm_layer)
        if self.expand:
            self.expand_conv = conv(in_channels, expanded_channels, kernel_size=1, stride=1,
                                    padding=0, activation_layer=activation_layer)
        self.bottleneck_conv = conv(expanded_channels, expanded_channels,
                                    kernel_size=filter_size, stride=stride,
                                    padding=(filter_size - 1) // 2, groups=expanded_channels,
                                    activation_layer=activation_layer)
        if use_se:
            self.mid_se = SqueezeExcitation(expanded_channels,
                                            _make_divisible(expanded_channels // 4),
                                            scale_activation=nn.Hardsigmoid)
        self.linear_conv = conv(expanded_channels, out_channels, kernel_size=1, stride=1,
                                padding=0, activation_layer=None)

    def forward(self, x: Any) -> Any:
        y = self.expand_conv(x) if self.expand else x
        y = self.bottleneck_conv(y)
        if self.use_se:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.use_res_connect else y


class MobileNetV3(nn.Layer):
    """A 3x3 stride-2 stem (`conv`), the blocks of `config` (`blocks`), a 1x1 conv to 6x the
    last block's input width (`lastconv`), pooling, and the classifier Linear, Hardswish,
    Dropout(0.2), Linear."""

    def __init__(self, config: list[InvertedResidualConfig], last_channel: int,
                 scale: float = 1.0, num_classes: int = 1000, with_pool: bool = True) -> None:
        super().__init__()
        self.config = config
        self.scale = scale
        self.last_channel = last_channel
        self.num_classes = num_classes
        self.with_pool = with_pool
        self.firstconv_in_channels = config[0].in_channels
        self.lastconv_in_channels = config[-1].in_channels
        self.lastconv_out_channels = self.lastconv_in_channels * 6
        norm = partial(nn.BatchNorm2D, epsilon=0.001, momentum=0.99)
        self.conv = ConvNormActivation(3, self.firstconv_in_channels, kernel_size=3, stride=2,
                                       padding=1, groups=1, activation_layer=nn.Hardswish,
                                       norm_layer=norm)
        self.blocks = nn.Sequential(*[
            InvertedResidual(c.in_channels, c.expanded_channels, c.out_channels, c.kernel,
                             c.stride, c.use_se, c.activation_layer, norm) for c in config])
        self.lastconv = ConvNormActivation(self.lastconv_in_channels,
                                           self.lastconv_out_channels, kernel_size=1, stride=1,
                                           padding=0, groups=1, norm_layer=norm,
                                           activation_layer=nn.Hardswish)
        if with_pool:
            self.avgpool = nn.AdaptiveAvgPool2D(1)
        if num_classes > 0:
            self.classifier = nn.Sequential(
                nn.Linear(self.lastconv_out_channels, last_channel), nn.Hardswish(),
                nn.Dropout(p=0.2), nn.Linear(last_channel, num_classes))

    def forward(self, x: Any) -> Any:
        x = self.lastconv(self.blocks(self.conv(x)))
        if self.with_pool:
            x = self.avgpool(x)
        if self.num_classes > 0:
            x = self.classifier(F.flatten(x, 1))
        return x


# (in, kernel, expanded, out, squeeze-excitation, activation, stride)
_SMALL = [(16, 3, 16, 16, True, "relu", 2), (16, 3, 72, 24, False, "relu", 2),
          (24, 3, 88, 24, False, "relu", 1), (24, 5, 96, 40, True, "hardswish", 2),
          (40, 5, 240, 40, True, "hardswish", 1), (40, 5, 240, 40, True, "hardswish", 1),
          (40, 5, 120, 48, True, "hardswish", 1), (48, 5, 144, 48, True, "hardswish", 1),
          (48, 5, 288, 96, True, "hardswish", 2), (96, 5, 576, 96, True, "hardswish", 1),
          (96, 5, 576, 96, True, "hardswish", 1)]
_LARGE = [(16, 3, 16, 16, False, "relu", 1), (16, 3, 64, 24, False, "relu", 2),
          (24, 3, 72, 24, False, "relu", 1), (24, 5, 72, 40, True, "relu", 2),
          (40, 5, 120, 40, True, "relu", 1), (40, 5, 120, 40, True, "relu", 1),
          (40, 3, 240, 80, False, "hardswish", 2), (80, 3, 200, 80, False, "hardswish", 1),
          (80, 3, 184, 80, False, "hardswish", 1), (80, 3, 184, 80, False, "hardswish", 1),
          (80, 3, 480, 112, True, "hardswish", 1), (112, 3, 672, 112, True, "hardswish", 1),
          (112, 5, 672, 160, True, "hardswish", 2), (160, 5, 960, 160, True, "hardswish", 1),
          (160, 5, 960, 160, True, "hardswish", 1)]


class MobileNetV3Small(MobileNetV3):
    def __init__(self, scale: float = 1.0, num_classes: int = 1000,
                 with_pool: bool = True) -> None:
        super().__init__([InvertedResidualConfig(*row, scale) for row in _SMALL],
                         last_channel=_make_divisible(1024 * scale, 8), scale=scale,
                         with_pool=with_pool, num_classes=num_classes)


class MobileNetV3Large(MobileNetV3):
    def __init__(self, scale: float = 1.0, num_classes: int = 1000,
                 with_pool: bool = True) -> None:
        super().__init__([InvertedResidualConfig(*row, scale) for row in _LARGE],
                         last_channel=_make_divisible(1280 * scale, 8), scale=scale,
                         with_pool=with_pool, num_classes=num_classes)


def mobilenet_v3_small(pretrained: bool = False, scale: float = 1.0,
                       **kwargs: Any) -> MobileNetV3Small:
    refuse_pretrained("mobilenet_v3_small", pretrained)
    return MobileNetV3Small(scale=scale, **kwargs)


def mobilenet_v3_large(pretrained: bool = False, scale: float = 1.0,
                       **kwargs: Any) -> MobileNetV3Large:
    refuse_pretrained("mobilenet_v3_large", pretrained)
    return MobileNetV3Large(scale=scale, **kwargs)
