"""dead-op-elimination: drop ops whose results nobody reads."""
from __future__ import annotations

from tostatic.ir.opdef import PdOp
from tostatic.passes.base import CompilePass, CompileState, entry, register


def is_dead(op) -> bool:
    return (isinstance(op, PdOp) and not op.EFFECTS
            and all(not r.uses for r in op.results))


@register
class DeadOpElimination(CompilePass):
    """Remove `pd` ops none of whose results are used, walking backwards so chains of dead
    ops go in one sweep. Ops with effects (random numbers, state) always stay."""

    name = "dead-op-elimination"

    def apply(self, module, state: CompileState) -> None:
        block = entry(module).body.block
        for op in self.ops(reversed(list(block.ops))):
            if is_dead(op):
                block.erase_op(op)
