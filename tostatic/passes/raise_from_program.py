"""raise-from-program: a loaded `program.program` back into a `pd` function, for execution.

Feed ops become the function's arguments (in `col` order), persistable vars `pd.persistable`,
fetch ops its results; every other legacy op is raised through the `Legacy` mapping of the pd
op that lowers to it (so lowering and raising read one definition).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Block, Region, SSAValue

from tostatic.dialects.program import OpOp, ProgramOp
from tostatic.frontend.tracing import NAMES_ATTR
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir import dtypes
from tostatic.ir.opdef import LEGACY, Abstract, Fixed, FromInputs, PdOp
from tostatic.ops.core import ASSIGN_VALUE_SLOTS, Constant, Persistable, array_to_dense
from tostatic.passes.base import CompilePass, CompileState, register
from tostatic.passes.lower_to_program import INPUT_NAME_ATTR

NOT_TENSORS = ("FEED_MINIBATCH", "FETCH_LIST", "RAW", "STEP_SCOPES")


class Raiser:
    """Walks block 0 of a program, keeping var name -> current SSA value."""

    def __init__(self, program: ProgramOp):
        if len(program.blocks) != 1:
            raise UnsupportedError(f"programs with {len(program.blocks)} blocks (control flow) "
                                   f"are not supported yet")
        self.block0 = program.blocks[0]
        self.vars = {v.var_name: v for v in self.block0.vars}
        self.block = Block()
        self.env: dict[str, SSAValue] = {}

    def abstract(self, name: str) -> Abstract:
        v = self.vars[name]
        return Abstract(tuple(v.shape or ()), v.dtype)

    def emit(self, cls: type[PdOp], operands: list[SSAValue], attrs: dict[str, Any],
             where: str) -> list[SSAValue]:
        attrs = cls.normalize_attrs(attrs)
        try:
            results = cls.infer_results([Abstract.of_value(v) for v in operands], attrs)
        except ShapeError as e:
            raise ShapeError(f"{e} (raising {where})") from None
        op = cls.make(operands, attrs, [r.tensor_type() for r in results])
        self.block.add_op(op)
        return list(op.results)

    def run(self) -> tuple[ModuleOp, list[str], list[str], list[str]]:
        ops = list(self.block0.ops)
        feeds = sorted((o for o in ops if o.op_type == "feed"), key=lambda o: o.attr("col"))
        fetches = sorted((o for o in ops if o.op_type == "fetch"), key=lambda o: o.attr("col"))
        feed_names = [o.output("Out")[0] for o in feeds]
        for name in feed_names:
            arg = self.block.insert_arg(self.abstract(name).tensor_type(), len(self.block.args))
            self.env[name] = arg
        persistables = sorted(v.var_name for v in self.block0.vars
                              if v.persistable and v.var_type not in NOT_TENSORS)
        for name in persistables:
            p = Persistable.make([], {"var_name": name}, [self.abstract(name).tensor_type()])
            self.block.add_op(p)
            self.env[name] = p.results[0]
        for i, op in enumerate(ops):
            if op.op_type not in ("feed", "fetch"):
                self.raise_op(op, f"op {i} ({op.op_type}) of block 0")
        fetch_names = [o.input("X")[0] for o in fetches]
        ret = func.ReturnOp(*[self.env[n] for n in fetch_names])
        self.block.add_op(ret)
        ftype = func.FunctionType.from_lists([a.type for a in self.block.args],
                                             [v.type for v in ret.operands])
        fn = func.FuncOp("main", ftype, Region(self.block))
        fn.arg_attrs = ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(n)})
                                  for n in feed_names])
        return ModuleOp([fn]), feed_names, fetch_names, persistables

    def raise_constant(self, op: OpOp) -> None:
        """assign_value: a literal, back into pd.constant (the inverse of lowering)."""
        d = dtypes.BY_VAR_TYPE[op.attr("dtype")]
        key = "values" if op.has_attr("values") else ASSIGN_VALUE_SLOTS[d.name][0]
        array = np.array(op.attr(key), dtype=d.numpy).reshape(op.attr("shape"))
        c = Constant.make([], {"value": array_to_dense(array)},
                          [Abstract.of_array(array).tensor_type()])
        self.block.add_op(c)
        (name,) = op.output("Out")
        c.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(name)])
        self.env[name] = c.results[0]

    def raise_op(self, op: OpOp, where: str) -> None:
        if op.op_type == "assign_value":
            return self.raise_constant(op)
        candidates = LEGACY.get(op.op_type)
        if not candidates:
            raise UnsupportedError(f"{where}: Paddle op {op.op_type!r} is not supported yet")
        for cls in candidates:
            outs = self.raise_generic(cls, op, where)
            if outs is not None:
                self.bind_outputs(cls, op, outs)
                return
        raise UnsupportedError(f"{where}: no pd op handles {op.op_type} with attributes "
                               f"{ {k: op.attr(k) for k in op.attr_names} }")

    def operands(self, cls: type[PdOp], op: OpOp, where: str) -> list[SSAValue]:
        spec = cls.PADDLE
        assert spec is not None
        by_input: dict[str, list[SSAValue]] = {}
        for slot, src in spec.inputs.items():
            names = op.input(slot) if slot in op.input_slots else []
            missing = [n for n in names if n not in self.env]
            if missing:
                raise ValueError(f"{where}: input {slot} reads {missing[0]!r}, which no earlier "
                                 f"op writes and no feed or persistable provides")
            if not src.startswith("*") and len(names) != 1:
                raise ValueError(f"{where}: slot {slot} must hold one variable, has {names}")
            by_input[src.lstrip("*")] = [self.env[n] for n in names]
        flat: list[SSAValue] = []
        for name in cls.INPUTS:
            flat += by_input[name.lstrip("*")]
        return flat

    def attrs(self, cls: type[PdOp], op: OpOp) -> dict[str, Any] | None:
        """pd attributes from the legacy ones; None when a fixed attribute has another value."""
        spec = cls.PADDLE
        assert spec is not None
        out: dict[str, Any] = {}
        for key, a in spec.attrs.items():
            present = key in op.attr_names
            if isinstance(a, Fixed):
                if present and _differs(op.attr(key), a.value):
                    return None
                continue
            if isinstance(a, FromInputs):
                continue
            if present:
                v = op.attr(key)
                v = a.invert(v) if a.invert else (tuple(v) if isinstance(v, list) else v)
                if v is not None:
                    out[a.source] = v
        return out

    def raise_generic(self, cls: type[PdOp], op: OpOp, where: str) -> list[SSAValue] | None:
        attrs = self.attrs(cls, op)
        if attrs is None:
            return None
        return self.emit(cls, self.operands(cls, op, where), attrs, where)

    def bind_outputs(self, cls: type[PdOp], op: OpOp, outs: list[SSAValue]) -> None:
        spec = cls.PADDLE
        assert spec is not None
        names: list[str] = []
        for slot, idx in spec.outputs.items():
            if idx == "*":
                slot_names = op.output(slot)
                names += slot_names
                for n, v in zip(slot_names, outs):
                    self.env[n] = v
            else:
                (n,) = op.output(slot)
                names.append(n)
                self.env[n] = outs[idx]
        owner = outs[0].owner if outs else None
        if isinstance(owner, PdOp):
            owner.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in names])


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a) != list(b)
    return a != b


def raise_program(program: ProgramOp) -> tuple[ModuleOp, list[str], list[str], list[str]]:
    """(pd module, feed names by col, fetch var names by col, sorted persistable names)."""
    return Raiser(program).run()


@register
class RaiseFromProgram(CompilePass):
    """Replace a module's `program.program` by the equivalent `pd` function (feeds become
    arguments in `col` order, fetches results); the inverse of `lower-to-program`."""

    name = "raise-from-program"

    def apply(self, module: ModuleOp, state: CompileState) -> None:
        program = next(op for op in module.body.block.ops if isinstance(op, ProgramOp))
        raised, *_ = raise_program(program)
        fn = raised.body.block.first_op
        assert fn is not None
        fn.detach()
        module.body.block.insert_op_before(fn, program)
        module.body.block.erase_op(program)
