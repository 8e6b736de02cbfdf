"""paddle.nn.functional activations (paddle/nn/functional/activation.py, 3.3.1): relu,
relu6, hardswish, hardsigmoid, swish, silu, leaky_relu, elu, prelu, softmax, sigmoid, tanh.

Each writes the one op Paddle's static branch writes, in its LayerHelper (`relu6_0.tmp_0`,
or `<name>.tmp_0` with a user's `name`), with the attributes it writes (hardsigmoid's slope
1/6 as float32, leaky_relu's `negative_slope` as `alpha`, prelu's mode from the weight's
shape, softmax's dtype as a cast in the same helper). sigmoid and tanh are written as
Paddle 2.x wrote them: Paddle 3.3.1 builds them in the new IR only.
"""
from __future__ import annotations

from typing import Any

from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.naming import helper
from tostatic.ir import builder as builders
from tostatic.ir import dtypes
from tostatic.ops import activation as A
from tostatic.ops import manipulation


def _unary(op_cls: Any, key: str, x: Any, name: str | None, **attrs: Any) -> Any:
    with helper(key, name):
        return apply(op_cls, x, **attrs)


def relu(x: Any, name: str | None = None) -> Any:
    return _unary(A.Relu, "relu", x, name)


def relu6(x: Any, name: str | None = None) -> Any:
    return _unary(A.Relu6, "relu6", x, name)


def hardswish(x: Any, name: str | None = None) -> Any:
    return _unary(A.HardSwish, "hardswish", x, name)


def hardsigmoid(x: Any, slope: float = 0.1666667, offset: float = 0.5,
                name: str | None = None) -> Any:
    return _unary(A.HardSigmoid, "hardsigmoid", x, name, slope=float(slope),
                  offset=float(offset))


def swish(x: Any, name: str | None = None) -> Any:
    return _unary(A.Swish, "swish", x, name)


def silu(x: Any, inplace: bool = False, name: str | None = None) -> Any:
    """x * sigmoid(x); `inplace` (eager only) writes the result into x, as Paddle's silu_
    (not when the result has a gradient history: x's own history must stay what it was)."""
    out = _unary(A.Silu, "silu", x, name)
    if inplace and builders.current() is None and out._grad_node is None:
        x._data = out._data
        return x
    return out


def leaky_relu(x: Any, negative_slope: float = 0.01, name: str | None = None) -> Any:
    return _unary(A.LeakyRelu, "leaky_relu", x, name, alpha=float(negative_slope))


def elu(x: Any, alpha: float = 1.0, name: str | None = None) -> Any:
    return _unary(A.Elu, "elu", x, name, alpha=float(alpha))


PRELU_FORMATS = ("NC", "NCL", "NCHW", "NCDHW", "NLC", "NHWC", "NDHWC")


def prelu(x: Any, weight: Any, data_format: str = "NCHW", name: str | None = None) -> Any:
    """x if x > 0 else weight * x: one weight for all (shape [1]) or one per channel."""
    if len(weight.shape) not in (0, 1):
        raise ValueError("The dim count of weight shape should be 0 or 1 in prelu().")
    mode = "all"
    if len(weight.shape) == 1 and weight.shape[0] > 1:
        if data_format not in PRELU_FORMATS:
            raise ValueError("data_format must be one of 'NC', 'NCL', 'NCHW', 'NCDHW', "
                             f"'NLC', 'NHWC', 'NDHWC' but receive {data_format}")
        data_format = "NCHW" if data_format[1] == "C" else "NHWC"
        if len(x.shape) <= 1:
            raise ValueError("The dim count of x should be equal or larger than 2 in prelu() "
                             "when weight shape is not [1].")
        channels = x.shape[-1] if data_format == "NHWC" else x.shape[1]
        if channels >= 0 and weight.shape[0] != channels:
            raise ValueError("The weight size should be equal to x input channel in prelu() "
                             "when weight shape is not [1].")
        mode = "channel"
    with helper("prelu", name):
        return apply(A.Prelu, x, weight, mode=mode, data_format=data_format)


def softmax(x: Any, axis: int = -1, dtype: Any = None, name: str | None = None) -> Any:
    """exp(x) / sum(exp(x)) along `axis`; `dtype` casts x first (in the same helper)."""
    with helper("softmax", name):
        if dtype is not None:
            dtype = dtypes.convert_dtype(dtype)
            if not dtype.is_floating:
                raise TypeError(f"If dtype is not None, it only support uint16, float16, "
                                f"float32 or float64, got {dtype.name}")
            x = apply(manipulation.Cast, x, dtype=dtype)
        return apply(A.Softmax, x, axis=int(axis))


def sigmoid(x: Any, name: str | None = None) -> Any:
    return _unary(A.Sigmoid, "sigmoid", x, name)


def tanh(x: Any, name: str | None = None) -> Any:
    return _unary(A.Tanh, "tanh", x, name)


__all__ = ["elu", "hardsigmoid", "hardswish", "leaky_relu", "prelu", "relu", "relu6",
           "sigmoid", "silu", "softmax", "swish", "tanh"]
