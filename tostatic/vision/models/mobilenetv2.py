"""MobileNetV2 (Sandler et al. 2018), as paddle.vision.models builds it: inverted residual
blocks with ReLU6, channel counts times `scale` rounded to multiples of 8."""
from __future__ import annotations

from typing import Any, Callable

from tostatic import nn
from tostatic.nn import functional as F
from tostatic.vision.models._utils import ConvNormActivation, _make_divisible, refuse_pretrained

# (expansion t, output channels c, repeats n, first stride s)
_SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]


class InvertedResidual(nn.Layer):
    """`conv`: a 1x1 expansion (unless expand_ratio is 1), a 3x3 depthwise conv, both with BN
    and ReLU6, then a linear 1x1 projection + BN; the input is added when the shape stays."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: float,
                 norm_layer: Callable[..., nn.Layer] = nn.BatchNorm2D) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        self.stride = stride
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Layer] = []
        if expand_ratio != 1:
            layers.append(ConvNormActivation(inp, hidden, kernel_size=1, norm_layer=norm_layer,
                                             activation_layer=nn.ReLU6))
        layers += [ConvNormActivation(hidden, hidden, stride=stride, groups=hidden,
                                      norm_layer=norm_layer, activation_layer=nn.ReLU6),
                   nn.Conv2D(hidden, oup, 1, 1, 0, bias_attr=False), norm_layer(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Any) -> Any:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Layer):
    def __init__(self, scale: float = 1.0, num_classes: int = 1000,
                 with_pool: bool = True) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.with_pool = with_pool
        norm = nn.BatchNorm2D
        channels = _make_divisible(32 * scale, 8)
        self.last_channel = _make_divisible(1280 * max(1.0, scale), 8)
        features: list[nn.Layer] = [ConvNormActivation(3, channels, stride=2, norm_layer=norm,
                                                       activation_layer=nn.ReLU6)]
        for t, c, n, s in _SETTING:
            out = _make_divisible(c * scale, 8)
            for i in range(n):
                features.append(InvertedResidual(channels, out, s if i == 0 else 1,
                                                 expand_ratio=t, norm_layer=norm))
                channels = out
        features.append(ConvNormActivation(channels, self.last_channel, kernel_size=1,
                                           norm_layer=norm, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        if with_pool:
            self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        if num_classes > 0:
            self.classifier = nn.Sequential(nn.Dropout(0.2),
                                            nn.Linear(self.last_channel, num_classes))

    def forward(self, x: Any) -> Any:
        x = self.features(x)
        if self.with_pool:
            x = self.pool2d_avg(x)
        if self.num_classes > 0:
            x = self.classifier(F.flatten(x, 1))
        return x


def mobilenet_v2(pretrained: bool = False, scale: float = 1.0, **kwargs: Any) -> MobileNetV2:
    refuse_pretrained("mobilenet_v2", pretrained)
    return MobileNetV2(scale=scale, **kwargs)
