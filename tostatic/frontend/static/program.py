"""Static-mode Program, Block, Variable and Operator: Paddle's Python views of a ProgramDesc.

The `program` dialect is the truth (a Program owns one `program.program` op and edits it in
place); these classes only give it Paddle's names and behaviour, so printing, saving and
running a Program all read the same IR that jit.save writes.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, StringAttr, i1, i32, i64

from tostatic.dialects.program import BlockOp, OpOp, ProgramOp, VarOp
from tostatic.frontend.tensor.tensor import TensorMethods
from tostatic.ir.names import NameGenerator
from tostatic.ir import dtypes
from tostatic.runtime.scope import global_scope
from tostatic.serialization.paddle_version import OP_VERSION_MAP, PADDLE_VERSION


class Variable(TensorMethods):
    """A symbolic variable of a static Program (no data: an Executor computes it)."""

    def __init__(self, block: "Block", desc: VarOp):
        self.block = block
        self.desc = desc

    # --- Paddle's attributes --------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.desc.var_name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.desc.shape or ())

    @property
    def dtype(self) -> dtypes.DType:
        return self.desc.dtype

    @property
    def type(self) -> str:
        return self.desc.var_type

    @property
    def lod_level(self) -> int:
        return self.desc.lod_level or 0

    @property
    def persistable(self) -> bool:
        return self.desc.persistable

    @persistable.setter
    def persistable(self, value: bool) -> None:
        self.desc.properties["persistable"] = IntegerAttr(int(bool(value)), i1)
        self.block.program._version += 1

    @property
    def stop_gradient(self) -> bool:
        return self.desc.stop_gradient

    @stop_gradient.setter
    def stop_gradient(self, value: bool) -> None:
        self.desc.properties["stop_gradient"] = IntegerAttr(int(bool(value)), i1)

    def _set_type(self, shape: Iterable[int], dtype: Any) -> None:
        """What an op's InferShape does to an existing output (assign onto a loop variable)."""
        self.desc.properties["shape"] = DenseArrayBase.from_list(i64, [int(d) for d in shape])
        self.desc.properties["dtype"] = StringAttr(dtypes.convert_dtype(dtype).name)
        self.block.program._version += 1

    def _set_lod_level(self, level: int) -> None:
        self.desc.properties["lod_level"] = IntegerAttr(level, i32)
        self.block.program._version += 1

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def abstract(self):
        from tostatic.ir.opdef import Abstract

        return Abstract(self.shape, self.dtype)

    def __repr__(self) -> str:
        from tostatic.serialization.program_text import var_to_text

        return var_to_text(self.desc, self.block.program._parameter_flags())

    __str__ = __repr__

    def __bool__(self) -> bool:
        from tostatic.ir.errors import UnsupportedError

        raise UnsupportedError(f"static variable {self.name} has no value at build time; "
                               f"it cannot be used as a Python bool")

    __hash__ = object.__hash__

    def numpy(self):
        raise TypeError(f"static variable {self.name} has no data; run the program with an "
                        f"Executor and fetch it")


class Parameter(Variable):
    """A persistable, trainable variable created by a layer (fc_0.w_0)."""

    def __init__(self, block: "Block", desc: VarOp, trainable: bool = True):
        super().__init__(block, desc)
        self.trainable = trainable


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
        from tostatic.serialization.program_text import op_to_text

        return op_to_text(self.desc)

    __str__ = __repr__


