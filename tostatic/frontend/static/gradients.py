"""The backward of a static Program as Paddle writes it: `<type>_grad` ops, `@GRAD` names.

Reverse over the forward ops from the loss: an op with a Paddle grad op (ops/grad_ops.py)
gets that op, reading the forward slots its Paddle op maker names and `<out>@GRAD`; any other
op gets its VJP expanded into `pd` ops (passes/append_backward.backward_op, the eager tape's
rule). A variable's gradient is `<var>@GRAD`; when several ops contribute to it, each
contribution is `<var>@GRAD@RENAME@block0@<k>` and a `sum` op adds them into `<var>@GRAD`,
as Paddle's backward does.
"""
from __future__ import annotations

from typing import Any, Sequence

from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, StringAttr
from xdsl.ir import Operation, SSAValue

from tostatic.dialects.program import to_attr
from tostatic.ir.attr_keys import LEGACY_ATTRS_ATTR, NAMES_ATTR
from tostatic.ir.opdef import Abstract, PdOp, group_inputs
from tostatic.ops import autodiff as A
from tostatic.ops.accumulate import AddN
from tostatic.ops.grad_ops import GRAD_OF
from tostatic.ops.manipulation import Assign
from tostatic.passes.append_backward import backward_op, requiring_grad
from tostatic.passes.base import PassError


def set_legacy(op: Operation, **attrs: tuple[str, Any]) -> None:
    """Legacy attributes lowering writes on `op` (op_role, op_role_var)."""
    legacy = dict(op.attributes[LEGACY_ATTRS_ATTR].data) if LEGACY_ATTRS_ATTR in \
        op.attributes else {}
    legacy.update({k: to_attr(t, v) for k, (t, v) in attrs.items()})
    op.attributes[LEGACY_ATTRS_ATTR] = DictionaryAttr(legacy)


def _set_name(value: SSAValue, name: str) -> None:
    op = value.owner
    names = [s.data for s in op.attributes[NAMES_ATTR].data] if NAMES_ATTR in \
        op.attributes else []
    names += [""] * (len(op.results) - len(names))
    names[value.index] = name
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in names])


