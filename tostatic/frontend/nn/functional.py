"""paddle.nn.functional: layers' math as functions, named as Paddle's LayerHelper names them."""
from __future__ import annotations

from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.dispatch import apply
from tostatic.ops import manipulation
from tostatic.ir import builder as builders


def linear(x, weight, bias=None, name=None):
    """x @ weight + bias; both ops share the helper name `linear_K` (linear_0.tmp_0/1)."""
    with builders.helper("linear"):
        out = math.matmul(x, weight)
        if bias is not None:
            out = math.add(out, bias)
    return out


def relu(x, name=None):
    return math.relu(x)


def flatten(x, start_axis=0, stop_axis=-1, name=None):
    """Dims start_axis..stop_axis merged into one: Paddle's flatten_contiguous_range, with the
    axes written non-negative as Paddle writes them."""
    nd = max(len(x.shape), 1)
    return apply(manipulation.Flatten, x, start_axis=start_axis % nd, stop_axis=stop_axis % nd)


sigmoid = math.sigmoid
tanh = math.tanh
