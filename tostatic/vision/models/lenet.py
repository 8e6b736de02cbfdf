"""LeNet (LeCun et al. 1998) for 1x28x28 images, as paddle.vision.models.LeNet builds it."""
from __future__ import annotations

from typing import Any

from tostatic import nn
from tostatic.nn import functional as F


class LeNet(nn.Layer):
    """Two conv + ReLU + 2x2 max-pool stages (`features`) and, when num_classes > 0, three
    linear layers (`fc`: 400 -> 120 -> 84 -> num_classes, no activations between them)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2D(1, 6, 3, stride=1, padding=1), nn.ReLU(), nn.MaxPool2D(2, 2),
            nn.Conv2D(6, 16, 5, stride=1, padding=0), nn.ReLU(), nn.MaxPool2D(2, 2))
        if num_classes > 0:
            widths = (16 * 5 * 5, 120, 84, num_classes)
            self.fc = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(widths, widths[1:])])

    def forward(self, inputs: Any) -> Any:
        x = self.features(inputs)
        if self.num_classes > 0:
            x = self.fc(F.flatten(x, 1))
        return x
