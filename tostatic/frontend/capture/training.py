"""Training through `to_static`: a captured Layer in train mode runs forward and backward as
one program, differentiated in the `pd` dialect (the append-backward pass, from the ops' own
VJP rules).

The call runs the program's forward half and returns tensors whose history is one tape node
for the whole program; when `loss.backward()` reaches it, the backward half runs on the
forward's values (dropout masks and batch statistics included, nothing is recomputed) and
the gradients flow on to the parameters' `.grad` and to the inputs, as eager ops' would.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.frontend.tensor import grad_mode
from tostatic.frontend.tensor.grad_node import GradNode
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ir.attr_keys import GRADS_ATTR, LOC_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ops.control_flow import RegionOp
from tostatic.ir.opdef import Abstract

TRAIN_PIPELINE = "default,if-to-select,append-backward{inputs=true},cse,dead-op-elimination"
FORWARD_TRAIN_PIPELINE = "default,if-to-select"  # a train-mode call without backward


def refuse_state_writes_in_regions(module: Any, name: str) -> None:
    """An op inside a `pd.if` / `pd.while` that writes a persistable (batch norm's running
    statistics in a branch if-to-select could not inline, or in a loop body): the plan runs
    regions without writing their state back, so the call would silently leave it."""
    for op in module.walk():
        if not isinstance(op, RegionOp):
            continue
        for inner in op.walk():
            if inner is not op and getattr(type(inner), "UPDATES", None):
                where = inner.attributes.get(LOC_ATTR)
                at = f" at {where.data}" if where is not None else ""
                raise UnsupportedError(
                    f"to_static {name}: {inner.name}{at} updates state (running statistics) "
                    f"inside a tensor-dependent {op.name.removeprefix('pd.')}; in train mode "
                    f"tostatic cannot write it back from there. Move it out of the branch or "
                    f"loop, or call the layer in eval mode")


def wants_grad(layer: Any, args: Any) -> bool:
    """Grad mode is on and a Layer in train mode has a trainable parameter, or an input
    tensor requires grad."""
    if not grad_mode.ENABLED[0]:
        return False
    if layer is not None and getattr(layer, "training", False) and any(
            not p.stop_gradient for p in layer.parameters()):
        return True
    return any(not t.stop_gradient for t in tensors_of(args))


def tensors_of(value: Any, out: list[Any] | None = None) -> list[Any]:
    """The Tensor leaves of call arguments, in feed order (None for a numpy feed)."""
    out = [] if out is None else out
    if isinstance(value, Tensor):
        out.append(value)
    elif isinstance(value, np.ndarray):
        out.append(None)
    elif isinstance(value, (list, tuple)):
        for v in value:
            tensors_of(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            tensors_of(v, out)
    return out


def write_state(program: Any, body: Any, env: list[Any]) -> None:
    """Store the new values of the persistables the forward updated (batch norm's running
    statistics in train mode) into the Layer's tensors, in place as eager does."""
    for slot, name in body.state_writes:
        tensor = program.state.weights.get(name)
        if tensor is None or not hasattr(tensor, "_data"):
            continue
        data, src = tensor._data, np.asarray(env[slot], dtype=tensor._data.dtype)
        if data is src:
            continue
        if data.flags.writeable and data.shape == src.shape:
            np.copyto(data, src)
        else:
            tensor._data = src.copy()


def run_forward(program: Any, feeds: list[np.ndarray]) -> list[np.ndarray]:
    """Run a program without backward; persistables it updates are written back."""
    plan = program.plan()
    arrays = [np.asarray(a) for a in feeds]
    if plan.body.backward_steps:
        return plan.run(arrays)
    plan.check_feed(arrays)
    env = plan.body.run_forward(arrays)
    write_state(program, plan.body, env)
    return [env[i] for i in plan.body.outputs]


class ProgramGrad:
    """The tape's view of one run of a differentiated program: its `vjp` runs the backward
    half on the saved forward values."""

    INPUTS = ("*xs",)
    NONDIFF = False

    def __init__(self, name: str, body: Any, env: list[Any], ct_slots: list[int],
                 ct_outputs: list[int], num_outputs: int):
        self.name = f"to_static program {name}"
        self.body, self.env = body, env
        self.ct_slots, self.ct_outputs, self.num_outputs = ct_slots, ct_outputs, num_outputs

    def vjp(self, e: Any, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        late = {slot: cts[k].numpy() for slot, k in zip(self.ct_slots, self.ct_outputs)}
        results = self.body.run_backward(self.env, late)
        return [[Tensor(g) for g in results[self.num_outputs:]]]


def run_training(program: Any, args: Any, feeds: list[np.ndarray], name: str) -> list[Tensor]:
    """Run the forward half of a program append-backward differentiated; its outputs carry
    one GradNode leading to the parameters and the input tensors."""
    fn = program.function
    plan = program.plan()
    body = plan.body
    env = body.run_forward(feeds)
    write_state(program, body, env)
    num_ct = len(fn.body.block.args) - len(feeds)
    num_grads = len(fn.attributes[GRADS_ATTR].data)
    num_outputs = len(body.outputs) - num_grads
    outs = [env[i] for i in body.outputs[:num_outputs]]
    ct_outputs = [i for i, v in enumerate(fn.body.block.last_op.operands[:num_outputs])
                  if Abstract.of_value(v).dtype.is_floating]
    assert len(ct_outputs) == num_ct
    ct_slots = list(range(len(feeds), len(feeds) + num_ct))
    feed_tensors = tensors_of(args)
    sources = []
    for attr in fn.attributes[GRADS_ATTR].data:
        key = attr.data
        if key.startswith("input:"):
            t = feed_tensors[int(key[6:])]
            sources.append(t if t is not None else Tensor(feeds[int(key[6:])]))
        else:
            sources.append(program.state.weights[key])
    tensors = [Tensor(o, stop_gradient=False) for o in outs]
    node = GradNode(ProgramGrad(name, body, env, ct_slots, ct_outputs, num_outputs), sources,
                    {}, tensors)
    for i, t in enumerate(tensors):
        t._grad_node = (node, i)
    return tensors
