"""slice and clip with bounds read when the program runs: what Paddle writes when a bound is
a tensor (`x[:, 1:n]`, `paddle.slice(x, [1], starts_tensor, ...)`, `paddle.clip(x, t.min())`).

slice takes each of starts and ends from its attribute, from one 1-D int tensor
(StartsTensor / EndsTensor) or from one one-element tensor an axis (StartsTensorList /
EndsTensorList); Paddle's kernel prefers the tensor, then the list, then the attribute, and
writes infer_flags -1 for such axes. One pd op a combination (`pd.slice_starts_list`,
`pd.slice_starts_tensor_ends_list`, ...): the legacy slots each reads are fixed, so raising
picks the one whose slots the file fills. clip takes Min / Max tensors (their first element,
cast to x's dtype) over its min / max attributes, which stay as Paddle wrote them.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from tostatic.ir.attributes import FLOAT, INTS, attr
from tostatic.ir.errors import ShapeError
from tostatic.ops import autodiff as A
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops.activation import _bound
from tostatic.ops.indexing import Slice, _int32s, slice_shape
from tostatic.ops.shapes import axis0_unsliced, normalize_axis

FORMS = ("attr", "tensor", "list")
SLOTS = {("starts", "tensor"): "StartsTensor", ("starts", "list"): "StartsTensorList",
         ("ends", "tensor"): "EndsTensor", ("ends", "list"): "EndsTensorList"}


def _ints(op: str, what: str, value: Any) -> list[int]:
    """A bound tensor (or a list of one-element tensors) as Python ints."""
    parts = value if isinstance(value, list) else [value]
    out: list[int] = []
    for a in parts:
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.integer):
            raise ShapeError(f"{op}: {what} must be int32 or int64, got {a.dtype}")
        out += [int(v) for v in a.reshape(-1)]
    return out


class SliceRuntime(PdOp):
    """x[starts:ends] along `axes` (step 1) with starts and/or ends read from tensors."""

    STARTS = "attr"
    ENDS = "attr"
    ATTRS = {"axes": attr(INTS), "starts": attr(INTS, ()), "ends": attr(INTS, ()),
             "decrease_axis": attr(INTS, ()), "infer_flags": attr(INTS, ())}
    NAME_HINT = "slice"
    vjp = A.moved_back_vjp()

    @classmethod
    def _check(cls, x: Abstract, bounds: dict[str, Any], axes: tuple[int, ...]) -> None:
        for side, form in (("starts", cls.STARTS), ("ends", cls.ENDS)):
            b = bounds[side]
            if form == "list" and len(b) != len(axes):
                raise ShapeError(f"{cls.name}: {side} has {len(b)} tensors for {len(axes)} "
                                 f"axes {list(axes)}")
            for t in b if form == "list" else [b] if form == "tensor" else []:
                if t.dtype.name not in ("int32", "int64"):
                    raise ShapeError(f"{cls.name}: {side} must be int32 or int64, got "
                                     f"{t.dtype.name}")

    @classmethod
    def _split(cls, inputs: tuple[Any, ...], attrs: dict[str, Any]) -> dict[str, Any]:
        it = iter(inputs)
        return {side: attrs[side] if form == "attr" else next(it)
                for side, form in (("starts", cls.STARTS), ("ends", cls.ENDS))}

    @classmethod
    def infer(cls, x: Abstract, *inputs: Any, axes: tuple[int, ...], starts: tuple[int, ...],
              ends: tuple[int, ...], decrease_axis: tuple[int, ...],
              infer_flags: tuple[int, ...]) -> Abstract:
        self_bounds = cls._split(inputs, {"starts": starts, "ends": ends})
        cls._check(x, self_bounds, axes)
        shape = list(x.shape)
        for a in axes:
            shape[normalize_axis(a, x.ndim, f"{cls.name} axis")] = -1  # known when it runs
        dec = {normalize_axis(a, x.ndim, f"{cls.name} decrease_axis") for a in decrease_axis}
        if not dec <= {normalize_axis(a, x.ndim) for a in axes}:
            raise ShapeError(f"{cls.name}: decrease_axis {list(decrease_axis)} must be among "
                             f"the sliced axes {list(axes)}")
        return Abstract(tuple(d for i, d in enumerate(shape) if i not in dec), x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, *inputs: Any, axes: tuple[int, ...], starts: tuple[int, ...],
              ends: tuple[int, ...], decrease_axis: tuple[int, ...],
              infer_flags: tuple[int, ...]) -> np.ndarray:
        b = cls._split(inputs, {"starts": starts, "ends": ends})
        s = list(b["starts"]) if cls.STARTS == "attr" else _ints(cls.name, "starts",
                                                                  b["starts"])
        e = list(b["ends"]) if cls.ENDS == "attr" else _ints(cls.name, "ends", b["ends"])
        if not len(s) == len(e) == len(axes):
            raise ShapeError(f"{cls.name}: {len(s)} starts and {len(e)} ends for "
                             f"{len(axes)} axes {list(axes)}")
        for i, axis in enumerate(axes):  # Paddle's rules for a bound read at run time
            dim = x.shape[axis % x.ndim]
            if s[i] == -1 and e[i] == 0:  # x[i] for i = -1 is written as -1:0, read as the
                e[i] = dim                # last element
            if axis in decrease_axis and not -dim <= s[i] < dim:
                raise IndexError(f"{cls.name}: index {s[i]} is out of range for axis "
                                 f"{axis % x.ndim} of size {dim}")
        slice_shape(x.shape, axes, tuple(s), tuple(e), decrease_axis, cls.name)  # checks
        return Slice.eager(x, axes, tuple(s), tuple(e), decrease_axis)


def _slice_op(starts: str, ends: str) -> type[SliceRuntime]:
    tag = "_".join(f"{side}_{form}" for side, form in (("starts", starts), ("ends", ends))
                   if form != "attr")
    inputs, slots = ["x"], {"Input": "x"}
    for side, form in (("starts", starts), ("ends", ends)):
        if form != "attr":
            name = ("*" if form == "list" else "") + side
            inputs.append(name)
            slots[SLOTS[(side, form)]] = name
    body = {"name": f"pd.slice_{tag}", "STARTS": starts, "ENDS": ends,
            "INPUTS": tuple(inputs), "__module__": __name__,
            "__doc__": f"slice with {tag.replace('_', ' ')} read when it runs.",
            "PADDLE": Legacy("slice", slots, {"Out": 0},
                             {**{k: From("INTS", k) for k in ("axes", "decrease_axis",
                                                              "infer_flags")},
                              **{k: From("INTS", k, _int32s) for k in ("starts", "ends")}},
                             optional_inputs=tuple(s for s in SLOTS.values()
                                                   if s not in slots),
                             out_lod_level=axis0_unsliced)}
    cls_name = "Slice" + "".join(p.capitalize() for p in tag.split("_"))
    return pd_op(type(cls_name, (SliceRuntime,), body))


SLICE_OPS = {(s, e): _slice_op(s, e) for s, e in itertools.product(FORMS, FORMS)
             if (s, e) != ("attr", "attr")}


class ClipRuntime(PdOp):
    """clip with Min and/or Max read from tensors (their first element, as x's dtype)."""

    FROM_TENSOR: tuple[str, ...] = ()
    ATTRS = {"min": attr(FLOAT), "max": attr(FLOAT)}
    NAME_HINT = "clip"
    # x's cotangent where x lies within the bounds (inclusive, as Paddle's clip_grad): where
    # clipping left it unchanged; the bounds get none
    vjp = classmethod(lambda cls, e, inputs, outputs, attrs, cts, needs:
                      [A.mul(e, cts[0], A.compare(e, "equal", inputs[0], outputs[0]))]
                      + [None] * (len(inputs) - 1))

    @classmethod
    def infer(cls, x: Abstract, *bounds: Abstract, min: float, max: float) -> Abstract:
        for name, b in zip(cls.FROM_TENSOR, bounds):
            if b.ndim > 1 or (b.shape and b.shape[0] not in (1, -1)):
                raise ShapeError(f"{cls.name}: {name} must hold one value, got shape "
                                 f"{list(b.shape)}")
        return x

    @classmethod
    def eager(cls, x: np.ndarray, *bounds: np.ndarray, min: float, max: float) -> np.ndarray:
        given = dict(zip(cls.FROM_TENSOR, bounds))
        lo = (np.asarray(given["min"]).reshape(-1)[0].astype(x.dtype) if "min" in given
              else _bound(min, x.dtype))
        hi = (np.asarray(given["max"]).reshape(-1)[0].astype(x.dtype) if "max" in given
              else _bound(max, x.dtype))
        return np.minimum(np.maximum(x, lo), hi)


def _clip_op(from_tensor: tuple[str, ...]) -> type[ClipRuntime]:
    tag = "_".join(from_tensor)
    slots = {"X": "x", **{n.capitalize(): f"{n}_value" for n in from_tensor}}
    body = {"name": f"pd.clip_tensor_{tag}", "FROM_TENSOR": from_tensor,
            "INPUTS": ("x", *(f"{n}_value" for n in from_tensor)), "__module__": __name__,
            "__doc__": f"clip with {' and '.join(from_tensor)} read from tensors.",
            "PADDLE": Legacy("clip", slots, {"Out": 0},
                             {"max": From("FLOAT", "max"), "min": From("FLOAT", "min")},
                             optional_inputs=tuple(s for s in ("Max", "Min")
                                                   if s not in slots))}
    return pd_op(type("ClipTensor" + "".join(n.capitalize() for n in from_tensor),
                      (ClipRuntime,), body))


ClipTensorMin = _clip_op(("min",))
ClipTensorMax = _clip_op(("max",))
ClipTensorMinMax = _clip_op(("min", "max"))

CLIP_OPS = {("min",): ClipTensorMin, ("max",): ClipTensorMax, ("min", "max"): ClipTensorMinMax}
