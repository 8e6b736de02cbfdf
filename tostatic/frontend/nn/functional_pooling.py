"""paddle.nn.functional 2-D pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d,
adaptive_max_pool2d (paddle/nn/functional/pooling.py, 3.3.1).

What each writes is what Paddle's static graph writes: pool2d for max_pool2d / avg_pool2d
(use_cudnn=True, as Paddle's Python API sets it) and adaptive_avg_pool2d (adaptive=True, the
attributes Paddle leaves at their defaults); max_pool2d_with_index for max_pool2d(return_mask=
True) and adaptive_max_pool2d (even without return_mask: the Mask is then computed and
dropped, as in Paddle). Paddle's quirks are kept: max_pool2d(return_mask=True) pads with the
explicit paddings only ('SAME' becomes zero padding, four unequal paddings are an error).
"""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn.functional_conv import convert_to_list, update_padding_nd
from tostatic.frontend.nn.naming import helper
from tostatic.frontend.tensor.dispatch import apply
from tostatic.ir.errors import UnsupportedError
from tostatic.ops.pooling import MaxPool2DWithIndex, Pool2D


def _kernel_and_stride(kernel_size: Any, stride: Any) -> tuple[list[int], list[int]]:
    kernel = convert_to_list(kernel_size, 2, "pool_size")
    strides = kernel if stride is None else convert_to_list(stride, 2, "pool_stride")
    for what, values in (("kernel_size", kernel), ("stride", strides)):
        if any(v < 1e-3 for v in values):
            raise ValueError(f"Excepted the input {what} to be greater than 0.001 but "
                             f"received x: {min(values)}. ")
    return kernel, strides


def _channel_last(data_format: str) -> bool:
    if data_format not in ("NCHW", "NHWC"):
        raise ValueError("Attr(data_format) should be 'NCHW' or 'NHWC'. Received "
                         f"Attr(data_format): {data_format}.")
    return data_format == "NHWC"


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               return_mask: bool = False, ceil_mode: bool = False, data_format: str = "NCHW",
               name: str | None = None) -> Any:
    """Max over 2-D windows; with return_mask, also each maximum's flat index in its plane."""
    kernel, strides = _kernel_and_stride(kernel_size, stride)
    channel_last = _channel_last(data_format)
    pads, algorithm = update_padding_nd(padding, channel_last, 2, pooling=True,
                                        ceil_mode=ceil_mode)
    if channel_last and return_mask:
        raise ValueError("When setting return_mask to true, data_format must be set to NCHW "
                         "in API:max_pool2d")
    if return_mask:
        with helper("max_pool2d_with_index", name):
            out, mask = apply(MaxPool2DWithIndex, x, ksize=tuple(kernel),
                              strides=tuple(strides), paddings=tuple(pads),
                              global_pooling=False, adaptive=False, ceil_mode=ceil_mode)
        return out, mask
    with helper("pool2d", name):
        return apply(Pool2D, x, pooling_type="max", ksize=tuple(kernel),
                     strides=tuple(strides), paddings=tuple(pads), ceil_mode=ceil_mode,
                     exclusive=True, data_format=data_format, global_pooling=False,
                     adaptive=False, padding_algorithm=algorithm, use_cudnn=True)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, exclusive: bool = True,
               divisor_override: float | None = None, data_format: str = "NCHW",
               name: str | None = None) -> Any:
    """Mean over 2-D windows (exclusive: of the elements inside the input only);
    divisor_override rescales the sum, as Paddle does: out * kh * kw / divisor_override."""
    kernel, strides = _kernel_and_stride(kernel_size, stride)
    channel_last = _channel_last(data_format)
    pads, algorithm = update_padding_nd(padding, channel_last, 2, pooling=True,
                                        ceil_mode=ceil_mode)
    with helper("pool2d", name):
        out = apply(Pool2D, x, pooling_type="avg", ksize=tuple(kernel), strides=tuple(strides),
                    paddings=tuple(pads), ceil_mode=ceil_mode, exclusive=exclusive,
                    data_format=data_format, global_pooling=False, adaptive=False,
                    padding_algorithm=algorithm, use_cudnn=True)
    if divisor_override is None:
        return out
    if not isinstance(divisor_override, (int, float)):
        raise ValueError(f"Excepted {(int, float)} type for divisor_override but received "
                         f"type: {type(divisor_override)}. ")
    return out * (kernel[0] * kernel[1]) / divisor_override


def _output_size(output_size: Any, in_hw: tuple[int, int], api: str) -> list[int]:
    """An int, or [h, w] where None keeps the input's size (which must then be known)."""
    if isinstance(output_size, int):
        return convert_to_list(output_size, 2, "output_size")
    size = list(output_size)
    if len(size) != 2:
        raise ValueError(f"{api}: output_size needs 2 values, got {output_size}")
    for i in range(2):
        if size[i] is None:
            if in_hw[i] < 0:
                raise UnsupportedError(f"{api}: output_size {list(output_size)} keeps a "
                                       f"spatial size that is dynamic (-1) here; give it")
            size[i] = in_hw[i]
        elif not isinstance(size[i], int):
            raise UnsupportedError(f"{api}: output_size must hold Python ints (a Tensor size "
                                   f"is not supported), got {list(output_size)}")
    return size


def adaptive_avg_pool2d(x: Any, output_size: Any, data_format: str = "NCHW",
                        name: str | None = None) -> Any:
    """Average pooling into an output_size grid of windows [floor(i*n/out), ceil((i+1)*n/out))."""
    channel_last = _channel_last(data_format)
    in_hw = (x.shape[1], x.shape[2]) if channel_last else (x.shape[2], x.shape[3])
    size = _output_size(output_size, in_hw, "adaptive_avg_pool2d")
    with helper("pool2d", name):
        return apply(Pool2D, x, pooling_type="avg", ksize=tuple(size), adaptive=True,
                     data_format=data_format)


def adaptive_max_pool2d(x: Any, output_size: Any, return_mask: bool = False,
                        name: str | None = None) -> Any:
    """Max pooling into an output_size grid of adaptive windows (NCHW); with return_mask,
    also each maximum's flat index in its plane."""
    if len(x.shape) != 4:
        raise ValueError(f"Excepted Input X is 4-D tensor, but received {len(x.shape)}-D "
                         f"{type(x)}")
    size = _output_size(output_size, (x.shape[2], x.shape[3]), "adaptive_max_pool2d")
    with helper("max_pool2d_with_index", name):
        out, mask = apply(MaxPool2DWithIndex, x, ksize=tuple(size), adaptive=True)
    return (out, mask) if return_mask else out


__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "max_pool2d"]
