"""append-backward: differentiate a `pd` function with the VJP rules the ops carry.

`f(inputs...) -> (outs...)` becomes `f(inputs..., d_outs...) -> (outs..., grads...)`: one
cotangent argument per floating result is appended, and one gradient result per trainable
`pd.persistable` (in op order), then, with `inputs=true`, one per floating input (the
function's `pd.grads` attribute names them: var names, `input:K`). The
backward ops are the very ones the eager tape runs: each op's `vjp` (ops/autodiff.py) is
called with an emitter that inserts `pd` ops here instead of running them, so forward and
backward are one function, which the later passes (cse, dead-op-elimination) and the
execution plan see whole; each backward op carries `pd.backward`, so a plan can run the
forward half when the function is called and the rest when backward reaches it. Runs after
persistable-extraction; needs static shapes. A `pd.if` / `pd.while` differentiates itself
(its rule asks the emitter for `grad_region`, the backward of its body).
"""
from __future__ import annotations

from typing import Any, Sequence

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, StringAttr, UnitAttr
from xdsl.ir import Block, Operation, SSAValue

from tostatic.ir.attr_keys import BACKWARD_ATTR, GRADS_ATTR
from tostatic.ir.opdef import Abstract, PdOp, group_inputs
from tostatic.ir.text import location_of
from tostatic.ops import autodiff as A
from tostatic.ops.core import Capture, Persistable
from tostatic.passes.base import CompilePass, CompileState, PassError, entry, register


class IREmitter:
    """A VJP rule's emitter that inserts `pd` ops before `anchor` (the function's return);
    `mark`: tag them `pd.backward` (not inside a region's backward, which runs whole)."""

    def __init__(self, block: Block, anchor: Operation, mark: bool = True):
        self.block, self.anchor, self.mark = block, anchor, mark

    def __call__(self, op_cls: type[PdOp], *inputs: SSAValue, **attrs: Any) -> Any:
        attrs = op_cls.normalize_attrs(attrs)
        results = op_cls.infer_results([Abstract.of_value(v) for v in inputs], attrs)
        op = op_cls.make(list(inputs), attrs, [r.tensor_type() for r in results])
        self.insert(op)
        return op.results[0] if op_cls.NUM_RESULTS == 1 else list(op.results)

    def insert(self, op: Operation) -> list[SSAValue]:
        """Insert an op a rule built itself (an op with regions); returns its results."""
        if self.mark:
            op.attributes[BACKWARD_ATTR] = UnitAttr()
        self.block.insert_op_before(op, self.anchor)
        return list(op.results)

    def grad_region(self, body: Block, wrt: Sequence[int], cts_of: Sequence[int],
                    given: Sequence[tuple[Any, SSAValue | None]] = ()) -> Block:
        """The backward of a region block (a control-flow op's rule builds on it): a block
        taking `body`'s arguments plus one cotangent per yielded value in `cts_of`, which
        recomputes the body and yields the cotangents of its arguments `wrt` (zeros where
        nothing flowed). `given`: (type, value) of further arguments, each the saved value
        of a result of `body` (None: an argument this block ignores); the op making it is
        not rerun (a random draw: the backward uses the forward's mask)."""
        term = body.last_op
        n = len(body.args)
        ct_types = [term.operands[j].type for j in cts_of]
        block = Block(arg_types=[a.type for a in body.args] + ct_types
                      + [t for t, _ in given])
        mapping: dict[SSAValue, SSAValue] = dict(zip(body.args, block.args[:n]))
        ops: list[Operation] = []
        for op in body.ops:
            if op is term:
                break
            clone = op.clone(value_mapper=mapping)
            block.add_op(clone)
            mapping.update(zip(op.results, clone.results))
            ops.append(clone)
        anchor = type(term).make([], {}, [])
        block.add_op(anchor)
        emit = IREmitter(block, anchor, mark=False)
        cts: dict[SSAValue, SSAValue] = {}
        for j, arg in zip(cts_of, block.args[n:]):
            v = mapping.get(term.operands[j], term.operands[j])
            cts[v] = A.add(emit, cts[v], arg) if v in cts else arg
        targets = [block.args[i] for i in wrt]
        differentiate(ops, targets, cts, emit)
        grads = [cts.get(v) or A.zeros_like(emit, v) for v in targets]
        block.insert_op_before(type(term).make(grads, {}, []), anchor)
        block.erase_op(anchor)
        saved = block.args[n + len(cts_of):]
        drop = []
        for (_, v), arg in zip(given, saved):
            if v is not None:
                clone = mapping[v].owner
                mapping[v].replace_all_uses_with(arg)
                if clone not in drop:
                    drop.append(clone)
        for clone in drop:  # not rerun: every result it made is a saved argument now
            block.erase_op(clone)
        return block

    def shape(self, v: SSAValue) -> tuple[int, ...]:
        return Abstract.of_value(v).shape

    def dtype(self, v: SSAValue) -> Any:
        return Abstract.of_value(v).dtype


