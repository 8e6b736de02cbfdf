"""The reverse-mode engine over the eager tape: `Tensor.backward`, `paddle.grad`, hooks.

dispatch.apply records a `GradNode` for each op that ran with an input requiring grad. Backward
walks the nodes reachable from the outputs in topological order and calls each op's own `vjp`
rule (ops/autodiff.py) with an emitter that runs ops through `apply`: under `no_grad` normally,
recorded when `create_graph` (so the gradients themselves can be differentiated).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic.frontend.tensor import grad_mode
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.grad_node import GradNode
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ir.opdef import group_inputs
from tostatic.ops import autodiff
from tostatic.ops.elementwise import Add

FREED = ("{op}: the graph's saved tensors were freed by a previous backward. You calculate "
         "backward twice for the same subgraph without setting retain_graph=True. Please set "
         "retain_graph=True in the first backward/grad call.")


class EagerEmitter:
    """A VJP rule's emitter on eager tensors: each op runs through dispatch.apply."""

    def __call__(self, op: Any, *inputs: Any, **attrs: Any) -> Any:
        return apply(op, *inputs, **attrs)

    def shape(self, v: Tensor) -> tuple[int, ...]:
        return tuple(v._data.shape)

    def dtype(self, v: Tensor) -> Any:
        return v.dtype


class DirectEmitter(EagerEmitter):
    """The emitter of a backward without create_graph: the kernel alone (nothing is recorded
    and no tracer can be active, so dispatch.apply's checks are skipped)."""

    def __call__(self, op: Any, *inputs: Any, **attrs: Any) -> Any:
        outs = op.run_eager([x._data for x in inputs], op.normalize_attrs(attrs))
        if op.NUM_RESULTS == 1:
            a = outs[0]
            return Tensor(a if type(a) is np.ndarray else np.asarray(a))
        return [Tensor(a if type(a) is np.ndarray else np.asarray(a)) for a in outs]


EMIT = EagerEmitter()
DIRECT = DirectEmitter()
_VARIADIC: dict[Any, bool] = {}  # op class -> has a variadic input (its rule wants groups)


def _add(a: Tensor | None, b: Tensor, create_graph: bool) -> Tensor:
    if a is None:
        return b
    if create_graph:
        return apply(Add, a, b)
    return Tensor(a._data + b._data)


def _run_hooks(t: Tensor, g: Tensor) -> Tensor:
    for hook in (t._hooks or {}).values():
        out = hook(g)
        if out is not None:
            g = out
    return g


def _graph(roots: Sequence[Tensor]) -> dict[GradNode, int]:
    """Every node reachable from the roots, with how many edges of the graph lead into it."""
    deps: dict[GradNode, int] = {}
    stack = [r._grad_node[0] for r in roots if r._grad_node is not None]
    for n in stack:
        deps.setdefault(n, 0)
    seen = set(stack)
    while stack:
        node = stack.pop()
        for x in node.inputs:
            gn = x._grad_node
            if gn is None:
                continue
            child = gn[0]
            deps[child] = deps.get(child, 0) + 1
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return deps


def _flatten(grouped_ins: Sequence[Any], grouped: Sequence[Any]) -> list[Any]:
    """A rule's grouped result as one gradient per flat input (None for a whole group)."""
    flat: list[Any] = []
    for x, g in zip(grouped_ins, grouped):
        if isinstance(x, list):
            flat.extend(g if g is not None else [None] * len(x))
        else:
            flat.append(g)
    return flat


