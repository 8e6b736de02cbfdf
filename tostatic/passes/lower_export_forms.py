"""Part of lower-to-program: the forms export mode (jit.save, `tostatic convert`) writes where
paddle2onnx 2.1 cannot convert what Paddle 3.3.1 itself writes. Each form is one Paddle reads
and runs with the same result (paddle.inference 3.3.1, and tostatic's raising); static mode's
programs (`live`, `save`) keep Paddle's bytes.

paddle2onnx 2.1 translates a legacy program to PIR with Paddle's translator, then reads the
PIR ops; its faults, and what is written instead:

- reduce_* over everything (`x.mean()`: `dim = []`, `reduce_all`) becomes
  `pd_op.mean(x, full_int_array([]))`; its mean mapper reads the axis from that constant and
  aborts on the empty one ("Can not get input 'axis(dim)' value"). Written: every axis listed
  in `dim` (what Paddle writes for `x.mean(axis=[0, 1, 2])`), `reduce_all` kept.
- `*_interp_v2` with a `scale` list: PIR holds it as doubles, and paddle2onnx's float-list
  attribute reader requires FloatAttribute ("the 0th elementwise MUST be ir::FloatAttribute").
  Written: the same scale also as the op's `Scale` input (a float32 constant), which
  paddle2onnx reads instead of the attribute; Paddle's kernel takes the Scale tensor before
  the attribute (the same values), and OpenVINO's Paddle reader reads only the attribute,
  so it stays.
- leaky_relu: PIR's `negative_slope` is a double, and paddle2onnx reads it with its float
  getter, which finds the attribute, skips the non-float value and leaves alpha unset (0).
  Written: `elementwise_max(x, scale(x, alpha))` (`elementwise_min` for alpha > 1): the
  same single product, picked as leaky_relu picks it; OpenVINO's Paddle reader has no prelu,
  so prelu (one op) is not the form.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops import reduction, resize
from tostatic.ops.activation import LeakyRelu, Scale
from tostatic.ops.core import Constant
from tostatic.ops.elementwise import Maximum, Minimum
from tostatic.ops.shapes import normalize_axis
from tostatic.passes.lowering import (
    EXPORT_FORMS,
    Lowering,
    SubBlock,
    constant_op,
    result_var_fields,
)


def _constant(low: Lowering, target: SubBlock, array: np.ndarray,
              wanted: str) -> tuple[str, Abstract]:
    """A new variable holding `array`, written as lowering writes a pd.constant."""
    ab = Abstract(tuple(array.shape), dtypes.convert_dtype(array.dtype))
    name = low.names.generated(wanted + "_{}", wanted)
    low.declare(target, name, ab, **result_var_fields(name, Constant))
    low.append(target, constant_op(array, name, bool(low.keep_extra)))
    return name, ab


def _reduce_all_axes(low: Lowering, op: PdOp, target: SubBlock, outs: list[str],
                     location: str | None) -> bool:
    values = op.attr_values()
    ndim = Abstract.of_value(op.operands[0]).ndim
    if ndim == 0 or not (values["reduce_all"] or not values["axis"]):
        return False  # a 0-D x, or the axes a partial reduction lists: Paddle's form
    axes = tuple(range(ndim))
    if tuple(sorted({normalize_axis(a, ndim) for a in values["axis"]})) == axes:
        return False  # every axis listed already
    low.write(target, type(op), {**values, "axis": axes}, list(op.operands), outs, location)
    return True


def _interp_scale_input(scale_form: type[PdOp]) -> Any:
    def write(low: Lowering, op: PdOp, target: SubBlock, outs: list[str],
              location: str | None) -> bool:
        values = op.attr_values()
        if len(op.operands) > 1 or not values["scale"]:
            return False  # an OutSize input, or no scale list: Paddle's form converts
        scale = _constant(low, target, np.asarray(values["scale"], np.float32),
                          outs[0] + "_scale")
        low.write(target, scale_form, values, [op.operands[0], scale], outs, location)
        return True
    return write


def _leaky_relu_as_max(low: Lowering, op: PdOp, target: SubBlock, outs: list[str],
                       location: str | None) -> bool:
    alpha = float(op.attr_values()["alpha"])
    x = op.operands[0]
    scaled = low.names.generated(outs[0] + "_scaled_{}", outs[0] + "_scaled")
    low.declare(target, scaled, Abstract.of_value(x), **result_var_fields(scaled, Scale))
    low.write(target, Scale, {"scale": alpha, "bias": 0.0, "bias_after_scale": True}, [x],
              [scaled], location)
    low.write(target, Maximum if alpha <= 1 else Minimum, {"axis": -1},
              [x, (scaled, Abstract.of_value(x))], outs, location)
    return True


for _cls in (reduction.Sum, reduction.Mean, reduction.Max, reduction.Min, reduction.Prod):
    EXPORT_FORMS[_cls] = _reduce_all_axes
for _method in ("Nearest", "Bilinear", "Linear", "Trilinear", "Bicubic"):
    EXPORT_FORMS[getattr(resize, _method + "Interp")] = _interp_scale_input(
        getattr(resize, _method + "InterpScale"))
EXPORT_FORMS[LeakyRelu] = _leaky_relu_as_max
