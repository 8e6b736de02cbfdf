"""paddle.nn.functional gelu, layer_norm, embedding, one_hot, log_softmax (Paddle 3.3.1's
signatures and defaults; paddle/nn/functional/activation.py, norm.py, input.py).

Traced calls write what Paddle's static branch writes, named as its LayerHelper names them:
layer_norm's Mean, Variance, Y are `layer_norm_K.tmp_0/1/2` (the order the helper creates
them), embedding's result `embedding_K.tmp_0`, one_hot's `one_hot_v2_K.tmp_0`. Paddle 3.3.1
has no static branch for gelu any more (its F.gelu is the C++ op, which refuses a legacy
Variable): tostatic writes what Paddle 2.x's branch wrote, `gelu` with the bool attribute
`approximate`, in helper `gelu` (`gelu_0.tmp_0`).
"""
from __future__ import annotations

import numbers
from typing import Any

from tostatic.frontend.nn import naming
from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ir import builder as builders
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import activation, embedding as embedding_ops, layer_norm as ln_ops
from tostatic.ops import math_unary

GELU_APPROXIMATE = {"tanh": True, "none": False, True: True, False: False}


def _gelu_flag(approximate: Any) -> bool:
    try:
        return GELU_APPROXIMATE[approximate]
    except (KeyError, TypeError):
        raise ValueError(f"gelu: approximate must be a bool, 'tanh' or 'none', got "
                         f"{approximate!r}") from None


def gelu(x: Any, approximate: Any = False, name: str | None = None) -> Any:
    """0.5 x (1 + erf(x / sqrt 2)), or with approximate=True / 'tanh' the tanh form."""
    with naming.helper("gelu", name):
        return apply(activation.Gelu, x, approximate=_gelu_flag(approximate))


def _same_shape(a: list[int], b: list[int]) -> bool:
    """paddle.utils.is_same_shape: dims equal where both are known."""
    return len(a) == len(b) and all(x == y or x < 0 or y < 0 for x, y in zip(a, b))


LAYER_NORM_FORMS = {(True, True): ln_ops.LayerNorm, (True, False): ln_ops.LayerNormScaleOnly,
                    (False, True): ln_ops.LayerNormBiasOnly, (False, False): ln_ops.LayerNormPlain}


def layer_norm(x: Any, normalized_shape: Any, weight: Any = None, bias: Any = None,
               epsilon: float = 1e-05, name: str | None = None) -> Any:
    """Normalise over the last len(normalized_shape) dims (which must be normalized_shape),
    then scale by `weight` and shift by `bias` (each of prod(normalized_shape) values) if
    given: Paddle's layer_norm op with begin_norm_axis = x.ndim - len(normalized_shape)."""
    input_shape = list(x.shape)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = [normalized_shape]
    elif isinstance(normalized_shape, tuple):
        normalized_shape = list(normalized_shape)
    elif not isinstance(normalized_shape, list):
        raise ValueError("`normalized_shape` should be int, list of ints or tuple of ints.")
    begin_norm_axis = len(input_shape) - len(normalized_shape)
    if begin_norm_axis < 0 or not _same_shape(input_shape[begin_norm_axis:],
                                              [int(d) for d in normalized_shape]):
        text = str(normalized_shape)
        raise ValueError(f"Given normalized_shape is {text}, expected input with shape [*, "
                         f"{text[1:]}, but got input shape {input_shape}")
    op_cls = LAYER_NORM_FORMS[weight is not None, bias is not None]
    inputs = [x] + [w for w in (weight, bias) if w is not None]
    outs = naming.emit(op_cls, inputs, dict(epsilon=float(epsilon),
                                            begin_norm_axis=begin_norm_axis),
                       "layer_norm", name, created=(1, 2, 0))
    for stat in outs[1:]:  # Paddle creates Mean / Variance with stop_gradient=True
        stat.stop_gradient = True
    return outs[0]


def embedding(x: Any, weight: Any, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, sparse: bool = False, scale_grad_by_freq: bool = False,
              name: str | None = None) -> Any:
    """The rows of `weight` at the ids `x` (shape x.shape + [embedding_dim]); ids equal to
    padding_idx give zeros. `sparse` only concerns gradients and is ignored; max_norm (which
    renormalises the table in place) and scale_grad_by_freq (another op) are refused."""
    rows = weight.shape[0]
    padding_idx = -1 if padding_idx is None else (padding_idx if padding_idx >= 0
                                                  else rows + padding_idx)
    if rows != 0 and (padding_idx >= rows or padding_idx < -rows):
        raise ValueError(f"padding_idx must be within [-{rows}, {rows})")
    if max_norm:
        raise UnsupportedError("embedding: max_norm (renormalising the table in place) is "
                               "not supported; renormalise the weight before the call")
    if scale_grad_by_freq:
        raise UnsupportedError("embedding: scale_grad_by_freq (Paddle's "
                               "embedding_with_scaled_gradient op, a training feature) is not "
                               "supported")
    with naming.helper("embedding", name):
        return apply(embedding_ops.LookupTableV2, x, weight, padding_idx=int(padding_idx))


def one_hot(x: Any, num_classes: int = -1, name: str | None = None) -> Any:
    """float32 one-hot rows of depth num_classes (-1: the largest id + 1, known only from an
    eager tensor's values)."""
    if isinstance(num_classes, Tensor):
        num_classes = int(num_classes.item())
    elif not isinstance(num_classes, numbers.Integral):
        raise UnsupportedError("one_hot: num_classes must be an int (a depth computed in the "
                               "program, Paddle's depth_tensor, is not supported)")
    if num_classes == -1:
        if builders.current() is not None:
            raise UnsupportedError("one_hot: num_classes=-1 takes the depth from the ids' "
                                   "values, which a traced program does not have; give "
                                   "num_classes")
        num_classes = int(x.numpy().max()) + 1
    with naming.helper("one_hot_v2", name):
        return apply(embedding_ops.OneHot, x, depth=int(num_classes), dtype=dtypes.float32,
                     allow_out_of_range=False)


def log_softmax(x: Any, axis: int = -1, dtype: Any = None, name: str | None = None) -> Any:
    """log(softmax(x)) along `axis`, x first cast to `dtype` if given (float32 / float64)."""
    with naming.helper("log_softmax", name):
        if dtype is not None:
            dtype = dtypes.convert_dtype(dtype)
            if dtype not in (dtypes.float32, dtypes.float64):
                raise TypeError("log_softmax: if dtype is not None, it only support float32 "
                                f"or float64, got {dtype.name}")
            x = math.cast(x, dtype)
        return apply(math_unary.LogSoftmax, x, axis=int(axis))


__all__ = ["embedding", "gelu", "layer_norm", "log_softmax", "one_hot"]
