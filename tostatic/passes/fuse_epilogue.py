"""fuse-epilogue: bias adds, residual adds and activations after a convolution or a matmul
become that op's epilogue (pd.fused_conv2d / pd.fused_matmul)."""
from __future__ import annotations

from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import Rewriter

from tostatic.ir.opdef import Abstract
from tostatic.ops.conv import DATA_FORMATS, Conv2D, DepthwiseConv2D
from tostatic.ops.elementwise import Add
from tostatic.ops.fused import FusedConv2D, FusedMatmul, activation_name
from tostatic.ops.linalg import Matmul
from tostatic.passes.base import CompilePass, CompileState, register
from tostatic.passes.inference_rewrite import only_use, per_channel, replace, weight_value


@register
class FuseEpilogue(CompilePass):
    """Follow the result of each conv2d (depthwise included) / matmul through the ops that alone
    read it: `pd.add` of a weight holding one value per output channel (`bias`; for a matmul,
    per column), `pd.add` of another tensor of the very same type (`add`: a residual),
    activations (relu, relu6, hardswish, sigmoid, tanh, gelu, silu, swish); the chain becomes
    one pd.fused_conv2d / pd.fused_matmul with those steps, in order, as its `epilogue`. Only
    floating results. Fused ops have no Paddle op: this pass runs on the plan's copy of a
    loaded model, never before lowering."""

    name = "fuse-epilogue"

    def apply(self, module, state: CompileState) -> None:
        for op in self.ops(module.walk()):
            if isinstance(op, (Conv2D, DepthwiseConv2D, Matmul)) and op.parent is not None:
                self.fuse(op, state)

    def fuse(self, op: Operation, state: CompileState) -> bool:
        out = Abstract.of_value(op.results[0])
        if not out.dtype.is_floating or out.ndim == 0:
            return False
        at = op.attr_values()
        if isinstance(op, Matmul):
            axis = out.ndim - 1
        else:
            axis = 3 if DATA_FORMATS[at["data_format"]] else 1
        c = out.shape[axis]
        steps: list[str] = []
        extras: list[SSAValue] = []
        chain: list[Operation] = []
        v = op.results[0]
        while (user := only_use(v)) is not None:
            step, extra = self.step(user, v, out, axis, c, state)
            if step is None:
                break
            steps.append(step)
            if extra is not None:
                extras.append(extra)
            chain.append(user)
            v = user.results[0]
        if not steps:
            return False
        cls = FusedMatmul if isinstance(op, Matmul) else FusedConv2D
        fused = cls.make([*op.operands, *extras], {**at, "epilogue": tuple(steps)},
                         [v.type])
        replace(chain[-1], fused)
        for dead in reversed([op, *chain]):
            Rewriter.erase_op(dead)
        return True

    @staticmethod
    def step(user: Operation, v: SSAValue, out: Abstract, axis: int, c: int,
             state: CompileState) -> tuple[str | None, SSAValue | None]:
        if isinstance(user, Add):
            other = user.operands[1] if user.operands[0] is v else user.operands[0]
            if v.type != user.results[0].type:
                return None, None  # the add broadcasts the result itself
            w = weight_value(other, state)
            if w is not None and c >= 0 and per_channel(out.shape, w.shape,
                                                          user.attr_values()["axis"], axis, c):
                return "bias", other
            if other.type == v.type and user.attr_values()["axis"] == -1:
                return "add", other
            return None, None
        name = activation_name(user)  # type: ignore[arg-type]
        return (name, None) if name is not None else (None, None)
