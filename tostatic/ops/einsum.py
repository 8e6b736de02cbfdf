"""Einstein summation over one or two operands (Paddle's einsum op: Operands, equation).

The equation names each operand's dims with lowercase letters; `->` gives the result's labels,
or the result is the letters used once, in alphabetical order (as numpy and Paddle do). A
label's sizes must agree, a size of 1 broadcasting. The kernel makes a two-operand contraction
one batched matrix product (np.matmul over transposed views); anything else is numpy's einsum.

What Paddle 3.3.1's einsum kernel cannot run is refused here too: `...` (Paddle's Python
rewrites it into letters and unsqueezes the operands first; its kernel rejects or mis-sizes
it), uppercase labels (the kernel crashes) and more than two operands. An implicit result
crashes that kernel in paddle.inference, so lowering writes the equation as Paddle's Python
does: explicit, without spaces.
"""
from __future__ import annotations

from typing import Any

from collections import Counter

import numpy as np

from tostatic.ir.attributes import STR, attr
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.attr_checks import unsupported

LABELS = "abcdefghijklmnopqrstuvwxyz"


def explicit(equation: str) -> str:
    """The equation without spaces and with its result labels spelled out."""
    text = equation.replace(" ", "")
    if "->" in text:
        return text
    counts = Counter(c for c in text if c != ",")
    return text + "->" + "".join(sorted(c for c, n in counts.items() if n == 1))


def parse(equation: str, ranks: list[int], op: str = "pd.einsum") -> tuple[list[str], str]:
    """(each operand's labels, the result's labels), checked against the operands' ranks."""
    if "." in equation:
        raise unsupported(op, "equation", equation, "letters for every dim: spell the "
                          "broadcast dims of '...' with letters, as paddle.einsum does")
    lhs, _, out = explicit(equation).partition("->")
    terms = lhs.split(",")
    if any(c not in LABELS for c in lhs.replace(",", "") + out):
        raise unsupported(op, "equation", equation, "lowercase letters a-z as labels")
    if len(terms) != len(ranks):
        raise ShapeError(f"{op}: equation {equation!r} has {len(terms)} operand terms, got "
                         f"{len(ranks)} operands")
    for term, rank in zip(terms, ranks):
        if len(term) != rank:
            raise ShapeError(f"{op}: term {term!r} of {equation!r} does not fit an operand of "
                             f"rank {rank}")
    if any(n > 1 for n in Counter(out).values()) or not set(out) <= set(lhs):
        raise ShapeError(f"{op}: the result labels {out!r} of {equation!r} must each appear "
                         f"once and in an operand")
    return terms, out


def _merge(op: str, label: str, a: int, b: int) -> int:
    if a == 1:
        return b
    if b == 1:
        return a
    if a >= 0 and b >= 0 and a != b:
        raise ShapeError(f"{op}: label {label!r} has sizes {a} and {b}")
    return a if a >= 0 else b


def einsum_shape(equation: str, shapes: list[tuple[int, ...]],
                 op: str = "pd.einsum") -> tuple[int, ...]:
    terms, out = parse(equation, [len(s) for s in shapes], op)
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        for c, d in zip(term, shape):
            sizes[c] = _merge(op, c, sizes[c], d) if c in sizes else d
    return tuple(sizes[c] for c in out)


def _einsum_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """Each operand's cotangent is an einsum of the result's with the other operands."""
    xs = inputs[0]
    terms, out = parse(attrs["equation"], [len(e.shape(x)) for x in xs], cls.name)
    grads: list[Any] = []
    for i, (x, term) in enumerate(zip(xs, terms)):
        if not needs[0][i]:
            grads.append(None)
            continue
        if len(set(term)) != len(term):
            raise UnsupportedError(f"{cls.name}: no gradient for a repeated label in {term!r}")
        others = [t for j, t in enumerate(terms) if j != i]
        seen = set(out).union(*others)
        kept = "".join(c for c in term if c in seen)
        eq = ",".join([out] + others) + "->" + kept
        r = e(Einsum, cts[0], *[x_ for j, x_ in enumerate(xs) if j != i], equation=eq)
        rs = dict(zip(kept, e.shape(r)))
        shape = e.shape(x)
        r = A.reshape(e, r, [rs.get(c, 1) for c in term])
        ones = [k for k, c in enumerate(term) if shape[k] == 1 and rs.get(c, 1) != 1]
        r = A.sum_axes(e, r, ones, keepdim=True)
        grads.append(A.broadcast_to(e, r, shape))
    return [grads]