class Block:
    """One block of a Program: its variables (in creation order) and ops."""

    def __init__(self, program: "Program", desc: BlockOp):
        self.program = program
        self.desc = desc
        self._vars: dict[str, Variable] = {v.var_name: Variable(self, v) for v in desc.vars}
        self._ops: list[Operator] = [Operator(self, o) for o in desc.ops]

    @property
    def idx(self) -> int:
        return self.desc.idx

    @property
    def parent_idx(self) -> int:
        return self.desc.parent_idx

    @property
    def vars(self) -> dict[str, Variable]:
        return dict(self._vars)

    @property
    def ops(self) -> list[Operator]:
        return list(self._ops)

    def has_var(self, name: str) -> bool:
        return name in self._vars

    def var(self, name: str) -> Variable:
        if name not in self._vars:
            raise ValueError(f"var {name} not in this block")
        return self._vars[name]

    @property
    def parent(self) -> "Block | None":
        return self.program.blocks[self.parent_idx] if self.parent_idx >= 0 else None

    def _find_var_recursive(self, name: str) -> Variable | None:
        """The variable `name` as this block sees it: its own, else its ancestors'."""
        block: Block | None = self
        while block is not None:
            if name in block._vars:
                return block._vars[name]
            block = block.parent
        return None

    def _var_recursive(self, name: str) -> Variable:
        var = self._find_var_recursive(name)
        if var is None:
            raise ValueError(f"var {name} is not in block {self.idx} nor its parents")
        return var

    def _generated_name(self) -> str:
        """A name for a variable created without one: Paddle's `_generated_var_N`, counted
        per Program, skipping names this block already sees."""
        while True:
            name = self.program._name_generator("_generated_var")
            if self._find_var_recursive(name) is None:
                return name

    def all_parameters(self) -> list[Parameter]:
        return [v for v in self._vars.values() if isinstance(v, Parameter)]

    def create_var(self, name: str, shape: Iterable[int] | None = None, dtype: Any = "float32",
                   persistable: bool | None = False, stop_gradient: bool = False,
                   type: str = "DENSE_TENSOR", lod_level: int | None = None,
                   is_parameter: bool | None = None, trainable: bool | None = None,
                   need_check_feed: bool | None = None) -> Variable:
        if name in self._vars:
            raise ValueError(f"variable {name!r} already exists in block {self.idx}")
        tensor = type == "DENSE_TENSOR"
        desc = VarOp.build(name, type, dtypes.convert_dtype(dtype) if tensor else None,
                           [int(d) for d in shape] if tensor and shape is not None else None,
                           persistable, lod_level=lod_level if tensor else None,
                           is_parameter=is_parameter, stop_gradient=stop_gradient,
                           need_check_feed=need_check_feed)
        first_op = next(iter(self.desc.ops), None)
        if first_op is None:
            self.desc.body.block.add_op(desc)
        else:
            self.desc.body.block.insert_op_before(desc, first_op)
        var = (Parameter(self, desc, bool(trainable)) if trainable is not None
               else Variable(self, desc))
        self._vars[name] = var
        self.program._version += 1
        return var

    def create_parameter(self, name: str, shape: Iterable[int], dtype: Any = "float32",
                         trainable: bool = True) -> Parameter:
        var = self.create_var(name, shape, dtype, persistable=True, stop_gradient=not trainable,
                              is_parameter=True, trainable=trainable)
        assert isinstance(var, Parameter)
        return var

    def append_op(self, desc: OpOp) -> Operator:
        self.desc.body.block.add_op(desc)
        op = Operator(self, desc)
        self._ops.append(op)
        self.program._version += 1
        return op

    def __repr__(self) -> str:
        from tostatic.serialization.program_text import block_to_text

        return block_to_text(self.desc, self.program._parameter_flags())


class Program:
    """paddle.static.Program: blocks of ops over named variables, printed and run as Paddle's."""

    def __init__(self) -> None:
        self.desc = ProgramOp.build([BlockOp.build(0, -1)], version=PADDLE_VERSION,
                                    op_version_map=OP_VERSION_MAP)
        self.blocks = [Block(self, self.desc.blocks[0])]
        self._current = 0
        self.random_seed = 0
        self._live = True  # built here (creation order, Parameters) rather than parsed
        self._version = 0  # bumped by every edit: the Executor's compiled runs key on it
        self._name_generator = NameGenerator()  # op outputs: fc_0.tmp_0, tmp_3, ...

    @classmethod
    def from_desc(cls, desc: ProgramOp) -> "Program":
        program = cls.__new__(cls)
        program.desc = desc
        program.blocks = [Block(program, b) for b in desc.blocks]
        program._current = 0
        program.random_seed = 0
        program._live = False
        program._version = 0
        program._name_generator = NameGenerator()
        return program

    def global_block(self) -> Block:
        return self.blocks[0]

    def current_block(self) -> Block:
        return self.blocks[self._current]

    def _create_block(self, parent_idx: int | None = None) -> Block:
        """A new block, child of the current one (or of `parent_idx`), which becomes current:
        static.nn.cond / while_loop build their sub-blocks in it."""
        parent = self._current if parent_idx is None else parent_idx
        desc = BlockOp.build(len(self.blocks), parent)
        self.desc.body.block.add_op(desc)
        self.blocks.append(Block(self, desc))
        self._current = desc.idx
        self._version += 1
        return self.blocks[-1]

    def _rollback(self) -> None:
        """Back to the current block's parent, once a sub-block is complete."""
        self._current = self.current_block().parent_idx

    def block(self, index: int) -> Block:
        return self.blocks[index]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def list_vars(self) -> Iterable[Variable]:
        for block in self.blocks:
            yield from block._vars.values()

    def all_parameters(self) -> list[Parameter]:
        return [p for b in self.blocks for p in b.all_parameters()]

    def _parameter_flags(self) -> dict[str, bool] | None:
        """Parameter name -> trainable, which printing needs and the desc does not hold;
        None for a parsed program, which prints as Paddle prints a parsed desc."""
        if not self._live:
            return None
        return {p.name: p.trainable for p in self.all_parameters()}

    def to_string(self, throw_on_error: bool = True, with_details: bool = False) -> str:
        from tostatic.serialization.program_text import program_to_text

        return program_to_text(self.desc, self._parameter_flags())

    def __str__(self) -> str:
        return self.to_string()

    __repr__ = __str__

    def clone(self, for_test: bool = False) -> "Program":
        program = Program.from_desc(self.desc.clone())
        program._live = self._live
        for p in self.all_parameters():
            block = program.blocks[p.block.idx]
            block._vars[p.name] = Parameter(block, block._vars[p.name].desc, p.trainable)
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
