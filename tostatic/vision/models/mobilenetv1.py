"""MobileNetV1 (Howard et al. 2017), as paddle.vision.models builds it: a strided 3x3 stem and
thirteen depthwise-separable blocks (sublayers conv2_1 .. conv6), channel counts times
`scale`."""
from __future__ import annotations

from typing import Any

from tostatic import nn
from tostatic.nn import functional as F
from tostatic.vision.models._utils import ConvNormActivation, refuse_pretrained

# (sublayer name, in channels, depthwise channels, pointwise out channels, stride), unscaled;
# the depthwise conv has as many groups as its unscaled channel count times scale
_BLOCKS = [("conv2_1", 32, 32, 64, 1), ("conv2_2", 64, 64, 128, 2),
           ("conv3_1", 128, 128, 128, 1), ("conv3_2", 128, 128, 256, 2),
           ("conv4_1", 256, 256, 256, 1), ("conv4_2", 256, 256, 512, 2)]
_BLOCKS += [(f"conv5_{i}", 512, 512, 512, 1) for i in range(1, 6)]
_BLOCKS += [("conv5_6", 512, 512, 1024, 2), ("conv6", 1024, 1024, 1024, 1)]


class DepthwiseSeparable(nn.Layer):
    """A 3x3 depthwise conv + BN + ReLU (`_depthwise_conv`), then a 1x1 conv + BN + ReLU
    (`_pointwise_conv`)."""

    def __init__(self, in_channels: int, out_channels1: int, out_channels2: int,
                 num_groups: int, stride: Any, scale: float) -> None:
        super().__init__()
        mid = int(out_channels1 * scale)
        self._depthwise_conv = ConvNormActivation(in_channels, mid, kernel_size=3,
                                                  stride=stride, padding=1,
                                                  groups=int(num_groups * scale))
        self._pointwise_conv = ConvNormActivation(mid, int(out_channels2 * scale),
                                                  kernel_size=1, stride=1, padding=0)

    def forward(self, x: Any) -> Any:
        return self._pointwise_conv(self._depthwise_conv(x))


class MobileNetV1(nn.Layer):
    def __init__(self, scale: float = 1.0, num_classes: int = 1000,
                 with_pool: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.num_classes = num_classes
        self.with_pool = with_pool
        self.conv1 = ConvNormActivation(in_channels=3, out_channels=int(32 * scale),
                                        kernel_size=3, stride=2, padding=1)
        self.dwsl = [self.add_sublayer(name, DepthwiseSeparable(
                         int(cin * scale), mid, out, mid, stride, scale))
                     for name, cin, mid, out, stride in _BLOCKS]
        if with_pool:
            self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        if num_classes > 0:
            self.fc = nn.Linear(int(1024 * scale), num_classes)

    def forward(self, x: Any) -> Any:
        x = self.conv1(x)
        for block in self.dwsl:
            x = block(x)
        if self.with_pool:
            x = self.pool2d_avg(x)
        if self.num_classes > 0:
            x = self.fc(F.flatten(x, 1))
        return x


def mobilenet_v1(pretrained: bool = False, scale: float = 1.0, **kwargs: Any) -> MobileNetV1:
    refuse_pretrained("mobilenet_v1", pretrained)
    return MobileNetV1(scale=scale, **kwargs)
