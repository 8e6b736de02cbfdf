"""constant-folding: evaluate ops whose inputs are all constants, with the op's own eager rule."""
from __future__ import annotations

import numpy as np
from xdsl.rewriter import Rewriter

from tostatic.ir.opdef import PdOp
from tostatic.ops.core import Capture, Constant, Persistable, array_to_dense, dense_to_array
from tostatic.passes.base import CompilePass, CompileState, entry, register


def _known_value(op) -> np.ndarray | None:
    """The value of a constant, or of an operand-free op with no effects (pd.full)."""
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
    themselves (`pd.full` lowers better as itself; dead-op-elimination drops it once unused)."""

    name = "constant-folding"
    options = {"max-elements": 1024}

    def apply(self, module, state: CompileState) -> None:
        limit = int(self.values["max-elements"])
        for op in self.ops(entry(module).body.block.ops):
            if not isinstance(op, PdOp) or op.EFFECTS or not op.operands:
                continue
            if isinstance(op, Constant):
                continue
            arrays = [_known_value(v.owner) for v in op.operands]
            if any(a is None for a in arrays):
                continue
            results = op.run_eager(arrays, op.attr_values())
            if any(np.asarray(r).size > limit for r in results):
                continue
            new_ops = []
            for r, old in zip(results, op.results):
                c = Constant.make([], {"value": array_to_dense(np.asarray(r))}, [old.type])
                c.attributes.update(op.attributes)
                new_ops.append(c)
            Rewriter.replace_op(op, new_ops, [c.results[0] for c in new_ops])
