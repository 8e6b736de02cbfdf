"""fold-batch-norm: an evaluation-mode batch_norm after a convolution or a matmul becomes part
of that op's weights (and a bias add)."""
from __future__ import annotations

from collections import Counter

import numpy as np
from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import Rewriter

from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops.core import Persistable
from tostatic.ops.conv import DATA_FORMATS, Conv2D, Conv2DTranspose, DepthwiseConv2D, \
    DepthwiseConv2DTranspose
from tostatic.ops.elementwise import Add
from tostatic.ops.linalg import Matmul
from tostatic.ops.normalization import BatchNorm
from tostatic.passes.base import CompilePass, CompileState, register
from tostatic.passes.inference_rewrite import new_weight, only_use, per_channel, \
    persistable_name, replace, weight_value

CONVS = (Conv2D, DepthwiseConv2D)
TRANSPOSED = (Conv2DTranspose, DepthwiseConv2DTranspose)


@register
class FoldBatchNorm(CompilePass):
    """batch_norm in evaluation mode (is_test without trainable statistics, or
    use_global_stats) whose input is a conv2d / depthwise_conv2d / conv2d_transpose /
    depthwise_conv2d_transpose, or a 2-D matmul with a weight matrix, read by that
    batch_norm alone (possibly through a bias add of a weight): y = conv(x) * a + b with
    a = scale / sqrt(variance + epsilon), b = bias - mean * a becomes conv'(x) + b', where
    conv' has its filter scaled by a along the output channels (new persistables
    `<filter>@bn`, `<filter>@bn_bias`). The rest (b' as a bias add, fused later by
    fuse-epilogue) is plain `pd` ops, still lowerable to Paddle. Needs the weights in the
    state (jit.load, paddle.inference); without them it changes nothing."""

    name = "fold-batch-norm"

    def apply(self, module, state: CompileState) -> None:
        self.readers: Counter[str] = Counter(
            op.attr_values()["var_name"] for op in module.walk() if isinstance(op, Persistable))
        for op in self.ops(module.walk()):
            if isinstance(op, BatchNorm) and op.parent is not None:
                self.fold(op, state)

    def fold(self, bn: BatchNorm, state: CompileState) -> bool:
        at = bn.attr_values()
        if not ((at["is_test"] and not at["trainable_statistics"]) or at["use_global_stats"]):
            return False
        if any(r.first_use is not None for r in bn.results[1:]):
            return False
        params = [weight_value(v, state) for v in bn.operands[1:]]
        if any(p is None for p in params):
            return False
        scale, bias, mean, var = (np.asarray(p, np.float64) for p in params)
        a = scale / np.sqrt(var + np.float32(at["epsilon"]))
        b = bias - mean * a
        x = bn.operands[0]
        rank = Abstract.of_value(x).ndim
        axis = rank - 1 if at["data_layout"] == "NHWC" and rank > 2 else 1
        if only_use(x) is not bn:
            return False
        producer, bias_add, old_bias = x.owner, None, None
        if isinstance(producer, Add):  # conv -> add(bias weight) -> batch_norm: fold both
            main, other = producer.operands
            old_bias = weight_value(other, state)
            if old_bias is None or only_use(main) is not producer or \
                    not per_channel(Abstract.of_value(main).shape, old_bias.shape,
                                    producer.attr_values()["axis"], axis, a.size):
                return False
            bias_add, producer = producer, main.owner
        scaled = self.scaled_producer(producer, a, axis, rank, state)
        if scaled is None:
            return False
        if old_bias is not None:
            b = b + np.asarray(old_bias, np.float64).reshape(-1) * a
        dtype = Abstract.of_value(bn.operands[0]).dtype.numpy
        shape = [-1] if axis == rank - 1 else [1] * axis + [-1] + [1] * (rank - axis - 1)
        bias_name = f"{persistable_name(producer.operands[1])}@bn_bias"
        b_value = new_weight(state, bias_name, b.astype(dtype).reshape(shape), bn)
        replace(producer, scaled)
        add = Add.make([scaled.results[0], b_value], {"axis": -1}, [bn.results[0].type])
        replace(bn, add)
        for dead in (bn, bias_add, producer):
            if dead is not None:
                Rewriter.erase_op(dead)
        return True

    def scaled_producer(self, op: Operation | None, a: np.ndarray, axis: int, rank: int,
                        state: CompileState) -> PdOp | None:
        """A copy of `op` with its weight scaled by `a` along the output channels: `a` (computed
        in float64) is rounded to the weight's dtype first, so the product is one pass in that
        dtype, not a float64 copy of the whole filter (4x the time on ResNet-50's load)."""
        if not isinstance(op, (*CONVS, *TRANSPOSED, Matmul)):
            return None
        w = weight_value(op.operands[1], state)
        if w is None or w.dtype.kind != "f":
            return None
        at = op.attr_values()
        if isinstance(op, (*CONVS, *TRANSPOSED)):
            if (axis == 1) == DATA_FORMATS[at["data_format"]] or w.ndim != 4:
                return None  # the batch norm does not normalise the conv's channels
        if isinstance(op, CONVS):
            if w.shape[0] != a.size:
                return None
            scale = a.astype(w.dtype).reshape(-1, 1, 1, 1)
            # scaled where it lies when no one else can see it: a fresh 100 MB for ResNet-50
            # cost more in page faults than the multiply
            w2 = np.multiply(w, scale, out=w) if self.owned(op, w, state) else w * scale
        elif isinstance(op, TRANSPOSED):
            g = at["groups"]
            cin, coutg = w.shape[:2]
            if coutg * g != a.size:
                return None
            w2 = (w.reshape(g, cin // g, coutg, *w.shape[2:])
                  * a.astype(w.dtype).reshape(g, 1, coutg, 1, 1)).reshape(w.shape)
        else:
            if rank != 2 or w.ndim != 2 or axis != 1 or at["transpose_x"]:
                return None
            if at["transpose_y"]:
                w2 = w * a.astype(w.dtype).reshape(-1, 1) if w.shape[0] == a.size else None
            else:
                w2 = w * a.astype(w.dtype).reshape(1, -1) if w.shape[1] == a.size else None
            if w2 is None:
                return None
        name = f"{persistable_name(op.operands[1])}@bn"
        w_value: SSAValue = new_weight(state, name, w2.astype(w.dtype, copy=False), op)
        return type(op).make([op.operands[0], w_value], at, [op.results[0].type])

    def owned(self, op: PdOp, w: np.ndarray, state: CompileState) -> bool:
        """Whether `op`'s weight may be overwritten: the state owns the arrays, and this op is
        the one reader of the one persistable of that name (it dies with the op)."""
        source = op.operands[1].owner
        if not (state.weights_owned and isinstance(source, Persistable)
                and op.operands[1].has_one_use() and hasattr(self, "readers")):
            return False
        name = source.attr_values()["var_name"]
        return (self.readers[name] == 1 and state.weights.get(name) is w
                and w.flags.writeable and w.flags.c_contiguous)
