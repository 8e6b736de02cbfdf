"""pd.fused_attention: a Transformer's multi-head attention core as one inference op (made by
the `fuse-attention` pass at load, never traced; it has no Paddle legacy op).

Operands are the projections as the QKV matmul leaves them, [batch, seq, heads * head_dim]
(q, k, v), and optionally an additive mask broadcasting to [batch, heads, seq_q, seq_k]; the
result is softmax(q_h k_h^T + mask) v_h of every head h, side by side in the same
[batch, seq_q, heads * head_dim] layout the output projection reads. So the split into heads
and the merge back (reshape, transpose and their copy), the mask's add and the softmax are
no steps of their own, and a kernel may read each head's rows where they lie (runtime's
attention kernel does: no transpose copy). Any scale is already in q (fold-matmul-scale).
`eager` is the reference: the unfused ops' own kernels, one after the other.
"""
from __future__ import annotations

import numpy as np

from tostatic.ir.attributes import INT, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, PdOp, pd_op
from tostatic.ops.activation import Softmax
from tostatic.ops.elementwise import Add
from tostatic.ops.linalg import Matmul


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """[batch, seq, heads * d] -> [batch, heads, seq, d] (a view where numpy can)."""
    b, s, hd = x.shape
    return x.reshape(b, s, heads, hd // heads).transpose(0, 2, 1, 3)


@pd_op
class FusedAttention(PdOp):
    """softmax(q_h k_h^T + mask) v_h per head, heads side by side."""

    name = "pd.fused_attention"
    INPUTS = ("q", "k", "v", "*mask")
    NONDIFF = True  # made at load for inference only: training differentiates the unfused ops
    ATTRS = {"num_heads": attr(INT)}

    @staticmethod
    def infer(q: Abstract, k: Abstract, v: Abstract, mask: list[Abstract],
              num_heads: int) -> Abstract:
        name = FusedAttention.name
        if len(mask) > 1:
            raise ShapeError(f"{name}: at most one mask, got {len(mask)}")
        if any(a.ndim != 3 for a in (q, k, v)):
            raise ShapeError(f"{name}: q, k, v must be [batch, seq, heads * head_dim], got "
                             f"{[list(a.shape) for a in (q, k, v)]}")
        if not q.dtype.is_floating or k.dtype != q.dtype or v.dtype != q.dtype:
            raise ShapeError(f"{name}: q, k, v must share one floating dtype")
        hd = q.shape[2]
        if num_heads < 1 or (hd >= 0 and hd % num_heads) or k.shape[2] != hd \
                or v.shape[2] != hd:
            raise ShapeError(f"{name}: {num_heads} heads do not split the last dims "
                             f"{[q.shape[2], k.shape[2], v.shape[2]]} equally")
        if mask and (mask[0].ndim != 4 or mask[0].dtype != q.dtype):
            raise ShapeError(f"{name}: the mask must be a 4-D {q.dtype.name} tensor "
                             f"broadcasting to [batch, heads, seq_q, seq_k]")
        return Abstract((q.shape[0], q.shape[1], hd), q.dtype)

    @staticmethod
    def eager(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: list[np.ndarray],
              num_heads: int) -> np.ndarray:
        scores = Matmul.eager(split_heads(q, num_heads), split_heads(k, num_heads),
                              False, True)
        if mask:
            scores = Add.run_eager([scores, mask[0]], {"axis": -1})[0]
        p = Softmax.eager(np.asarray(scores), -1)
        o = Matmul.eager(p, split_heads(v, num_heads), False, False)
        b, s, hd = q.shape
        return np.ascontiguousarray(o.transpose(0, 2, 1, 3)).reshape(b, s, hd)
