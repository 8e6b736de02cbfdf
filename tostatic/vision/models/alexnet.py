"""AlexNet (Krizhevsky et al. 2012), as paddle.vision.models.alexnet builds it: 224x224 input
(the classifier expects 256x6x6 features), every weight and bias drawn from
Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
from __future__ import annotations

import math
from typing import Any

from tostatic import nn
from tostatic.nn import functional as F
from tostatic.nn.initializer import Uniform
from tostatic.vision.models._utils import refuse_pretrained


def _uniform_attrs(fan_in: int) -> dict[str, Any]:
    bound = 1.0 / math.sqrt(fan_in)
    return {"weight_attr": nn.ParamAttr(initializer=Uniform(-bound, bound)),
            "bias_attr": nn.ParamAttr(initializer=Uniform(-bound, bound))}


def _conv(cin: int, cout: int, k: int, stride: int, padding: int) -> nn.Conv2D:
    return nn.Conv2D(cin, cout, k, stride=stride, padding=padding, **_uniform_attrs(cin * k * k))


class ConvPoolLayer(nn.Layer):
    """Conv2D (`_conv`), an optional ReLU (`relu`), then a 3x3 stride-2 max pool (`_pool`)."""

    def __init__(self, input_channels: int, output_channels: int, filter_size: int,
                 stride: int, padding: int, stdv: float, groups: int = 1,
                 act: str | None = None) -> None:
        super().__init__()
        self.relu = nn.ReLU() if act == "relu" else None
        bound = nn.ParamAttr(initializer=Uniform(-stdv, stdv))
        self._conv = nn.Conv2D(input_channels, output_channels, filter_size, stride=stride,
                               padding=padding, groups=groups, weight_attr=bound,
                               bias_attr=nn.ParamAttr(initializer=Uniform(-stdv, stdv)))
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)

    def forward(self, inputs: Any) -> Any:
        x = self._conv(inputs)
        if self.relu is not None:
            x = self.relu(x)
        return self._pool(x)


class AlexNet(nn.Layer):
    """Five convolutions (three followed by max pooling), then, when num_classes > 0,
    dropout (downscale_in_infer) and three linear layers 9216 -> 4096 -> 4096 -> classes."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.num_classes = num_classes

        def pooled(cin: int, cout: int, k: int, stride: int, padding: int) -> ConvPoolLayer:
            return ConvPoolLayer(cin, cout, k, stride, padding, 1.0 / math.sqrt(cin * k * k),
                                 act="relu")

        self._conv1 = pooled(3, 64, 11, 4, 2)
        self._conv2 = pooled(64, 192, 5, 1, 2)
        self._conv3 = _conv(192, 384, 3, 1, 1)
        self._conv4 = _conv(384, 256, 3, 1, 1)
        self._conv5 = pooled(256, 256, 3, 1, 1)
        if num_classes > 0:
            fan_in = 256 * 6 * 6  # every classifier layer uses the first one's bound
            self._drop1 = nn.Dropout(p=0.5, mode="downscale_in_infer")
            self._fc6 = nn.Linear(fan_in, 4096, **_uniform_attrs(fan_in))
            self._drop2 = nn.Dropout(p=0.5, mode="downscale_in_infer")
            self._fc7 = nn.Linear(4096, 4096, **_uniform_attrs(fan_in))
            self._fc8 = nn.Linear(4096, num_classes, **_uniform_attrs(fan_in))

    def forward(self, inputs: Any) -> Any:
        x = self._conv2(self._conv1(inputs))
        x = F.relu(self._conv3(x))
        x = F.relu(self._conv4(x))
        x = self._conv5(x)
        if self.num_classes > 0:
            x = self._drop1(F.flatten(x, start_axis=1, stop_axis=-1))
            x = self._drop2(F.relu(self._fc6(x)))
            x = self._fc8(F.relu(self._fc7(x)))
        return x


def alexnet(pretrained: bool = False, **kwargs: Any) -> AlexNet:
    refuse_pretrained("alexnet", pretrained)
    return AlexNet(**kwargs)
