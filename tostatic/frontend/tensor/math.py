"""Public tensor functions (`paddle.add`, `paddle.matmul`, ...): each only dispatches a primitive."""
from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

from tostatic.ops import random as _random
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.naming import helper
from tostatic.frontend.tensor.tensor import Tensor, TensorMethods
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import (
    activation,
    creation,
    creation_from_tensors,
    elementwise,
    linalg,
    manipulation,
    reduction,
)
from tostatic.ops import einsum as einsum_ops, gathering, logical, math_unary
from tostatic.ir import builder as builders

_BINARY = {
    "add": elementwise.Add, "subtract": elementwise.Subtract,
    "multiply": elementwise.Multiply, "divide": elementwise.Divide,
    "floor_divide": elementwise.FloorDivide,
    "remainder": elementwise.Remainder, "pow": elementwise.Pow,
    "maximum": elementwise.Maximum, "minimum": elementwise.Minimum,
    "equal": elementwise.Equal, "not_equal": elementwise.NotEqual,
    "less_than": elementwise.LessThan, "less_equal": elementwise.LessEqual,
    "greater_than": elementwise.GreaterThan, "greater_equal": elementwise.GreaterEqual,
}


def _is_tensor(x: Any) -> bool:
    return isinstance(x, TensorMethods)


def _scalar_like(value: Any, like: Any) -> Any:
    """A Python scalar as a 0-D tensor of `like`'s dtype (Paddle: fill_constant, shape [])."""
    return apply(creation.Full, shape=(), value=float(value), dtype=like.dtype, name_hint="tmp")


def binary_operator(kind: str, x: Any, y: Any, reverse: bool = False) -> Any:
    """`x <op> y` as Paddle writes it: tensor-scalar +,-,* (and /) become one `scale` op."""
    if _is_tensor(y):
        a, b = (y, x) if reverse else (x, y)
        if not _is_tensor(a):
            a = _scalar_like(a, b)
        return apply(_BINARY[kind], a, b, name_hint="tmp")
    if not isinstance(y, (int, float, bool, np.number)):
        return NotImplemented
    y = float(y) if not isinstance(y, bool) else y
    if x.dtype.is_floating or kind in ("add", "subtract", "multiply"):
        if kind == "add":
            return apply(activation.Scale, x, scale=1.0, bias=y, name_hint="tmp")
        if kind == "subtract":
            return (apply(activation.Scale, x, scale=-1.0, bias=y, name_hint="tmp") if reverse
                    else apply(activation.Scale, x, scale=1.0, bias=-y, name_hint="tmp"))
        if kind == "multiply":
            return apply(activation.Scale, x, scale=y, bias=0.0, name_hint="tmp")
        if kind == "divide" and not reverse:
            return apply(activation.Scale, x, scale=1.0 / y, bias=0.0, name_hint="tmp")
    if kind == "divide" and not x.dtype.is_floating:
        x = cast(x, "float32")  # Paddle 3 promotes int / int to float32
    s = _scalar_like(y, x)
    a, b = (s, x) if reverse else (x, s)
    return apply(_BINARY[kind], a, b, name_hint="tmp")


def _binary(kind: str):
    def fn(x, y, name=None):
        if not _is_tensor(y):
            y = _scalar_like(y, x)
        if not _is_tensor(x):
            x = _scalar_like(x, y)
        return apply(_BINARY[kind], x, y)

    fn.__name__ = kind
    fn.__doc__ = f"paddle.{kind}(x, y): elementwise with numpy broadcasting."
    return fn


add = _binary("add")
subtract = _binary("subtract")
multiply = _binary("multiply")
divide = _binary("divide")
floor_divide = _binary("floor_divide")
remainder = mod = _binary("remainder")
pow = _binary("pow")
maximum = _binary("maximum")
minimum = _binary("minimum")


def equal(x, y, name=None):
    """paddle.equal(x, y); a Python scalar y is `paddle.full([], y, x.dtype)` first, as
    Paddle's equal writes it (fill_constant_1.tmp_0, str_value '1.0')."""
    if not _is_tensor(y):
        if not isinstance(y, (int, float, bool)):
            raise TypeError(f"Type of input args must be float, bool, int or Tensor, but "
                            f"received type {type(y)}")
        y = _full([], y, x.dtype)
    return apply(_BINARY["equal"], x, y)


