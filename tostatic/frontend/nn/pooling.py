"""paddle.nn.MaxPool2D, AvgPool2D, AdaptiveAvgPool2D, AdaptiveMaxPool2D
(paddle/nn/layer/pooling.py, 3.3.1): no parameters, each calls its nn.functional function."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn import functional_pooling as FP
from tostatic.frontend.nn.layer import Layer


class AvgPool2D(Layer):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, exclusive: bool = True,
                 divisor_override: float | None = None, data_format: str = "NCHW",
                 name: str | None = None) -> None:
        super().__init__()
        self.ksize = kernel_size
        self.stride = stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.exclusive = exclusive
        self.divisor = divisor_override
        self.data_format = data_format
        self.name = name

    def forward(self, x: Any) -> Any:
        return FP.avg_pool2d(x, kernel_size=self.ksize, stride=self.stride,
                             padding=self.padding, ceil_mode=self.ceil_mode,
                             exclusive=self.exclusive, divisor_override=self.divisor,
                             data_format=self.data_format, name=self.name)

    def extra_repr(self) -> str:
        return "kernel_size={ksize}, stride={stride}, padding={padding}".format(**self.__dict__)


class MaxPool2D(Layer):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 return_mask: bool = False, ceil_mode: bool = False, data_format: str = "NCHW",
                 name: str | None = None) -> None:
        super().__init__()
        self.ksize = kernel_size
        self.stride = stride
        self.padding = padding
        self.return_mask = return_mask
        self.ceil_mode = ceil_mode
        self.data_format = data_format
        self.name = name

    def forward(self, x: Any) -> Any:
        return FP.max_pool2d(x, kernel_size=self.ksize, stride=self.stride,
                             padding=self.padding, return_mask=self.return_mask,
                             ceil_mode=self.ceil_mode, data_format=self.data_format,
                             name=self.name)

    def extra_repr(self) -> str:
        return "kernel_size={ksize}, stride={stride}, padding={padding}".format(**self.__dict__)


class AdaptiveAvgPool2D(Layer):
    def __init__(self, output_size: Any, data_format: str = "NCHW",
                 name: str | None = None) -> None:
        super().__init__()
        self._output_size = output_size
        self._data_format = data_format
        self._name = name

    def forward(self, x: Any) -> Any:
        return FP.adaptive_avg_pool2d(x, output_size=self._output_size,
                                      data_format=self._data_format, name=self._name)

    def extra_repr(self) -> str:
        return f"output_size={self._output_size}"

    @property
    def output_size(self) -> Any:
        return self._output_size

    @output_size.setter
    def output_size(self, value: Any) -> None:
        self._output_size = value


class AdaptiveMaxPool2D(Layer):
    def __init__(self, output_size: Any, return_mask: bool = False,
                 name: str | None = None) -> None:
        super().__init__()
        self._output_size = output_size
        self._return_mask = return_mask
        self._name = name

    def forward(self, x: Any) -> Any:
        return FP.adaptive_max_pool2d(x, output_size=self._output_size,
                                      return_mask=self._return_mask, name=self._name)

    def extra_repr(self) -> str:
        return f"output_size={self._output_size}, return_mask={self._return_mask}"

    @property
    def return_indices(self) -> bool:
        return self._return_mask

    @return_indices.setter
    def return_indices(self, value: bool) -> None:
        self._return_mask = value


__all__ = ["AdaptiveAvgPool2D", "AdaptiveMaxPool2D", "AvgPool2D", "MaxPool2D"]
