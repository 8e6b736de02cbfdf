"""paddle.nn.functional: layers' math as functions, named as Paddle's LayerHelper names them."""
from __future__ import annotations

from tostatic.frontend.tensor import math
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
    """Dims start_axis..stop_axis merged into one (written as a reshape: 0 keeps leading dims)."""
    nd = len(x.shape)
    start, stop = start_axis % max(nd, 1), stop_axis % max(nd, 1)
    tail = x.shape[stop + 1:]
    if any(d < 0 for d in tail):
        raise ValueError(f"flatten: dims after stop_axis must be static, got shape {x.shape}")
    return math.reshape(x, [0] * start + [-1] + list(tail))


sigmoid = math.sigmoid
tanh = math.tanh
