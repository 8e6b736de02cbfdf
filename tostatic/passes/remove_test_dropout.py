"""remove-test-dropout: an is_test dropout is the identity ('upscale_in_train') or a scale
by 1 - p ('downgrade_in_infer'); it goes, so a matmul's residual add behind it can join
the matmul's epilogue."""
from __future__ import annotations

import numpy as np
from xdsl.rewriter import Rewriter

from tostatic.ops.activation import Scale
from tostatic.ops.dropout import Dropout
from tostatic.passes.base import CompilePass, CompileState, register
from tostatic.passes.inference_rewrite import replace


@register
class RemoveTestDropout(CompilePass):
    """Replace each `pd.dropout` with is_test set whose Mask nothing reads: 'upscale_in_train'
    by its input, 'downgrade_in_infer' by `pd.scale(x, 1 - p)` (p rounded to float32 as
    the kernel does). Inference only: the loaded module keeps Paddle's op."""

    name = "remove-test-dropout"

    def apply(self, module, state: CompileState) -> None:
        for op in self.ops(module.walk()):
            if not isinstance(op, Dropout) or op.parent is None:
                continue
            at = op.attr_values()
            if not at["is_test"] or op.results[1].uses:
                continue
            if at["dropout_implementation"] == "upscale_in_train":
                op.results[0].replace_all_uses_with(op.operands[0])
            else:
                keep = 1.0 - float(np.float32(at["dropout_prob"]))
                replace(op, Scale.make([op.operands[0]], {"scale": keep, "bias": 0.0,
                                                          "bias_after_scale": True},
                                       [op.results[0].type]))
            Rewriter.erase_op(op)
