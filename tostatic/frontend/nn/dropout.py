"""paddle.nn.Dropout (paddle/nn/layer/common.py, 3.3.1): F.dropout with the layer's mode,
random only while training."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn.functional_dropout import dropout
from tostatic.frontend.nn.layer import Layer


class Dropout(Layer):
    def __init__(self, p: float = 0.5, inplace: bool = False, axis: Any = None,
                 mode: str = "upscale_in_train", name: str | None = None) -> None:
        super().__init__()
        self.p = p
        self.inplace = inplace
        self.axis = axis
        self.mode = mode
        self.name = name

    def forward(self, input: Any) -> Any:
        return dropout(input, p=self.p, axis=self.axis, training=self.training,
                       inplace=self.inplace, mode=self.mode, name=self.name)

    def extra_repr(self) -> str:
        name_str = f", name={self.name}" if self.name else ""
        return f"p={self.p}, axis={self.axis}, mode={self.mode}{name_str}, inplace={self.inplace}"


__all__ = ["Dropout"]
