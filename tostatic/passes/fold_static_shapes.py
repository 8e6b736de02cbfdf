"""fold-static-shapes: `pd.shape` of a tensor whose type has no dynamic dim is a constant."""
from __future__ import annotations

import numpy as np
from xdsl.rewriter import Rewriter

from tostatic.ir.opdef import Abstract
from tostatic.ops.core import Constant, array_to_dense
from tostatic.ops.manipulation import Shape
from tostatic.passes.base import CompilePass, CompileState, register


@register
class FoldStaticShapes(CompilePass):
    """Replace `pd.shape(x)` by a `pd.constant` when x's type is fully static, so that
    constant-folding can fold the shape arithmetic after it (shape -> slice -> concat ->
    reshape chains become a reshape with a literal target). Dims that are dynamic (a batch
    of any size) stay computed at run time."""

    name = "fold-static-shapes"

    def apply(self, module, state: CompileState) -> None:
        for op in self.ops(module.walk()):
            if not isinstance(op, Shape):
                continue
            shape = Abstract.of_value(op.operands[0]).shape
            if any(d < 0 for d in shape):
                continue
            value = np.array(shape, dtype=Abstract.of_value(op.results[0]).dtype.numpy)
            const = Constant.make([], {"value": array_to_dense(value)}, [op.results[0].type])
            const.attributes.update(op.attributes)
            Rewriter.replace_op(op, const)