not_equal = _binary("not_equal")
less_than = _binary("less_than")
less_equal = _binary("less_equal")
greater_than = _binary("greater_than")
greater_equal = _binary("greater_equal")


def matmul(x, y, transpose_x=False, transpose_y=False, name=None):
    return apply(linalg.Matmul, x, y, transpose_x=transpose_x, transpose_y=transpose_y)


def scale(x, scale=1.0, bias=0.0, bias_after_scale=True, act=None, name=None):
    return apply(activation.Scale, x, scale=float(scale), bias=float(bias),
                 bias_after_scale=bias_after_scale)


def relu(x, name=None):
    return apply(activation.Relu, x)


def sigmoid(x, name=None):
    return apply(activation.Sigmoid, x)


def tanh(x, name=None):
    return apply(activation.Tanh, x)


def exp(x, name=None):
    return apply(activation.Exp, x)


def sqrt(x, name=None):
    return apply(activation.Sqrt, x)


def abs(x, name=None):
    return apply(activation.Abs, x)


def _clip_defaults(dtype: dtypes.DType) -> tuple[float, float]:
    """paddle.clip's bounds when not given, by x's dtype (its Python API's values)."""
    if dtype == dtypes.int32:
        return float(np.iinfo(np.int32).min), float(np.iinfo(np.int32).max - 2**7)
    if dtype == dtypes.int64:
        return float(np.iinfo(np.int64).min), float(np.iinfo(np.int64).max - 2**39)
    info = np.finfo(dtype.numpy if dtype in (dtypes.float16, dtypes.float64) else np.float32)
    return float(info.min), float(info.max)


def clip(x, min=None, max=None, name=None):
    """min(max(x, min), max). Eagerly an int tensor with a float bound is cast to float32
    first (Paddle's dygraph does); traced it is not (Paddle's static branch does not), so the
    bounds are truncated to the integers as Paddle's kernel casts them."""
    for what, v in (("min", min), ("max", max)):
        if _is_tensor(v):
            raise UnsupportedError(f"paddle.clip: {what} given as a Tensor is not supported; "
                                   f"give a Python number")
    lo, hi = _clip_defaults(x.dtype)
    if (builders.current() is None and x.dtype in (dtypes.int32, dtypes.int64)
            and (isinstance(min, float) or isinstance(max, float))):
        x = cast(x, dtypes.float32)
    with helper("clip", name):
        return apply(activation.Clip, x, min=lo if min is None else float(min),
                     max=hi if max is None else float(max))


def reshape(x, shape, name=None):
    return apply(manipulation.Reshape, x, shape=tuple(int(d) for d in shape))


def transpose(x, perm, name=None):
    return apply(manipulation.Transpose, x, perm=tuple(int(p) for p in perm))


def cast(x, dtype):
    return apply(manipulation.Cast, x, dtype=dtypes.convert_dtype(dtype))


# --- creation ---------------------------------------------------------------------------------

def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(d) for d in shape)


def full(shape, fill_value, dtype=None, name=None):
    return _full(shape, fill_value, dtype)


def _full(shape, fill_value, dtype=None, force_cpu=False):
    if dtype is None:
        dtype = dtypes.bool_ if isinstance(fill_value, bool) else (
            dtypes.int64 if isinstance(fill_value, int) else dtypes.float32)
    builder = builders.current()
    if builder is not None:  # Paddle's full() uses two fill_constant numbers: fill_constant_1
        builder.names("fill_constant")
    dtype = dtypes.convert_dtype(dtype)
    text = creation.paddle_value_text(fill_value, dtype)
    value = float(text) if text.lstrip("-").isdigit() else float(fill_value)  # int: truncated
    return apply(creation.Full, shape=_shape(shape), value=value, dtype=dtype, str_value=text,
                 force_cpu=force_cpu)


