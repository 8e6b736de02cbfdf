"""The vocabulary of reverse-mode rules (VJPs), which live on the op classes themselves.

An op class differentiates itself with a classmethod

    @classmethod
    def vjp(cls, e, inputs, outputs, attrs, cts, needs):
        return [d_input, ...]          # grouped as INPUTS (a list for the variadic one)

* `e` is an `Emitter`: `e(OpClass, *inputs, **attrs)` builds one op and returns its result
  (a list for multi-result ops), `e.shape(v)` / `e.dtype(v)` describe a value. The eager tape
  passes one that runs ops (`dispatch.apply`, recorded when `create_graph`), the `pd` backward
  pass one that inserts `pd` ops: the rule never knows which, so one rule serves both.
* `inputs` / `needs` are grouped as the op's INPUTS; `outputs` / `cts` are per result (a
  cotangent is never None: the caller fills zeros for results nothing flowed into).
* the result is grouped like `inputs`; None where an input gets no gradient (an index, or
  `needs` says nobody asked: rules may skip that work).

An op without a gradient says `NONDIFF = True` (comparisons, integer ops, creation); a test
checks that every registered op has one or the other. These helpers build the common pieces
by op name (REGISTRY), so any family's rule can use them without importing other families.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

from tostatic.ir import dtypes
from tostatic.ir.dtypes import DType
from tostatic.ir.opdef import REGISTRY, PdOp


class Emitter(Protocol):
    def __call__(self, op: type[PdOp], *inputs: Any, **attrs: Any) -> Any: ...

    def shape(self, v: Any) -> tuple[int, ...]: ...

    def dtype(self, v: Any) -> DType: ...


def op(name: str) -> type[PdOp]:
    return REGISTRY[name]


def is_float(e: Emitter, v: Any) -> bool:
    return e.dtype(v).is_floating


def add(e: Emitter, a: Any, b: Any) -> Any:
    return e(op("pd.add"), a, b)


def sub(e: Emitter, a: Any, b: Any) -> Any:
    return e(op("pd.subtract"), a, b)


def mul(e: Emitter, a: Any, b: Any) -> Any:
    return e(op("pd.multiply"), a, b)


def div(e: Emitter, a: Any, b: Any) -> Any:
    return e(op("pd.divide"), a, b)


def scale(e: Emitter, x: Any, s: float, bias: float = 0.0) -> Any:
    return e(op("pd.scale"), x, scale=float(s), bias=float(bias))


def neg(e: Emitter, x: Any) -> Any:
    return scale(e, x, -1.0)


def full_like(e: Emitter, x: Any, value: float, dtype: Any = None) -> Any:
    return e(op("pd.full_like"), x, value=float(value), dtype=dtype)


def zeros_like(e: Emitter, x: Any) -> Any:
    return full_like(e, x, 0.0)


def cast(e: Emitter, x: Any, dtype: DType) -> Any:
    return x if e.dtype(x) == dtype else e(op("pd.cast"), x, dtype=dtype)


def mask(e: Emitter, cond: Any, like: Any) -> Any:
    """A bool condition as 0/1 of `like`'s dtype (multiplying by it selects)."""
    return cast(e, cond, e.dtype(like))


def where(e: Emitter, cond: Any, x: Any, y: Any) -> Any:
    return e(op("pd.where"), cond, x, y)


def reshape(e: Emitter, x: Any, shape: Sequence[int]) -> Any:
    shape = tuple(int(d) for d in shape)
    return x if tuple(e.shape(x)) == shape else e(op("pd.reshape"), x, shape=shape)


def transpose(e: Emitter, x: Any, perm: Sequence[int]) -> Any:
    perm = tuple(int(p) for p in perm)
    return x if perm == tuple(range(len(perm))) else e(op("pd.transpose"), x, perm=perm)