def run_backward(roots: Sequence[Tensor], root_grads: Sequence[Tensor], retain_graph: bool,
                 create_graph: bool, capture: dict[int, int] | None = None) -> list[Any]:
    """Propagate cotangents from `roots`. Leaves accumulate into `.grad`, unless `capture`
    (paddle.grad: id(tensor) -> position) asks for the gradients of given tensors instead."""
    captured: list[Any] = [None] * (len(capture) if capture else 0)
    slots: dict[GradNode, list[Any]] = {}
    leaves: dict[int, list[Any]] = {}  # id -> [tensor, grad]

    def send(t: Tensor, g: Tensor) -> None:
        if t._grad_node is not None:
            node, i = t._grad_node
            cts = slots.setdefault(node, [None] * len(node.outputs))
            cts[i] = _add(cts[i], g, create_graph)
        elif not t.stop_gradient:
            entry = leaves.setdefault(id(t), [t, None])
            entry[1] = _add(entry[1], g, create_graph)

    deps = _graph(roots)
    for r, g in zip(roots, root_grads):
        send(r, g)
    ready = [n for n, d in deps.items() if d == 0]
    prev = grad_mode.ENABLED[0]
    grad_mode.ENABLED[0] = create_graph
    try:
        while ready:
            node = ready.pop()
            cts = slots.pop(node, None)
            if cts is not None:
                _apply_rule(node, cts, create_graph, capture, captured, send)
            for x in node.inputs:
                if x._grad_node is not None:
                    child = x._grad_node[0]
                    deps[child] -= 1
                    if deps[child] == 0:
                        ready.append(child)
            if not retain_graph:
                node.release()
        for t, g in leaves.values():
            if t._hooks:
                g = _run_hooks(t, g)
            if capture is not None:
                if id(t) in capture:
                    captured[capture[id(t)]] = _add(captured[capture[id(t)]], g, create_graph)
            else:
                t.grad = _add(t.grad, g, create_graph) if t.grad is not None else \
                    (g if create_graph else Tensor(np.array(g._data)))
    finally:
        grad_mode.ENABLED[0] = prev
    return captured


def _apply_rule(node: GradNode, cts: list[Any], create_graph: bool,
                capture: dict[int, int] | None, captured: list[Any], send: Any) -> None:
    op = node.op
    if node.released:
        raise RuntimeError(FREED.format(op=op.name))
    outs = node.outputs
    for i, t in enumerate(outs):
        if cts[i] is not None and (t._hooks or t._retain_grad or capture is not None):
            if t._hooks:
                cts[i] = _run_hooks(t, cts[i])
            if capture is not None and id(t) in capture:
                captured[capture[id(t)]] = cts[i]
            if t._retain_grad:
                t.grad = cts[i] if t.grad is None else _add(t.grad, cts[i], create_graph)
    rule = getattr(op, "vjp", None)
    if rule is None:
        raise RuntimeError(f"{op.name} has no gradient rule (vjp): it cannot be differentiated")
    emit = EMIT if create_graph else DIRECT
    if len(cts) > 1:  # results nothing flowed into get zeros (`None in cts` would call ==)
        cts = [c if c is not None else autodiff.zeros_like(emit, t) for c, t in zip(cts, outs)]
    ins = node.inputs
    needs = [not x.stop_gradient for x in ins]
    variadic = _VARIADIC.get(op)
    if variadic is None:
        variadic = any(n.startswith("*") for n in op.INPUTS)
        if isinstance(op, type):  # an op class (a to_static program's node is an instance)
            _VARIADIC[op] = variadic
    if variadic:
        grouped = group_inputs(op.INPUTS, ins)
        grads = _flatten(grouped, rule(emit, grouped, outs, node.attrs, cts,
                                       group_inputs(op.INPUTS, needs)))
    else:  # one input a name: no regrouping
        grads = rule(emit, ins, outs, node.attrs, cts, needs)
    for x, g, need in zip(ins, grads, needs):
        if g is not None and need:
            if g._data.shape != x._data.shape:
                raise RuntimeError(f"{op.name}'s vjp gave a gradient of shape {list(g.shape)} "
                                   f"for an input of shape {x.shape}")
            send(x, g)


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------

def _as_grad(root: Tensor, g: Any) -> Tensor:
    if g is None:
        return Tensor(np.ones_like(root._data))
    arr = g._data if isinstance(g, Tensor) else np.asarray(g)
    if tuple(arr.shape) != tuple(root._data.shape):
        raise ValueError(f"backward: grad_tensor has shape {list(arr.shape)}, the tensor "
                         f"{root.shape}")
    return g if isinstance(g, Tensor) else Tensor(arr.astype(root._data.dtype))


