"""constant-folding: evaluate ops whose inputs are all constants, with the op's own eager rule."""
from __future__ import annotations

import numpy as np
from xdsl.rewriter import Rewriter

from tostatic.ir.opdef import PdOp
from tostatic.ops.core import Constant, array_to_dense, dense_to_array
from tostatic.passes.base import CompilePass, CompileState, entry, register


@register
class ConstantFolding(CompilePass):
    """Replace a `pd` op whose operands all come from `pd.constant` by a `pd.constant` holding
    its eager result, when every result has at most `max-elements` elements. Parameters are
    `pd.capture`/`pd.persistable`, never constants, so they are never folded; ops with effects
    and ops without operands (`pd.full` lowers better as itself) are left alone."""

    name = "constant-folding"
    options = {"max-elements": 1024}

    def apply(self, module, state: CompileState) -> None:
        limit = int(self.values["max-elements"])
        for op in list(entry(module).body.block.ops):
            if not isinstance(op, PdOp) or op.EFFECTS or not op.operands:
                continue
            if isinstance(op, Constant):
                continue
            owners = [v.owner for v in op.operands]
            if not all(isinstance(o, Constant) for o in owners):
                continue
            arrays = [dense_to_array(o.attr_values()["value"]) for o in owners]
            results = op.run_eager(arrays, op.attr_values())
            if any(np.asarray(r).size > limit for r in results):
                continue
            new_ops = []
            for r, old in zip(results, op.results):
                c = Constant.make([], {"value": array_to_dense(np.asarray(r))}, [old.type])
                c.attributes.update(op.attributes)
                new_ops.append(c)
            Rewriter.replace_op(op, new_ops, [c.results[0] for c in new_ops])