def zeros(shape, dtype=None, name=None):
    return full(shape, 0.0, dtype or dtypes.float32)


def ones(shape, dtype=None, name=None):
    return full(shape, 1.0, dtype or dtypes.float32)


def full_like(x, fill_value, dtype=None, name=None):
    """A tensor of x's shape filled with fill_value: Paddle's fill_any_like, with the dtype
    written out (x's own when not given), in helper `full_like`."""
    dtype = x.dtype if dtype is None else dtypes.convert_dtype(dtype)
    with helper("full_like", name):
        return apply(creation_from_tensors.FullLike, x, value=float(fill_value), dtype=dtype)


def zeros_like(x, dtype=None, name=None):
    return full_like(x, 0, dtype, name)


def ones_like(x, dtype=None, name=None):
    return full_like(x, 1, dtype, name)


def arange(start=0, end=None, step=1, dtype=None, name=None):
    """Paddle's arange: start, end and step as 1-element fill_constants (on the CPU), then
    `range` (also eagerly, so values are Paddle's bit for bit)."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = builtins.all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = dtypes.int64 if is_int else dtypes.float32
    dtype = dtypes.convert_dtype(dtype)
    bounds = [v if _is_tensor(v) else _full([1], v, dtype, force_cpu=True)
              for v in (start, end, step)]
    return apply(creation_from_tensors.Range, *bounds)


def rand(shape, dtype=None, name=None):
    return apply(creation.UniformRandom, shape=_shape(shape), min=0.0, max=1.0,
                 dtype=dtypes.convert_dtype(dtype or dtypes.float32))


def uniform(shape, dtype=None, min=-1.0, max=1.0, seed=0, name=None):
    return apply(creation.UniformRandom, shape=_shape(shape), min=float(min), max=float(max),
                 dtype=dtypes.convert_dtype(dtype or dtypes.float32))


def randn(shape, dtype=None, name=None):
    return apply(creation.GaussianRandom, shape=_shape(shape), mean=0.0, std=1.0,
                 dtype=dtypes.convert_dtype(dtype or dtypes.float32))


def normal(mean=0.0, std=1.0, shape=None, name=None):
    return apply(creation.GaussianRandom, shape=_shape(shape or [1]), mean=float(mean),
                 std=float(std), dtype=dtypes.float32)


seed = _random.seed


def is_tensor(x: Any) -> bool:
    return isinstance(x, Tensor)


def numel(x: Sequence[int]) -> int:
    return int(np.prod(x.shape))


# --- Transformer / NLP tensor functions (issue 13) ---------------------------------------------
# Each writes what Paddle writes in static mode: 3.3.1's LayerHelper where its legacy branch is
# still there (square, erf, einsum, gather_nd, index_select, take_along_axis); where 3.3.1 only
# has a PIR/eager branch (rsqrt, log, tril, triu, bmm, expand_as, logical_*), the op and
# helper name Paddle 2.x's branch wrote (rsqrt_0.tmp_0, tril_0.tmp_0, expand_as_0.tmp_0, ...).

def _named(op_cls, key, name, *inputs, **attrs):
    """One op in LayerHelper(key, name=name): its results `<key>_K.tmp_J` (or `<name>.tmp_J`)."""
    with helper(key, name):
        return apply(op_cls, *inputs, **attrs)


def erf(x, name=None):
    return _named(math_unary.Erf, "erf", name, x)


def rsqrt(x, name=None):
    return _named(math_unary.Rsqrt, "rsqrt", name, x)


def square(x, name=None):
    return _named(math_unary.Square, "square", name, x)


def log(x, name=None):
    return _named(math_unary.Log, "log", name, x)


def sign(x, name=None):
    return _named(math_unary.Sign, "sign", name, x)


def tril(x, diagonal=0, name=None):
    return _named(linalg.TrilTriu, "tril", name, x, diagonal=int(diagonal), lower=True)


def triu(x, diagonal=0, name=None):
    return _named(linalg.TrilTriu, "triu", name, x, diagonal=int(diagonal), lower=False)


def bmm(x, y, name=None):
    return _named(linalg.Bmm, "bmm", name, x, y)


def einsum(equation, *operands):
    """paddle.einsum of one or two operands, preprocessed as Paddle's Python does: spaces
    dropped, lowercased, the result labels inferred when there is no `->`, and `...` rewritten
    into unused letters after unsqueezing each operand that has it to the broadcast rank (an
    unsqueeze2 per such operand, even of no axes, as Paddle writes). Paddle picks the letters
    by popping a set (an order that changes between runs); tostatic takes them in
    alphabetical order."""
    if not 1 <= len(operands) <= 2:
        raise ValueError(f"einsum: tostatic supports one or two operands (Paddle's einsum op "
                         f"takes two at a time), got {len(operands)}")
    lhs, *rhs = equation.replace(" ", "").lower().split("->")
    if len(rhs) > 1:
        raise ValueError(f"Invalid equation {equation!r}: multiple `->` were found.")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"Invalid equation: the number of operands is {len(operands)}, but "
                         f"found {len(terms)} segments in the label equation.")
    if rhs:
        out = rhs[0]
    else:
        counts = {c: lhs.count(c) for c in lhs if c not in ".,"}
        out = ("..." if "..." in lhs else "") + "".join(
            sorted(c for c, n in counts.items() if n == 1))
    if "..." in lhs and "..." not in out:
        raise ValueError("Invalid equation: missing ellipsis in output labels.")
    if "..." in lhs:
        ranks = [len(o.shape) - len(t.replace("...", "")) for t, o in zip(terms, operands)]
        width = builtins.max(ranks)
        free = [c for c in "abcdefghijklmnopqrstuvwxy" if c not in lhs]
        letters = "".join(free[:width])
        new = []
        for t, o, r in zip(terms, operands, ranks):
            if "..." in t:
                start = t.index("...")
                o = apply(manipulation.Unsqueeze, o,
                          axes=tuple(start + i for i in range(width - r)))
            new.append(o)
        operands = tuple(new)
        lhs, out = lhs.replace("...", letters), out.replace("...", letters)
    return apply(einsum_ops.Einsum, *operands, equation=f"{lhs}->{out}")


def gather_nd(x, index, name=None):
    return _named(gathering.GatherNd, "gather_nd", name, x, index)


def index_select(x, index, axis=0, name=None):
    return _named(gathering.IndexSelect, "index_select", name, x, index, dim=int(axis))


def take_along_axis(arr, indices, axis, broadcast=True):
    """Paddle's rule: with `broadcast`, both sides are first broadcast (expand_v2) to the
    larger size of every dim but `axis`."""
    if len(arr.shape) != len(indices.shape):
        raise ValueError("`indices` and `arr` must have the same number of dimensions!")
    axis = int(axis) + len(arr.shape) if int(axis) < 0 else int(axis)
    if broadcast:
        shape = [0 if i == 0 or a == 0 else builtins.max(a, i)
                 for a, i in zip(arr.shape, indices.shape)]
        shape[axis] = indices.shape[axis]
        indices = apply(manipulation.Expand, indices, shape=tuple(shape))
        shape[axis] = arr.shape[axis]
        arr = apply(manipulation.Expand, arr, shape=tuple(shape))
    else:
        for i, (a, n) in enumerate(zip(arr.shape, indices.shape)):
            if i != axis and a != -1 and a < n:
                raise RuntimeError(f"Size does not match at dimension {i} expected index "
                                   f"{indices.shape} to be smaller than self {arr.shape} "
                                   f"apart from dimension {axis}")
    return apply(gathering.TakeAlongAxis, arr, indices, axis=axis)


def expand_as(x, y, name=None):
    return _named(manipulation.ExpandAs, "expand_as", name, x, y)


def logical_and(x, y, name=None):
    return _named(logical.LogicalAnd, "logical_and", name, x, y)


def logical_or(x, y, name=None):
    return _named(logical.LogicalOr, "logical_or", name, x, y)


def logical_xor(x, y, name=None):
    return _named(logical.LogicalXor, "logical_xor", name, x, y)


def logical_not(x, name=None):
    return _named(logical.LogicalNot, "logical_not", name, x)
