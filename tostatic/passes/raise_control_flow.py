"""Part of raise-from-program: Paddle's `conditional_block` and `while` into pd.if / pd.while.

A Paddle sub-block reads and writes outer variables by name; SSA form makes that explicit.
The outer names a sub-block reads become operands of the region op (its regions are isolated
from above), and the outer names it writes become its results, rebinding those names after it:

- `conditional_block` -> `pd.if cond {sub-block} else {previous values}`: when it does not run
  its outputs keep what they held, or nothing (`pd.undefined`) if no op had written them.
- `while` -> `pd.while`: the loop-carried state is the condition followed by every outer name
  the body writes; names it only reads are loop invariants.
- `static.nn.cond`'s pattern (`conditional_block` on c, on not c, `select_input` per output)
  is then fused into one `pd.if c {true block} else {false block}` (fuse_conditional_pairs).
"""
from __future__ import annotations

from typing import Any, Sequence

from xdsl.dialects.builtin import ArrayAttr, StringAttr
from xdsl.ir import Block, OpResult, SSAValue

from tostatic.dialects.program import OpOp, outer_uses
from tostatic.dialects.program_block_ops import CONDITIONAL_BLOCK, WHILE
from tostatic.ir.attr_keys import NAMES_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import Abstract
from tostatic.ops.control_flow import (
    If,
    SelectInput,
    Undefined,
    While,
    Yield,
    join,
)
from tostatic.ops.logical import LogicalNot
from tostatic.ops.manipulation import Cast
from tostatic.passes.raising import BLOCK_OP_RAISERS, Raiser


def block_uses(r: Raiser, idx: int) -> tuple[list[str], list[str]]:
    """(outer tensor names block `idx` reads, outer tensor names it writes), each in order of
    first use, nested sub-blocks included. Names the block declares itself are its own."""
    reads, writes = outer_uses(r.blocks, idx)
    return ([n for n in reads if r.is_tensor(n, idx)],
            [n for n in writes if r.is_tensor(n, idx)])


def _name(op: Any, names: Sequence[str]) -> None:
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in names])


def _undefined(block: Block, ab: Abstract) -> SSAValue:
    u = Undefined.make([], {}, [ab.tensor_type()])
    block.add_op(u)
    return u.results[0]


def raise_conditional_block(r: Raiser, op: OpOp, where: str) -> None:
    cond = op.input(CONDITIONAL_BLOCK.condition)
    if not op.attr(CONDITIONAL_BLOCK.flag) or len(cond) != 1:
        raise UnsupportedError(f"{where}: only conditional_block with one scalar condition "
                               f"(is_scalar_condition=True) is supported, got Cond={cond}")
    idx = op.attr("sub_block")
    r.check_sub_block(idx, where)
    reads, writes = block_uses(r, idx)
    inputs = [n for n in dict.fromkeys(reads + writes) if n in r.env]
    types = [r.env[n].type for n in inputs]
    then = r.region(idx, inputs, types)
    then.raise_ops()
    then.block.add_op(Yield.make([then.env[n] for n in writes], {}, []))
    otherwise = Block(arg_types=types)
    kept = [otherwise.args[inputs.index(n)] if n in inputs
            else _undefined(otherwise, r.abstract(n)) for n in writes]
    otherwise.add_op(Yield.make(kept, {}, []))
    if_op = If.new(r.env[cond[0]], [r.env[n] for n in inputs], then.block, otherwise)
    _name(if_op, writes)
    r.block.add_op(if_op)
    if_op.verify()
    r.env.update(zip(writes, if_op.results))


def raise_while(r: Raiser, op: OpOp, where: str) -> None:
    (cond,) = op.input(WHILE.condition)
    idx = op.attr("sub_block")
    r.check_sub_block(idx, where)
    reads, writes = block_uses(r, idx)
    carried = [cond] + [n for n in writes if n != cond]
    invariants = [n for n in reads if n not in carried and n in r.env]
    for n in carried:
        if n not in r.env:  # first written by the body: undefined if the loop never runs
            r.env[n] = _undefined(r.block, r.abstract(n))
    state = [Abstract.of_value(r.env[n]) for n in carried]
    fixed = [r.env[n].type for n in invariants]
    while True:  # widen dims that change across iterations until the body agrees
        body = r.region(idx, carried + invariants, [a.tensor_type() for a in state] + fixed)
        body.raise_ops()
        nxt = [body.env[n] for n in carried]
        widened = [a if isinstance(v.owner, Undefined) else
                   join(a, Abstract.of_value(v), f"{where}: loop variable {n!r}")
                   for n, a, v in zip(carried, state, nxt)]
        if widened == state:
            break
        state = widened
    body.block.add_op(Yield.make(nxt, {}, []))
    loop = While.new([r.env[n] for n in carried], [r.env[n] for n in invariants], body.block,
                     [a.tensor_type() for a in state])
    _name(loop, carried)
    r.block.add_op(loop)
    loop.verify()
    r.env.update(zip(carried, loop.results))


