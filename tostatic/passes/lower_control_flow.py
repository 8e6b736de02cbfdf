"""Part of lower-to-program: pd.if and pd.while written as Paddle's sub-block ops, the way
Paddle 3.3.1's `static.nn.cond` and `while_loop` write them (static_control_flow.py builds the
same ops op by op), so that raise-from-program followed by lowering keeps a program Paddle runs.

- `pd.if c (args) {then} {else}` -> for each region a sub-block: the region's ops, then an
  `assign` of each yielded value onto a new `_generated_var` of the parent block, run by
  `conditional_block` (on c, and on `logical_not(c)` for else); then `cast(c, int32)` and one
  `select_input(X=[else value, then value], Mask)` per result.
- `pd.while (state, invariants) {body}` -> a `while` on state[0] whose sub-block runs the body
  and `assign`s what it yields back onto the loop-carried variables (the condition last).
  A loop reuses the variable of an initial value nothing reads after the loop (Paddle writes
  its loops that way); any other initial value is first copied (`assign`) into a fresh one.
- A region yielding `pd.undefined` (raised from a lone conditional_block, whose outputs exist
  on one side only) cannot go through select_input, which reads the input it picks: each
  region that has ops or defined values instead becomes a conditional_block writing the
  results' variables directly, and the side with nothing to do is left out. That is
  Paddle's own form for a lone conditional_block: when it does not run, what it would have
  written stays unset.

Region block arguments are bound to the variables of the op's operands (regions are
isolated from above: operand i arrives as argument i). A yielded `pd.assign` that nothing
else reads writes the outer variable itself instead of a temporary plus a second assign, as
Paddle's sub-blocks do; that keeps a raised Paddle program's ops and names as they were.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from xdsl.ir import Block, OpResult, SSAValue

from tostatic.ir.attr_keys import LOC_ATTR
from tostatic.dialects.program_block_ops import CONDITIONAL_BLOCK, WHILE
from tostatic.ir import dtypes
from tostatic.ir.opdef import Abstract
from tostatic.ops.control_flow import (
    If,
    SelectInput,
    Undefined,
    While,
    terminator,
)
from tostatic.ops.core import Capture, Persistable
from tostatic.ops.logical import LogicalNot
from tostatic.ops.manipulation import Assign, Cast
from tostatic.passes.lowering import (
    REGION_LOWERINGS,
    Lowering,
    SubBlock,
    common_attrs,
    hints,
    result_var_fields,
)

GENERATED = "_generated_var_{}"
Onto = Callable[[int, "str | None"], str]  # (yield position, name hint) -> outer variable


def _location(op: If | While) -> str | None:
    return op.attributes[LOC_ATTR].data if LOC_ATTR in op.attributes else None  # type: ignore


def _block_op_attrs(lw: Lowering, location: str | None) -> dict[str, tuple[str, Any]]:
    """What a saved conditional_block / while carries besides its own attributes; a live
    static Program (keep_extra) keeps what static_control_flow gives them."""
    if lw.keep_extra:
        return {"skip_eager_deletion_vars": ("STRINGS", []), **common_attrs(True, location)}
    return common_attrs(False, None)


def _hint(values: list[str], i: int) -> str | None:
    return values[i] if i < len(values) else None


def lower_region(lw: Lowering, parent: SubBlock, block: Block, arg_names: Sequence[str],
                 onto: Onto, order: Sequence[int],
                 may_redirect: Callable[[int, Assign], bool], location: str | None
                 ) -> tuple[SubBlock, list[str], list[str]]:
    """`block` as a new sub-block of `parent` whose arguments are the outer `arg_names`: its
    ops, then, in `order`, an assign of each defined yielded value onto `onto(i, hint)`. A
    yielded pd.assign read nowhere else writes there itself if `may_redirect(i, op)` (the
    block reads that variable no later). Returns (sub-block, outer names it reads, outer
    names it writes)."""
    sub = lw.new_block(parent)
    lw.names.of.update(zip(block.args, arg_names))
    values = list(terminator(block).operands)
    written: dict[int, str] = {}
    for i, v in enumerate(values):
        owner = v.owner
        if (isinstance(owner, Assign) and owner.parent is block and v.has_one_use()
                and values.count(v) == 1 and may_redirect(i, owner)):
            def redirected(i: int = i, owner: Assign = owner) -> str:
                written[i] = onto(i, _hint(hints(owner), 0))
                return written[i]
            lw.redirect[v] = redirected
    lw.lower_ops(block, sub)
    pending: list[tuple[str, Abstract, str]] = []  # (source, its type, destination)
    for i in order:
        v = values[i]
        if i in written or isinstance(v.owner, Undefined):
            continue
        src, dst = lw.name_of(v, sub), onto(i, None)
        if src != dst:
            pending.append((src, Abstract.of_value(v), dst))
    # the assigns are one parallel assignment: a source an earlier assign overwrites (a
    # loop variable moving to another position) is copied first
    for k, (src, ab, dst) in enumerate(pending):
        if any(src == d for _, _, d in pending[:k]):
            tmp = lw.names.fresh()
            sub.declare(tmp, ab, **result_var_fields(tmp, Assign))
            lw.write(sub, Assign, {}, [(src, ab)], [tmp], location)
            pending[k] = (tmp, ab, dst)
    for src, ab, dst in pending:
        lw.write(sub, Assign, {}, [(src, ab)], [dst], location)
    reads, writes = lw.finish(sub)
    return sub, reads, writes


def _conditional_block(lw: Lowering, target: SubBlock, cond: str, block: Block,
                       args: list[str], onto: Onto, location: str | None) -> None:
    sub, reads, writes = lower_region(lw, target, block, args, onto,
                                      range(len(terminator(block).operands)),
                                      lambda i, op: True, location)
    scope = lw.names.generated(GENERATED)
    target.declare(scope, None)
    target.ops.append(CONDITIONAL_BLOCK.build(cond, reads, writes, scope, sub.idx, True,
                                              _block_op_attrs(lw, location)))


def _copy_var(lw: Lowering, target: SubBlock, ab: Abstract, hint: str | None) -> str:
    """A `_generated_var` of `target`, declared as Paddle's create_var(persistable=None)."""
    name = lw.names.generated(GENERATED, hint)
    target.declare(name, ab, lod_level=0)
    return name


