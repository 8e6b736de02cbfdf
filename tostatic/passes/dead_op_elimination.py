"""dead-op-elimination: drop ops whose results nobody reads, inside regions too."""
from __future__ import annotations

from xdsl.ir import Block
from xdsl.traits import IsTerminator
from xdsl.transforms.dead_code_elimination import is_trivially_dead

from tostatic.ir.attr_keys import BLOCK_SLOTS_ATTR
from tostatic.ir.opdef import PdOp
from tostatic.ops.control_flow import RegionOp
from tostatic.passes.base import CompilePass, CompileState, register


@register
class DeadOpElimination(CompilePass):
    """Remove ops none of whose results are used and that have no effects, in every block:
    the function's and those of `pd.if` / `pd.while` regions. Chains of dead ops go in one
    run, and so does a `pd.if` / `pd.while` whose results nobody reads. Ops with effects
    (`EFFECTS = True`: random numbers, state) always stay, and so does an op with regions
    holding one; terminators (`pd.yield`, `func.return`) stay. A `pd.if` / `pd.while` that
    stays loses the operands whose region arguments nobody reads any more (a `pd.if`'s
    unused in both regions, a `pd.while`'s unused loop invariants), so what computed them
    goes too, as it would in the Paddle program, whose sub-block ops list only what they
    read. Except when the op's Paddle slots are fixed (`pd.block_slots`: a static program
    being saved): Paddle's prune keeps whatever a kept conditional_block / while lists.

    `keep-effects=false` prunes as Paddle prunes a program it saves for inference: an op
    goes when nothing reads its results, effects or not (an unused random draw)."""

    name = "dead-op-elimination"
    options = {"keep-effects": True}

    def spec(self) -> str:
        return self.name if self.values["keep-effects"] else super().spec()

    def apply(self, module, state: CompileState) -> None:
        self.sweep(module.body.block)

    def sweep(self, block: Block) -> None:
        """Backwards, entering the regions of an op that stays before the ops above it: in
        structured IR (single-block regions as in pd.if / pd.while, no loops between blocks)
        every user of a value comes later in its block or inside a later op, so one sweep
        sees each op after all its users and removes whole dead chains."""
        keep_effects = self.values["keep-effects"]
        for op in self.ops(reversed(list(block.ops))):
            if (is_trivially_dead(op) if keep_effects  # unused, no effects, not a terminator
                    else isinstance(op, PdOp) and not op.has_trait(IsTerminator)
                    and all(r.first_use is None for r in op.results)):
                block.erase_op(op)
                continue
            for region in op.regions:
                for inner in reversed(region.blocks):
                    self.sweep(inner)
            if isinstance(op, RegionOp) and BLOCK_SLOTS_ATTR not in op.attributes:
                self.current_op = op
                op.drop_unused_arguments()  # what fed them may be dead now: it comes later
