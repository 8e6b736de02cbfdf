"""Fused inference ops: a convolution or a matrix product with an epilogue applied to its
result while it is still in cache (made by the `fuse-epilogue` pass at load, never traced).

The `epilogue` attribute lists the steps in order; each is

- `bias`: add the next extra operand, a per-channel vector (conv: any shape holding C_out
  values, e.g. Paddle's [C] with axis=1 or a folded [1, C, 1, 1]; matmul: [N] along the last
  dim),
- `add`: add the next extra operand, a tensor of the result's own shape (a residual),
- an activation, named as in EPILOGUE_ACTIVATIONS: the pd op it stands for, with the
  attributes it must have.

These ops have no Paddle legacy op: they exist only in the plan a loaded model runs
(`lower-to-program` refuses them, naming the op). `eager` is the reference: the unfused ops'
own kernels, one after the other.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic.ir.attributes import STRS, attr
from tostatic.ir.epilogue_rules import EPILOGUE_STEPS, OPERAND_STEPS
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, PdOp, pd_op
from tostatic.ops.activation import (
    Gelu,
    HardSwish,
    Relu,
    Relu6,
    Sigmoid,
    Silu,
    Swish,
    Tanh,
)
from tostatic.ops.conv import CONV_ATTRS, DATA_FORMATS, ConvBase, conv2d_kernel
from tostatic.ops.linalg import Matmul

# epilogue name -> (the op it stands for, the attributes that op must have): the steps and
# their rules are ir/epilogue_rules.py's (codegen reads them there, without the op classes)
_ACTIVATION_OPS = {cls.name: cls for cls in (Gelu, HardSwish, Relu, Relu6, Sigmoid, Silu, Swish,
                                             Tanh)}
EPILOGUE_ACTIVATIONS: dict[str, tuple[type[PdOp], dict[str, Any]]] = {
    name: (_ACTIVATION_OPS[op], attrs) for name, (op, attrs, _) in EPILOGUE_STEPS.items()}


def activation_name(op: PdOp) -> str | None:
    """The epilogue step an activation op becomes, or None if it cannot be fused."""
    for name, (cls, attrs) in EPILOGUE_ACTIVATIONS.items():
        if type(op) is cls and all(op.attr_values().get(k) == v for k, v in attrs.items()):
            return name
    return None


def check_epilogue(op: str, epilogue: Sequence[str], extras: Sequence[Abstract],
                   out: Abstract, channel_axis: int) -> None:
    operands = [s for s in epilogue if s in OPERAND_STEPS]
    if len(operands) != len(extras):
        raise ShapeError(f"{op}: epilogue {list(epilogue)} takes {len(operands)} extra "
                         f"operand(s), got {len(extras)}")
    unknown = [s for s in epilogue if s not in OPERAND_STEPS and s not in EPILOGUE_ACTIVATIONS]
    if unknown:
        raise ShapeError(f"{op}: unknown epilogue step(s) {unknown}; known: "
                         f"{[*OPERAND_STEPS, *EPILOGUE_ACTIVATIONS]}")
    c = out.shape[channel_axis]
    for step, e in zip(operands, extras):
        if e.dtype != out.dtype:
            raise ShapeError(f"{op}: {step} operand is {e.dtype.name}, result {out.dtype.name}")
        if step == "bias":
            n = int(np.prod(e.shape)) if all(d >= 0 for d in e.shape) else -1
            if c >= 0 and n >= 0 and n != c:
                raise ShapeError(f"{op}: bias {list(e.shape)} must hold {c} values")
        elif not Abstract(out.shape, out.dtype).compatible(e):
            raise ShapeError(f"{op}: residual {list(e.shape)} must have the result's shape "
                             f"{list(out.shape)}")


def apply_epilogue(y: np.ndarray, epilogue: Sequence[str], extras: Sequence[np.ndarray],
                   channel_axis: int) -> np.ndarray:
    """The reference: each step with the unfused op's own eager kernel."""
    it = iter(extras)
    for step in epilogue:
        if step == "bias":
            shape = [1] * y.ndim
            shape[channel_axis] = -1
            y = np.asarray(y + next(it).reshape(shape), dtype=y.dtype)
        elif step == "add":
            y = np.asarray(y + next(it), dtype=y.dtype)
        else:
            cls, attrs = EPILOGUE_ACTIVATIONS[step]
            full = cls.normalize_attrs(dict(attrs))
            y = np.asarray(cls.run_eager([y], full)[0])
    return y


@pd_op
class FusedConv2D(PdOp):
    """conv2d (any groups, depthwise included) followed by its epilogue."""

    name = "pd.fused_conv2d"
    INPUTS = ("x", "weight", "*extras")
    NONDIFF = True  # made at load for inference only: training differentiates the unfused ops
    ATTRS = {**CONV_ATTRS, "epilogue": attr(STRS, ())}

    @staticmethod
    def infer(x: Abstract, weight: Abstract, extras: list[Abstract], epilogue: tuple[str, ...],
              **conv: Any) -> Abstract:
        out = ConvBase.infer.__func__(FusedConv2D, x, weight, **conv)  # type: ignore[attr-defined]
        axis = 3 if DATA_FORMATS[conv["data_format"]] else 1
        check_epilogue(FusedConv2D.name, epilogue, extras, out, axis)
        return out

    @staticmethod
    def eager(x: np.ndarray, weight: np.ndarray, extras: list[np.ndarray],
              epilogue: tuple[str, ...], **conv: Any) -> np.ndarray:
        y = conv2d_kernel(x, weight, op=FusedConv2D.name, **conv)
        return apply_epilogue(y, epilogue, extras, 3 if DATA_FORMATS[conv["data_format"]] else 1)


@pd_op
class FusedMatmul(PdOp):
    """matmul (optional transposes) followed by its epilogue; bias runs along the last dim."""

    name = "pd.fused_matmul"
    INPUTS = ("x", "y", "*extras")
    NONDIFF = True  # made at load for inference only: training differentiates the unfused ops
    ATTRS = {**Matmul.ATTRS, "epilogue": attr(STRS, ())}

    @staticmethod
    def infer(x: Abstract, y: Abstract, extras: list[Abstract], epilogue: tuple[str, ...],
              transpose_x: bool, transpose_y: bool) -> Abstract:
        out = Matmul.infer(x, y, transpose_x, transpose_y)
        check_epilogue(FusedMatmul.name, epilogue, extras, out, out.ndim - 1)
        return out

    @staticmethod
    def eager(x: np.ndarray, y: np.ndarray, extras: list[np.ndarray], epilogue: tuple[str, ...],
              transpose_x: bool, transpose_y: bool) -> np.ndarray:
        out = Matmul.eager(x, y, transpose_x, transpose_y)
        return apply_epilogue(out, epilogue, extras, out.ndim - 1)
