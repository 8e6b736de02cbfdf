"""paddle.nn BatchNorm (the fluid-era layer), BatchNorm1D, BatchNorm2D, GroupNorm,
InstanceNorm2D (paddle/nn/layer/norm.py, 3.3.1).

Parameters are Paddle's, in Paddle's order, so state dicts load both ways: `weight` (ones),
`bias` (zeros), and for the batch norms the running statistics `_mean` (zeros) and `_variance`
(ones), non-trainable parameters named `<layer>.w_1` / `.w_2` (or `<name>_mean` /
`<name>_variance`). InstanceNorm's are `scale` and `bias`. train() / eval() switch the batch
norms between batch statistics (updating the running ones, with Paddle's momentum) and the
running statistics.

In a program saved from eval mode, batch_norm has is_test=True, as Paddle's files have it;
nn.BatchNorm writes use_global_stats as given (default False), the *D layers write
use_global_stats = not training (True), as Paddle's do.
"""
from __future__ import annotations

import warnings
from typing import Any

from tostatic.frontend.nn import functional_norm as FN
from tostatic.frontend.nn import naming
from tostatic.frontend.tensor.math import relu, sigmoid, tanh  # no helper: act runs in batch_norm's
from tostatic.frontend.nn.initializer import Constant
from tostatic.frontend.nn.layer import Layer, _default_dtype_name
from tostatic.frontend.nn.param_attr import ParamAttr
from tostatic.ir.errors import UnsupportedError

ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}


def _running_stats(layer: Layer, shape: list[int], dtype: Any, mean_name: str | None,
                   variance_name: str | None, do_model_average: bool = True) -> None:
    layer._mean = layer.create_parameter(
        dtype=dtype, shape=shape,
        attr=ParamAttr(name=mean_name, initializer=Constant(0.0), trainable=False,
                       do_model_average=do_model_average))
    layer._mean.stop_gradient = True
    layer._variance = layer.create_parameter(
        dtype=dtype, shape=shape,
        attr=ParamAttr(name=variance_name, initializer=Constant(1.0), trainable=False,
                       do_model_average=do_model_average))
    layer._variance.stop_gradient = True


class _BatchNormBase(Layer):
    def __init__(self, num_features: int, momentum: float = 0.9, epsilon: float = 1e-05,
                 weight_attr: Any = None, bias_attr: Any = None, data_format: str = "NCHW",
                 use_global_stats: bool | None = None, name: str | None = None) -> None:
        super().__init__()
        self._num_features = num_features
        self._weight_attr = weight_attr
        self._bias_attr = bias_attr
        self._use_global_stats = use_global_stats
        default = _default_dtype_name()
        self._dtype = "float32" if default == "float16" else default
        shape = [num_features]
        self.weight = (self.create_parameter(attr=self._weight_attr, shape=shape,
                                             dtype=self._dtype,
                                             default_initializer=Constant(1.0))
                       if weight_attr is not False else None)
        self.bias = (self.create_parameter(attr=self._bias_attr, shape=shape,
                                           dtype=self._dtype, is_bias=True)
                     if bias_attr is not False else None)
        _running_stats(self, shape, self._dtype,
                       None if name is None else name + "_mean",
                       None if name is None else name + "_variance")
        self._data_format = data_format
        self._in_place = False
        self._momentum = momentum
        self._epsilon = epsilon
        self._fuse_with_relu = False
        self._name = name

    def _check_input_dim(self, input: Any) -> None:
        raise NotImplementedError("BatchNorm Base error")

    def _check_data_format(self, input: str) -> None:
        raise NotImplementedError("BatchNorm Base data format error")

    def forward(self, input: Any) -> Any:
        self._check_data_format(self._data_format)
        self._check_input_dim(input)
        if self.training:
            warnings.warn("When training, we now always track global mean and variance.")
        return FN.batch_norm(input, self._mean, self._variance, weight=self.weight,
                             bias=self.bias, training=self.training, momentum=self._momentum,
                             epsilon=self._epsilon, data_format=self._data_format,
                             use_global_stats=self._use_global_stats)

    def extra_repr(self) -> str:
        main_str = (f"num_features={self._num_features}, momentum={self._momentum}, "
                    f"epsilon={self._epsilon}")
        if self._data_format != "NCHW":
            main_str += f", data_format={self._data_format}"
        if self._name is not None:
            main_str += f", name={self._name}"
        return main_str


