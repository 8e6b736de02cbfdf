"""GoogLeNet (Szegedy et al. 2014), as paddle.vision.models builds it: convs without batch
norm or bias, nine inception modules, and the two auxiliary heads; forward returns
(out, out1, out2). With the heads (num_classes > 0 and with_pool) the auxiliary linears expect
3x3 maps after the 5x5 / 3 average pools, i.e. inputs of about 189..236 pixels (224)."""
from __future__ import annotations

from typing import Any

from tostatic import nn
from tostatic.frontend.tensor.manipulation import concat, squeeze
from tostatic.nn import functional as F
from tostatic.nn.initializer import Uniform
from tostatic.vision.models._utils import refuse_pretrained


def xavier(channels: int, filter_size: int) -> nn.ParamAttr:
    """Uniform(-b, b) with b = sqrt(3 / (filter_size^2 * channels))."""
    bound = (3.0 / (filter_size ** 2 * channels)) ** 0.5
    return nn.ParamAttr(initializer=Uniform(-bound, bound))


class ConvLayer(nn.Layer):
    """A 'same'-padded conv without bias (`_conv`), no activation."""

    def __init__(self, num_channels: int, num_filters: int, filter_size: int, stride: Any = 1,
                 groups: int = 1) -> None:
        super().__init__()
        self._conv = nn.Conv2D(num_channels, num_filters, filter_size, stride=stride,
                               padding=(filter_size - 1) // 2, groups=groups, bias_attr=False)

    def forward(self, inputs: Any) -> Any:
        return self._conv(inputs)


class Inception(nn.Layer):
    """Four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1), concatenated, ReLU.
    `output_channels` is accepted and unused, as in Paddle."""

    def __init__(self, input_channels: int, output_channels: int, filter1: int, filter3R: int,
                 filter3: int, filter5R: int, filter5: int, proj: int) -> None:
        super().__init__()
        self._conv1 = ConvLayer(input_channels, filter1, 1)
        self._conv3r = ConvLayer(input_channels, filter3R, 1)
        self._conv3 = ConvLayer(filter3R, filter3, 3)
        self._conv5r = ConvLayer(input_channels, filter5R, 1)
        self._conv5 = ConvLayer(filter5R, filter5, 5)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=1, padding=1)
        self._convprj = ConvLayer(input_channels, proj, 1)

    def forward(self, inputs: Any) -> Any:
        branches = [self._conv1(inputs), self._conv3(self._conv3r(inputs)),
                    self._conv5(self._conv5r(inputs)), self._convprj(self._pool(inputs))]
        return F.relu(concat(branches, axis=1))


# inception modules: attribute -> (in, out, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj)
_MODULES = {"_ince3a": (192, 192, 64, 96, 128, 16, 32, 32),
            "_ince3b": (256, 256, 128, 128, 192, 32, 96, 64),
            "_ince4a": (480, 480, 192, 96, 208, 16, 48, 64),
            "_ince4b": (512, 512, 160, 112, 224, 24, 64, 64),
            "_ince4c": (512, 512, 128, 128, 256, 24, 64, 64),
            "_ince4d": (512, 512, 112, 144, 288, 32, 64, 64),
            "_ince4e": (528, 528, 256, 160, 320, 32, 128, 128),
            "_ince5a": (832, 832, 256, 160, 320, 32, 128, 128),
            "_ince5b": (832, 832, 384, 192, 384, 48, 128, 128)}


class GoogLeNet(nn.Layer):
    def __init__(self, num_classes: int = 1000, with_pool: bool = True) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.with_pool = with_pool
        self._conv = ConvLayer(3, 64, 7, 2)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2)
        self._conv_1 = ConvLayer(64, 64, 1)
        self._conv_2 = ConvLayer(64, 192, 3)
        for name, args in _MODULES.items():
            setattr(self, name, Inception(*args))
        if with_pool:
            self._pool_5 = nn.AdaptiveAvgPool2D(1)
            self._pool_o1 = nn.AvgPool2D(kernel_size=5, stride=3)
            self._pool_o2 = nn.AvgPool2D(kernel_size=5, stride=3)
        if num_classes > 0:
            self._drop = nn.Dropout(p=0.4, mode="downscale_in_infer")
            self._fc_out = nn.Linear(1024, num_classes, weight_attr=xavier(1024, 1))
            for k, cin in ((1, 512), (2, 528)):  # the auxiliary heads on 4a and 4d
                setattr(self, f"_conv_o{k}", ConvLayer(cin, 128, 1))
                setattr(self, f"_fc_o{k}", nn.Linear(1152, 1024, weight_attr=xavier(2048, 1)))
                setattr(self, f"_drop_o{k}", nn.Dropout(p=0.7, mode="downscale_in_infer"))
                setattr(self, f"_out{k}",
                        nn.Linear(1024, num_classes, weight_attr=xavier(1024, 1)))

    def forward(self, inputs: Any) -> tuple[Any, Any, Any]:
        x = self._pool(self._conv(inputs))
        x = self._pool(self._conv_2(self._conv_1(x)))
        x = self._pool(self._ince3b(self._ince3a(x)))
        ince4a = self._ince4a(x)
        ince4d = self._ince4d(self._ince4c(self._ince4b(ince4a)))
        x = self._pool(self._ince4e(ince4d))
        out = self._ince5b(self._ince5a(x))
        out1, out2 = ince4a, ince4d
        if self.with_pool:
            out = self._pool_5(out)
            out1 = self._pool_o1(out1)
            out2 = self._pool_o2(out2)
        if self.num_classes > 0:
            out = self._fc_out(squeeze(self._drop(out), axis=[2, 3]))
            out1 = F.flatten(self._conv_o1(out1), start_axis=1, stop_axis=-1)
            out1 = self._out1(self._drop_o1(F.relu(self._fc_o1(out1))))
            # no ReLU on the second auxiliary head: Paddle's model has none there
            out2 = F.flatten(self._conv_o2(out2), start_axis=1, stop_axis=-1)
            out2 = self._out2(self._drop_o2(self._fc_o2(out2)))
        return out, out1, out2


def googlenet(pretrained: bool = False, **kwargs: Any) -> GoogLeNet:
    refuse_pretrained("googlenet", pretrained)
    return GoogLeNet(**kwargs)
