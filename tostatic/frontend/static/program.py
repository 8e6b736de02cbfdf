"""paddle.static.Program, Block and Operator: a static program built as a `pd` function.

A live Program owns one `func.func` of `pd` ops that static-mode code extends op by op (its
arguments are the feeds `static.data` declares; parameters are `pd.persistable` ops; cond and
while_loop are pd.if / pd.while), plus what Paddle's Python API keeps about its variables and
the SSA IR does not: their VarDesc fields and creation order (a VarTable, see
passes/lowering.py). Printing, running, saving and the Block / Operator / Variable views all
read the ProgramDesc the `lower-to-program{mode=live}` pass makes of it (through the
PassManager, so $TOSTATIC_DUMP shows it), lowered again only when the program has changed.

A Program loaded from a desc (`load_inference_model`, `paddle.load`, `clone`) is that desc.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Block as IRBlock
from xdsl.ir import Operation, Region, SSAValue

from tostatic.dialects.program import BlockOp, OpOp, ProgramOp
from tostatic.frontend.tensor.variable import Parameter, Variable
from tostatic.ir.attr_keys import INPUT_NAME_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.location import user_location
from tostatic.ir.names import NameGenerator
from tostatic.passes.base import CompileState
from tostatic.passes.manager import PassManager
from tostatic.runtime.scope import global_scope
from tostatic.serialization.program_text import block_to_text, op_to_text, program_to_text

__all__ = ["Program", "Block", "Operator", "Variable", "Parameter"]

LIVE_PIPELINE = "lower-to-program{mode=live}"


class Operator:
    """An op of a Block: Paddle's type, input/output slots and attributes."""

    def __init__(self, block: "Block", desc: OpOp):
        self.block = block
        self.desc = desc

    @property
    def type(self) -> str:
        return self.desc.op_type

    def input(self, name: str) -> list[str]:
        return self.desc.input(name)

    def output(self, name: str) -> list[str]:
        return self.desc.output(name)

    @property
    def input_names(self) -> list[str]:
        return self.desc.input_slots

    @property
    def output_names(self) -> list[str]:
        return self.desc.output_slots

    @property
    def input_arg_names(self) -> list[str]:
        return self.desc.input_names

    @property
    def output_arg_names(self) -> list[str]:
        return self.desc.output_names

    @property
    def attr_names(self) -> list[str]:
        return self.desc.attr_names

    def has_attr(self, name: str) -> bool:
        return self.desc.has_attr(name)

    def attr(self, name: str) -> Any:
        return self.desc.attr(name)

    def all_attrs(self) -> dict[str, Any]:
        return {k: self.desc.attr(k) for k in self.desc.attr_names}

    def __repr__(self) -> str:
        return op_to_text(self.desc)

    __str__ = __repr__


class Block:
    """One block of a Program: its variables (in creation order) and ops."""

    def __init__(self, program: "Program", idx: int, parent_idx: int):
        self.program = program
        self.idx = idx
        self.parent_idx = parent_idx

    @property
    def desc(self) -> BlockOp:
        return self.program.desc.blocks[self.idx]

    @property
    def vars(self) -> dict[str, Variable]:
        return dict(self.program._views(self.idx)[0])

    @property
    def ops(self) -> list[Operator]:
        return list(self.program._views(self.idx)[1])

    def has_var(self, name: str) -> bool:
        return name in self.program._views(self.idx)[0]

    def var(self, name: str) -> Variable:
        found = self.program._views(self.idx)[0].get(name)
        if found is None:
            raise ValueError(f"var {name} not in this block")
        return found

    @property
    def parent(self) -> "Block | None":
        return self.program.blocks[self.parent_idx] if self.parent_idx >= 0 else None

    def _find_var_recursive(self, name: str) -> Variable | None:
        """The variable `name` as this block sees it: its own, else its ancestors'."""
        block: Block | None = self
        while block is not None:
            if block.has_var(name):
                return block.var(name)
            block = block.parent
        return None

    def _var_recursive(self, name: str) -> Variable:
        var = self._find_var_recursive(name)
        if var is None:
            raise ValueError(f"var {name} is not in block {self.idx} nor its parents")
        return var

    def all_parameters(self) -> list[Parameter]:
        return [v for v in self.vars.values() if isinstance(v, Parameter)]

    def __repr__(self) -> str:
        return block_to_text(self.desc, self.program._parameter_flags())


