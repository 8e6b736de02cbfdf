"""paddle.nn.functional: layers' math as functions, named as Paddle's LayerHelper names them."""
from __future__ import annotations

from tostatic.frontend.nn.functional_activation import relu, sigmoid, tanh
from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.manipulation import flatten
from tostatic.ir import builder as builders

__all__ = ["flatten", "linear", "relu", "sigmoid", "tanh"]


def linear(x, weight, bias=None, name=None):
    """x @ weight + bias; both ops share the helper name `linear_K` (linear_0.tmp_0/1)."""
    with builders.helper("linear"):
        out = math.matmul(x, weight)
        if bias is not None:
            out = math.add(out, bias)
    return out
