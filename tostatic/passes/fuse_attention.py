"""fuse-attention: multi-head attention's core (head split, q k^T, mask add, softmax, p v,
head merge) becomes one pd.fused_attention reading the projections in their
[batch, seq, heads * head_dim] layout."""
from __future__ import annotations

from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import Rewriter

from tostatic.ir.opdef import Abstract
from tostatic.ops.activation import Softmax
from tostatic.ops.elementwise import Add
from tostatic.ops.fused_attention import FusedAttention
from tostatic.ops.linalg import Matmul
from tostatic.ops.manipulation import Reshape, Transpose
from tostatic.passes.base import CompilePass, CompileState, register
from tostatic.passes.inference_rewrite import only_use, replace

HEADS_PERM = (0, 2, 1, 3)


def _same_leading(reshape: Operation, src: Abstract, dst: Abstract) -> bool:
    """Whether a reshape keeps its input's first two dims (a 0 in its shape, or equal
    static sizes)."""
    shape = reshape.attr_values()["shape"]
    return all(shape[i] == 0 or (src.shape[i] == dst.shape[i] >= 0) for i in (0, 1))


def split_heads(v: SSAValue) -> tuple[SSAValue, int, int] | None:
    """(x, heads, head_dim) when `v` is transpose(reshape(x, [b, s, heads, d]), 0 2 1 3) of
    a [b, s, heads * d] tensor x, else None."""
    t = v.owner
    if not isinstance(t, Transpose) or tuple(t.attr_values()["perm"]) != HEADS_PERM:
        return None
    r = t.operands[0].owner
    if not isinstance(r, Reshape):
        return None
    x, y = Abstract.of_value(r.operands[0]), Abstract.of_value(r.results[0])
    if x.ndim != 3 or y.ndim != 4 or min(y.shape[2:]) < 1 \
            or x.shape[2] != y.shape[2] * y.shape[3] or not _same_leading(r, x, y):
        return None
    return r.operands[0], y.shape[2], y.shape[3]


def merge_heads(v: SSAValue) -> list[Operation] | None:
    """[transpose, reshape] when `v` [b, heads, s, d] is read only by transpose(0 2 1 3) and
    that only by a reshape to [b, s, heads * d], else None."""
    t = only_use(v)
    if not isinstance(t, Transpose) or tuple(t.attr_values()["perm"]) != HEADS_PERM:
        return None
    r = only_use(t.results[0])
    if not isinstance(r, Reshape):
        return None
    x, y = Abstract.of_value(t.results[0]), Abstract.of_value(r.results[0])
    if y.ndim != 3 or min(x.shape[2:]) < 1 or y.shape[2] != x.shape[2] * x.shape[3] \
            or not _same_leading(r, x, y):
        return None
    return [t, r]


@register
class FuseAttention(CompilePass):
    """For each pd.softmax over the last axis of q k^T (+ a 4-D mask of the same dtype),
    where q and k are a [b, s, heads * d] tensor split into heads (reshape, transpose 0 2 1 3),
    the softmax is read only by p v (v split likewise), and that only by the heads' merge
    (transpose 0 2 1 3, reshape back to [b, s, heads * d]): the chain from q k^T to the
    merge becomes one pd.fused_attention(q, k, v[, mask]). The splits stay for
    dead-op-elimination when nothing else reads them."""

    name = "fuse-attention"

    def apply(self, module, state: CompileState) -> None:
        for op in self.ops(module.walk()):
            if isinstance(op, Softmax) and op.parent is not None:
                self.current_op = op
                self.fuse(op)
        self.current_op = None

    @staticmethod
    def fuse(softmax: Operation) -> bool:
        scores = Abstract.of_value(softmax.results[0])
        if scores.ndim != 4 or softmax.attr_values()["axis"] not in (-1, 3) \
                or not scores.dtype.is_floating:
            return False
        chain, src, mask = [softmax], softmax.operands[0].owner, []
        if isinstance(src, Add) and src.attr_values()["axis"] == -1 \
                and only_use(src.results[0]) is softmax:
            a, b = src.operands
            qk_first = isinstance(a.owner, Matmul)
            mask = [b if qk_first else a]
            m = Abstract.of_value(mask[0])
            if m.ndim != 4 or m.dtype != scores.dtype \
                    or Abstract.of_value(src.results[0]).shape != scores.shape:
                return False
            chain.append(src)
            src = (a if qk_first else b).owner
        if not isinstance(src, Matmul) or only_use(src.results[0]) is not chain[-1]:
            return False
        at = src.attr_values()
        pv = only_use(softmax.results[0])
        if at["transpose_x"] or not at["transpose_y"] or not isinstance(pv, Matmul) \
                or pv.operands[0] is not softmax.results[0] \
                or any(pv.attr_values()[t] for t in ("transpose_x", "transpose_y")):
            return False
        parts = [split_heads(v) for v in (src.operands[0], src.operands[1], pv.operands[1])]
        merge = merge_heads(pv.results[0])
        if any(p is None for p in parts) or merge is None \
                or len({p[1:] for p in parts}) != 1:  # type: ignore[index]
            return False
        (q, heads, _), (k, _, _), (v, _, _) = parts  # type: ignore[misc]
        fused = FusedAttention.make([q, k, v, *mask], {"num_heads": heads},
                                    [merge[1].results[0].type])
        replace(merge[1], fused)
        for dead in (merge[1], merge[0], pv, *chain, src):
            Rewriter.erase_op(dead)
        return True