def lower_if(lw: Lowering, op: If, target: SubBlock) -> None:
    location = _location(op)
    cond = lw.name_of(op.operands[0], target)
    args = [lw.name_of(v, target) for v in op.operands[1:]]
    blocks = [op.then_region.block, op.else_region.block]
    if any(isinstance(v.owner, Undefined) for b in blocks for v in terminator(b).operands):
        return _lower_if_direct(lw, op, target, cond, args, location)
    copies: list[dict[int, str]] = [{}, {}]

    def onto(side: int, block: Block) -> Onto:
        def copy(i: int, hint: str | None) -> str:
            ab = Abstract.of_value(terminator(block).operands[i])
            copies[side][i] = _copy_var(lw, target, ab, hint)
            return copies[side][i]
        return copy

    _conditional_block(lw, target, cond, blocks[0], args, onto(0, blocks[0]), location)
    negated = _not(lw, target, op.operands[0], cond, location)
    _conditional_block(lw, target, negated, blocks[1], args, onto(1, blocks[1]), location)
    if not op.results:
        return
    mask = lw.names.generated("cast_{}.tmp_0")
    mask_ab = Abstract(Abstract.of_value(op.operands[0]).shape, dtypes.int32)
    target.declare(mask, mask_ab, **result_var_fields(mask, Cast))
    lw.write(target, Cast, {"dtype": dtypes.int32}, [op.operands[0]], [mask], location)
    wanted = hints(op)
    for i, r in enumerate(op.results):
        out = _copy_var(lw, target, Abstract.of_value(r), _hint(wanted, i))
        lw.names.of[r] = out
        ins = [(mask, mask_ab), *((copies[s][i], Abstract.of_value(terminator(b).operands[i]))
                                  for s, b in ((1, blocks[1]), (0, blocks[0])))]
        lw.write(target, SelectInput, {}, ins, [out], location)


