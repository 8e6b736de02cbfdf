"""How Paddle writes the ops that run a sub-block (conditional_block, while): their slots and
their own bool attribute. Raising reads their slots from it, and lowering writes pd.if / pd.while
with it (passes/lower_control_flow.py), for jit.save and for static mode alike."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tostatic.dialects.program import OpOp


@dataclass(frozen=True)
class BlockOpLayout:
    """A Paddle op that runs a sub-block: its slots and its own bool attribute."""

    type: str
    condition: str  # the bool condition's slot
    inputs: str  # outer names the sub-block reads
    scopes: str  # its STEP_SCOPES variable
    flag: str  # is_scalar_condition / is_test

    def build(self, condition: str, inputs: list[str], outputs: list[str], scope: str,
              sub_block: int, flag: bool, attrs: dict[str, Any]) -> OpOp:
        return OpOp.build(self.type, {self.condition: [condition], self.inputs: inputs},
                          {"Out": outputs, self.scopes: [scope]},
                          {self.flag: ("BOOLEAN", flag), "sub_block": ("BLOCK", sub_block),
                           **attrs})


CONDITIONAL_BLOCK = BlockOpLayout("conditional_block", "Cond", "Input", "Scope",
                                  "is_scalar_condition")
WHILE = BlockOpLayout("while", "Condition", "X", "StepScopes", "is_test")