@register
class AppendBackward(CompilePass):
    """Append the backward of a `pd` function: cotangent arguments for its floating results,
    gradient results for its trainable persistables (and floating inputs with inputs=true),
    built from the ops' own VJP rules."""

    name = "append-backward"
    options = {"inputs": False}

    def apply(self, module: Any, state: CompileState) -> None:
        fn = entry(module)
        block = fn.body.block
        ret = block.last_op
        assert isinstance(ret, func.ReturnOp)
        body = [op for op in block.ops if op is not ret]
        for op in self.ops(body):
            if isinstance(op, Capture):
                raise PassError("append-backward runs after persistable-extraction", op)
        params = [op for op in body
                  if isinstance(op, Persistable) and op.attr_values()["trainable"]]
        wrt = [op.results[0] for op in params]
        names = [op.attr_values()["var_name"] for op in params]
        if self.values["inputs"]:
            floats = [a for a in block.args if Abstract.of_value(a).dtype.is_floating]
            wrt += floats
            names += [f"input:{a.index}" for a in floats]
        outs = list(ret.operands)
        emit = IREmitter(block, ret)
        cts: dict[SSAValue, SSAValue] = {}
        for v in outs:
            if Abstract.of_value(v).dtype.is_floating:
                arg = block.insert_arg(v.type, len(block.args))
                cts[v] = arg if v not in cts else A.add(emit, cts[v], arg)
        differentiate(list(self.ops(body)), wrt, cts, emit)
        grads = [cts.get(v) or A.zeros_like(emit, v) for v in wrt]
        new_ret = func.ReturnOp(*outs, *grads)
        block.insert_op_before(new_ret, ret)
        block.erase_op(ret)
        fn.update_function_type()
        fn.attributes[GRADS_ATTR] = ArrayAttr([StringAttr(n) for n in names])


def differentiate(body: Sequence[Operation], wrt: list[SSAValue],
                  cts: dict[SSAValue, SSAValue], emit: Any) -> dict[SSAValue, SSAValue]:
    """Reverse over `body` from the cotangents `cts` (value -> its cotangent, updated in
    place), emitting each needed op's VJP through `emit`; `cts[w]` is then the gradient of
    each `wrt` value that anything flowed into. Shared by this pass and static mode's
    `append_backward`."""
    for op in body:
        if op.regions and getattr(op, "vjp", None) is None:
            raise PassError(f"append-backward: {op.name} has regions; control flow is "
                            f"not differentiated yet", op)
        for v in op.results:
            if any(d < 0 for d in Abstract.of_value(v).shape):
                raise PassError(f"append-backward needs static shapes; {op.name} has a "
                                f"result of shape {list(Abstract.of_value(v).shape)}", op)
    needed = requiring_grad(body, wrt)
    targets = set(wrt)
    for op in reversed(body):
        if op in needed and any(r in cts for r in op.results):
            backward_op(op, emit, cts, needed, targets)
    return cts


def requiring_grad(body: Sequence[Operation], wrt: list[SSAValue]) -> set[Operation]:
    """The ops on a path from a `wrt` value (forward): only they get a backward."""
    live = set(wrt)
    ops = set()
    for op in body:
        if isinstance(op, PdOp) and not op.NONDIFF and any(v in live for v in op.operands):
            ops.add(op)
            live.update(op.results)
    return ops


def backward_op(op: PdOp, emit: Any, cts: dict[SSAValue, SSAValue],
                needed: set[Operation], targets: set[SSAValue]) -> None:
    rule = getattr(op, "vjp", None)
    if rule is None:
        raise PassError(f"append-backward: {op.name} has no gradient rule (vjp)", op)
    outs = list(op.results)
    g = [cts[r] if r in cts else A.zeros_like(emit, r) for r in outs]
    operands = list(op.operands)
    needs = [(o.owner in needed) or o in targets for o in operands]
    grouped = group_inputs(op.INPUTS, operands)
    try:
        grads = rule(emit, grouped, outs, op.attr_values(), g, group_inputs(op.INPUTS, needs))
    except NotImplementedError as e:  # the rule refuses this op: name it (and its line)
        where = location_of(op)
        raise PassError(f"{e}" + (f" (at {where})" if where else ""), op) from e
    flat: list[Any] = []
    for x, d in zip(grouped, grads):
        flat.extend((d if d is not None else [None] * len(x)) if isinstance(x, list) else [d])
    for v, d, need in zip(operands, flat, needs):
        if d is not None and need:
            cts[v] = A.add(emit, cts[v], d) if v in cts else d
