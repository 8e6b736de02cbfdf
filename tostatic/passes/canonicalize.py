"""canonicalize: local simplifications of `pd` ops, one short rule a line."""
from __future__ import annotations

from typing import Callable

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops.activation import Abs, Neg, Relu, Scale
from tostatic.ops.control_flow import invariant_source
from tostatic.ops.core import Constant, dense_to_array
from tostatic.ops.creation import Full
from tostatic.ops.elementwise import Add, Divide, Maximum, Minimum, Multiply, Pow, Subtract
from tostatic.ops.manipulation import Cast, Reshape, Transpose
from tostatic.passes.base import CompilePass, CompileState, register

# A rule looks at one op and returns what replaces its (single) result: an existing value, a
# new op (inserted before it), or None when it does not apply.
Rule = Callable[[PdOp], "SSAValue | Operation | None"]


def uniform_value(v: SSAValue) -> float | None:
    """The one value of a literal tensor (`pd.constant` with equal elements, `pd.full`), also
    when it reaches a region as an argument that holds it on every run (as constant-folding
    sees it)."""
    op = invariant_source(v).owner
    if isinstance(op, Full):
        return op.attr_values()["value"]
    if isinstance(op, Constant):
        flat = dense_to_array(op.attr_values()["value"]).reshape(-1)
        if flat.size and np.all(flat == flat[0]):
            return flat[0].item()
    return None  # anything else, parameters (pd.persistable, pd.capture) included


def operand_if_other_is(keep: int, value: float) -> Rule:
    """Binary op -> its operand `keep` when the other operand is the literal `value`."""
    return lambda op: (op.operands[keep] if uniform_value(op.operands[1 - keep]) == value
                       else None)


def same_operands(op: PdOp) -> SSAValue | None:
    a, b = op.operands
    return a if invariant_source(a) is invariant_source(b) else None


def scale_is_identity(op: PdOp) -> SSAValue | None:
    a = op.attr_values()
    return op.operands[0] if a["scale"] == 1.0 and a["bias"] == 0.0 else None


def inverse_of_itself(op: PdOp) -> SSAValue | None:
    """f(f(x)) -> x."""
    inner = op.operands[0].owner
    return inner.operands[0] if type(inner) is type(op) else None


def idempotent(op: PdOp) -> SSAValue | None:
    """f(f(x)) -> f(x)."""
    inner = op.operands[0].owner
    return inner.results[0] if type(inner) is type(op) else None


def cast_to_own_dtype(op: PdOp) -> SSAValue | None:
    return op.operands[0]  # the result-type check below keeps only same-dtype casts


def reshape_to_own_shape(op: PdOp) -> SSAValue | None:
    """Every dim 0 (copy) or the input's own dim, or the one -1 when all other input dims are
    static and non-zero (so that -1 can only stand for the input's dim)."""
    x = Abstract.of_value(op.operands[0]).shape
    shape = op.attr_values()["shape"]
    if len(shape) != len(x) or not all(d in (0, -1) or d == s for d, s in zip(shape, x)):
        return None
    if -1 in shape and not all(s > 0 for s, d in zip(x, shape) if d != -1):
        return None
    return op.operands[0]


def reshape_of_reshape(op: PdOp) -> Operation | None:
    """reshape(reshape(x, a), b) -> reshape(x, b'), b's 0s spelt out against x."""
    inner = op.operands[0].owner
    if not isinstance(inner, Reshape):
        return None
    mid = Abstract.of_value(inner.results[0]).shape
    first = inner.attr_values()["shape"]
    shape = []
    for i, d in enumerate(op.attr_values()["shape"]):
        if d == 0 and i >= len(mid):
            return None
        if d != 0 or mid[i] >= 0:
            shape.append(d if d != 0 else mid[i])
        elif first[i] == 0:  # a dynamic dim the inner reshape copied from x: copy it again
            shape.append(0)
        else:
            return None
    return remake(op, inner.operands[0], shape=shape)


def identity_transpose(op: PdOp) -> SSAValue | None:
    n = len(op.attr_values()["perm"])
    return op.operands[0] if perm_of(op) == list(range(n)) else None


