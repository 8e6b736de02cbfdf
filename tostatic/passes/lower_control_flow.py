"""Part of lower-to-program: pd.if and pd.while written as Paddle's sub-block ops, the way
Paddle 3.3.1's `static.nn.cond` and `while_loop` write them, so that raise-from-program
followed by lowering keeps a program Paddle runs, and static mode's cond and while_loop (which
build pd.if / pd.while) print, run and save as Paddle's.

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

A pd.if / pd.while static mode built carries `pd.block_names`: the names Paddle gave the
variables around its sub-blocks when the user's code ran (the copies and step scope of each
side, logical_not's and cast's outputs, the while's step scope), and which sides exist (a
cond without false_fn has no else block). Such an op is written exactly as Paddle's Python
API writes it: loops write back onto their loop variables, whose types the last assign gives
them, and the slots Input / X / Out list their names in the order Paddle's sets give them
(`paddle_block_io`), which follows str hashing: for one PYTHONHASHSEED the same as Paddle's.
Once saved after pruning, those slots stay as built (`pd.block_slots`), as Paddle keeps them.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, StringAttr
from xdsl.ir import Block, Operation, OpResult, SSAValue

from tostatic.dialects.program import OpOp
from tostatic.ir.attr_keys import BLOCK_SLOTS_ATTR, LOC_ATTR
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
    block_names,
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
    static Program (keep_extra) keeps what Paddle's cond / while_loop give them."""
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
            lw.declare(sub, tmp, ab, **result_var_fields(tmp, Assign))
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
    lw.declare(target, scope, None)
    lw.append(target, CONDITIONAL_BLOCK.build(cond, reads, writes, scope, sub.idx, True,
                                              _block_op_attrs(lw, location)))


def _copy_var(lw: Lowering, target: SubBlock, ab: Abstract, hint: str | None) -> str:
    """A `_generated_var` of `target`, declared as Paddle's create_var(persistable=None)."""
    name = lw.names.generated(GENERATED, hint)
    lw.declare(target, name, ab, lod_level=0)
    return name


def lower_if(lw: Lowering, op: If, target: SubBlock) -> None:
    names = block_names(op)
    if names is not None:
        return _lower_static_if(lw, op, target, names)
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
    lw.declare(target, mask, mask_ab, **result_var_fields(mask, Cast))
    lw.write(target, Cast, {"dtype": dtypes.int32}, [op.operands[0]], [mask], location)
    wanted = hints(op)
    for i, r in enumerate(op.results):
        out = _copy_var(lw, target, Abstract.of_value(r), _hint(wanted, i))
        lw.names.of[r] = out
        ins = [(mask, mask_ab), *((copies[s][i], Abstract.of_value(terminator(b).operands[i]))
                                  for s, b in ((1, blocks[1]), (0, blocks[0])))]
        lw.write(target, SelectInput, {}, ins, [out], location)


def _not(lw: Lowering, target: SubBlock, c: SSAValue, cond: str,
         location: str | None, name: str | None = None) -> str:
    negated = lw.names.generated("logical_not_{}.tmp_0", name)
    lw.declare(target, negated, Abstract.of_value(c), **result_var_fields(negated, LogicalNot))
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
    names = block_names(op)
    if names is not None:
        return _lower_static_while(lw, op, target, names)
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
            lw.declare(target, name, ab, **result_var_fields(name, Assign))
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
    lw.declare(target, scope, None)
    x = [n for n in dict.fromkeys(reads + writes) if n != carried[0]]
    lw.append(target, WHILE.build(carried[0], x, writes, scope, sub.idx, not lw.keep_extra,
                                  _block_op_attrs(lw, location)))
    lw.names.of.update(zip(op.results, carried))


# --- as static mode builds them ----------------------------------------------------------------

def paddle_block_io(ops: Sequence[OpOp], inner_inputs: set[str], inner_outputs: set[str]
                    ) -> tuple[set[str], set[str]]:
    """Paddle's get_inputs_outputs_in_block: the names a block reads before any of its ops
    writes them, and the names it writes. The same set operations in the same order as Paddle
    (slots in the C++ OpDesc's std::map order), so that iterating the sets lists the names in
    Paddle's order (for one PYTHONHASHSEED). Paddle then drops tensor arrays the block made;
    tostatic makes none, but the set difference stays, since it rebuilds the set."""
    for op in ops:
        for slot in sorted(op.input_slots):
            for n in op.input(slot):
                if n not in inner_outputs:
                    inner_inputs.add(n)
        for slot in sorted(op.output_slots):
            for n in op.output(slot):
                inner_outputs.add(n)
    arrays: set[str] = set()
    return inner_inputs - arrays, inner_outputs


def _paddle_cond_slots(lw: Lowering, parent: SubBlock, sub: SubBlock
                       ) -> tuple[list[str], list[str]]:
    """ConditionalBlock.complete: Input what the block reads from outside, Out what it
    writes that the parent sees."""
    params, intermediate = paddle_block_io(sub.ops, set(), set())
    return list(params), [n for n in intermediate if lw.visible(parent, n)]


def _paddle_while_slots(lw: Lowering, parent: SubBlock, sub: SubBlock, cond: str
                        ) -> tuple[list[str], list[str]]:
    """While._complete: X every outer name the body reads or writes, Out every outer name it
    writes, the condition included (and left out of X)."""
    inner_outputs = {cond}
    x_name_list: set[str] = set()
    x_name_list, inner_outputs = paddle_block_io(sub.ops, x_name_list, inner_outputs)
    out_vars = [n for n in inner_outputs if lw.visible(parent, n)]
    x_name_list |= {n for n in out_vars}
    x_name_list -= {cond}
    return list(x_name_list), out_vars