def backward(self: Tensor, grad_tensor: Any = None, retain_graph: bool = False) -> None:
    """Tensor.backward: accumulate d(self)/d(leaf) into every leaf's `.grad`."""
    if self.stop_gradient and self._grad_node is None:
        raise RuntimeError(f"backward: {self.name} has stop_gradient=True and no history, so "
                           f"nothing requires its gradient")
    run_backward([self], [_as_grad(self, grad_tensor)], retain_graph, create_graph=False)


def backward_many(tensors: Any, grad_tensors: Any = None, retain_graph: bool = False) -> None:
    """paddle.autograd.backward: one backward pass from several tensors (their gradients
    accumulate into the leaves' `.grad` together)."""
    roots = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(roots) if grad_tensors is None else [grad_tensors]
    if len(grad_tensors) != len(roots):
        raise ValueError(f"paddle.autograd.backward: {len(grad_tensors)} grad_tensors for "
                         f"{len(roots)} tensors")
    run_backward(roots, [_as_grad(r, g) for r, g in zip(roots, grad_tensors)], retain_graph,
                 create_graph=False)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True, allow_unused: bool = False,
         no_grad_vars: Any = None) -> list[Any]:
    """paddle.grad: the gradients of `outputs` with respect to `inputs`, without touching
    `.grad`; `create_graph=True` records them so they can be differentiated again."""
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outs):
        raise ValueError(f"paddle.grad: {len(grad_outputs)} grad_outputs for {len(outs)} outputs")
    if retain_graph is None:
        retain_graph = create_graph
    capture = {id(t): i for i, t in enumerate(ins)}
    got = run_backward(outs, [_as_grad(o, g) for o, g in zip(outs, grad_outputs)],
                       retain_graph, create_graph, capture)
    for t, g in zip(ins, got):
        if g is None and not allow_unused:
            raise RuntimeError(f"paddle.grad: the input {t.name} is not reachable from the "
                               f"outputs (pass allow_unused=True to get None for it)")
    if not create_graph:
        got = [None if g is None else Tensor(g._data) for g in got]
    return got


class HookHandle:
    def __init__(self, tensor: Tensor, key: int):
        self._tensor, self._key = tensor, key

    def remove(self) -> bool:
        return self._tensor._hooks.pop(self._key, None) is not None


def register_hook(self: Tensor, hook: Any) -> HookHandle:
    """Call `hook(grad)` when this tensor's gradient is computed; a returned tensor replaces it."""
    if self.stop_gradient:
        raise RuntimeError(f"register_hook: {self.name} has stop_gradient=True, so no gradient "
                           f"will reach it")
    hooks = self.__dict__.setdefault("_hooks", {})
    key = max(hooks, default=-1) + 1
    hooks[key] = hook
    return HookHandle(self, key)


def clear_grad(self: Tensor, set_to_zero: bool = True) -> None:
    if self.grad is not None:
        self.grad = Tensor(np.zeros_like(self.grad._data)) if set_to_zero else None


def gradient(self: Tensor) -> Any:
    return None if self.grad is None else self.grad._data


def retain_grads(self: Tensor) -> None:
    self._retain_grad = True


def is_leaf(self: Tensor) -> bool:
    return self._grad_node is None


def detach_(self: Tensor) -> Tensor:
    self._grad_node = None
    self.stop_gradient = True
    return self


for _name, _fn in {"backward": backward, "register_hook": register_hook,
                   "clear_grad": clear_grad, "clear_gradient": clear_grad,
                   "gradient": gradient, "retain_grads": retain_grads,
                   "detach_": detach_}.items():
    setattr(Tensor, _name, _fn)
Tensor.is_leaf = property(is_leaf)  # type: ignore[attr-defined]
