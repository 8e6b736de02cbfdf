"""paddle.nn.functional.conv2d / conv2d_transpose (paddle/nn/functional/conv.py, 3.3.1).

Arguments, checks and the ops written are Paddle's: `padding` may be an int, [h, w],
[top, bottom, left, right], [[0,0],[0,0],[t,b],[l,r]] (pairs per dim, batch and channel
included) or 'SAME' / 'VALID'; depthwise_conv2d is written when groups == C_in != 1 and
C_out % C_in == 0 (depthwise_conv2d_transpose when groups == C_in != 1 and the filter has one
output channel per group). The bias is added as Paddle's static graph does: NCHW reshapes it to
[1, C, 1, 1] (a `reshape2_K` op of its own) and adds with elementwise_add (axis -1), all under
the conv's helper name (`conv2d_0.tmp_0` the convolution, `conv2d_0.tmp_1` the sum).
"""
from __future__ import annotations

from typing import Any, Sequence

from tostatic.frontend.nn.naming import helper
from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.dispatch import apply
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import conv as conv_ops


def convert_to_list(value: Any, n: int, name: str) -> list[int]:
    """Paddle's utils.convert_to_list: an int repeated n times, or a list/tuple of n ints."""
    if isinstance(value, int):
        return [value] * n
    try:
        values = list(value)
    except TypeError:
        raise ValueError(f"The {name}'s type must be list or tuple. Received: {value}") from None
    if len(values) != n:
        raise ValueError(f"The {name}'s length must be {n}. Received: {value}")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"The {name}'s type must be a list or tuple of {n} integers. "
                             f"Received: {value} including element {v} of type {type(v)}")
    return values


def _is_symmetric(padding: list[int], num_dims: int) -> bool:
    return all(padding[2 * i] == padding[2 * i + 1] for i in range(num_dims))


def update_padding_nd(padding: Any, channel_last: bool, num_dims: int, pooling: bool = False,
                      ceil_mode: bool = False) -> tuple[list[int], str]:
    """(paddings attribute, padding_algorithm) from a padding argument, as Paddle's
    _update_padding_nd: conv's rejects negative paddings; pooling's rejects 'VALID' with
    ceil_mode."""
    if isinstance(padding, str):
        padding = padding.upper()
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"Unknown padding: '{padding}'. It can only be 'SAME' or 'VALID'.")
        if padding == "VALID" and ceil_mode:
            raise ValueError('When Attr(padding) is "VALID", Attr(ceil_mode) must be False. '
                             'Received ceil_mode: True.')
        return [0] * num_dims, padding
    if isinstance(padding, (list, tuple)):
        if len(padding) == 2 + num_dims and isinstance(padding[0], (list, tuple)):
            batch_channel = (padding[0], padding[-1]) if channel_last else padding[:2]
            if any(list(p) != [0, 0] for p in batch_channel):
                raise ValueError(f"Non-zero padding({padding}) in the batch or channel "
                                 "dimensions is not supported.")
            spatial = padding[1:-1] if channel_last else padding[2:]
            flat = [int(e) for pair in spatial for e in pair]
            pads = flat[0::2] if _is_symmetric(flat, num_dims) else flat
        elif len(padding) == 2 * num_dims and isinstance(padding[0], int):
            flat = convert_to_list(padding, 2 * num_dims, "padding")
            pads = flat[0::2] if _is_symmetric(flat, num_dims) else flat
        elif len(padding) == num_dims and isinstance(padding[0], int):
            pads = convert_to_list(padding, num_dims, "padding")
        else:
            raise ValueError(f"Invalid padding: {padding}" if pooling
                             else f"In valid padding: {padding}")
    else:
        pads = convert_to_list(padding, num_dims, "padding")
    if not pooling and not all(p >= 0 for p in pads):
        raise ValueError("Invalid padding, all value should be larger than or equal to 0, "
                         f"but received: {pads}")
    return pads, "EXPLICIT"


def _check_format(data_format: str, api: str) -> bool:
    if data_format not in ("NCHW", "NHWC"):
        raise ValueError(f"Attr(data_format) of {api} got wrong value: received {data_format}, "
                         "but only 'NCHW' or 'NHWC' are supported.")
    return data_format == "NHWC"


def _check_groups(num_channels: int, groups: int, api: str, x_shape: list[int]) -> None:
    if groups == 0:
        raise ValueError(f"The groups of {api} should not be zero.")
    if num_channels != -1 and num_channels % groups != 0:
        raise ValueError(f"The channel of input must be divisible by groups, received: the "
                         f"channel of input is {num_channels}, the shape of input is "
                         f"{x_shape}, the groups is {groups}")


def add_bias(out: Any, bias: Any, channel_dim: int) -> Any:
    """out + bias along `channel_dim`, as Paddle's static conv writes it: a direct add when
    channel_dim is -1 (the functional NHWC form) or the ranks match, else the bias reshaped
    to [1, ..., C, ..., 1] by its own reshape2 op."""
    if channel_dim == -1 or len(out.shape) == len(bias.shape):
        return math.add(out, bias)
    trailing = len(out.shape) - len(bias.shape) - channel_dim
    with helper("reshape2"):
        bias = math.reshape(bias, [1] * channel_dim + list(bias.shape) + [1] * trailing)
    return math.add(out, bias)


