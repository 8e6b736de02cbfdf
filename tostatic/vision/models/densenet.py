"""DenseNet 121/161/169/201/264 (Huang et al. 2016), as paddle.vision.models builds it:
pre-activation (BN + ReLU, then conv) dense layers, each concatenating its growth_rate new
channels to its input; transition layers halve channels and resolution. The batch norms are
nn.BatchNorm with act='relu'."""
from __future__ import annotations

import math
from typing import Any

from tostatic import nn
from tostatic.frontend.tensor.manipulation import concat
from tostatic.nn import functional as F
from tostatic.nn.initializer import Uniform
from tostatic.vision.models._utils import refuse_pretrained

# layers -> (initial features, growth rate, dense layers per block)
_SPECS = {121: (64, 32, (6, 12, 24, 16)), 161: (96, 48, (6, 12, 36, 24)),
          169: (64, 32, (6, 12, 32, 32)), 201: (64, 32, (6, 12, 48, 32)),
          264: (64, 32, (6, 12, 64, 48))}


def _conv(cin: int, cout: int, k: int, stride: int, pad: int, groups: int) -> nn.Conv2D:
    return nn.Conv2D(in_channels=cin, out_channels=cout, kernel_size=k, stride=stride,
                     padding=pad, groups=groups, weight_attr=nn.ParamAttr(), bias_attr=False)


class BNACConvLayer(nn.Layer):
    """BatchNorm with activation (`_batch_norm`), then a conv without bias (`_conv`)."""

    def __init__(self, num_channels: int, num_filters: int, filter_size: Any, stride: Any = 1,
                 pad: Any = 0, groups: int = 1, act: str = "relu") -> None:
        super().__init__()
        self._batch_norm = nn.BatchNorm(num_channels, act=act)
        self._conv = _conv(num_channels, num_filters, filter_size, stride, pad, groups)

    def forward(self, input: Any) -> Any:
        return self._conv(self._batch_norm(input))


class DenseLayer(nn.Layer):
    """BN-ReLU-1x1 conv to bn_size * growth_rate, BN-ReLU-3x3 conv to growth_rate, optional
    dropout; the result is concatenated after the input."""

    def __init__(self, num_channels: int, growth_rate: int, bn_size: int,
                 dropout: float) -> None:
        super().__init__()
        self.dropout = dropout
        self.bn_ac_func1 = BNACConvLayer(num_channels, bn_size * growth_rate, 1, pad=0,
                                         stride=1)
        self.bn_ac_func2 = BNACConvLayer(bn_size * growth_rate, growth_rate, 3, pad=1, stride=1)
        if dropout:
            self.dropout_func = nn.Dropout(p=dropout, mode="downscale_in_infer")

    def forward(self, input: Any) -> Any:
        new = self.bn_ac_func2(self.bn_ac_func1(input))
        if self.dropout:
            new = self.dropout_func(new)
        return concat([input, new], axis=1)


class DenseBlock(nn.Layer):
    """`num_layers` dense layers named '<name>_1', '<name>_2', ..."""

    def __init__(self, num_channels: int, num_layers: int, bn_size: int, growth_rate: int,
                 dropout: float, name: str | None = None) -> None:
        super().__init__()
        self.dropout = dropout
        self.dense_layer_func = []
        for i in range(num_layers):
            layer = DenseLayer(num_channels + i * growth_rate, growth_rate, bn_size, dropout)
            self.dense_layer_func.append(self.add_sublayer(f"{name}_{i + 1}", layer))

    def forward(self, input: Any) -> Any:
        for layer in self.dense_layer_func:
            input = layer(input)
        return input