class BatchNorm1D(_BatchNormBase):
    """Batch norm of [N, C] or [N, C, L] input (data_format 'NC' / 'NCL', or 'NLC')."""

    def __init__(self, num_features: int, momentum: float = 0.9, epsilon: float = 1e-05,
                 weight_attr: Any = None, bias_attr: Any = None, data_format: str = "NCL",
                 use_global_stats: bool | None = None, name: str | None = None) -> None:
        super().__init__(num_features, momentum, epsilon, weight_attr, bias_attr, data_format,
                         use_global_stats, name)

    def _check_data_format(self, input: str) -> None:
        if input in ("NCHW", "NC", "NCL"):
            self._data_format = "NCHW"
        elif input in ("NHWC", "NLC"):
            self._data_format = "NHWC"
        else:
            raise ValueError("expected NC , NCL, NLC or None for data_format input")

    def _check_input_dim(self, input: Any) -> None:
        if len(input.shape) not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {len(input.shape)}D input)")


class BatchNorm2D(_BatchNormBase):
    """Batch norm of [N, C, H, W] (or NHWC) input."""

    def _check_data_format(self, input: str) -> None:
        if input not in ("NCHW", "NHWC"):
            raise ValueError("expected NCHW or NHWC for data_format input")
        self._data_format = input

    def _check_input_dim(self, input: Any) -> None:
        if len(input.shape) != 4:
            raise ValueError(f"expected 4D input (got {len(input.shape)}D input)")


class BatchNorm(Layer):
    """The fluid-era batch norm layer (any rank 2-5, data_layout 'NCHW' / 'NHWC', optional
    activation `act`). Its full name is `batch_norm_K`, and its program variables are named
    under it (`batch_norm_0.tmp_3` is Y: Paddle's layer helper also makes a ReserveSpace)."""

    def __init__(self, num_channels: int, act: str | None = None, is_test: bool = False,
                 momentum: float = 0.9, epsilon: float = 1e-05, param_attr: Any = None,
                 bias_attr: Any = None, dtype: Any = "float32", data_layout: str = "NCHW",
                 in_place: bool = False, moving_mean_name: str | None = None,
                 moving_variance_name: str | None = None,
                 do_model_average_for_mean_and_var: bool = True,
                 use_global_stats: bool = False, trainable_statistics: bool = False) -> None:
        super().__init__()
        self._param_attr = param_attr
        self._bias_attr = bias_attr
        if act is not None and act not in ACTIVATIONS:
            raise UnsupportedError(f"BatchNorm: act={act!r} is not supported (supported: "
                                   f"{', '.join(sorted(ACTIVATIONS))}, or None)")
        self._act = act
        self._dtype = "float32" if dtype == "float16" else dtype
        shape = [num_channels]
        self.weight = (self.create_parameter(attr=self._param_attr, shape=shape,
                                             dtype=self._dtype,
                                             default_initializer=Constant(1.0))
                       if param_attr is not False else None)
        self.bias = (self.create_parameter(attr=self._bias_attr, shape=shape,
                                           dtype=self._dtype, is_bias=True)
                     if bias_attr is not False else None)
        _running_stats(self, shape, self._dtype, moving_mean_name, moving_variance_name,
                       do_model_average_for_mean_and_var)
        self._in_place = in_place
        self._data_layout = data_layout
        self._momentum = momentum
        self._epsilon = epsilon
        self._is_test = is_test
        self._fuse_with_relu = False
        self._use_global_stats = use_global_stats
        self._trainable_statistics = trainable_statistics
        self.training = not self._is_test

    def forward(self, input: Any) -> Any:
        from_layer = FN.batch_norm_op(
            input, self._mean, self._variance, self.weight, self.bias,
            is_test=not self.training, momentum=self._momentum, epsilon=self._epsilon,
            data_layout=self._data_layout, use_global_stats=self._use_global_stats,
            trainable_statistics=self._trainable_statistics, key="batch_norm",
            name=self._full_name, created=(3, 4, None, 0))
        out = from_layer[0]
        if self._act is None:
            return out
        with naming.helper("batch_norm", self._full_name):
            return ACTIVATIONS[self._act](out)