def _not(lw: Lowering, target: SubBlock, c: SSAValue, cond: str,
         location: str | None) -> str:
    negated = lw.names.generated("logical_not_{}.tmp_0")
    target.declare(negated, Abstract.of_value(c), **result_var_fields(negated, LogicalNot))
    lw.write(target, LogicalNot, {}, [c], [negated], location)
    return negated


def _lower_if_direct(lw: Lowering, op: If, target: SubBlock, cond: str, args: list[str],
                     location: str | None) -> None:
    """Some result exists on one side only: each side's conditional_block writes the results'
    variables itself (see the module docstring)."""
    wanted = hints(op)
    outs = [_copy_var(lw, target, Abstract.of_value(r), _hint(wanted, i))
            for i, r in enumerate(op.results)]
    lw.names.of.update(zip(op.results, outs))
    for side, block in enumerate([op.then_region.block, op.else_region.block]):
        idle = all(isinstance(o, Undefined) for o in block.ops if o is not block.last_op)
        if idle and all(isinstance(v.owner, Undefined) for v in terminator(block).operands):
            continue
        c = cond if side == 0 else _not(lw, target, op.operands[0], cond, location)
        _conditional_block(lw, target, c, block, args, lambda i, hint: outs[i], location)


def _may_overwrite(loop: While, value: SSAValue) -> bool:
    """Whether the loop may use `value`'s variable as its own: an op result (not a weight, an
    argument of the function or of an enclosing region) that nothing reads after the loop,
    passed to it once."""
    if not isinstance(value, OpResult) or isinstance(value.owner, (Persistable, Capture)):
        return False
    if sum(v is value for v in loop.operands) != 1:
        return False
    return all(u.operation is loop or u.operation.is_before_in_block(loop) for u in value.uses)


def lower_while(lw: Lowering, op: While, target: SubBlock) -> None:
    location = _location(op)
    k = len(op.results)
    wanted = hints(op)
    carried = []
    for i, (v, r) in enumerate(zip(op.operands[:k], op.results)):
        ab = Abstract.of_value(r)  # the loop's type: dims that change are dynamic
        if _may_overwrite(op, v):
            name = lw.name_of(v, target, _hint(wanted, i))
            if name in target.variables:
                target.variables[name] = (ab, target.variables[name][1])
        else:
            name = lw.names.reserve(_hint(wanted, i))
            target.declare(name, ab, **result_var_fields(name, Assign))
            if not isinstance(v.owner, Undefined):  # nothing to copy from an unset var
                lw.write(target, Assign, {}, [v], [name], location)
        carried.append(name)
    invariants = [lw.name_of(v, target) for v in op.operands[k:]]
    body = op.body.block

    def reads_before(i: int, assign: Assign) -> bool:
        """Writing carried[i] at `assign` is safe when the body reads it only up to there."""
        return all(u.operation is assign or u.operation.is_before_in_block(assign)
                   for u in body.args[i].uses)

    sub, reads, writes = lower_region(lw, target, body, carried + invariants,
                                      lambda i, hint: carried[i], [*range(1, k), 0],
                                      reads_before, location)
    scope = lw.names.generated(GENERATED)
    target.declare(scope, None)
    x = [n for n in dict.fromkeys(reads + writes) if n != carried[0]]
    target.ops.append(WHILE.build(carried[0], x, writes, scope, sub.idx, not lw.keep_extra,
                                  _block_op_attrs(lw, location)))
    lw.names.of.update(zip(op.results, carried))


REGION_LOWERINGS.update({If: lower_if, While: lower_while})
