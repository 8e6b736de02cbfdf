"""fuse-elementwise: trees of elementwise ops become one `pd.fused_elementwise` each."""
from __future__ import annotations

from typing import Any

from xdsl.ir import Block, Operation, Region, SSAValue

from tostatic.ir import scalar_expr as se
from tostatic.ir.attr_keys import LOC_ATTR
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops.control_flow import RegionOp, Yield
from tostatic.ops.fused_elementwise import FusedElementwise
from tostatic.passes.base import CompilePass, CompileState, entry, register
from tostatic.passes.lowering import REGION_LOWERINGS, Lowering, SubBlock


def _numel(ab: Abstract) -> int:
    n = 1
    for d in ab.shape:
        if d < 0:
            return -1
        n *= d
    return n


def fusible(op: Operation, min_elements: int) -> bool:
    """An op with a SCALAR rule that builds for its dtypes, one result, no effects, numpy
    broadcasting (Paddle's legacy `axis` only when the ranks agree, where it changes nothing),
    and a result not known to be smaller than `min_elements`."""
    if not isinstance(op, PdOp) or isinstance(op, RegionOp) or op.SCALAR is None:
        return False
    if len(op.results) != 1 or op.EFFECTS:
        return False
    ins = [Abstract.of_value(v) for v in op.operands]
    attrs = op.attr_values()
    if attrs.get("axis", -1) != -1 and len({a.ndim for a in ins}) > 1:
        return False
    out = Abstract.of_value(op.results[0])
    if 0 <= _numel(out) < min_elements:
        return False
    try:
        op.SCALAR(*(se.arg(i, a.dtype.name) for i, a in enumerate(ins)), **attrs)
    except se.NotScalar:
        return False
    return True


def _only_user(value: SSAValue, user: Operation) -> bool:
    return all(u.operation is user for u in value.uses)


@register
class FuseElementwise(CompilePass):
    """Group elementwise ops (those with a SCALAR rule) into `pd.fused_elementwise` ops: an
    op joins the group of a producer whose result only it reads, so each group is a tree with
    one result, computed in one pass over memory by a generated kernel (numpy runs the ops
    one by one). Groups of one op stay as they are, as do ops on tensors known to hold fewer
    than `min-elements` elements (shape arithmetic). Lowering writes the original ops back."""

    name = "fuse-elementwise"
    options = {"min-elements": 1024}

    def apply(self, module: Any, state: CompileState) -> None:
        self.fuse_block(entry(module).body.block)

    def fuse_block(self, block: Block) -> None:
        groups: dict[Operation, list[Operation]] = {}  # root -> members, producers first
        for op in self.ops(block.ops):
            for region in op.regions:
                if not isinstance(op, FusedElementwise):
                    for inner in region.blocks:
                        self.fuse_block(inner)
            if not fusible(op, self.values["min-elements"]):
                continue
            members: list[Operation] = []
            for v in dict.fromkeys(op.operands):
                if v.owner in groups and _only_user(v, op):
                    members += groups.pop(v.owner)  # type: ignore[arg-type]
            groups[op] = members + [op]
        for root, members in groups.items():
            if len(members) > 1:
                self.current_op = root
                _fuse(block, root, members)
        self.current_op = None


def _fuse(block: Block, root: Operation, members: list[Operation]) -> None:
    inside = {r for m in members for r in m.results}
    inputs = list(dict.fromkeys(v for m in members for v in m.operands if v not in inside))
    body = Block(arg_types=[v.type for v in inputs])
    arg_of = dict(zip(inputs, body.args))
    fused = FusedElementwise(operands=[inputs], result_types=[[root.results[0].type]],
                             regions=[Region(body)])
    if LOC_ATTR in root.attributes:
        fused.attributes[LOC_ATTR] = root.attributes[LOC_ATTR]
    block.insert_op_before(fused, root)
    root.results[0].replace_all_uses_with(fused.results[0])
    for m in members:
        m.detach()
        m.operands = [arg_of.get(v, v) for v in m.operands]
        body.add_op(m)
    body.add_op(Yield.make([root.results[0]], {}, []))


def lower_fused(lw: Lowering, op: FusedElementwise, target: SubBlock) -> None:
    """Un-fuse while lowering: the region's ops are written in place of the fused op, as they
    were before fusion (their names and lines kept), reading the operands' variables."""
    block = op.body.block
    for arg, v in zip(block.args, op.operands):
        lw.names.of[arg] = lw.name_of(v, target)
    out = block.last_op.operands[0]  # type: ignore[union-attr]
    if op.results[0] in lw.redirect:  # the function's output variable: the last op writes it
        lw.redirect[out] = lw.redirect.pop(op.results[0])
    for inner in op.inner_ops():
        lw.lower_op(inner, target)
    lw.names.of[op.results[0]] = lw.names.of[out]


REGION_LOWERINGS[FusedElementwise] = lower_fused
