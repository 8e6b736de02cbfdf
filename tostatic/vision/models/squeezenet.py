"""SqueezeNet 1.0 and 1.1 (Iandola et al. 2016), as paddle.vision.models builds them: a stem
conv, eight fire modules (`_conv1` .. `_conv8`) with a shared 3x3 stride-2 max pool between
some, a 1x1 classifier conv (`_conv9`) and global average pooling."""
from __future__ import annotations

from typing import Any

from tostatic import nn
from tostatic.frontend.tensor.manipulation import concat, squeeze
from tostatic.nn import functional as F
from tostatic.vision.models._utils import refuse_pretrained

# fire modules: (in, squeeze, expand 1x1, expand 3x3); the same for both versions
_FIRES = [(None, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128), (256, 32, 128, 128),
          (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256)]
# after which fire modules (1-based) the max pool runs
_POOL_AFTER = {"1.0": (3, 7), "1.1": (2, 4)}


def _conv(cin: int, cout: int, k: int, **kwargs: Any) -> nn.Conv2D:
    return nn.Conv2D(cin, cout, k, weight_attr=nn.ParamAttr(), bias_attr=nn.ParamAttr(),
                     **kwargs)


class MakeFireConv(nn.Layer):
    """Conv2D (`_conv`) then ReLU."""

    def __init__(self, input_channels: int, output_channels: int, filter_size: Any,
                 padding: Any = 0) -> None:
        super().__init__()
        self._conv = _conv(input_channels, output_channels, filter_size, padding=padding)

    def forward(self, x: Any) -> Any:
        return F.relu(self._conv(x))


class MakeFire(nn.Layer):
    """A 1x1 squeeze (`_conv`), then 1x1 and 3x3 expansions (`_conv_path1`, `_conv_path2`)
    concatenated along the channels."""

    def __init__(self, input_channels: int, squeeze_channels: int, expand1x1_channels: int,
                 expand3x3_channels: int) -> None:
        super().__init__()
        self._conv = MakeFireConv(input_channels, squeeze_channels, 1)
        self._conv_path1 = MakeFireConv(squeeze_channels, expand1x1_channels, 1)
        self._conv_path2 = MakeFireConv(squeeze_channels, expand3x3_channels, 3, padding=1)

    def forward(self, inputs: Any) -> Any:
        x = self._conv(inputs)
        return concat([self._conv_path1(x), self._conv_path2(x)], axis=1)


class SqueezeNet(nn.Layer):
    def __init__(self, version: str, num_classes: int = 1000, with_pool: bool = True) -> None:
        super().__init__()
        self.version = version
        self.num_classes = num_classes
        self.with_pool = with_pool
        if version not in _POOL_AFTER:
            raise ValueError(f"supported versions are {sorted(_POOL_AFTER)} but input version "
                             f"is {version}")
        if version == "1.0":
            self._conv = _conv(3, 96, 7, stride=2)
        else:
            self._conv = _conv(3, 64, 3, stride=2, padding=1)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)
        stem = 96 if version == "1.0" else 64
        for i, (cin, *rest) in enumerate(_FIRES, start=1):
            setattr(self, f"_conv{i}", MakeFire(stem if cin is None else cin, *rest))
        self._drop = nn.Dropout(p=0.5, mode="downscale_in_infer")
        self._conv9 = _conv(512, num_classes, 1)
        self._avg_pool = nn.AdaptiveAvgPool2D(1)

    def forward(self, inputs: Any) -> Any:
        x = self._pool(F.relu(self._conv(inputs)))
        pool_after = _POOL_AFTER[self.version]
        for i in range(1, len(_FIRES) + 1):
            x = getattr(self, f"_conv{i}")(x)
            if i in pool_after:
                x = self._pool(x)
        if self.num_classes > 0:
            x = self._conv9(self._drop(x))
        if self.with_pool:
            x = squeeze(self._avg_pool(F.relu(x)), axis=[2, 3])
        return x


def squeezenet1_0(pretrained: bool = False, **kwargs: Any) -> SqueezeNet:
    refuse_pretrained("squeezenet1_0", pretrained)
    return SqueezeNet("1.0", **kwargs)


def squeezenet1_1(pretrained: bool = False, **kwargs: Any) -> SqueezeNet:
    refuse_pretrained("squeezenet1_1", pretrained)
    return SqueezeNet("1.1", **kwargs)
