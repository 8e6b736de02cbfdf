"""One recorded op of the eager tape: what its VJP rule needs when backward reaches it."""
from __future__ import annotations

from typing import Any


class GradNode:
    """An op that ran with an input requiring grad. The outputs point back at it through
    `Tensor._grad_node = (node, index)`; `release()` (a backward without retain_graph) drops
    the saved tensors, so a second backward through it fails as Paddle's does."""

    __slots__ = ("op", "inputs", "outputs", "attrs", "released")

    def __init__(self, op: Any, inputs: list[Any], attrs: dict[str, Any], outputs: list[Any]):
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.outputs = outputs
        self.released = False

    def release(self) -> None:
        self.outputs = [None] * len(self.outputs)
        self.released = True

    def __repr__(self) -> str:
        return f"<GradNode {self.op.name}>"
