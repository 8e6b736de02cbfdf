"""paddle.static.nn: layers that create their parameters in the main and startup programs."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.nn.initializer import Constant, XavierInitializer
from tostatic.frontend.nn.param_attr import ParamAttr
from tostatic.frontend.static.mode import _require_static, create_parameter
from tostatic.ir.errors import UnsupportedError
from tostatic.ops.elementwise import Add
from tostatic.ops.linalg import FlattenMatmul
from tostatic.ir import builder as builders


def _parameter(attr: Any, prefix: str, suffix: str, shape: list[int], dtype: Any,
               default_init: Any):
    attr = ParamAttr._to_attr(attr)
    if attr is False:
        return None
    name = attr.name or builders.current().names(f"{prefix}.{suffix}")  # per Program
    return create_parameter(name, shape, dtype, attr.initializer or default_init,
                            trainable=attr.trainable)


def fc(x, size, num_flatten_dims=1, weight_attr=None, bias_attr=None, activation=None,
       name=None):
    """Paddle's static fc: `mul` with a new weight [prod(x.shape[k:]), size], then the bias
    added at axis k (`elementwise_add` axis=num_flatten_dims), then the activation."""
    _require_static("paddle.static.nn.fc")
    if isinstance(x, (list, tuple)):
        raise UnsupportedError("static.nn.fc with a list of inputs is not supported yet")
    k = num_flatten_dims if num_flatten_dims >= 0 else len(x.shape) + num_flatten_dims
    in_features = int(np.prod(x.shape[k:]))
    if in_features < 0:
        raise ValueError(f"fc: dims of {x.name} after num_flatten_dims={num_flatten_dims} must "
                         f"be known, got shape {list(x.shape)}")
    builder = builders.current()
    with builder.helper("fc", name) as prefix:
        w = _parameter(weight_attr, prefix, "w", [in_features, size], x.dtype,
                       XavierInitializer())
        out = apply(FlattenMatmul, x, w, x_num_col_dims=k, y_num_col_dims=1)
        b = _parameter(bias_attr, prefix, "b", [size], x.dtype, Constant(0.0))
        if b is not None:
            out = apply(Add, out, b, axis=k)
        if activation is not None:
            fn = getattr(math, activation, None)
            if fn is None:
                raise UnsupportedError(f"fc: activation {activation!r} is not supported")
            out = fn(out)
    return out
