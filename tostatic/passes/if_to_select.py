"""if-to-select: a `pd.if` whose branches are pure becomes both branches inline plus one
`pd.select_input` per result (Paddle's own form of a converted `cond`), so append-backward,
which differentiates straight-line code only, trains through a tensor `if`.

    %r = pd.if(%c, %a) {then: ... yield %x} {else: ... yield %y}
      ->  ...then ops on %a...; ...else ops on %a...
          %r = pd.select_input(cast(%c, int32), %y, %x)

Both branches run; the result is the taken branch's value, exactly, and select_input's VJP
sends the cotangent to that branch only (zeros to the other). A branch that updates a persistable
(batch norm's running statistics) writes it through pd.update_state of the selected value,
so only the branch taken updates it. A branch with effects (dropout,
random numbers, asserts, optimizer updates) or nested `pd.while`, or results whose shapes are
not static, keeps its `pd.if` (whose own rule then differentiates it, see If.vjp). Meant
for the training pipeline only: exported programs keep their conditional blocks. Caveat: the
untaken branch is evaluated too, so a value it cannot compute (log of 0) gives its warning.
"""
from __future__ import annotations

from typing import Any

from xdsl.ir import Block, SSAValue

from tostatic.ir import dtypes
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops.control_flow import If, RegionOp, SelectInput, Undefined, Yield
from tostatic.ops.core import Persistable, UpdateState
from tostatic.ops.manipulation import Assign, Cast
from tostatic.passes.base import CompilePass, CompileState, entry, register


def _pure(block: Block, nested: bool = False) -> bool:
    """No effects; state updates (batch norm's running statistics) only in the branches
    of the if being inlined, whose writes `_guard_updates` makes conditional."""
    for op in block.ops:
        if isinstance(op, Yield):
            continue
        if isinstance(op, Undefined) or not isinstance(op, PdOp) or op.EFFECTS:
            return False
        if isinstance(op, RegionOp) and not isinstance(op, If):
            return False
        if nested and op.UPDATES:
            return False
        if any(not _pure(r.block, True) for r in op.regions):
            return False
    return True


def _inline(op: If, block: Block, region_block: Block) -> tuple[list[SSAValue], list[PdOp]]:
    """Clone the region's ops before `op`, its arguments bound to op's operands; returns
    what it yields and the clones."""
    mapping: dict[SSAValue, SSAValue] = dict(zip(region_block.args, op.operands[1:]))
    clones = []
    for inner in region_block.ops:
        if isinstance(inner, Yield):
            return [mapping.get(v, v) for v in inner.operands], clones
        clone = inner.clone(value_mapper=mapping)
        block.insert_op_before(clone, op)
        mapping.update(zip(inner.results, clone.results))
        clones.append(clone)
    raise AssertionError("a pd.if region ends with pd.yield")


def _guard_updates(clones: list[PdOp], block: Block, mask: SSAValue, taken: int) -> None:
    """An inlined op that updates a persistable (batch norm in train mode) reads it through
    a pd.assign instead, so its own results no longer write it; a pd.update_state writes
    select_input(mask, ...) instead: the new value when the branch was taken (mask ==
    `taken`), the old one otherwise."""
    for op in clones:
        inputs = [n.lstrip("*") for n in op.INPUTS]
        for i, name in op.UPDATES.items():
            k = inputs.index(name)
            ref = op.operands[k]
            if not isinstance(ref.owner, Persistable):
                continue
            alias = Assign.make([ref], {}, [ref.type])
            block.insert_op_before(alias, op)
            op.operands[k] = alias.results[0]
            new = op.results[i]
            pair = [ref, new] if taken else [new, ref]
            select = SelectInput.make([mask, *pair], {}, [ref.type])
            write = UpdateState.make([ref, select.results[0]], {}, [ref.type])
            block.insert_op_after(select, op)
            block.insert_op_after(write, select)


@register
class IfToSelect(CompilePass):
    """Inline pure `pd.if`s of the entry function as both branches plus select_input."""

    name = "if-to-select"

    def apply(self, module: Any, state: CompileState) -> None:
        block = entry(module).body.block
        changed = True
        while changed:  # an inlined branch may bring a nested pd.if up to this block
            changed = False
            for op in self.ops(block.ops):
                if isinstance(op, If) and self._convertible(op):
                    self._convert(op, block)
                    changed = True

    @staticmethod
    def _convertible(op: If) -> bool:
        if any(any(d < 0 for d in Abstract.of_value(r).shape) for r in op.results):
            return False
        return all(_pure(r.block) for r in op.regions)

    @staticmethod
    def _convert(op: If, block: Block) -> None:
        cast = Cast.make([op.operands[0]], Cast.normalize_attrs(
            {"dtype": dtypes.convert_dtype("int32")}),
            [Abstract(Abstract.of_value(op.operands[0]).shape,
                      dtypes.convert_dtype("int32")).tensor_type()])
        block.insert_op_before(cast, op)
        mask = cast.results[0]  # dead-op elimination drops it when nothing selects
        then_values, then_ops = _inline(op, block, op.then_region.block)
        else_values, else_ops = _inline(op, block, op.else_region.block)
        _guard_updates(then_ops, block, mask, 1)
        _guard_updates(else_ops, block, mask, 0)
        for r, t, e in zip(op.results, then_values, else_values):
            if t is e:
                r.replace_all_uses_with(t)
                continue
            select = SelectInput.make([mask, e, t], {}, [r.type])
            block.insert_op_before(select, op)
            r.replace_all_uses_with(select.results[0])
        block.erase_op(op)