BLOCK_OP_RAISERS.update({CONDITIONAL_BLOCK.type: raise_conditional_block,
                         WHILE.type: raise_while})


# ---------------------------------------------------------------------------------------------
# static.nn.cond: two conditional pd.ifs + select_input -> one pd.if
# ---------------------------------------------------------------------------------------------

def fuse_conditional_pairs(block: Block) -> None:
    """`if c {A}`, `if not c {B}`, `select_input([B, A], cast(c))` for each output -> one
    `if c {A} else {B}`. A pair whose results anything else reads keeps its faithful form."""
    for op in list(block.ops):
        for region in op.regions:
            fuse_conditional_pairs(region.block)
    pairs: dict[tuple[If, If], list[SelectInput]] = {}
    for op in block.ops:
        pair = _cond_pair(op)
        if pair is not None:
            pairs.setdefault(pair, []).append(op)  # type: ignore[arg-type]
    for (on_true, on_false), selects in pairs.items():
        users = {u.operation for r in (*on_true.results, *on_false.results) for u in r.uses}
        if users <= set(selects):
            _fuse(block, on_true, on_false, selects)


def _cond_pair(op: Any) -> tuple[If, If] | None:
    """(if on c, if on not c) when `op` is select_input([from the second, from the first],
    cast(c)) and both ifs leave that output undefined when they do not run."""
    if not isinstance(op, SelectInput) or len(op.operands) != 3:
        return None
    mask, on_false, on_true = op.operands
    if not all(isinstance(v, OpResult) for v in (mask, on_false, on_true)):
        return None
    cast, t_if, f_if = mask.owner, on_true.owner, on_false.owner
    if not (isinstance(cast, Cast) and isinstance(t_if, If) and isinstance(f_if, If)):
        return None
    c, negation = cast.operands[0], f_if.operands[0].owner
    if t_if.operands[0] is not c or not isinstance(negation, LogicalNot):
        return None
    if negation.operands[0] is not c or t_if is f_if:
        return None
    if not (_undefined_otherwise(t_if, on_true.index)
            and _undefined_otherwise(f_if, on_false.index)):
        return None
    return t_if, f_if


def _undefined_otherwise(if_op: If, i: int) -> bool:
    term = if_op.else_region.block.last_op
    return isinstance(term, Yield) and isinstance(term.operands[i].owner, Undefined)


def _fuse(block: Block, on_true: If, on_false: If, selects: list[SelectInput]) -> None:
    cond = on_true.operands[0]
    helpers = [on_false.operands[0].owner, selects[0].operands[0].owner]  # not c, cast(c)
    args = list(dict.fromkeys([*on_true.operands[1:], *on_false.operands[1:]]))
    picks = [(s.operands[2].index, s.operands[1].index)  # type: ignore[attr-defined]
             for s in selects]
    then_block = _moved(on_true, args, [t for t, _ in picks])
    else_block = _moved(on_false, args, [f for _, f in picks])
    fused = If.new(cond, args, then_block, else_block)
    names = [n for s in selects if NAMES_ATTR in s.attributes
             for n in s.attributes[NAMES_ATTR].data]  # type: ignore[attr-defined]
    fused.attributes[NAMES_ATTR] = ArrayAttr(names)
    block.insert_op_before(fused, selects[0])
    for s, result in zip(selects, fused.results):
        s.results[0].replace_all_uses_with(result)
        block.erase_op(s)
    block.erase_op(on_true)
    block.erase_op(on_false)
    for op in helpers:
        if not any(r.uses for r in op.results):  # type: ignore[union-attr]
            block.erase_op(op)  # type: ignore[arg-type]


def _moved(if_op: If, args: list[SSAValue], picks: list[int]) -> Block:
    """The then-block of `if_op`, moved into a new block taking `args` and yielding its values
    `picks`."""
    old = if_op.then_region.block
    new = Block(arg_types=[a.type for a in args])
    for arg, outer in zip(old.args, if_op.operands[1:]):
        arg.replace_all_uses_with(new.args[args.index(outer)])
    term = old.last_op
    assert isinstance(term, Yield)
    values = [term.operands[k] for k in picks]
    for op in list(old.ops):
        if op is not term:
            op.detach()
            new.add_op(op)
    new.add_op(Yield.make(values, {}, []))
    return new
