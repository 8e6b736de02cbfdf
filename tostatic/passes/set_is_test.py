"""set-is-test: every Paddle op that has an `is_test` attribute gets is_test=True.

Paddle does this to every program it saves (`_inference_optimize`): a Layer exported while
still in train mode is written with inference dropout and batch norm all the same.
"""
from __future__ import annotations

from tostatic.dialects.program import OpOp
from tostatic.passes.base import CompilePass, CompileState, register


@register
class SetIsTest(CompilePass):
    """On the `program` dialect: set is_test=True on every op that has the attribute, as
    Paddle's save path does (so dropout and batch_norm run in inference mode)."""

    name = "set-is-test"

    def apply(self, module, state: CompileState) -> None:
        for op in self.ops(module.walk()):
            if isinstance(op, OpOp) and op.has_attr("is_test") and not op.attr("is_test"):
                op.set_attr("is_test", "BOOLEAN", True)
