"""ShuffleNetV2 (Ma et al. 2018) at widths 0.25 .. 2.0 and with swish, as
paddle.vision.models builds it: blocks named '<stage>_<index>' ('2_1' .. '4_4'), each splitting
or duplicating the channels into two branches, concatenating them and shuffling channels."""
from __future__ import annotations

from typing import Any, Callable

from tostatic import nn
from tostatic.frontend.tensor.manipulation import concat, split
from tostatic.frontend.tensor.math import reshape, transpose
from tostatic.nn import functional as F
from tostatic.vision.models._utils import ConvNormActivation, refuse_pretrained

# output channels of the stem, the three stages and the last 1x1 conv, by scale
_WIDTHS = {0.25: (24, 24, 48, 96, 512), 0.33: (24, 32, 64, 128, 512),
           0.5: (24, 48, 96, 192, 1024), 1.0: (24, 116, 232, 464, 1024),
           1.5: (24, 176, 352, 704, 1024), 2.0: (24, 224, 488, 976, 2048)}
_REPEATS = (4, 8, 4)


def create_activation_layer(act: str | None) -> Callable[..., nn.Layer] | None:
    layers = {"swish": nn.Swish, "relu": nn.ReLU, None: None}
    if act not in layers:
        raise RuntimeError(f"The activation function is not supported: {act}")
    return layers[act]


def channel_shuffle(x: Any, groups: int) -> Any:
    """[N, groups * k, H, W] -> [N, k * groups, H, W], channel g * k + i going to i * groups + g."""
    n, c, h, w = x.shape[0:4]
    x = reshape(x, shape=[n, groups, c // groups, h, w])
    x = transpose(x, perm=[0, 2, 1, 3, 4])
    return reshape(x, shape=[n, c, h, w])


def _conv(cin: int, cout: int, k: int, stride: int, groups: int,
          act: Callable[..., nn.Layer] | None) -> ConvNormActivation:
    return ConvNormActivation(cin, cout, kernel_size=k, stride=stride, padding=(k - 1) // 2,
                              groups=groups, activation_layer=act)


class InvertedResidual(nn.Layer):
    """Stride-1 block: half the channels pass through, the other half go 1x1 -> 3x3
    depthwise -> 1x1."""

    def __init__(self, in_channels: int, out_channels: int, stride: Any,
                 activation_layer: Callable[..., nn.Layer] | None = nn.ReLU) -> None:
        super().__init__()
        half = out_channels // 2
        self._conv_pw = _conv(in_channels // 2, half, 1, 1, 1, activation_layer)
        self._conv_dw = _conv(half, half, 3, stride, half, None)
        self._conv_linear = _conv(half, half, 1, 1, 1, activation_layer)

    def forward(self, inputs: Any) -> Any:
        half = inputs.shape[1] // 2
        x1, x2 = split(inputs, num_or_sections=[half, half], axis=1)
        x2 = self._conv_linear(self._conv_dw(self._conv_pw(x2)))
        return channel_shuffle(concat([x1, x2], axis=1), 2)


class InvertedResidualDS(nn.Layer):
    """Downsampling block: both branches see the whole input (3x3 depthwise stride-2 -> 1x1;
    1x1 -> 3x3 depthwise stride-2 -> 1x1)."""

    def __init__(self, in_channels: int, out_channels: int, stride: Any,
                 activation_layer: Callable[..., nn.Layer] | None = nn.ReLU) -> None:
        super().__init__()
        half = out_channels // 2
        self._conv_dw_1 = _conv(in_channels, in_channels, 3, stride, in_channels, None)
        self._conv_linear_1 = _conv(in_channels, half, 1, 1, 1, activation_layer)
        self._conv_pw_2 = _conv(in_channels, half, 1, 1, 1, activation_layer)
        self._conv_dw_2 = _conv(half, half, 3, stride, half, None)
        self._conv_linear_2 = _conv(half, half, 1, 1, 1, activation_layer)

    def forward(self, inputs: Any) -> Any:
        x1 = self._conv_linear_1(self._conv_dw_1(inputs))
        x2 = self._conv_linear_2(self._conv_dw_2(self._conv_pw_2(inputs)))
        return channel_shuffle(concat([x1, x2], axis=1), 2)


class ShuffleNetV2(nn.Layer):
    def __init__(self, scale: float = 1.0, act: str | None = "relu", num_classes: int = 1000,
                 with_pool: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.num_classes = num_classes
        self.with_pool = with_pool
        activation = create_activation_layer(act)
        if scale not in _WIDTHS:
            raise NotImplementedError(f"This scale size:[{scale}] is not implemented!")
        widths = _WIDTHS[scale]
        self._conv1 = _conv(3, widths[0], 3, 2, 1, activation)
        self._max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self._block_list = []
        for stage, repeats in enumerate(_REPEATS):
            cin, cout = widths[stage], widths[stage + 1]
            for i in range(repeats):
                block = (InvertedResidualDS(cin, cout, 2, activation) if i == 0 else
                         InvertedResidual(cout, cout, 1, activation))
                self._block_list.append(self.add_sublayer(f"{stage + 2}_{i + 1}", block))
        self._last_conv = _conv(widths[3], widths[4], 1, 1, 1, activation)
        if with_pool:
            self._pool2d_avg = nn.AdaptiveAvgPool2D(1)
        if num_classes > 0:
            self._out_c = widths[4]
            self._fc = nn.Linear(widths[4], num_classes)

    def forward(self, inputs: Any) -> Any:
        x = self._max_pool(self._conv1(inputs))
        for block in self._block_list:
            x = block(x)
        x = self._last_conv(x)
        if self.with_pool:
            x = self._pool2d_avg(x)
        if self.num_classes > 0:
            x = self._fc(F.flatten(x, start_axis=1, stop_axis=-1))
        return x


def _shufflenet_v2(arch: str, pretrained: bool, scale: float, **kwargs: Any) -> ShuffleNetV2:
    refuse_pretrained(arch, pretrained)
    return ShuffleNetV2(scale=scale, **kwargs)


def shufflenet_v2_x0_25(pretrained: bool = False, **kwargs: Any) -> ShuffleNetV2:
    return _shufflenet_v2("shufflenet_v2_x0_25", pretrained, 0.25, **kwargs)


def shufflenet_v2_x0_33(pretrained: bool = False, **kwargs: Any) -> ShuffleNetV2:
    return _shufflenet_v2("shufflenet_v2_x0_33", pretrained, 0.33, **kwargs)


def shufflenet_v2_x0_5(pretrained: bool = False, **kwargs: Any) -> ShuffleNetV2:
    return _shufflenet_v2("shufflenet_v2_x0_5", pretrained, 0.5, **kwargs)


def shufflenet_v2_x1_0(pretrained: bool = False, **kwargs: Any) -> ShuffleNetV2:
    return _shufflenet_v2("shufflenet_v2_x1_0", pretrained, 1.0, **kwargs)


def shufflenet_v2_x1_5(pretrained: bool = False, **kwargs: Any) -> ShuffleNetV2:
    return _shufflenet_v2("shufflenet_v2_x1_5", pretrained, 1.5, **kwargs)


def shufflenet_v2_x2_0(pretrained: bool = False, **kwargs: Any) -> ShuffleNetV2:
    return _shufflenet_v2("shufflenet_v2_x2_0", pretrained, 2.0, **kwargs)


def shufflenet_v2_swish(pretrained: bool = False, **kwargs: Any) -> ShuffleNetV2:
    return _shufflenet_v2("shufflenet_v2_swish", pretrained, 1.0, act="swish", **kwargs)
