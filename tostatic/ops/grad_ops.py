"""Paddle's `<type>_grad` ops, made from the forward op's own VJP rule.

Static mode's `append_backward` writes these, as Paddle does, so a printed or saved training
program shows `matmul_v2_grad`, `relu_grad`, `batch_norm_grad` ... Each is generated from a
`GradSpec` (which of the forward op's Paddle slots its grad op reads and writes, as Paddle's
op makers declare them) and the forward class: its attributes and Paddle attributes are the
forward op's, and its kernel evaluates the forward op's `vjp` with a numpy emitter. So there is
no second derivative anywhere: one op, one definition. Where the grad op does not get a
forward input (relu_grad reads Out, not X), `stand_in` names the slot that replaces it: the
rules of those ops read only the input's shape and dtype, or a value that agrees with it where
the rule looks (relu's Out > 0 exactly where X > 0).

reshape2_grad and the other XShape readers take the forward op's X as their `pd` operand
(XShape only carries X's shape); lowering writes the XShape variable in the slot, raising maps
it back (Legacy.xshape_inputs). Ops without a grad op here get their VJP expanded by
append_backward instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.opdef import REGISTRY, Abstract, FromInputs, Legacy, PdOp, pd_op


@dataclass(frozen=True)
class GradSpec:
    """A grad op's slots: `takes` forward slots (inputs or outputs) it reads, the `@GRAD` of
    the forward outputs `grads_of`, and it writes the `@GRAD` of the forward inputs `gives`."""

    forward: str
    takes: tuple[str, ...]
    gives: tuple[str, ...]
    grads_of: tuple[str, ...] = ("Out",)
    stand_in: dict[str, str] = field(default_factory=dict)
    # the rule reads a forward result Paddle's grad op does not get (pow's Out, for dY):
    # the kernel runs the forward op for it
    recompute: bool = False
    ignores: tuple[str, ...] = ()  # slots Paddle fills that the rule does not need


_XY = {"takes": ("X", "Y"), "gives": ("X", "Y")}
_FROM_OUT = {"takes": ("Out",), "gives": ("X",), "stand_in": {"X": "Out"}}
SPECS = [
    GradSpec("pd.matmul", **_XY),
    GradSpec("pd.flatten_matmul", **_XY),
    GradSpec("pd.pow", **_XY, recompute=True),
    GradSpec("pd.add", **_XY),
    GradSpec("pd.subtract", **_XY),
    GradSpec("pd.multiply", **_XY),
    GradSpec("pd.divide", ("X", "Y", "Out"), ("X", "Y")),
    GradSpec("pd.relu", **_FROM_OUT),
    GradSpec("pd.sigmoid", **_FROM_OUT),
    GradSpec("pd.tanh", **_FROM_OUT),
    GradSpec("pd.softmax", **_FROM_OUT),
    GradSpec("pd.gelu", ("X",), ("X",)),
    GradSpec("pd.leaky_relu", ("X",), ("X",)),
    GradSpec("pd.mean", ("X",), ("X",)),
    GradSpec("pd.sum", ("X",), ("X",)),
    GradSpec("pd.softmax_with_cross_entropy", ("Label", "Softmax"), ("Logits",), ("Loss",),
             {"Logits": "Softmax"}),
    GradSpec("pd.conv2d", ("Input", "Filter"), ("Input", "Filter"), ("Output",)),
    GradSpec("pd.depthwise_conv2d", ("Input", "Filter"), ("Input", "Filter"), ("Output",)),
    GradSpec("pd.batch_norm", ("X", "Scale", "Bias", "MeanOut", "VarianceOut", "SavedMean",
                               "SavedVariance"), ("X", "Scale", "Bias"), ("Y",),
             {"Mean": "MeanOut", "Variance": "VarianceOut"}, ignores=("ReserveSpace",)),
    GradSpec("pd.layer_norm", ("X", "Scale", "Bias", "Mean", "Variance"),
             ("X", "Scale", "Bias"), ("Y",)),
    GradSpec("pd.layer_norm_scale_only", ("X", "Scale", "Mean", "Variance"), ("X", "Scale"),
             ("Y",)),
    GradSpec("pd.layer_norm_bias_only", ("X", "Bias", "Mean", "Variance"), ("X", "Bias"),
             ("Y",)),
    GradSpec("pd.layer_norm_plain", ("X", "Mean", "Variance"), ("X",), ("Y",)),
    GradSpec("pd.lookup_table_v2", ("W", "Ids"), ("W",)),
    GradSpec("pd.concat", ("X",), ("X",)),
    GradSpec("pd.dropout", ("Mask",), ("X",), stand_in={"X": "Mask"}),
] + [GradSpec(f"pd.{name}", ("XShape",), ("X",), stand_in={"X": "XShape"})
     for name in ("reshape", "transpose", "flatten", "squeeze", "unsqueeze")]


class NumpyEmitter:
    """A VJP rule's emitter on numpy arrays: each op runs its eager kernel."""

    def __call__(self, op_cls: type[PdOp], *inputs: Any, **attrs: Any) -> Any:
        out = op_cls.run_eager(list(inputs), op_cls.normalize_attrs(attrs))
        return out[0] if op_cls.NUM_RESULTS == 1 else out

    def shape(self, v: np.ndarray) -> tuple[int, ...]:
        return tuple(v.shape)

    def dtype(self, v: np.ndarray) -> Any:
        return dtypes.convert_dtype(v.dtype)