class GroupNorm(Layer):
    """Group norm: channels in num_groups groups, each normalised per sample."""

    def __init__(self, num_groups: int, num_channels: int, epsilon: float = 1e-05, *,
                 affine: bool = True, device: Any = None, dtype: Any = None,
                 weight_attr: Any = None, bias_attr: Any = None, data_format: str = "NCHW",
                 name: str | None = None, eps: float | None = None) -> None:
        super().__init__()
        if eps is not None:  # Paddle's alias
            epsilon = eps
        self._epsilon = epsilon
        self._num_channels = num_channels
        self._num_groups = num_groups
        self._device = device
        self._dtype = _default_dtype_name() if dtype is None else dtype
        if data_format not in ("NCL", "NCHW", "NCDHW", "NLC", "NHWC", "NDHWC"):
            raise ValueError("unsupported data layout:" + data_format)
        self._data_format = "NCHW" if data_format[1] == "C" else "NHWC"
        shape = [num_channels]
        if not affine:
            weight_attr = bias_attr = False
        self._weight_attr = weight_attr
        self._bias_attr = bias_attr
        if weight_attr is False:
            self.weight = None
        else:
            self.weight = self.create_parameter(attr=self._weight_attr, shape=shape,
                                                dtype=self._dtype,
                                                default_initializer=Constant(1.0),
                                                device=self._device)
            self.weight.stop_gradient = _frozen(self._weight_attr)
        if bias_attr is False:
            self.bias = None
        else:
            self.bias = self.create_parameter(attr=self._bias_attr, shape=shape,
                                              dtype=self._dtype,
                                              default_initializer=Constant(0.0), is_bias=True,
                                              device=self._device)
            self.bias.stop_gradient = _frozen(self._bias_attr)

    def forward(self, input: Any) -> Any:
        return FN.group_norm(input, self._num_groups, self._epsilon, self.weight, self.bias,
                             self._data_format)

    def extra_repr(self) -> str:
        return (f"num_groups={self._num_groups}, num_channels={self._num_channels}, "
                f"epsilon={self._epsilon}")


def _frozen(attr: Any) -> bool:
    return attr is not None and getattr(attr, "learning_rate", None) == 0.0


class _InstanceNormBase(Layer):
    def __init__(self, num_features: int, epsilon: float = 1e-5, momentum: float = 0.9,
                 weight_attr: Any = None, bias_attr: Any = None, data_format: str = "NCHW",
                 name: str | None = None) -> None:
        super().__init__()
        if weight_attr is False or bias_attr is False:
            assert weight_attr == bias_attr, ("weight_attr and bias_attr must be set to False "
                                              "at the same time in InstanceNorm")
        self._momentum = momentum
        self._epsilon = epsilon
        self._weight_attr = weight_attr
        self._bias_attr = bias_attr
        self._num_features = num_features
        self._data_format = data_format
        if weight_attr is not False and bias_attr is not False:
            self.scale = self.create_parameter(attr=self._weight_attr, shape=[num_features],
                                               default_initializer=Constant(1.0),
                                               is_bias=False)
            self.bias = self.create_parameter(attr=self._bias_attr, shape=[num_features],
                                              default_initializer=Constant(0.0), is_bias=True)
        else:
            self.scale = None
            self.bias = None

    def _check_input_dim(self, input: Any) -> None:
        raise NotImplementedError("InstanceNorm Base error")

    def forward(self, input: Any) -> Any:
        self._check_input_dim(input)
        return FN.instance_norm(input, weight=self.scale, bias=self.bias,
                                momentum=self._momentum, eps=self._epsilon,
                                data_format=self._data_format)

    def extra_repr(self) -> str:
        return f"num_features={self._num_features}, epsilon={self._epsilon}"


class InstanceNorm2D(_InstanceNormBase):
    """Instance norm of [N, C, H, W] input: parameters `scale` and `bias`."""

    def _check_input_dim(self, input: Any) -> None:
        if len(input.shape) != 4:
            raise ValueError(f"expected 4D input (got {len(input.shape)}D input)")


__all__ = ["BatchNorm", "BatchNorm1D", "BatchNorm2D", "GroupNorm", "InstanceNorm2D"]