def transpose_of_transpose(op: PdOp) -> Operation | None:
    """transpose(transpose(x, p), q) -> transpose(x, p[q])."""
    inner = op.operands[0].owner
    if not isinstance(inner, Transpose):
        return None
    p, q = perm_of(inner), perm_of(op)
    return remake(op, inner.operands[0], perm=[p[i] for i in q])


def perm_of(op: PdOp) -> list[int]:
    perm = op.attr_values()["perm"]
    return [p % max(len(perm), 1) for p in perm]


def remake(op: PdOp, x: SSAValue, **attrs) -> PdOp:
    """`op` again on `x` with some attributes changed; same result type, names and line."""
    new = type(op).make([x], {**op.attr_values(), **attrs}, [op.results[0].type])
    new.attributes.update(op.attributes)
    return new


RULES: dict[type[PdOp], tuple[Rule, ...]] = {
    Add:       (operand_if_other_is(0, 0), operand_if_other_is(1, 0)),  # x+0, 0+x -> x
    Subtract:  (operand_if_other_is(0, 0),),                            # x-0 -> x
    Multiply:  (operand_if_other_is(0, 1), operand_if_other_is(1, 1)),  # x*1, 1*x -> x
    Divide:    (operand_if_other_is(0, 1),),                            # x/1 -> x
    Pow:       (operand_if_other_is(0, 1),),                            # x**1 -> x
    Maximum:   (same_operands,),                                        # max(x, x) -> x
    Minimum:   (same_operands,),                                        # min(x, x) -> x
    Scale:     (scale_is_identity,),                                    # 1*x + 0 -> x
    Neg:       (inverse_of_itself,),                                    # -(-x) -> x
    Relu:      (idempotent,),                                           # relu(relu(x)) -> relu(x)
    Abs:       (idempotent,),                                           # abs(abs(x)) -> abs(x)
    Cast:      (cast_to_own_dtype,),                                    # cast(x:f32, f32) -> x
    Reshape:   (reshape_to_own_shape, reshape_of_reshape),              # x, reshape(x, b')
    Transpose: (identity_transpose, transpose_of_transpose),            # x, transpose(x, p[q])
}


class CanonicalizePattern(RewritePattern):
    """Apply the first rule of RULES that fits; a value replaces the result only when it has
    exactly the result's type (no broadcast, no dtype change)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        rules = RULES.get(type(op), ())
        if not rules or op.EFFECTS or len(op.results) != 1:
            return
        for rule in rules:
            new = rule(op)
            if isinstance(new, SSAValue) and new.type == op.results[0].type:
                rewriter.replace(op, [], [new])
                return
            if isinstance(new, Operation):
                rewriter.replace(op, new)
                return


def canonicalize(module: ModuleOp) -> None:
    PatternRewriteWalker(CanonicalizePattern()).rewrite_module(module)


@register
class Canonicalize(CompilePass):
    """Simplify `pd` ops by the local rules of RULES: x+0, x-0, x*1, x/1, x**1 with a literal
    0 or 1 (`pd.constant` with equal elements or `pd.full`), max(x, x), scale(1, 0), -(-x),
    relu(relu(x)), cast to x's own dtype, reshape to x's own shape, reshape of reshape,
    identity and composed transposes. An op is replaced by one of its operands only when that
    operand has the op's exact result type, so no broadcast or dtype change is lost; rewritten
    ops keep their Paddle names (`pd.names`) and line (`pd.loc`). Like numpy-level compilers,
    x+0 -> x ignores that -0.0 + 0.0 is +0.0.

    Never touches: ops with effects, parameters (`pd.persistable`, `pd.capture`: never taken
    as literal values), ops of other dialects. Ops made unused stay: run dead-op-elimination
    after it. Rules apply inside the regions of `pd.if` / `pd.while` too, and there a
    literal may come from outside: a region argument whose operand is one on every run (any
    `pd.if` argument, a `pd.while` loop invariant; constant-folding reads them the same way)."""

    name = "canonicalize"

    def apply(self, module: ModuleOp, state: CompileState) -> None:
        canonicalize(module)
