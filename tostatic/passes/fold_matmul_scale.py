"""fold-matmul-scale: a scale of a matmul's result by a constant (attention's q / sqrt(d),
behind the head split's reshape and transpose) folds into the matmul's weight and bias."""
from __future__ import annotations

import numpy as np
from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import Rewriter

from tostatic.ops.activation import Scale
from tostatic.ops.fused import FusedMatmul
from tostatic.ops.linalg import Matmul
from tostatic.ops.manipulation import Reshape, Transpose
from tostatic.passes.base import CompilePass, CompileState, register
from tostatic.passes.inference_rewrite import new_weight, persistable_name, weight_value

# ops that move elements without changing them: a scale passes through them
MOVES = (Reshape, Transpose)
LINEAR_STEPS = {"bias"}  # epilogue steps a scale distributes over (with their operand)


@register
class FoldMatmulScale(CompilePass):
    """For each `pd.scale` without bias whose input comes, through reshapes and transposes
    nothing else reads, from a matmul (plain or fused with only a bias) by a weight: the
    weight and bias become new weights times the scale, and the scale goes. Floating
    results only; weights are known only with the model's data (jit.load, paddle.inference)."""

    name = "fold-matmul-scale"

    def apply(self, module, state: CompileState) -> None:
        for op in self.ops(module.walk()):
            if isinstance(op, Scale) and op.parent is not None:
                self.fold(op, state)

    def fold(self, op: Operation, state: CompileState) -> bool:
        at = op.attr_values()
        if at["bias"] != 0.0:
            return False
        mm = self.source(op.operands[0])
        if mm is None:
            return False
        w = weight_value(mm.operands[1], state)
        if w is None or w.dtype.kind != "f":
            return False
        steps = mm.attr_values().get("epilogue", ()) if isinstance(mm, FusedMatmul) else ()
        if any(s not in LINEAR_STEPS for s in steps):
            return False
        extras = list(mm.operands[2:])
        values = [weight_value(e, state) for e in extras]
        if any(v is None or v.dtype != w.dtype for v in values):
            return False
        s = w.dtype.type(at["scale"])
        mm.operands[1] = new_weight(state, f"{persistable_name(mm.operands[1])}@scaled",
                                    w * s, mm)
        for k, (e, v) in enumerate(zip(extras, values)):
            mm.operands[2 + k] = new_weight(state, f"{persistable_name(e)}@scaled", v * s, mm)
        op.results[0].replace_all_uses_with(op.operands[0])
        Rewriter.erase_op(op)
        return True

    @staticmethod
    def source(v: SSAValue) -> Operation | None:
        """The matmul `v` is a moved copy of, each step read by its successor alone."""
        while True:
            owner = v.owner
            if not isinstance(owner, Operation) or not v.has_one_use():
                return None
            if isinstance(owner, (Matmul, FusedMatmul)):
                return owner if owner.results[0] is v else None
            if not isinstance(owner, MOVES):
                return None
            v = owner.operands[0]
