"""VGG (Simonyan & Zisserman 2014) 11/13/16/19, with or without batch norm, as
paddle.vision.models builds them: a `features` Sequential of 3x3 convs and 2x2 max pools, a 7x7
adaptive average pool, a three-layer classifier with dropout."""
from __future__ import annotations

from typing import Any, Sequence

from tostatic import nn
from tostatic.nn import functional as F
from tostatic.vision.models._utils import refuse_pretrained

# conv widths per stage; each stage ends with a 2x2 max pool
_STAGES = {
    "A": ((64,), (128,), (256, 256), (512, 512), (512, 512)),                     # vgg11
    "B": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),              # vgg13
    "D": ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3),              # vgg16
    "E": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),              # vgg19
}
# Paddle's configuration lists ('M' marks a max pool), by the same letters
cfgs = {key: [w for stage in stages for w in (*stage, "M")] for key, stages in _STAGES.items()}


class VGG(nn.Layer):
    """`features` (a Layer, e.g. from make_layers), then a 7x7 adaptive average pool
    (`avgpool`, when with_pool) and, when num_classes > 0, `classifier`: Linear 25088 -> 4096,
    ReLU, Dropout, Linear 4096 -> 4096, ReLU, Dropout, Linear 4096 -> num_classes."""

    def __init__(self, features: nn.Layer, num_classes: int = 1000,
                 with_pool: bool = True) -> None:
        super().__init__()
        self.features = features
        self.num_classes = num_classes
        self.with_pool = with_pool
        if with_pool:
            self.avgpool = nn.AdaptiveAvgPool2D((7, 7))
        if num_classes > 0:
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
                nn.Linear(4096, num_classes))

    def forward(self, x: Any) -> Any:
        x = self.features(x)
        if self.with_pool:
            x = self.avgpool(x)
        if self.num_classes > 0:
            x = self.classifier(F.flatten(x, 1))
        return x


def make_layers(cfg: Sequence[int | str], batch_norm: bool = False) -> nn.Sequential:
    """3x3 'same' convs of the listed widths (each followed by BatchNorm2D when batch_norm,
    then ReLU), 'M' a 2x2 stride-2 max pool; input has 3 channels."""
    layers: list[nn.Layer] = []
    channels = 3
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2D(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2D(channels, item, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2D(item))
        layers.append(nn.ReLU())
        channels = item
    return nn.Sequential(*layers)


def _vgg(arch: str, cfg: str, batch_norm: bool, pretrained: bool, **kwargs: Any) -> VGG:
    refuse_pretrained(arch + ("_bn" if batch_norm else ""), pretrained)
    return VGG(make_layers(cfgs[cfg], batch_norm=batch_norm), **kwargs)


def vgg11(pretrained: bool = False, batch_norm: bool = False, **kwargs: Any) -> VGG:
    return _vgg("vgg11", "A", batch_norm, pretrained, **kwargs)


def vgg13(pretrained: bool = False, batch_norm: bool = False, **kwargs: Any) -> VGG:
    return _vgg("vgg13", "B", batch_norm, pretrained, **kwargs)


def vgg16(pretrained: bool = False, batch_norm: bool = False, **kwargs: Any) -> VGG:
    return _vgg("vgg16", "D", batch_norm, pretrained, **kwargs)


def vgg19(pretrained: bool = False, batch_norm: bool = False, **kwargs: Any) -> VGG:
    return _vgg("vgg19", "E", batch_norm, pretrained, **kwargs)
