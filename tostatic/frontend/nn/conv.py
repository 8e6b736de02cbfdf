"""paddle.nn.Conv2D and Conv2DTranspose (paddle/nn/layer/conv.py, 3.3.1).

Constructor arguments, parameter names and shapes, and default initialisers are Paddle's:
`weight` [C_out, C_in / groups, kh, kw] (Conv2DTranspose: [C_in, C_out / groups, kh, kw]),
`bias` [C_out]; Conv2D's weight starts from Normal(0, sqrt(2 / (kh * kw * C_in))) (C_in, not
C_in / groups, as Paddle has it), Conv2DTranspose's from XavierUniform (Paddle's parameter
default), biases from zeros. Only padding_mode 'zeros' runs: the other modes pad with F.pad,
which tostatic does not have yet.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.frontend.nn import functional_conv as FC
from tostatic.frontend.nn.initializer import Normal
from tostatic.frontend.nn.layer import Layer
from tostatic.ir.errors import UnsupportedError

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
FORMATS = ("NHWC", "NCHW", "NDHWC", "NCDHW", "NLC", "NCL")


class _ConvNd(Layer):
    """Paddle's _ConvNd for dims == 2: arguments checked and kept, parameters created."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, transposed: bool,
                 stride: Any = 1, padding: Any = 0, padding_mode: str = "zeros",
                 output_padding: Any = 0, dilation: Any = 1, groups: int = 1,
                 weight_attr: Any = None, bias_attr: Any = None, data_format: str = "NCHW",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        assert weight_attr is not False, "weight_attr should not be False in Conv."
        self._param_attr = weight_attr
        self._bias_attr = bias_attr
        self._groups = groups
        self._in_channels = in_channels
        self._out_channels = out_channels
        self._data_format = data_format
        self._device = device
        self._dtype = dtype
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {set(PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        if padding_mode != "zeros" and not isinstance(padding, int):
            raise TypeError("when padding_mode in ['reflect', 'replicate', 'circular'], type "
                            "of padding must be int")
        if data_format not in FORMATS:
            raise ValueError(f"data_format must be one of {set(FORMATS)}, but got "
                             f"data_format='{data_format}'")
        channel_last = data_format in ("NHWC", "NDHWC", "NLC")
        self._channel_dim = len(data_format) - 1 if channel_last else 1
        self._stride = FC.convert_to_list(stride, 2, "stride")
        self._dilation = FC.convert_to_list(dilation, 2, "dilation")
        self._kernel_size = FC.convert_to_list(kernel_size, 2, "kernel_size")
        self._padding = padding
        self._padding_mode = padding_mode
        self.output_padding = output_padding
        self._updated_padding, self._padding_algorithm = FC.update_padding_nd(
            padding, channel_last, 2)
        if transposed:
            filter_shape = [in_channels, out_channels // groups, *self._kernel_size]
            default_init = None
        else:
            if in_channels % groups != 0:
                raise ValueError("in_channels must be divisible by groups.")
            if padding_mode != "zeros":
                self._updated_padding, self._padding_algorithm = FC.update_padding_nd(
                    0, channel_last, 2)
            filter_shape = [out_channels, in_channels // groups, *self._kernel_size]
            std = (2.0 / (int(np.prod(self._kernel_size)) * in_channels)) ** 0.5
            default_init = Normal(0.0, std)
        self.weight = self.create_parameter(shape=filter_shape, attr=self._param_attr,
                                            dtype=self._dtype,
                                            default_initializer=default_init,
                                            device=self._device)
        self.bias = self.create_parameter(attr=self._bias_attr, shape=[self._out_channels],
                                          is_bias=True, dtype=self._dtype,
                                          device=self._device)
        self._use_cudnn = False
        self._op_type = "conv2d"
        if in_channels == groups and in_channels != 1 and out_channels % in_channels == 0:
            self._op_type = "depthwise_conv2d"

    def extra_repr(self) -> str:
        main_str = "{_in_channels}, {_out_channels}, kernel_size={_kernel_size}"
        if self._stride != [1] * len(self._stride):
            main_str += ", stride={_stride}"
        if self._padding != 0:
            main_str += ", padding={_padding}"
        if self._padding_mode != "zeros":
            main_str += ", padding_mode={_padding_mode}"
        if self.output_padding != 0:
            main_str += ", output_padding={output_padding}"
        if self._dilation != [1] * len(self._dilation):
            main_str += ", dilation={_dilation}"
        if self._groups != 1:
            main_str += ", groups={_groups}"
        main_str += ", data_format={_data_format}"
        return main_str.format(**self.__dict__)


class Conv2D(_ConvNd):
    """2-D convolution layer: weight [out_channels, in_channels / groups, kh, kw]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, *, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None,
                 weight_attr: Any = None, bias_attr: Any = None,
                 data_format: str = "NCHW") -> None:
        if bias is False:
            bias_attr = False
        super().__init__(in_channels, out_channels, kernel_size, False, stride=stride,
                         padding=padding, padding_mode=padding_mode, dilation=dilation,
                         groups=groups, weight_attr=weight_attr, bias_attr=bias_attr,
                         data_format=data_format, device=device, dtype=dtype)

    def forward(self, x: Any) -> Any:
        if self._padding_mode != "zeros":
            raise UnsupportedError(f"Conv2D: padding_mode='{self._padding_mode}' pads with "
                                   "paddle.nn.functional.pad, which tostatic does not have "
                                   "yet; use padding_mode='zeros'")
        return FC.conv_nd(x, self.weight, self.bias, self._stride, self._updated_padding,
                          self._padding_algorithm, self._dilation, self._groups,
                          self._data_format, self._channel_dim, self._op_type)


class Conv2DTranspose(_ConvNd):
    """Transposed 2-D convolution layer: weight [in_channels, out_channels / groups, kh, kw]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, dilation: Any = 1,
                 groups: int = 1, weight_attr: Any = None, bias_attr: Any = None,
                 data_format: str = "NCHW") -> None:
        super().__init__(in_channels, out_channels, kernel_size, True, stride=stride,
                         padding=padding, dilation=dilation, output_padding=output_padding,
                         groups=groups, weight_attr=weight_attr, bias_attr=bias_attr,
                         data_format=data_format)

    def forward(self, x: Any, output_size: Any = None) -> Any:
        output_padding = self.output_padding if output_size is None else 0
        return FC.conv2d_transpose(x, self.weight, bias=self.bias, padding=self._padding,
                                   output_padding=output_padding, stride=self._stride,
                                   dilation=self._dilation, groups=self._groups,
                                   output_size=output_size, data_format=self._data_format)


__all__ = ["Conv2D", "Conv2DTranspose"]