class TransitionLayer(nn.Layer):
    """BN-ReLU-1x1 conv (`conv_ac_func`) then 2x2 average pooling (`pool2d_avg`)."""

    def __init__(self, num_channels: int, num_output_features: int) -> None:
        super().__init__()
        self.conv_ac_func = BNACConvLayer(num_channels, num_output_features, 1, pad=0, stride=1)
        self.pool2d_avg = nn.AvgPool2D(kernel_size=2, stride=2, padding=0)

    def forward(self, input: Any) -> Any:
        return self.pool2d_avg(self.conv_ac_func(input))


class ConvBNLayer(nn.Layer):
    """Conv without bias (`_conv`), then BatchNorm with activation (`_batch_norm`)."""

    def __init__(self, num_channels: int, num_filters: int, filter_size: Any, stride: Any = 1,
                 pad: Any = 0, groups: int = 1, act: str = "relu") -> None:
        super().__init__()
        self._conv = _conv(num_channels, num_filters, filter_size, stride, pad, groups)
        self._batch_norm = nn.BatchNorm(num_filters, act=act)

    def forward(self, input: Any) -> Any:
        return self._batch_norm(self._conv(input))


class DenseNet(nn.Layer):
    def __init__(self, layers: int = 121, bn_size: int = 4, dropout: float = 0.0,
                 num_classes: int = 1000, with_pool: bool = True) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.with_pool = with_pool
        if layers not in _SPECS:
            raise ValueError(f"supported layers are {sorted(_SPECS)} but input layer is "
                             f"{layers}")
        features, growth_rate, block_config = _SPECS[layers]
        self.conv1_func = ConvBNLayer(3, features, 7, stride=2, pad=3, act="relu")
        self.pool2d_max = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.block_config = block_config
        self.dense_block_func_list = []
        self.transition_func_list = []
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(features, num_layers, bn_size, growth_rate, dropout,
                               name=f"conv{i + 2}")
            self.dense_block_func_list.append(self.add_sublayer(f"db_conv_{i + 2}", block))
            features += num_layers * growth_rate
            if i != len(block_config) - 1:
                transition = TransitionLayer(features, features // 2)
                self.transition_func_list.append(
                    self.add_sublayer(f"tr_conv{i + 2}_blk", transition))
                features //= 2
        self.batch_norm = nn.BatchNorm(features, act="relu")
        if with_pool:
            self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        if num_classes > 0:
            bound = 1.0 / math.sqrt(features * 1.0)
            self.out = nn.Linear(features, num_classes,
                                 weight_attr=nn.ParamAttr(initializer=Uniform(-bound, bound)),
                                 bias_attr=nn.ParamAttr())

    def forward(self, input: Any) -> Any:
        x = self.pool2d_max(self.conv1_func(input))
        last = len(self.block_config) - 1
        for i in range(len(self.block_config)):
            x = self.dense_block_func_list[i](x)
            if i != last:
                x = self.transition_func_list[i](x)
        x = self.batch_norm(x)
        if self.with_pool:
            x = self.pool2d_avg(x)
        if self.num_classes > 0:
            x = self.out(F.flatten(x, start_axis=1, stop_axis=-1))
        return x


def _densenet(arch: str, layers: int, pretrained: bool, **kwargs: Any) -> DenseNet:
    refuse_pretrained(arch, pretrained)
    return DenseNet(layers=layers, **kwargs)


def densenet121(pretrained: bool = False, **kwargs: Any) -> DenseNet:
    return _densenet("densenet121", 121, pretrained, **kwargs)


def densenet161(pretrained: bool = False, **kwargs: Any) -> DenseNet:
    return _densenet("densenet161", 161, pretrained, **kwargs)


def densenet169(pretrained: bool = False, **kwargs: Any) -> DenseNet:
    return _densenet("densenet169", 169, pretrained, **kwargs)


def densenet201(pretrained: bool = False, **kwargs: Any) -> DenseNet:
    return _densenet("densenet201", 201, pretrained, **kwargs)


def densenet264(pretrained: bool = False, **kwargs: Any) -> DenseNet:
    return _densenet("densenet264", 264, pretrained, **kwargs)
