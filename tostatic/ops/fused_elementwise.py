"""`pd.fused_elementwise`: a tree of elementwise ops run as one kernel.

The `fuse-elementwise` pass moves a group of elementwise ops (each result read once, inside
the group) into the region of one op; the region keeps the original ops with all their
attributes (names, source lines), so the op prints, parses and verifies like any region op,
its numpy semantics are the region's ops run one by one (the reference), a code generator
reads their SCALAR rules, and lowering writes the original ops back (Paddle has no fused op).

    %r = "pd.fused_elementwise"(%x, %b) ({
      ^bb0(%x1, %b1): %t = "pd.add"(%x1, %b1) ...; %u = "pd.relu"(%t); "pd.yield"(%u) })
"""
from __future__ import annotations

from typing import Any, Sequence

from xdsl.ir import Block, BlockArgument, Region, SSAValue
from xdsl.irdl import region_def
from xdsl.utils.exceptions import VerifyException

from tostatic.ir import scalar_expr as se
from tostatic.ir.opdef import Abstract, PdOp, pd_op
from tostatic.ops.control_flow import Kernel, RegionFn, RegionOp, Yield, terminator


@pd_op
class FusedElementwise(RegionOp):
    """One result: what the region yields, computed from the operands (block arguments)."""

    name = "pd.fused_elementwise"
    INPUTS = ("*xs",)
    body = region_def("single_block")
    # formed only by the load pipeline, for inference; a program being trained keeps the
    # ops it fuses, each with its own vjp
    NONDIFF = True

    def kernel(self, regions: Sequence[RegionFn]) -> Kernel:
        return regions[0]

    def operand_index(self, arg: BlockArgument) -> int | None:
        return arg.index

    @classmethod
    def new(cls, inputs: Sequence[SSAValue], body: Block) -> "FusedElementwise":
        return cls(operands=[list(inputs)], result_types=[[terminator(body).operands[0].type]],
                   regions=[Region(body)])

    def inner_ops(self) -> list[PdOp]:
        return [op for op in self.body.block.ops if not isinstance(op, Yield)]  # type: ignore

    def verify_(self) -> None:
        block = self.body.block
        if [a.type for a in block.args] != [v.type for v in self.operands]:
            raise VerifyException(f"{self.name}: region arguments "
                                  f"{[str(a.type) for a in block.args]} differ from the "
                                  f"operands {[str(v.type) for v in self.operands]}")
        out = terminator(block).operands
        if len(out) != 1 or len(self.results) != 1:
            raise VerifyException(f"{self.name}: yields {len(out)} values for "
                                  f"{len(self.results)} results; it has one of each")
        if not Abstract.of_value(out[0]).compatible(Abstract.of_value(self.results[0])):
            raise VerifyException(f"{self.name}: region yields {out[0].type}, result is "
                                  f"{self.results[0].type}")
        for op in self.inner_ops():
            if getattr(op, "SCALAR", None) is None:
                raise VerifyException(f"{self.name}: {op.name} is not elementwise")

    def scalar_expr(self) -> se.Expr:
        """The region as one expression over the operands (NotScalar when some dtype or op has
        none)."""
        block = self.body.block
        env: dict[SSAValue, Any] = {a: se.arg(i, Abstract.of_value(a).dtype.name)
                                    for i, a in enumerate(block.args)}
        for op in self.inner_ops():
            env[op.results[0]] = op.SCALAR(*(env[v] for v in op.operands), **op.attr_values())
        return env[terminator(block).operands[0]]
