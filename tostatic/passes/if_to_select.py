"""if-to-select: a `pd.if` whose branches are pure becomes both branches inline plus one
`pd.select_input` per result (Paddle's own form of a converted `cond`), so append-backward,
which differentiates straight-line code only, trains through a tensor `if`.

    %r = pd.if(%c, %a) {then: ... yield %x} {else: ... yield %y}
      ->  ...then ops on %a...; ...else ops on %a...
          %r = pd.select_input(cast(%c, int32), %y, %x)

Both branches run; the result is the taken branch's value, exactly, and select_input's VJP
sends the cotangent to that branch only (zeros to the other). A branch with effects (dropout,
random numbers, asserts, optimizer updates) or nested `pd.while`, or results whose shapes are
not static, keeps its `pd.if` (append-backward then says it cannot differentiate it). Meant
for the training pipeline only: exported programs keep their conditional blocks. Caveat: the
untaken branch is evaluated too, so a value it cannot compute (log of 0) gives its warning.
"""
from __future__ import annotations

from typing import Any

from xdsl.ir import Block, SSAValue

from tostatic.ir import dtypes
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops.control_flow import If, RegionOp, SelectInput, Undefined, Yield
from tostatic.ops.manipulation import Cast
from tostatic.passes.base import CompilePass, CompileState, entry, register


def _pure(block: Block) -> bool:
    for op in block.ops:
        if isinstance(op, Yield):
            continue
        if isinstance(op, Undefined) or not isinstance(op, PdOp) or op.EFFECTS:
            return False
        if isinstance(op, RegionOp) and not isinstance(op, If):
            return False
        if any(not _pure(r.block) for r in op.regions):
            return False
    return True


def _inline(op: If, block: Block, region_block: Block) -> list[SSAValue]:
    """Clone the region's ops before `op`, its arguments bound to op's operands; returns
    what it yields."""
    mapping: dict[SSAValue, SSAValue] = dict(zip(region_block.args, op.operands[1:]))
    for inner in region_block.ops:
        if isinstance(inner, Yield):
            return [mapping.get(v, v) for v in inner.operands]
        clone = inner.clone(value_mapper=mapping)
        block.insert_op_before(clone, op)
        mapping.update(zip(inner.results, clone.results))
    raise AssertionError("a pd.if region ends with pd.yield")


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
        then_values = _inline(op, block, op.then_region.block)
        else_values = _inline(op, block, op.else_region.block)
        mask = None
        for r, t, e in zip(op.results, then_values, else_values):
            if t is e:
                r.replace_all_uses_with(t)
                continue
            if mask is None:
                cast = Cast.make([op.operands[0]], Cast.normalize_attrs(
                    {"dtype": dtypes.convert_dtype("int32")}),
                    [Abstract(Abstract.of_value(op.operands[0]).shape,
                              dtypes.convert_dtype("int32")).tensor_type()])
                block.insert_op_before(cast, op)
                mask = cast.results[0]
            select = SelectInput.make([mask, e, t], {}, [r.type])
            block.insert_op_before(select, op)
            r.replace_all_uses_with(select.results[0])
        block.erase_op(op)
