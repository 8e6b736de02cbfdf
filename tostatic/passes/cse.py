"""cse: common-subexpression elimination of `pd` ops, scoped by regions."""
from __future__ import annotations

from typing import Hashable

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation
from xdsl.rewriter import Rewriter
from xdsl.traits import IsolatedFromAbove
from xdsl.utils.scoped_dict import ScopedDict

from tostatic.ir.attr_keys import LOC_ATTR, NAMES_ATTR
from tostatic.ir.opdef import PdOp
from tostatic.ops.control_flow import invariant_source
from tostatic.passes.base import CompilePass, CompileState, register

METADATA = (NAMES_ATTR, LOC_ATTR)  # discardable attributes that never make two ops differ


def key(op: Operation) -> Hashable | None:
    """What makes two ops compute the same value, or None if `op` must never be merged."""
    if not isinstance(op, PdOp) or op.regions or not op.results or op.EFFECTS:
        return None
    extra = {k: v for k, v in op.attributes.items() if k not in METADATA}
    operands = tuple(invariant_source(v) for v in op.operands)
    return (op.name, operands, tuple(sorted(op.properties.items())),
            tuple(sorted(extra.items())), tuple(op.result_types))


class CommonSubexpressions:
    """Walk blocks in order with a scoped table of the ops seen so far: an op in a region sees
    the ops of its own block before it and those of the enclosing blocks before the region's
    op (they dominate it), never the ops of a sibling or nested region."""

    def run(self, op: Operation, known: ScopedDict[Hashable, Operation]) -> None:
        for region in op.regions:
            for block in region.blocks:
                outer = None if op.has_trait(IsolatedFromAbove) else known
                self.run_block(block, ScopedDict(outer))

    def run_block(self, block: Block, known: ScopedDict[Hashable, Operation]) -> None:
        for op in list(block.ops):
            k = key(op)
            if k is None:
                self.run(op, known)  # its regions, if any
            elif k in known:  # (not known.get: ScopedDict formats the key on a miss)
                Rewriter.replace_op(op, [], list(known[k].results))
            else:
                known[k] = op


def cse(module: ModuleOp) -> None:
    CommonSubexpressions().run(module, ScopedDict())


@register
class CommonSubexpressionElimination(CompilePass):
    """Merge a `pd` op into an earlier op of the same kind with the same operands, properties
    and result types: its uses read the earlier op's results, and it is erased (with its
    Paddle names: the earlier op's `pd.names` name the value). `pd.names` and `pd.loc` are
    metadata and never make two ops differ; other attributes do.

    Never merges: ops with effects (`pd.uniform`, `pd.gaussian`: two draws are two values),
    ops with regions, ops of other dialects, nor parameters with different names. An op in a
    region may reuse an op that dominates it outside; an op outside never reuses one inside a
    region, nor one region another's; isolated regions (`func.func`, `pd.if`, `pd.while`)
    see nothing outside. Inside a `pd.if` / `pd.while`, two arguments that hold the same
    operand on every run (any `pd.if` argument, `pd.while` loop invariants) are one value,
    as constant-folding and canonicalize read them."""

    name = "cse"

    def apply(self, module: ModuleOp, state: CompileState) -> None:
        cse(module)
