"""The activation layers of paddle.nn (paddle/nn/layer/activation.py, 3.3.1): ReLU6,
Hardswish, Hardsigmoid, Swish, Silu, LeakyReLU, ELU, PReLU, Softmax, Sigmoid, Tanh.

Each keeps Paddle's attribute names and repr and calls its nn.functional function; PReLU
owns one parameter, `_weight` (`p_re_lu_0.w_0`, Constant(init) of shape [num_parameters]).
"""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn import functional_activation as F
from tostatic.frontend.nn.initializer import Constant
from tostatic.frontend.nn.layer import Layer, _default_dtype_name


class _Named(Layer):
    """An activation whose only argument is `name` (kept as `_name`)."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self._name = name

    def extra_repr(self) -> str:
        return f"name={self._name}" if self._name else ""


class ReLU6(_Named):
    def forward(self, x: Any) -> Any:
        return F.relu6(x, self._name)


class Hardswish(_Named):
    def forward(self, x: Any) -> Any:
        return F.hardswish(x, self._name)


class Swish(_Named):
    def forward(self, x: Any) -> Any:
        return F.swish(x, self._name)


class Tanh(_Named):
    def forward(self, x: Any) -> Any:
        return F.tanh(x, self._name)


class Hardsigmoid(Layer):
    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: Any) -> Any:
        return F.hardsigmoid(x, name=self.name)

    def extra_repr(self) -> str:
        return f"name={self.name}" if self.name else ""


class Sigmoid(Layer):
    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: Any) -> Any:
        return F.sigmoid(x, self.name)

    def extra_repr(self) -> str:
        return f"name={self.name}" if self.name else ""


class Silu(Layer):
    def __init__(self, inplace: bool = False, name: str | None = None) -> None:
        super().__init__()
        self._name = name
        self._inplace = inplace

    def forward(self, x: Any) -> Any:
        return F.silu(x, self._inplace, self._name)

    def extra_repr(self) -> str:
        return f"inplace={self._inplace}" + (f", name={self._name}" if self._name else "")


class LeakyReLU(Layer):
    def __init__(self, negative_slope: float = 0.01, name: str | None = None) -> None:
        super().__init__()
        self._negative_slope = negative_slope
        self._name = name

    def forward(self, x: Any) -> Any:
        return F.leaky_relu(x, self._negative_slope, self._name)

    def extra_repr(self) -> str:
        name_str = f", name={self._name}" if self._name else ""
        return f"negative_slope={self._negative_slope}{name_str}"


class ELU(Layer):
    def __init__(self, alpha: float = 1.0, name: str | None = None) -> None:
        super().__init__()
        self._alpha = alpha
        self._name = name

    def forward(self, x: Any) -> Any:
        return F.elu(x, self._alpha, self._name)

    def extra_repr(self) -> str:
        name_str = f", name={self._name}" if self._name else ""
        return f"alpha={self._alpha}{name_str}"


class Softmax(Layer):
    def __init__(self, axis: int = -1, name: str | None = None) -> None:
        super().__init__()
        self._axis = axis
        self._dtype = None
        self._name = name

    def forward(self, x: Any) -> Any:
        return F.softmax(x, self._axis, name=self._name)

    def extra_repr(self) -> str:
        name_str = f", name={self._name}" if self._name else ""
        return f"axis={self._axis}{name_str}"


class PReLU(Layer):
    """x if x > 0 else weight * x, with one learnable weight or one per channel."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, weight_attr: Any = None,
                 data_format: str = "NCHW", name: str | None = None) -> None:
        super().__init__()
        self._num_parameters = num_parameters
        self._init = init
        self._weight_attr = weight_attr
        self._name = name
        self._data_format = data_format
        self._weight = self.create_parameter(attr=self._weight_attr,
                                             shape=[self._num_parameters],
                                             dtype=_default_dtype_name(), is_bias=False,
                                             default_initializer=Constant(self._init))

    def forward(self, x: Any) -> Any:
        return F.prelu(x, self._weight, data_format=self._data_format)

    def extra_repr(self) -> str:
        name_str = f", name={self._name}" if self._name else ""
        return (f"num_parameters={self._num_parameters}, data_format={self._data_format}, "
                f"init={self._init}, dtype={self._dtype}{name_str}")


__all__ = ["ELU", "Hardsigmoid", "Hardswish", "LeakyReLU", "PReLU", "ReLU6", "Sigmoid", "Silu",
           "Softmax", "Swish", "Tanh"]
