"""loop-invariant-code-motion: compute once, before the loop, what a `pd.while` body
computes from loop invariants alone."""
from __future__ import annotations

from xdsl.ir import Block, Operation, SSAValue

from tostatic.ir.opdef import PdOp
from tostatic.ops.control_flow import While, Yield
from tostatic.passes.base import CompilePass, CompileState, register


@register
class LoopInvariantCodeMotion(CompilePass):
    """Move out of a `pd.while` body every op that reads only loop invariants (the body's
    arguments after the loop-carried state), constants made in the body, or what other such
    ops compute, and has no effects and no regions. It then runs once before the loop; its
    results enter the body as new loop invariants (operands of the pd.while and arguments
    of its body). Nested loops are done innermost first, so an op can leave several loops.
    A pure op runs even when the loop does not, as MLIR's LICM moves speculatable ops."""

    name = "loop-invariant-code-motion"

    def apply(self, module, state: CompileState) -> None:
        self.visit(module.body.block)

    def visit(self, block: Block) -> None:
        for op in self.ops(block.ops):
            for region in op.regions:
                for inner in region.blocks:
                    self.visit(inner)
            if isinstance(op, While):
                self.hoist(op)

    def hoist(self, loop: While) -> None:
        body = loop.body.block
        k = len(loop.results)
        outside: dict[SSAValue, SSAValue] = {  # body value -> the value it is outside
            arg: loop.operands[arg.index] for arg in body.args if arg.index >= k}
        for op in list(body.ops):
            if (not isinstance(op, PdOp) or isinstance(op, Yield) or op.regions
                    or op.EFFECTS or not all(v in outside for v in op.operands)):
                continue
            self.current_op = op
            op.detach()
            for i, v in enumerate(op.operands):
                op.operands[i] = outside[v]
            loop.parent_block().insert_op_before(op, loop)  # type: ignore[union-attr]
            for r in op.results:
                arg = body.insert_arg(r.type, len(body.args))
                loop.operands = [*loop.operands, r]
                outside[arg] = r
                for use in list(r.uses):
                    if _inside(use.operation, loop):
                        use.operation.operands[use.index] = arg


def _inside(op: Operation, loop: While) -> bool:
    parent = op.parent_op()
    while parent is not None:
        if parent is loop:
            return True
        parent = parent.parent_op()
    return False

