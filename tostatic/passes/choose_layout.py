"""choose-layout: the convolution chains where channels-last pays run in NHWC, with one
transpose where a chain starts and one where it ends."""
from __future__ import annotations

from xdsl.dialects import func
from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from tostatic.ir.attr_keys import LOC_ATTR
from tostatic.ir.opdef import Abstract
from tostatic.ops.conv import DATA_FORMATS, Conv2D, DepthwiseConv2D, pair
from tostatic.ops.fused import FusedConv2D
from tostatic.ops.manipulation import Transpose
from tostatic.ops.pooling import Pool2D
from tostatic.passes.base import CompilePass, CompileState, register

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
CONVS = (Conv2D, DepthwiseConv2D, FusedConv2D)
STEM_MAX_INPUT_CHANNELS, STEM_MAX_OUTPUT_CHANNELS = 4, 64


def depthwise(op: Operation) -> bool:
    """One filter per input channel, one output channel per filter (the NHWC depthwise
    kernel's case, codegen/depthwise_nhwc.py)."""
    cout, cg = Abstract.of_value(op.operands[1]).shape[:2]
    at = op.attr_values()
    c = Abstract.of_value(op.operands[0]).shape[3 if DATA_FORMATS[at["data_format"]] else 1]
    g = at["groups"]
    return cg == 1 and g > 1 and c == g == cout


def pointwise(op: Operation) -> bool:
    """A 1x1, stride-1, unpadded convolution: in NHWC, x[pixels, C_in] @ W[C_in, C_out], the
    packed GEMM's matmul form (rows read in place)."""
    at = op.attr_values()
    return (Abstract.of_value(op.operands[1]).shape[2:] == (1, 1) and at["groups"] == 1
            and pair(op.name, "strides", at["strides"]) == (1, 1)
            and (at["padding_algorithm"] != "EXPLICIT" or not any(at["paddings"])))


def stem(op: Operation) -> bool:
    """A convolution of few input channels to few output channels (a network's first: 3
    colour channels), which codegen's direct NHWC kernel computes from the NCHW image in
    place (codegen/direct_conv_nhwc.py: no transpose copied, no im2col)."""
    cout, cg = Abstract.of_value(op.operands[1]).shape[:2]
    return op.attr_values()["groups"] == 1 and cg <= STEM_MAX_INPUT_CHANNELS \
        and cout <= STEM_MAX_OUTPUT_CHANNELS


def nhwc_pays(ops: list[Operation]) -> list[Operation]:
    """THE RULE: which of a function's NCHW convolutions run in NHWC: the chains of
    depthwise, 1x1 and stem convolutions (ops linked by one reading another's result, as its
    input or its residual) that hold a depthwise convolution (MobileNet-style blocks). Other
    full kxk convolutions (Winograd, im2col: NCHW kernels) stay, and so do chains without a
    depthwise layer, a 1x1 alone between two 3x3s, a stem whose reader is a full conv:
    each would pay a transpose at both ends for nothing. MobileNetV2, batch 1, 1 thread,
    kernels alone: its 17 depthwise layers 0.94 -> 0.67 ms, its 34 1x1s 2.60 -> 2.41 ms,
    its stem 0.26 ms + a 0.1 ms transpose -> 0.13 ms; the model 5.7 -> 4.6 ms of CPU time
    (batch 8: 0.83x). ResNets stay NCHW: ResNet-50's 1x1s alone are faster in NHWC (18.9 ->
    16.4 ms, in cache), but every 3x3 between them would need its input and its result
    transposed (a copy of each, 0.05-0.1 ms at 56x56x64), which eats that gain."""
    picked = [op for op in ops if depthwise(op) or pointwise(op) or stem(op)]
    chain = {op: op for op in picked}  # union-find: op -> a member nearer its chain's root

    def root(op: Operation) -> Operation:
        while chain[op] is not op:
            chain[op] = op = chain[chain[op]]
        return op
    for op in picked:
        for v in op.operands:
            if v.owner in chain:
                chain[root(v.owner)] = root(op)
    with_depthwise = {root(op) for op in picked if depthwise(op)}
    return [op for op in picked if root(op) in with_depthwise]


def _candidate(op: Operation) -> bool:
    if not isinstance(op, CONVS) or op.parent is None:
        return False
    x, w = Abstract.of_value(op.operands[0]), Abstract.of_value(op.operands[1])
    return (not DATA_FORMATS[op.attr_values()["data_format"]] and x.ndim == 4
            and w.ndim == 4 and x.dtype.is_floating and x.shape[1] >= 0
            and all(d >= 0 for d in w.shape))