def _still_there(lw: Lowering, parent: SubBlock, names: list[str]) -> list[str]:
    return [n for n in names if lw.visible(parent, n)]


def recorded_slots(op: Operation) -> dict[str, dict[str, list[str]]] | None:
    """`pd.block_slots`: {side or "while": {slot: names}} as the op's Paddle ops had them."""
    attr = op.attributes.get(BLOCK_SLOTS_ATTR)
    if attr is None:
        return None
    return {key: {slot: [n.data for n in names.data] for slot, names in d.data.items()}
            for key, d in attr.data.items()}  # type: ignore[attr-defined]


def record_slots(op: Operation, slots: dict[str, dict[str, list[str]]]) -> None:
    op.attributes[BLOCK_SLOTS_ATTR] = DictionaryAttr({
        key: DictionaryAttr({slot: ArrayAttr([StringAttr(n) for n in names])
                             for slot, names in d.items()}) for key, d in slots.items()})


def _lower_static_if(lw: Lowering, op: If, target: SubBlock, names: dict[str, Any]) -> None:
    """static.nn.cond: per side given, a sub-block ending in assigns onto its copies, run by a
    conditional_block (the else side on logical_not(pred)); then cast(pred) and a
    select_input per result (in save mode, per result something reads)."""
    location = _location(op)
    cond = lw.name_of(op.operands[0], target)
    args = [lw.name_of(v, target) for v in op.operands[1:]]
    recorded = recorded_slots(op) or {}
    copies: list[list[str]] = [[], []]
    for side, key in enumerate(("then", "else")):
        if key not in names:
            continue
        block = op.regions[side].block
        side_names = names[key]  # the copies, then the step scope

        def onto(i: int, hint: str | None, block: Block = block, side: int = side,
                 side_names: list[str] = side_names) -> str:
            lw.declare(target, side_names[i], Abstract.of_value(terminator(block).operands[i]),
                       lod_level=0)
            copies[side].append(side_names[i])
            return side_names[i]

        c = cond if side == 0 else _not(lw, target, op.operands[0], cond, location,
                                        names["not"])
        sub, _, _ = lower_region(lw, target, block, args, onto,
                                 range(len(terminator(block).operands)),
                                 lambda i, a: False, location)
        if key in recorded:  # as built, less what pruning removed
            ins, outs = (_still_there(lw, target, recorded[key][slot])
                         for slot in ("Input", "Out"))
        else:
            ins, outs = _paddle_cond_slots(lw, target, sub)
        scope = side_names[-1]
        lw.declare(target, scope, None)
        lw.append(target, CONDITIONAL_BLOCK.build(c, ins, outs, scope, sub.idx, True,
                                                  _block_op_attrs(lw, location)))
    used = [lw.mode != "save" or bool(r.uses) for r in op.results]
    if not any(used):
        return
    mask = names["mask"]
    mask_ab = Abstract(Abstract.of_value(op.operands[0]).shape, dtypes.int32)
    lw.declare(target, mask, mask_ab, **result_var_fields(mask, Cast))
    lw.write(target, Cast, {"dtype": dtypes.int32}, [op.operands[0]], [mask], location)
    blocks = [op.then_region.block, op.else_region.block]
    for i, (r, out) in enumerate(zip(op.results, hints(op))):
        if not used[i]:
            continue
        lw.names.claim(r, out)
        lw.declare(target, out, Abstract.of_value(r), lod_level=0)
        ins = [(mask, mask_ab), *((copies[s][i], Abstract.of_value(terminator(blocks[s])
                                                                  .operands[i]))
                                  for s in (1, 0))]
        lw.write(target, SelectInput, {}, ins, [out], location)


def _lower_static_while(lw: Lowering, op: While, target: SubBlock,
                        names: dict[str, Any]) -> None:
    """static.nn.while_loop: a sub-block ending in assigns back onto the loop variables (the
    condition last), run by a while on the condition."""
    location = _location(op)
    k = len(op.results)
    carried = [lw.name_of(v, target) for v in op.operands[:k]]
    invariants = [lw.name_of(v, target) for v in op.operands[k:]]
    body = op.body.block
    sub, _, _ = lower_region(lw, target, body, carried + invariants,
                             lambda i, hint: carried[i], [*range(1, k), 0],
                             lambda i, a: False, location)
    for i, v in enumerate(terminator(body).operands):  # assign's InferShape retypes them
        if lw.names.of.get(v) != carried[i]:
            lw.retype(target, carried[i], Abstract.of_value(v))
    recorded = recorded_slots(op)
    if recorded is not None:  # as built, less what pruning removed
        x, out = (_still_there(lw, target, recorded["while"][slot]) for slot in ("X", "Out"))
    else:
        x, out = _paddle_while_slots(lw, target, sub, carried[0])
    scope = names["scope"]
    lw.declare(target, scope, None)
    lw.append(target, WHILE.build(carried[0], x, out, scope, sub.idx, not lw.keep_extra,
                                  _block_op_attrs(lw, location)))
    lw.names.of.update(zip(op.results, carried))


REGION_LOWERINGS.update({If: lower_if, While: lower_while})