def conv_nd(x: Any, weight: Any, bias: Any, stride: list[int], padding: list[int],
            padding_algorithm: str, dilation: list[int], groups: int, data_format: str,
            channel_dim: int, op_type: str, name: str | None = None) -> Any:
    """Paddle's _conv_nd for 2-D: the conv op (`op_type` conv2d / depthwise_conv2d), then
    the bias; shared by F.conv2d and nn.Conv2D (which passes its own channel_dim)."""
    op_cls = conv_ops.DepthwiseConv2D if op_type == "depthwise_conv2d" else conv_ops.Conv2D
    with helper(op_type, name):
        out = apply(op_cls, x, weight, strides=tuple(stride), paddings=tuple(padding),
                    padding_algorithm=padding_algorithm, dilations=tuple(dilation),
                    groups=groups, data_format=data_format)
        if bias is not None:
            out = add_bias(out, bias, channel_dim)
    return out


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1, data_format: str = "NCHW",
           name: str | None = None) -> Any:
    """2-D convolution; weight [C_out, C_in / groups, kh, kw]."""
    channel_last = _check_format(data_format, "conv2d")
    channel_dim = -1 if channel_last else 1
    if len(x.shape) != 4:
        raise ValueError(f"Input x should be 4D tensor, but received x with the shape of "
                         f"{x.shape}")
    num_channels, num_filters = x.shape[channel_dim], weight.shape[0]
    _check_groups(num_channels, groups, "conv2d", x.shape)
    if num_filters != -1 and num_filters % groups != 0:
        raise ValueError(f"The number of filters must be divisible by groups, received: the "
                         f"number of filters is {num_filters}, the shape of weight is "
                         f"{weight.shape}, the groups is {groups}")
    pads, algorithm = update_padding_nd(padding, channel_last, 2)
    stride = convert_to_list(stride, 2, "stride")
    dilation = convert_to_list(dilation, 2, "dilation")
    depthwise = num_channels == groups and num_channels != 1 and num_filters % num_channels == 0
    return conv_nd(x, weight, bias, stride, pads, algorithm, dilation, groups, data_format,
                   channel_dim, "depthwise_conv2d" if depthwise else "conv2d", name)


def _static_sizes(values: Sequence[Any], what: str) -> list[int]:
    if any(not isinstance(v, int) for v in values):
        raise UnsupportedError(f"conv2d_transpose: {what} must be Python ints (a Tensor "
                               f"{what} is not supported), got {list(values)}")
    return list(values)


def conv2d_transpose(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1,
                     output_size: Any = None, data_format: str = "NCHW",
                     name: str | None = None) -> Any:
    """Transposed 2-D convolution; weight [C_in, C_out / groups, kh, kw]."""
    channel_last = _check_format(data_format, "conv2d_transpose")
    channel_dim = -1 if channel_last else 1
    if len(x.shape) != 4:
        raise ValueError(f"Input x should be 4D tensor, but received x with the shape of "
                         f"{x.shape}")
    if len(weight.shape) != 4:
        raise ValueError(f"Input weight should be 4D tensor, but received weight with the "
                         f"shape of {weight.shape}")
    num_channels = x.shape[channel_dim]
    _check_groups(num_channels, groups, "conv2d_transpose", x.shape)
    pads, algorithm = update_padding_nd(padding, channel_last, 2)
    stride = convert_to_list(stride, 2, "stride")
    dilation = convert_to_list(dilation, 2, "dilation")
    if output_size is None:
        size: list[int] = []
    else:
        if output_padding != 0:
            raise ValueError("output_padding option is mutually exclusive with output_size")
        if isinstance(output_size, (list, tuple)):
            size = convert_to_list(_static_sizes(output_size, "output_size"), 2, "output_size")
        elif isinstance(output_size, int):
            size = convert_to_list(output_size, 2, "output_size")
        else:
            raise UnsupportedError("conv2d_transpose: output_size must be an int or a list of "
                                   f"ints (a Tensor output_size is not supported), got "
                                   f"{type(output_size).__name__}")
    out_pad = [] if output_padding == 0 else convert_to_list(output_padding, 2,
                                                             "output_padding")
    num_filters = weight.shape[1]
    depthwise = num_channels == groups and num_channels != 1 and num_filters == 1
    op_type = "depthwise_conv2d_transpose" if depthwise else "conv2d_transpose"
    op_cls = conv_ops.DepthwiseConv2DTranspose if depthwise else conv_ops.Conv2DTranspose
    with helper(op_type, name):
        out = apply(op_cls, x, weight, strides=tuple(stride), paddings=tuple(pads),
                    padding_algorithm=algorithm, dilations=tuple(dilation), groups=groups,
                    data_format=data_format, output_padding=tuple(out_pad),
                    output_size=tuple(size))
        if bias is not None:
            out = add_bias(out, bias, channel_dim)
    return out


__all__ = ["conv2d", "conv2d_transpose"]
