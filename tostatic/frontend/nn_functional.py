"""paddle.nn.functional: layers' math as functions, named as Paddle's LayerHelper names them."""
from __future__ import annotations

from tostatic.frontend import math, tracing


def linear(x, weight, bias=None, name=None):
    """x @ weight + bias; both ops share the helper name `linear_K` (linear_0.tmp_0/1)."""
    with tracing.helper("linear"):
        out = math.matmul(x, weight)
        if bias is not None:
            out = math.add(out, bias)
    return out


def relu(x, name=None):
    return math.relu(x)


sigmoid = math.sigmoid
tanh = math.tanh
