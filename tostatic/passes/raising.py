"""How Paddle legacy ops are read back into `pd` ops: what raise-from-program and its
control-flow part share. `Raiser` keeps, per Paddle block, the SSA value each variable name
holds now; every legacy op is raised through the `Legacy` mapping of the pd op that lowers
to it (lowering and raising read one definition). Ops that run sub-blocks are raised by the
functions in BLOCK_OP_RAISERS, which raise_control_flow.py fills.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, StringAttr
from xdsl.ir import Attribute, Block, SSAValue

from tostatic.dialects.program import BlockOp, OpOp, ProgramOp, VarOp
from tostatic.ir import dtypes
from tostatic.ir.attr_keys import NAMES_ATTR
from tostatic.ir.errors import ProgramError, ShapeError, ToStaticError, UnsupportedError
from tostatic.ir.opdef import LEGACY, Abstract, Fixed, FromInputs, PdOp
from tostatic.ops.core import ASSIGN_VALUE_SLOTS, Constant, Persistable, array_to_dense

NOT_TENSORS = ("FEED_MINIBATCH", "FETCH_LIST", "RAW", "STEP_SCOPES")


class Raiser:
    """Raises the ops of one Paddle block into one xDSL block, keeping var name -> current SSA
    value (`env`). Block 0 becomes the function body; a sub-block becomes a region whose
    block arguments are bound to the outer names it reads (`region`)."""

    def __init__(self, program: ProgramOp, desc: BlockOp | None = None,
                 block: Block | None = None, env: dict[str, SSAValue] | None = None,
                 var_tables: dict[int, dict[str, VarOp]] | None = None):
        self.program = program
        self.blocks = program.blocks
        self.desc = self.blocks[0] if desc is None else desc
        self.block = Block() if block is None else block
        self.env: dict[str, SSAValue] = {} if env is None else env
        self.xshape_of: dict[str, SSAValue] = {}  # XShape var -> the X it was written for
        if var_tables is None:
            _check_parents(self.blocks)
        self.var_tables = var_tables or {b.idx: {v.var_name: v for v in b.vars}
                                         for b in self.blocks}

    def check_sub_block(self, idx: Any, where: str) -> None:
        """A sub-block reference must name a child of this block: with parents acyclic
        (`_check_parents`), raising then always goes deeper and ends."""
        n = len(self.blocks)
        if type(idx) is not int or not 0 < idx < n:
            raise ProgramError(f"{where}: sub_block {idx!r} is not a block index in [1, {n})")
        if self.blocks[idx].parent_idx != self.desc.idx:
            raise ProgramError(f"{where}: sub_block {idx} has parent_idx "
                               f"{self.blocks[idx].parent_idx}, not this block "
                               f"{self.desc.idx} (a sub-block belongs to the op's block)")

    def var(self, name: str, block_idx: int | None = None) -> VarOp | None:
        """The VarDesc `name` resolves to from a block: its own, else its ancestors'."""
        idx = self.desc.idx if block_idx is None else block_idx
        while idx >= 0:
            v = self.var_tables[idx].get(name)
            if v is not None:
                return v
            idx = self.blocks[idx].parent_idx
        return None

    def abstract(self, name: str) -> Abstract:
        v = self.var(name)
        if v is None:
            raise ProgramError(f"block {self.desc.idx}: variable {name!r} is not declared")
        return Abstract(tuple(v.shape or ()), v.dtype)

    def is_tensor(self, name: str, block_idx: int) -> bool:
        v = self.var(name, block_idx)
        return v is None or v.var_type not in NOT_TENSORS

    def region(self, block_idx: int, names: Sequence[str],
               types: Sequence[Attribute]) -> "Raiser":
        """A raiser for sub-block `block_idx`, its block arguments bound to `names`."""
        block = Block(arg_types=list(types))
        return Raiser(self.program, self.blocks[block_idx], block,
                      dict(zip(names, block.args)), self.var_tables)

    def raise_ops(self) -> None:
        for i, op in enumerate(self.desc.ops):
            if op.op_type not in ("feed", "fetch"):
                where = f"op {i} ({op.op_type}) of block {self.desc.idx}"
                try:
                    self.raise_op(op, where)
                except (ToStaticError, RecursionError, MemoryError):
                    raise
                except Exception as e:  # noqa: BLE001 - a malformed op from a file
                    raise ProgramError(f"{where}: cannot be raised ({type(e).__name__}: "
                                       f"{e})") from None

    def emit(self, cls: type[PdOp], operands: list[SSAValue], attrs: dict[str, Any],
             where: str) -> list[SSAValue]:
        try:
            attrs = cls.normalize_attrs(attrs)
            results = cls.infer_results([Abstract.of_value(v) for v in operands], attrs)
        except (ShapeError, UnsupportedError) as e:
            raise type(e)(f"{e} (raising {where})") from None
        op = cls.make(operands, attrs, [r.tensor_type() for r in results])
        self.block.add_op(op)
        return list(op.results)

    def run(self) -> tuple[list[str], list[str], list[str]]:
        """Raise block 0 into `self.block`, ending in the return of the fetches; (feed
        names by col, fetch names by col, sorted persistable names)."""
        ops = list(self.desc.ops)
        feeds = sorted((o for o in ops if o.op_type == "feed"), key=lambda o: o.attr("col"))
        fetches = sorted((o for o in ops if o.op_type == "fetch"), key=lambda o: o.attr("col"))
        feed_names = [o.output("Out")[0] for o in feeds]
        for name in feed_names:
            arg = self.block.insert_arg(self.abstract(name).tensor_type(), len(self.block.args))
            self.env[name] = arg
        persistables = sorted(v.var_name for v in self.desc.vars
                              if v.persistable and v.var_type not in NOT_TENSORS)
        for name in persistables:
            p = Persistable.make([], {"var_name": name}, [self.abstract(name).tensor_type()])
            self.block.add_op(p)
            self.env[name] = p.results[0]
        self.raise_ops()
        fetch_names = [o.input("X")[0] for o in fetches]
        self.block.add_op(func.ReturnOp(*[self.env[n] for n in fetch_names]))
        return feed_names, fetch_names, persistables

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
        if op.op_type in BLOCK_OP_RAISERS:
            return BLOCK_OP_RAISERS[op.op_type](self, op, where)
        candidates = LEGACY.get(op.op_type)
        if not candidates:
            raise UnsupportedError(f"{where}: Paddle op {op.op_type!r} is not supported yet")
        filled = {slot for slot in op.input_slots if op.input(slot)}
        # a mapping must read every filled slot (else it would drop an input the file gives);
        # of those, the one leaving fewest of its own slots empty goes first (layer_norm
        # without Scale/Bias, fill_constant without ShapeTensor), ties in registration order
        usable = sorted((cls for cls in candidates
                         if not filled - set(cls.PADDLE.inputs) - set(cls.PADDLE.ignored_inputs)),
                        key=lambda cls: len(set(cls.PADDLE.inputs) - filled))
        for cls in usable:
            outs = self.raise_generic(cls, op, where)
            if outs is not None:
                self.bind_outputs(cls, op, outs)
                return
        raise UnsupportedError(f"{where}: no pd op handles {op.op_type} with inputs "
                               f"{sorted(filled)} and attributes "
                               f"{ {k: op.attr(k) for k in op.attr_names} }")

    def operands(self, cls: type[PdOp], op: OpOp, where: str) -> list[SSAValue]:
        spec = cls.PADDLE
        assert spec is not None
        by_input: dict[str, list[SSAValue]] = {}
        for slot, src in spec.inputs.items():
            names = op.input(slot) if slot in op.input_slots else []
            if slot in spec.xshape_inputs and len(names) == 1 and names[0] in self.xshape_of:
                by_input[str(src)] = [self.xshape_of[names[0]]]  # reshape2_grad's XShape
                continue
            missing = [n for n in names if n not in self.env]
            if missing:
                raise ProgramError(f"{where}: input {slot} reads {missing[0]!r}, which no earlier "
                                 f"op writes and no feed or persistable provides")
            if isinstance(src, tuple):  # several fixed inputs, in order
                if len(names) != len(src):
                    raise ProgramError(f"{where}: slot {slot} must hold {len(src)} variables, "
                                     f"has {names}")
                by_input.update((s, [self.env[n]]) for s, n in zip(src, names))
                continue
            if not src.startswith("*") and len(names) != 1:
                raise ProgramError(f"{where}: slot {slot} must hold one variable, has {names}")
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
            elif isinstance(idx, tuple):  # several results, in order
                slot_names = op.output(slot)
                if len(slot_names) != len(idx):
                    raise ProgramError(f"{op.op_type}: output {slot} must hold {len(idx)} "
                                     f"variables, has {slot_names}")
                for n, i in zip(slot_names, idx):
                    names.append(n)
                    self.env[n] = outs[i]
            elif slot in spec.optional_outputs and (slot not in op.output_slots
                                                     or not op.output(slot)):
                names.append("")  # a gradient Paddle's backward did not need
            else:
                (n,) = op.output(slot)
                names.append(n)
                self.env[n] = outs[idx]
        for slot in spec.extra_outputs:  # reshape2's XShape keeps its name too
            if slot in op.output_slots and len(op.output(slot)) == 1:
                names.append(op.output(slot)[0])
        owner = outs[0].owner if outs else None
        if isinstance(owner, PdOp) and owner.operands and "XShape" in op.output_slots:
            for n in op.output("XShape"):
                self.xshape_of[n] = owner.operands[0]
        if isinstance(owner, PdOp):
            owner.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in names])


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a) != list(b)
    return a != b


# Paddle op type -> how an op running a sub-block is raised (filled by raise_control_flow.py)
BLOCK_OP_RAISERS: dict[str, Callable[[Raiser, OpOp, str], None]] = {}


def _check_parents(blocks: Sequence[BlockOp]) -> None:
    """Block 0 is the root and every other block's parent chain reaches it."""
    n = len(blocks)
    for b in blocks:
        seen, idx = set(), b.idx
        while idx != -1:
            if idx in seen or not -1 <= idx < n or (idx == 0) != (blocks[idx].parent_idx == -1):
                raise ProgramError(f"block {b.idx}: its parent_idx chain {sorted(seen)} does "
                                   f"not lead to block 0 (a cycle or a bad index)")
            seen.add(idx)
            idx = blocks[idx].parent_idx
