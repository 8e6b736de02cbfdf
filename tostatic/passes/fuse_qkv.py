"""fuse-qkv: matmuls of one input by different weights (attention's query, key and value
projections) become one matmul by the weights side by side, and slices of its result."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from tostatic.ir.opdef import Abstract
from tostatic.ops.fused import FusedMatmul
from tostatic.ops.indexing import Slice
from tostatic.ops.linalg import Matmul
from tostatic.passes.base import CompilePass, CompileState, register
from tostatic.passes.inference_rewrite import new_weight, persistable_name, replace, \
    weight_value

# epilogues a group may share: steps that act column by column, with per-column operands
COLUMNWISE = {(), ("bias",)}


@register
class FuseQKV(CompilePass):
    """Group the matmuls (plain, or fused with only a bias) that read the same input, with
    transpose_x off, by 2-D weights of the same K, dtype and transpose_y; each group of two
    or more becomes one pd.fused_matmul by the weights concatenated along N (the biases
    too) and one `pd.slice` of its last dim per original result. One GEMM of 3N columns
    runs nearer the BLAS's peak than three of N, and makes one call instead of three.
    Weights are known only with the model's data (jit.load, paddle.inference)."""

    name = "fuse-qkv"

    def apply(self, module, state: CompileState) -> None:
        groups: dict[tuple, list[Operation]] = defaultdict(list)
        for op in self.ops(module.walk()):
            key = self.key(op, state)
            if key is not None:
                groups[key].append(op)
        for ops in groups.values():
            if len(ops) > 1:
                self.current_op = ops[0]
                self.fuse(ops, state)
        self.current_op = None

    @staticmethod
    def key(op: Operation, state: CompileState) -> tuple | None:
        if not isinstance(op, (Matmul, FusedMatmul)) or op.parent is None:
            return None
        at = op.attr_values()
        steps = tuple(at.get("epilogue", ()))
        if at["transpose_x"] or steps not in COLUMNWISE:
            return None
        x, w = Abstract.of_value(op.operands[0]), Abstract.of_value(op.operands[1])
        if not x.dtype.is_floating or x.ndim < 1 or w.ndim != 2 or any(d < 0 for d in w.shape):
            return None
        if weight_value(op.operands[1], state) is None or any(
                weight_value(e, state) is None for e in op.operands[2:]):
            return None
        k = w.shape[1] if at["transpose_y"] else w.shape[0]
        return (op.operands[0], op.parent, at["transpose_y"], steps, k, x.dtype.name)

    @staticmethod
    def fuse(ops: list[Operation], state: CompileState) -> None:
        first = ops[0]
        at = first.attr_values()
        ty, steps = at["transpose_y"], tuple(at.get("epilogue", ()))
        weights = [weight_value(op.operands[1], state) for op in ops]
        ns = [w.shape[0] if ty else w.shape[1] for w in weights]
        names = "+".join(persistable_name(op.operands[1]) for op in ops)
        operands: list[SSAValue] = [first.operands[0], new_weight(
            state, f"{names}@concat", np.concatenate(weights, axis=0 if ty else 1), first)]
        if steps:
            biases = [weight_value(op.operands[2], state).reshape(-1) for op in ops]
            operands.append(new_weight(state, f"{names}@concat_bias",
                                       np.concatenate(biases), first))
        out = Abstract.of_value(first.results[0])
        total = sum(ns)
        t = Abstract((*out.shape[:-1], total), out.dtype).tensor_type()
        fused = FusedMatmul.make(operands, {"transpose_x": False, "transpose_y": ty,
                                            "epilogue": steps}, [t])
        Rewriter.insert_op(fused, InsertPoint.before(first))
        lo = 0
        axis = out.ndim - 1
        for op, n in zip(ops, ns):
            part = Slice.make([fused.results[0]], {"axes": (axis,), "starts": (lo,),
                                                   "ends": (lo + n,), "decrease_axis": ()},
                              [op.results[0].type])
            replace(op, part)  # where the original was: after the fused op
            Rewriter.erase_op(op)
            lo += n