def _transpose(v: SSAValue, perm: tuple[int, ...], before: Operation) -> SSAValue:
    """transpose(v, perm) before `before`, or the one made already (the ops are rewritten in
    program order, so it comes earlier: a residual reads the chain's input twice)."""
    for use in v.uses:  # (one in the same block: one in a pd.if's region does not dominate)
        if isinstance(use.operation, Transpose) and use.operation.parent is before.parent \
                and tuple(use.operation.attr_values()["perm"]) == perm:
            return use.operation.results[0]
    shape = Abstract.of_value(v)
    t = Abstract(tuple(shape.shape[p] for p in perm), shape.dtype).tensor_type()
    op = Transpose.make([v], {"perm": perm}, [t])
    Rewriter.insert_op(op, InsertPoint.before(before))
    return op.results[0]


@register
class ChooseLayout(CompilePass):
    """Put the convolutions `nhwc_pays` picks into NHWC: each becomes the same op with
    data_format NHWC reading transpose(x, [0, 2, 3, 1]) (its residual operand too: a bias
    holds one value per channel whatever the layout), its result transposed back. Then
    every transpose of a transpose that undoes it reads the original value, so inside a
    chain no transpose is left: one at its start, one at its end (in MobileNetV2 a view of
    the input image, read in place by the stem, and one after the global pooling, which
    goes NHWC too when its result is 1x1, so the transpose back moves C values). The ops stay `pd` ops Paddle has (NHWC conv2d /
    depthwise_conv2d / pool2d), but the pass runs only on the plan's copy of a loaded model
    (the `inference` pipeline), after fuse-epilogue. `enable=false` turns it off."""

    name = "choose-layout"
    options = {"enable": True}

    def apply(self, module, state: CompileState) -> None:
        if not self.values["enable"]:
            return
        for f in module.walk():
            if isinstance(f, func.FuncOp):
                self.run_on(f)

    def run_on(self, f: Operation) -> None:
        convs = [op for op in self.ops(f.walk()) if _candidate(op)]
        chosen = nhwc_pays(convs)
        for op in chosen:
            self.to_nhwc(op)
        if not chosen:
            return
        for op in list(f.walk()):
            if isinstance(op, Pool2D) and op.parent is not None:
                self.pool_to_nhwc(op)
        for op in list(f.walk()):
            if isinstance(op, Transpose) and op.parent is not None:
                self.cancel(op)

    @staticmethod
    def to_nhwc(op: Operation) -> None:
        at = op.attr_values()
        operands = [_transpose(op.operands[0], TO_NHWC, op), op.operands[1]]
        extras = list(op.operands[2:])
        kinds = [s for s in at.get("epilogue", ()) if s in ("bias", "add")]
        for e, kind in zip(extras, kinds):
            operands.append(_transpose(e, TO_NHWC, op) if kind == "add" else e)
        out = Abstract.of_value(op.results[0])
        t = Abstract(tuple(out.shape[p] for p in TO_NHWC), out.dtype).tensor_type()
        new = type(op).make(operands, {**at, "data_format": "NHWC"}, [t])
        if LOC_ATTR in op.attributes:
            new.attributes[LOC_ATTR] = op.attributes[LOC_ATTR]
        Rewriter.insert_op(new, InsertPoint.before(op))
        back = _transpose(new.results[0], TO_NCHW, op)
        op.results[0].replace_all_uses_with(back)
        Rewriter.erase_op(op)

    @staticmethod
    def pool_to_nhwc(op: Pool2D) -> None:
        """A pooling of an NHWC chain's end to a 1x1 result (global / adaptive average or
        max): in NHWC, so the transpose after it moves C values, not C * H * W."""
        src = op.operands[0].owner
        at = op.attr_values()
        out = Abstract.of_value(op.results[0])
        if not (isinstance(src, Transpose) and tuple(src.attr_values()["perm"]) == TO_NCHW
                and not DATA_FORMATS[at["data_format"]] and out.ndim == 4
                and out.shape[2:] == (1, 1)):
            return
        t = Abstract(tuple(out.shape[p] for p in TO_NHWC), out.dtype).tensor_type()
        new = Pool2D.make([src.operands[0]], {**at, "data_format": "NHWC"}, [t])
        new.attributes.update(op.attributes)
        Rewriter.insert_op(new, InsertPoint.before(op))
        op.results[0].replace_all_uses_with(_transpose(new.results[0], TO_NCHW, op))
        Rewriter.erase_op(op)

    @staticmethod
    def cancel(op: Transpose) -> None:
        """transpose(transpose(v, p), q) with q undoing p: its users read v."""
        src = op.operands[0].owner
        if not isinstance(src, Transpose):
            return
        p, q = tuple(src.attr_values()["perm"]), tuple(op.attr_values()["perm"])
        if len(p) != len(q) or any(p[q[i]] != i for i in range(len(q))):
            return
        op.results[0].replace_all_uses_with(src.operands[0])
        Rewriter.erase_op(op)
        if not src.results[0].uses:
            Rewriter.erase_op(src)