class ProgramBackward:
    """One append_backward: the pending gradient contributions of each forward value, and
    the names given so far."""

    def __init__(self, program: Any, emit: Any):
        self.program, self.emit = program, emit
        self.var_name = {var.value: name for name, var in program._vars.items()
                         if var.value is not None}
        self.pending: dict[SSAValue, list[SSAValue]] = {}
        self.named: dict[SSAValue, str] = {}
        self.taken = set(program._vars) | set(program._seq)  # a second backward renames

    def base(self, v: SSAValue) -> str | None:
        name = self.var_name.get(v)
        return None if name is None else f"{name}@GRAD"

    def unique(self, name: str) -> str:
        k, out = 0, name
        while out in self.taken:
            k += 1
            out = f"{name}@RENAME_{k}"
        self.taken.add(out)
        return out

    def name(self, v: SSAValue, name: str | None) -> SSAValue:
        """`v` named `name` (through an assign when `v` already has a name)."""
        if name is None:
            return v
        owner = v.owner
        if v in self.named or v in self.var_name or not isinstance(owner, PdOp) or (
                NAMES_ATTR in owner.attributes and v.index < len(owner.attributes[NAMES_ATTR].data)
                and owner.attributes[NAMES_ATTR].data[v.index].data):
            v = self.emit(Assign, v)
        self.rename(v, name)
        return v

    def rename(self, v: SSAValue, name: str) -> None:
        _set_name(v, name)
        self.named[v] = name
        self.program._reserve(name, False)

    def contribute(self, v: SSAValue, g: SSAValue) -> None:
        self.pending.setdefault(v, []).append(g)

    def total(self, v: SSAValue) -> SSAValue | None:
        """The gradient of `v`: its one contribution, or the `sum` of them."""
        parts = self.pending.get(v)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        base = self.base(v)
        if base is not None:
            for k, g in enumerate(parts):
                if g in self.named:
                    self.taken.discard(self.named[g])
                    self.rename(g, self.unique(f"{base}@RENAME@block0@{k}"))
        out = self.emit(AddN, *parts)
        if base is not None:
            out = self.name(out, self.unique(base))
        self.pending[v] = [out]
        return out

    def run(self, body: Sequence[Operation], wrt: list[SSAValue], loss: SSAValue,
            loss_grad: SSAValue) -> None:
        self.pending[loss] = [loss_grad]
        for op in body:
            if op.regions:
                raise PassError(f"append-backward: {op.name} has regions; control flow is "
                                f"not differentiated yet", op)
        needed = requiring_grad(body, wrt)
        targets = set(wrt)
        for op in reversed(body):
            if op in needed and any(self.pending.get(r) for r in op.results):
                cts = {r: self.total(r) for r in op.results if self.pending.get(r)}
                needs = [(o.owner in needed) or o in targets for o in op.operands]
                grad_cls = GRAD_OF.get(type(op))
                if grad_cls is not None:
                    self.grad_op(op, grad_cls, cts, needs)
                else:
                    self.expand(op, cts, needs)

    def grad_op(self, op: PdOp, grad_cls: type[PdOp], cts: dict[SSAValue, SSAValue],
                needs: list[bool]) -> None:
        """Paddle's grad op of `op`: its taken slots, then `<out>@GRAD` (zeros where nothing
        flowed)."""
        fwd = type(op)
        legacy, spec = fwd.PADDLE, grad_cls.SPEC
        by_input = dict(zip((n.lstrip("*") for n in fwd.INPUTS),
                            group_inputs(fwd.INPUTS, list(op.operands))))
        operands: list[SSAValue] = []
        for slot in spec.takes:
            if slot == "XShape":  # its X (the XShape var only carries X's shape)
                operands.append(op.operands[0])
            elif slot in legacy.inputs:
                v = by_input[legacy.inputs[slot].lstrip("*")]
                operands.extend(v if isinstance(v, list) else [v])
            else:
                operands.append(op.results[legacy.outputs[slot]])
        for slot in spec.grads_of:
            r = op.results[legacy.outputs[slot]]
            operands.append(cts[r] if r in cts else A.zeros_like(self.emit, r))
        results = self.emit(grad_cls, *operands, **op.attr_values())
        results = results if isinstance(results, list) else [results]
        slot_of = {src.lstrip("*"): slot for slot, src in legacy.inputs.items()}
        given = []
        for name, v in zip(fwd.INPUTS, group_inputs(fwd.INPUTS, list(op.operands))):
            if slot_of.get(name.lstrip("*")) in spec.gives:
                given.extend(v if isinstance(v, list) else [v])
        need_of = dict(zip(op.operands, needs))
        for x, d in zip(given, results):
            if need_of.get(x):
                self.contribute(x, self.name(d, self.unique(self.base(x)) if self.base(x)
                                             else None))

    def expand(self, op: PdOp, cts: dict[SSAValue, SSAValue], needs: list[bool]) -> None:
        """`op`'s VJP as `pd` ops (no Paddle grad op for it here): those need static shapes
        (a grad op's kernel sees the run's own)."""
        for v in op.results:
            if any(d < 0 for d in Abstract.of_value(v).shape):
                raise PassError(f"append-backward needs static shapes; {op.name} has a "
                                f"result of shape {list(Abstract.of_value(v).shape)}", op)
        local = dict(cts)
        targets = {o for o, n in zip(op.operands, needs) if n}
        backward_op(op, self.emit, local, set(), targets)
        for x in dict.fromkeys(op.operands):
            if x in local and x in targets:
                base = self.base(x)
                self.contribute(x, self.name(local[x], self.unique(base) if base else None))