NUMPY = NumpyEmitter()


class GradOp(PdOp):
    """Base of the generated grad ops (one a SPECS entry)."""

    FORWARD: ClassVar[type[PdOp]]
    SPEC: ClassVar[GradSpec]
    NONDIFF = True  # no second order through Paddle's grad ops

    @classmethod
    def _slots(cls, grouped: list[Any]) -> dict[str, Any]:
        """Grad operands by Paddle slot (taken slots, then `<out>@GRAD`)."""
        spec = cls.SPEC
        return dict(zip(spec.takes + tuple(f"{s}@GRAD" for s in spec.grads_of), grouped))

    @classmethod
    def _forward(cls, slots: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        """The forward op's (grouped inputs, results) as far as the grad op has them."""
        fwd, spec = cls.FORWARD, cls.SPEC
        slot_of = {src.lstrip("*"): slot for slot, src in fwd.PADDLE.inputs.items()}
        inputs = []
        for name in fwd.INPUTS:
            slot = slot_of.get(name.lstrip("*"))
            inputs.append(slots.get(slot, slots.get(spec.stand_in.get(slot, ""))))
        n = len(fwd.PADDLE.outputs) if fwd.NUM_RESULTS is None else fwd.NUM_RESULTS
        outputs: list[Any] = [None] * n
        for slot, idx in fwd.PADDLE.outputs.items():
            if isinstance(idx, int):
                outputs[idx] = slots.get(slot)
        return inputs, outputs

    @classmethod
    def _given(cls, inputs: list[Any]) -> list[Any]:
        slot_of = {src.lstrip("*"): slot for slot, src in cls.FORWARD.PADDLE.inputs.items()}
        by_slot = {slot_of.get(n.lstrip("*")): v for n, v in zip(cls.FORWARD.INPUTS, inputs)}
        out: list[Any] = []
        for slot in cls.SPEC.gives:
            v = by_slot[slot]
            out.extend(v if isinstance(v, list) else [v])
        return out

    @classmethod
    def infer(cls, *grouped: Abstract, **attrs: Any) -> list[Abstract]:
        inputs, _ = cls._forward(cls._slots(list(grouped)))
        float_dtype = grouped[-1].dtype  # a non-float stand-in (dropout's Mask): Out@GRAD's
        return [Abstract(a.shape, a.dtype if a.dtype.is_floating else float_dtype)
                for a in cls._given(inputs)]

    @classmethod
    def eager(cls, *grouped: Any, **attrs: Any) -> list[np.ndarray]:
        slots = cls._slots(list(grouped))
        inputs, outputs = cls._forward(slots)
        if cls.SPEC.recompute:
            outputs = cls.FORWARD.run_eager(inputs, attrs)
        out_slot = {idx: slot for slot, idx in cls.FORWARD.PADDLE.outputs.items()
                    if isinstance(idx, int)}
        cts = []
        for i, out in enumerate(outputs):
            g = slots.get(f"{out_slot.get(i)}@GRAD")
            cts.append(g if g is not None else None if out is None else np.zeros_like(out))
        gives = set(cls.SPEC.gives)
        slot_of = {src.lstrip("*"): slot for slot, src in cls.FORWARD.PADDLE.inputs.items()}
        needs = []
        for name, v in zip(cls.FORWARD.INPUTS, inputs):
            need = slot_of.get(name.lstrip("*")) in gives
            needs.append([need] * len(v) if isinstance(v, list) else need)
        with np.errstate(divide="ignore", invalid="ignore"):  # gradients nobody reads
            grads = cls.FORWARD.vjp(NUMPY, inputs, outputs, attrs, cts, needs)  # (pow's Y)
        wanted = cls._given(inputs)
        flat = cls._given(grads)
        dtypes_ = [w.dtype if w.dtype.kind in "fc" else grouped[-1].dtype for w in wanted]
        return [np.zeros(w.shape, dt) if d is None else np.asarray(d, dtype=dt).reshape(w.shape)
                for w, d, dt in zip(wanted, flat, dtypes_)]


def _pd_name(slot: str, fwd: type[PdOp]) -> str:
    src = fwd.PADDLE.inputs.get(slot)
    if isinstance(src, str):
        return src
    return slot.lower().replace("@grad", "_grad")


def make_grad_op(spec: GradSpec) -> type[PdOp]:
    fwd = REGISTRY[spec.forward]
    legacy = fwd.PADDLE
    assert legacy is not None and hasattr(fwd, "vjp"), spec.forward
    grad_slots = tuple(f"{s}@GRAD" for s in spec.grads_of)
    names = [_pd_name(s, fwd) for s in spec.takes + grad_slots]
    xshape = legacy.extra_outputs + legacy.declared_outputs
    if any(s not in legacy.inputs and s not in legacy.outputs and s not in xshape
           for s in spec.takes):
        raise AssertionError(f"{spec}: a slot the forward op does not have")
    variadic = [s for s in spec.gives if str(legacy.inputs[s]).startswith("*")]
    outputs: dict[str, Any] = ({f"{variadic[0]}@GRAD": "*"} if variadic else
                               {f"{s}@GRAD": i for i, s in enumerate(spec.gives)})
    # attributes computed from the inputs (reduce_mean's in_dtype) see the same first one
    same_first = legacy.inputs.get(spec.takes[0]) == fwd.INPUTS[0]
    paddle = Legacy(f"{legacy.type}_grad",
                    {slot: name for slot, name in zip(spec.takes + grad_slots, names)},
                    outputs,
                    {k: a for k, a in legacy.attrs.items()
                     if not isinstance(a, FromInputs) or same_first},
                    out_lod_level=False, optional_outputs=tuple(outputs),
                    xshape_inputs=tuple(s for s in spec.takes if s == "XShape"),
                    ignored_inputs=spec.ignores)
    short = spec.forward.removeprefix("pd.")
    name = f"pd.{short}_grad"
    if name in REGISTRY:
        name = f"pd.{short}_paddle_grad"
    body = {"name": name, "INPUTS": tuple(names), "ATTRS": fwd.ATTRS, "PADDLE": paddle,
            "NUM_RESULTS": None if variadic else len(spec.gives), "FORWARD": fwd, "SPEC": spec,
            "__doc__": f"Paddle's {paddle.type}: {spec.forward}'s VJP as one op.",
            "__module__": __name__}
    cls = type("".join(p.title() for p in short.split("_")) + "Grad", (GradOp,), body)
    return pd_op(cls)


# forward class -> its grad op
GRAD_OF: dict[type[PdOp], type[PdOp]] = {REGISTRY[s.forward]: make_grad_op(s) for s in SPECS}