def inverse_perm(perm: Sequence[int]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def sum_axes(e: Emitter, x: Any, axes: Sequence[int], keepdim: bool = False) -> Any:
    if not axes:
        return x
    return e(op("pd.sum"), x, axis=tuple(axes), keepdim=keepdim)


def sum_to(e: Emitter, g: Any, shape: Sequence[int]) -> Any:
    """Undo numpy broadcasting: sum `g` down to `shape` (the reduce-to-shape of a cotangent)."""
    shape = tuple(shape)
    gshape = tuple(e.shape(g))
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = list(range(lead)) + [lead + i for i, d in enumerate(shape)
                                if d == 1 and gshape[lead + i] != 1]
    return reshape(e, sum_axes(e, g, axes), shape)


def broadcast_to(e: Emitter, g: Any, shape: Sequence[int]) -> Any:
    shape = tuple(int(d) for d in shape)
    return g if tuple(e.shape(g)) == shape else e(op("pd.expand"), g, shape=shape)


def unreduce(e: Emitter, g: Any, x_shape: Sequence[int], axes: Sequence[int]) -> Any:
    """A reduction's cotangent spread back over the reduced axes of x."""
    if tuple(sorted(axes)) == tuple(range(len(axes))) and len(e.shape(g)) + len(axes) == \
            len(x_shape):  # leading axes reduced, not kept: g broadcasts as it is
        return broadcast_to(e, g, x_shape)
    kept = tuple(1 if i in axes else d for i, d in enumerate(x_shape))
    return broadcast_to(e, reshape(e, g, kept), x_shape)


def compare(e: Emitter, name: str, x: Any, value: float | Any) -> Any:
    """x <name> value (a number or a tensor) as 0/1 of x's dtype."""
    y = full_like(e, x, value) if isinstance(value, (int, float)) else value
    return mask(e, e(op(f"pd.{name}"), x, y), x)


def unary_vjp(grad: Any) -> classmethod:
    """The vjp of a one-input op from `grad(e, x, out, g, **attrs) -> dx`."""
    def vjp(cls: type, e: Emitter, inputs: list[Any], outputs: list[Any],
            attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
        return [grad(e, inputs[0], outputs[0], cts[0], **attrs)]
    return classmethod(vjp)


def e(em: Emitter, name: str, *inputs: Any, **attrs: Any) -> Any:
    """Emit the op registered as `name` (a rule using another family's op)."""
    return em(op(name), *inputs, **attrs)


def e_cmp(em: Emitter, name: str, x: Any, value: float) -> Any:
    """x <name> value as a bool tensor (for where)."""
    return em(op(f"pd.{name}"), x, full_like(em, x, value))


def reshape_vjp() -> classmethod:
    """The vjp of an op that only rearranges x's elements in order (reshape, squeeze,
    flatten, ...): the cotangent reshaped back; other inputs (a shape tensor) get none."""
    def vjp(cls: type, e: Emitter, inputs: list[Any], outputs: list[Any],
            attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
        return [reshape(e, cts[0], e.shape(inputs[0]))] + [None] * (len(inputs) - 1)
    return classmethod(vjp)


def tile_back(e: Emitter, g: Any, shape: Sequence[int], reps: Sequence[int]) -> Any:
    """The cotangent of np.tile(x, reps): the copies summed (x's rank padded to reps' first)."""
    n = max(len(shape), len(reps))
    xs = (1,) * (n - len(shape)) + tuple(shape)
    rs = (1,) * (n - len(reps)) + tuple(reps)
    inter = [v for r, d in zip(rs, xs) for v in (r, d)]
    summed = sum_axes(e, reshape(e, g, inter), [2 * i for i, r in enumerate(rs) if r != 1])
    return reshape(e, summed, shape)


def standardized(em: Emitter, x: Any, axes: Sequence[int], eps: float) -> tuple[Any, Any]:
    """(x - mean) * rstd over `axes` and rstd = 1 / sqrt(var + eps), both with kept dims:
    the normalisations' forward recomputed from primitives, so their gradients are too."""
    axes = tuple(axes)
    xc = sub(em, x, e(em, "pd.mean", x, axis=axes, keepdim=True))
    var = e(em, "pd.mean", mul(em, xc, xc), axis=axes, keepdim=True)
    rstd = e(em, "pd.rsqrt", scale(em, var, 1.0, eps))
    return mul(em, xc, rstd), rstd


def standardized_back(em: Emitter, xhat: Any, rstd: Any, g: Any, axes: Sequence[int]) -> Any:
    """x's cotangent from x-hat's (`g`): rstd * (g - mean(g) - x-hat * mean(g * x-hat))."""
    axes = tuple(axes)
    m1 = e(em, "pd.mean", g, axis=axes, keepdim=True)
    m2 = e(em, "pd.mean", mul(em, g, xhat), axis=axes, keepdim=True)
    return mul(em, rstd, sub(em, sub(em, g, m1), mul(em, xhat, m2)))


def per_channel(em: Emitter, v: Any, ndim: int, axis: int) -> Any:
    """A [C] vector shaped to broadcast along `axis` of an ndim tensor."""
    shape = [1] * ndim
    shape[axis] = em.shape(v)[0]
    return reshape(em, v, shape)


def moved_back(em: Emitter, op_cls: type[PdOp], x: Any, rest: Sequence[Any],
               attrs: dict[str, Any], g: Any) -> Any:
    """The cotangent of an op that only picks or moves x's elements (a slice with bounds
    from tensors, pixel_shuffle): the same op applied to x's flat positions says where each
    result element came from, and index_add sums the cotangent back there. Needs x's shape
    (always known eagerly)."""
    shape = tuple(em.shape(x))
    if any(d < 0 for d in shape):
        raise NotImplementedError(f"{op_cls.name}: no gradient for x of dynamic shape "
                                  f"{list(shape)}")
    numel = 1
    for d in shape:
        numel *= d
    i64 = dtypes.int64
    ids = e(em, "pd.range", *(e(em, "pd.full", shape=(1,), value=float(v), dtype=i64)
                              for v in (0, numel, 1)))
    picked = em(op_cls, reshape(em, ids, shape), *rest, **attrs)
    zeros = e(em, "pd.full", shape=(numel,), value=0.0, dtype=em.dtype(g))
    flat = e(em, "pd.index_add", zeros, reshape(em, picked, (-1,)), reshape(em, g, (-1,)),
             axis=0)
    return reshape(em, flat, shape)


def moved_back_vjp() -> classmethod:
    """moved_back as an op's rule: x (the first input) gets the cotangent, the rest none."""
    def vjp(cls: type, em: Emitter, inputs: list[Any], outputs: list[Any],
            attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
        rest = [v for group in inputs[1:]
                for v in (group if isinstance(group, list) else [group])]
        return [moved_back(em, cls, inputs[0], rest, attrs, cts[0])] + [None] * (len(inputs) - 1)
    return classmethod(vjp)


def zero_vjp() -> classmethod:
    """Piecewise-constant ops (floor, ceil, round): a zero cotangent, as Paddle's *_grad."""
    return unary_vjp(lambda em, x, out, g, **attrs: zeros_like(em, x))