@pd_op
class Einsum(PdOp):
    name = "pd.einsum"
    INPUTS = ("*operands",)
    ATTRS = {"equation": attr(STR)}
    PADDLE = Legacy("einsum", {"Operands": "*operands"}, {"Out": 0},
                    {"equation": From("STRING", "equation", explicit)}, keeps_extra_attrs=True,
                    out_lod_level=False,
                    declared_per_operand=(("InnerCache", False), ("XShape", True)))
    NAME_HINT = "einsum"
    vjp = classmethod(_einsum_vjp)

    @classmethod
    def infer(cls, operands: list[Abstract], equation: str) -> Abstract:
        if not 1 <= len(operands) <= 2:
            raise UnsupportedError(f"{cls.name}: {len(operands)} operands are not supported "
                                   f"(Paddle's einsum op takes one or two; chain them)")
        if len({o.dtype for o in operands}) > 1:
            raise ShapeError(f"{cls.name}: operand dtypes differ "
                             f"({', '.join(o.dtype.name for o in operands)})")
        return Abstract(einsum_shape(equation, [o.shape for o in operands], cls.name),
                        operands[0].dtype)

    @staticmethod
    def eager(operands: list[np.ndarray], equation: str) -> np.ndarray:
        eq = explicit(equation)
        out = contract(eq, *operands) if len(operands) == 2 else None
        if out is None:
            out = np.einsum(eq, *operands)
        return np.asarray(out, dtype=operands[0].dtype)


def contract(equation: str, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """A two-operand contraction as one batched matrix product (np.matmul): each side
    transposed to [batch..., kept, contracted] / [batch..., contracted, kept], the batch dims
    broadcasting. None when the equation needs numpy's general einsum instead (a label
    repeated in one operand, or contracted dims of sizes 1 and n)."""
    lhs, out = equation.split("->")
    ta, tb = lhs.split(",")
    if len(set(ta)) < len(ta) or len(set(tb)) < len(tb):
        return None
    # labels in one operand only and not in the result are summed out first
    a, ta = _sum_out(a, ta, tb + out)
    b, tb = _sum_out(b, tb, ta + out)
    batch = sorted((c for c in ta if c in tb and c in out), key=out.index)
    summed = [c for c in ta if c in tb and c not in out]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    if any(a.shape[ta.index(c)] != b.shape[tb.index(c)] for c in summed):
        return None
    a = a.transpose([ta.index(c) for c in batch + left + summed])
    b = b.transpose([tb.index(c) for c in batch + summed + right])
    nb = len(batch)
    k = int(np.prod(a.shape[nb + len(left):]))
    left_dims, right_dims = a.shape[nb:nb + len(left)], b.shape[nb + len(summed):]
    prod = np.matmul(a.reshape(a.shape[:nb] + (int(np.prod(left_dims)), k)),
                     b.reshape(b.shape[:nb] + (k, int(np.prod(right_dims)))))
    prod = prod.reshape(prod.shape[:nb] + left_dims + right_dims)
    order = batch + left + right
    return prod.transpose([order.index(c) for c in out])


def _sum_out(x: np.ndarray, labels: str, elsewhere: str) -> tuple[np.ndarray, str]:
    gone = [i for i, c in enumerate(labels) if c not in elsewhere]
    if not gone:
        return x, labels
    return x.sum(axis=tuple(gone)), "".join(c for c in labels if c in elsewhere)
