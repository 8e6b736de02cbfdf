"""constant-folding: evaluate ops whose inputs are all constants, with the op's own eager rule."""
from __future__ import annotations

import numpy as np
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.rewriter import Rewriter

from tostatic.ir.opdef import PdOp
from tostatic.ops.control_flow import If, Undefined, While, invariant_source
from tostatic.ops.core import Capture, Constant, Persistable, array_to_dense, dense_to_array
from tostatic.passes.base import CompilePass, CompileState, register


def known_value(v: SSAValue) -> np.ndarray | None:
    """The value of a constant, of an operand-free op with no effects (pd.full), or of a
    region's block argument that holds such a value on every run of the region."""
    v = invariant_source(v)
    if isinstance(v, BlockArgument):
        return None
    op = v.owner
    if isinstance(op, Constant):
        return dense_to_array(op.attr_values()["value"])
    if isinstance(op, (Capture, Persistable)) or not isinstance(op, PdOp):
        return None
    if op.operands or op.EFFECTS or len(op.results) != 1:
        return None
    return np.asarray(op.run_eager([], op.attr_values())[0])


@register
class ConstantFolding(CompilePass):
    """Replace a `pd` op whose operands are all known (`pd.constant`, or operand-free ops such
    as `pd.full`) by a `pd.constant` holding its eager result, when every result has at most
    `max-elements` elements. Parameters are `pd.capture`/`pd.persistable`, never known values,
    so they are never folded; ops with effects are left alone, and so are operand-free ops
    themselves (`pd.full` lowers better as itself; dead-op-elimination drops it once unused).

    Works in the regions of `pd.if` / `pd.while` too. A `pd.if` / `pd.while` with known
    operands folds whole; a `pd.if` on a known condition is replaced by the ops of the branch
    it takes (the other is dead), a `pd.while` whose known condition is false on entry by its
    initial state. Inside a region, a block argument is known when the operand it
    holds on every run is: any argument of a `pd.if` region, a loop invariant of a
    `pd.while` body (never its loop-carried state). The constants a fold makes go where the
    folded op was, inside the region; the region op keeps its operands."""

    name = "constant-folding"
    options = {"max-elements": 1024}

    def apply(self, module, state: CompileState) -> None:
        self.fold_block(module.body.block, int(self.values["max-elements"]))

    def fold_block(self, block: Block, limit: int) -> None:
        for op in self.ops(block.ops):
            if self.take_branch(op):
                return self.fold_block(block, limit)  # the inlined ops fold in turn
            if not self.fold(op, limit):
                for region in op.regions:
                    for inner in region.blocks:
                        self.fold_block(inner, limit)

    def take_branch(self, op: Operation) -> bool:
        """A pd.if on a known condition becomes the ops of the region it takes (the other is
        dead); a pd.while whose known condition is false on entry, its initial state."""
        if not isinstance(op, (If, While)) or op.EFFECTS and isinstance(op, While):
            return False
        cond = known_value(op.operands[0])
        if cond is None or np.asarray(cond).size != 1:
            return False
        taken = bool(np.asarray(cond).reshape(-1)[0])
        if isinstance(op, While):
            if taken:
                return False
            for r, v in zip(op.results, op.operands):
                r.replace_all_uses_with(v)
            Rewriter.erase_op(op, safe_erase=False)
            return True
        block = op.regions[0 if taken else 1].block
        term = block.last_op
        assert term is not None
        if any(isinstance(v.owner, Undefined) for v in term.operands):
            return False  # a value no op writes on that path: kept as Paddle would have it
        for arg, v in zip(block.args, op.operands[1:]):
            arg.replace_all_uses_with(v)
        yielded = list(term.operands)
        parent = op.parent_block()
        assert parent is not None
        for inner in list(block.ops):
            if inner is not term:
                inner.detach()
                parent.insert_op_before(inner, op)
        for r, y in zip(op.results, yielded):
            r.replace_all_uses_with(y)
        Rewriter.erase_op(op, safe_erase=False)
        return True

    def fold(self, op: Operation, limit: int) -> bool:
        """Replace `op` by constants if it can be; say whether it was."""
        if not isinstance(op, PdOp) or isinstance(op, Constant) or not op.operands \
                or not op.results:  # pd.yield: nothing to fold into
            return False
        arrays = []
        for v in op.operands:  # most ops stop at their first operand
            if (a := known_value(v)) is None:
                return False
            arrays.append(a)
        if op.EFFECTS:  # (after the operands: a region op's EFFECTS walks its regions)
            return False
        results = op.run_eager(arrays, op.attr_values())
        if any(np.asarray(r).size > limit for r in results):
            return False
        new_ops = []
        for r, old in zip(results, op.results):
            c = Constant.make([], {"value": array_to_dense(np.asarray(r))}, [old.type])
            c.attributes.update(op.attributes)
            new_ops.append(c)
        Rewriter.replace_op(op, new_ops, [c.results[0] for c in new_ops])
        return True