@dataclass(eq=False)
class Frame:
    """A block being built: the pd block its ops go to, its Paddle block, the value each
    Variable holds in it, and the outer values it reads (captured as trailing arguments of
    its block: the operands of the region op that will hold it, which is isolated from
    above)."""

    block: IRBlock
    idx: int
    parent: "Frame | None"
    values: dict[Variable, SSAValue] = field(default_factory=dict)
    captured: list[SSAValue] = field(default_factory=list)
    args: dict[SSAValue, SSAValue] = field(default_factory=dict)  # outer value -> argument


class Program:
    """paddle.static.Program: blocks of ops over named variables, printed and run as Paddle's."""

    def __init__(self) -> None:
        self._fn = func.FuncOp("main_program", func.FunctionType.from_lists([], []),
                               Region(IRBlock()))
        self.blocks = [Block(self, 0, -1)]
        self._frames = [Frame(self._fn.body.block, 0, None)]
        self._feeds: list[Variable] = []
        self._vars: dict[str, Variable] = {}  # the variables static-mode code made, by name
        self._seq: dict[str, int] = {}  # every name it made -> creation order
        self._stops: dict[str, bool] = {}  # stop_gradient of variables lowering will declare
        self._live = True
        self._desc: ProgramOp | None = None  # a loaded program's desc
        self._flags: dict[str, bool] | None = None  # a loaded program's parameter flags
        self._lowered: tuple[int, ProgramOp, dict[int, Any]] | None = None
        self._view_cache: dict[int, Any] = {}  # a loaded program's views
        self._version = 0  # bumped by every edit: the lowering and the Executor key on it
        self._name_generator = NameGenerator()  # op outputs: fc_0.tmp_0, tmp_3, ...
        self.random_seed = 0

    @classmethod
    def from_desc(cls, desc: ProgramOp, parameter_flags: dict[str, bool] | None = None
                  ) -> "Program":
        """A Program that is `desc` (loaded, or cloned): it prints, runs and saves, and code
        cannot add ops to it."""
        program = cls()
        program._live = False
        program._desc = desc
        program._flags = parameter_flags
        program.blocks = [Block(program, b.idx, b.parent_idx) for b in desc.blocks]
        program._view_cache = {}
        return program

    # --- the views --------------------------------------------------------------------------
    @property
    def desc(self) -> ProgramOp:
        """The ProgramDesc (a `program.program` op): lowered from the `pd` function."""
        if not self._live:
            return self._desc  # type: ignore[return-value]
        if self._lowered is None or self._lowered[0] != self._version:
            self._lowered = (self._version, self._lower(), {})
        return self._lowered[1]

    def pd_module(self) -> ModuleOp:
        """A copy of the program as a `pd` module: one function whose arguments are the feeds
        (named by their `pd.name`) and which returns nothing."""
        if not self._live:
            raise UnsupportedError("a loaded Program has no pd function; its desc is the "
                                   "program")
        fn = self._fn.clone()
        block = fn.body.block
        if not isinstance(block.last_op, func.ReturnOp):  # (main_program's is complete)
            block.add_op(func.ReturnOp())
            fn.function_type = func.FunctionType.from_lists([a.type for a in block.args], [])
            fn.arg_attrs = ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(v.name)})
                                      for v in self._feeds])
        return ModuleOp([fn])

    def _lower(self) -> ProgramOp:
        module = self.pd_module()
        PassManager(LIVE_PIPELINE, verify="off").run(module, CompileState(variables=self),
                                                     first_stage="static-program")
        program = next(op for op in module.body.block.ops if isinstance(op, ProgramOp))
        program.detach()
        return program

    def _views(self, idx: int) -> tuple[dict[str, Variable], list[Operator]]:
        """Block idx's variables (this program's own objects where it made them) and ops."""
        desc = self.desc
        cache = self._lowered[2] if self._live else self._view_cache  # type: ignore[index]
        if idx not in cache:
            block = self.blocks[idx]
            views: dict[str, Variable] = {}
            for v in desc.blocks[idx].vars:
                own = self._vars.get(v.var_name)
                if own is None:
                    own = Variable.of_desc(block, v)
                    if self._flags is not None and v.var_name in self._flags:
                        own = Parameter.view(block, v, self._flags[v.var_name])
                views[v.var_name] = own
            cache[idx] = (views, [Operator(block, o) for o in desc.blocks[idx].ops])
        return cache[idx]

    # --- VarTable (what lowering reads) -----------------------------------------------------
    def var_fields(self, name: str) -> dict[str, Any] | None:
        var = self._vars.get(name)
        return var.var_fields() if var is not None else None

    def var_seq(self, name: str) -> int | None:
        return self._seq.get(name)

    def var_stop(self, name: str) -> bool | None:
        return self._stops.get(name)

    # --- building (static mode's ProgramBuilder and control flow use these) -----------------
    def _check_live(self) -> None:
        if not self._live or isinstance(self._fn.body.block.last_op, func.ReturnOp):
            raise UnsupportedError(f"this Program was loaded or cloned from a desc; static-mode "
                                   f"code cannot add ops to it (at {user_location()})")

    def _reserve(self, name: str, stop_gradient: bool | None = None) -> str:
        """Note `name` as made now (its place in creation order) for a variable lowering
        declares, with its stop_gradient as Paddle sets it now, if known."""
        self._seq.setdefault(name, len(self._seq))
        if stop_gradient is not None:
            self._stops[name] = stop_gradient
        return name

    def _generated_name(self, stop_gradient: bool | None = None) -> str:
        """A name for a variable Paddle creates without one: `_generated_var_N`, counted per
        Program."""
        while True:
            name = self._name_generator("_generated_var")
            if name not in self._seq:
                return self._reserve(name, stop_gradient)

    def _register(self, var: Variable, frame: Frame | None = None) -> Variable:
        if var.name in self._vars:
            raise ValueError(f"variable {var.name!r} already exists in the program")
        self._vars[var.name] = var
        self._reserve(var.name)
        if var.value is not None:
            (frame or self._frames[-1]).values[var] = var.value
        self._version += 1
        return var

    def _new_var(self, name: str, value: SSAValue, stop_gradient: bool,
                 fields: dict[str, Any]) -> Variable:
        frame = self._frames[-1]
        return self._register(Variable(name, value, self.blocks[frame.idx], stop_gradient,
                                       fields))

    def _add_feed(self, var_of: Any, type_: Any) -> Variable:
        """A new argument of the function: a feed variable (`var_of(argument)` makes it)."""
        self._check_live()
        block = self._frames[0].block
        arg = block.insert_arg(type_, len(block.args))
        var = self._register(var_of(arg), self._frames[0])
        self._feeds.append(var)
        return var

    def _append(self, op: Operation, root: bool = False) -> None:
        """Add `op` to the block being built (or, `root`, to the function's own block, where
        parameters go: Paddle declares them in the global block)."""
        self._check_live()
        (self._frames[0] if root else self._frames[-1]).block.add_op(op)
        self._version += 1

    def _bind(self, var: Variable, value: SSAValue) -> None:
        """`var` holds `value` from now on in the block being built (a loop wrote it)."""
        self._frames[-1].values[var] = value
        self._version += 1

    def _value_of(self, x: Any, what: str) -> SSAValue:
        """The value variable `x` holds in the block being built; an outer value is captured
        (it becomes an operand of the region op and an argument of its block)."""
        if not isinstance(x, Variable) or x.block is None:
            raise TypeError(f"{what}: in static mode inputs must be static Variables "
                            f"(from paddle.static.data or other ops), got {type(x).__name__}")
        if x.block.program is not self:
            raise ValueError(f"{what}: variable {x.name} belongs to another Program")
        self._check_live()
        value = _lookup(self._frames[-1], x)
        if value is None:
            raise ValueError(
                f"{what}: variable {x.name} was made in block {x.block.idx} (a cond branch or "
                f"while_loop body) and is not visible in block {self._frames[-1].idx}; "
                f"return it from the branch or body instead (at {user_location()})")
        return value

    def _open_frame(self, arg_types: Iterable[Any] = ()) -> Frame:
        """A new block, child of the current one, which becomes current: cond and while_loop
        build their sub-blocks in it."""
        self._check_live()
        parent = self._frames[-1]
        idx = len(self.blocks)
        self.blocks.append(Block(self, idx, parent.idx))
        frame = Frame(IRBlock(arg_types=list(arg_types)), idx, parent)
        self._frames.append(frame)
        self._version += 1
        return frame

    def _close_frame(self) -> None:
        """Back to the current block's parent, once a sub-block is complete."""
        self._frames.pop()

    def _abandon(self, idx: int) -> None:
        """Forget Paddle blocks idx.. (their region op was never made: the user's code failed
        while building it)."""
        del self.blocks[idx:]
        self._version += 1

    # --- Paddle's API -----------------------------------------------------------------------
    def global_block(self) -> Block:
        return self.blocks[0]

    def current_block(self) -> Block:
        return self.blocks[self._frames[-1].idx]

    def block(self, index: int) -> Block:
        return self.blocks[index]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def list_vars(self) -> Iterable[Variable]:
        for block in self.blocks:
            yield from block.vars.values()

    def all_parameters(self) -> list[Parameter]:
        if not self._live:
            return [p for b in self.blocks for p in b.all_parameters()]
        return [v for v in self._vars.values() if isinstance(v, Parameter)]

    def _parameter_flags(self) -> dict[str, bool] | None:
        """Parameter name -> trainable, which printing needs and the desc does not hold;
        None for a parsed program, which prints as Paddle prints a parsed desc."""
        if not self._live:
            return self._flags
        return {p.name: p.trainable for p in self.all_parameters()}

    def to_string(self, throw_on_error: bool = True, with_details: bool = False) -> str:
        return program_to_text(self.desc, self._parameter_flags())

    def __str__(self) -> str:
        return self.to_string()

    __repr__ = __str__

    def clone(self, for_test: bool = False) -> "Program":
        """A copy of the program as it is now (its desc, printed as this one prints)."""
        program = Program.from_desc(self.desc.clone(), self._parameter_flags())
        program.random_seed = self.random_seed
        if getattr(self, "lr_scheduler", None) is not None:  # as Paddle's clone
            program.lr_scheduler, program.lr_var_name = self.lr_scheduler, self.lr_var_name
        return program

    def state_dict(self, mode: str = "all", scope: Any = None) -> dict[str, Any]:
        """Persistable variables as the scope's live DenseTensors (default: global scope);
        `paddle.save` writes them as Paddle does, a plain dict of arrays."""
        scope = scope or global_scope()
        if mode not in ("all", "param", "opt"):
            raise ValueError(f"state_dict mode must be 'all', 'param' or 'opt', got {mode!r}")
        out: dict[str, Any] = {}
        for v in self.list_vars():
            if not v.persistable or v.type != "DENSE_TENSOR":
                continue
            is_param = isinstance(v, Parameter)
            if (mode == "param" and not is_param) or (mode == "opt" and is_param):
                continue
            if scope.get(v.name) is None:
                raise ValueError(f"variable {v.name!r} has no value in the scope; run the "
                                 f"startup program first")
            out[v.name] = scope.var(v.name).get_tensor()
        return out

    def set_state_dict(self, state_dict: dict[str, Any], scope: Any = None) -> None:
        scope = scope or global_scope()
        for name, value in state_dict.items():
            scope.set(name, np.array(value.numpy() if hasattr(value, "numpy") else value))


def _lookup(frame: Frame, var: Variable) -> SSAValue | None:
    """The value `var` holds in `frame`, capturing it from the frames around it."""
    value = frame.values.get(var)
    if value is not None or frame.parent is None:
        return value
    outer = _lookup(frame.parent, var)
    if outer is None:
        return None
    arg = frame.args.get(outer)
    if arg is None:
        arg = frame.block.insert_arg(outer.type, len(frame.block.args))
        frame.captured.append(outer)
        frame.args[outer] = arg
    frame.values[var] = arg
    return arg
