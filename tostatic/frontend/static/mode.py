"""Static-graph mode: `enable_static()` makes the public functions add ops to a Program.

Static mode is a builder like to_static's Tracer: each public function applies its `pd` op,
which runs its `infer` rule at once (Paddle's InferShape, so a shape mismatch is an error at
the user's line, before anything runs) and is appended to the main program's `pd` function
with Paddle's names. What the program becomes in Paddle's terms (legacy ops, VarDescs) is the
lowering's business, the same lowering jit.save uses (program.py).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from xdsl.dialects.builtin import ArrayAttr, StringAttr

from tostatic.frontend.static.initializers import append_initializer
from tostatic.frontend.static.program import Parameter, Program, Variable
from tostatic.ir import dtypes
from tostatic.ir.attr_keys import LOC_ATTR, NAMES_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import Abstract, PdOp, group_inputs
from tostatic.ops.core import Constant, Persistable
from tostatic.passes.lowering import result_var_fields
from tostatic.ir import builder as builders
from tostatic.ir.location import user_location


def make_op(op_cls: type[PdOp], values: Sequence[Any], attrs: dict[str, Any],
            results: Sequence[Abstract], names: Sequence[str], location: str | None) -> PdOp:
    """One pd op with its result types, Paddle's names for its results and the user's line."""
    op = op_cls.make(list(values), attrs, [r.tensor_type() for r in results])
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in names])
    if location:
        op.attributes[LOC_ATTR] = StringAttr(location)
    return op


def _name_order(name: str) -> tuple[str, int]:
    """`layer_norm_0.tmp_2` -> ("layer_norm_0.tmp", 2): one helper's names in creation order."""
    head, _, num = name.rpartition("_")
    return (head, int(num)) if num.isdigit() else (name, -1)


class ProgramBuilder(builders.Builder):
    """Appends ops to the block being built of the main program.

    Op outputs (and static.nn's parameters) are named by the main program's own counters, as
    Paddle 3.3.1's LayerHelpers name them: each new Program starts at fc_0 / tmp_0 again,
    apart from the global `unique_name` that names Layers and their parameters (so
    `nn.Linear`'s layer may be `linear_1` while its first call's output is `linear_0.tmp_0`)."""

    def create_parameter(self, name: str, shape: Sequence[int], dtype: Any, initializer: Any,
                         trainable: bool = True) -> Parameter:
        return create_parameter(name, shape, dtype, initializer, trainable)

    def __init__(self) -> None:
        super().__init__(lambda key: default_main_program()._name_generator(key))

    def emit(self, op_cls: type[PdOp], inputs: Sequence[Any], attrs: dict[str, Any],
             name_hint: str | None = None) -> list[Variable]:
        location = user_location()
        program = default_main_program()
        values = [program._value_of(x, op_cls.name) for x in inputs]
        results, names = self.infer(op_cls, [Abstract.of_value(v) for v in values], attrs,
                                    name_hint, location)
        if op_cls.PADDLE is None and op_cls is not Constant:  # (a literal: assign_value)
            raise UnsupportedError(f"{op_cls.name} has no Paddle op to write in static mode "
                                   f"(at {location})")
        op = make_op(op_cls, values, attrs, results, names, location)
        program._append(op)
        stop = all(x.stop_gradient for x in inputs)  # Paddle's append_op rule
        named = dict(zip((n.lstrip("*") for n in op_cls.INPUTS),
                         group_inputs(op_cls.INPUTS, list(inputs))))
        outs: list[Any] = [None] * len(op.results)
        # variables are declared in the order their names were made (layer_norm's Y,
        # layer_norm_0.tmp_2, after Mean and Variance)
        for i in sorted(range(len(op.results)), key=lambda i: _name_order(names[i])):
            n, r = names[i], op.results[i]
            updated = named.get(op_cls.UPDATES.get(i, ""))
            if isinstance(updated, Variable):  # written into that input's own variable
                program._bind(updated, r)
                outs[i] = updated
            else:
                outs[i] = program._new_var(n, r, stop, result_var_fields(n, op_cls, i, op))
        for n in names[len(results):]:  # reshape2's XShape: a variable of its own
            program._reserve(n, stop)
        return outs


# --- the mode and the default programs -------------------------------------------------------

_builder = ProgramBuilder()
_main = Program()
_startup = Program()


def enable_static() -> None:
    builders.set_static(lambda: _builder)


def disable_static(place: Any = None) -> None:
    builders.set_static(None)


def in_dynamic_mode() -> bool:
    return not builders.static_enabled()


def in_static_mode() -> bool:
    return not in_dynamic_mode()


def default_main_program() -> Program:
    return _main


def default_startup_program() -> Program:
    return _startup


@contextlib.contextmanager
def program_guard(main_program: Program, startup_program: Program | None = None
                  ) -> Iterator[None]:
    """Build into `main_program` (and `startup_program`) inside the block."""
    global _main, _startup
    if not isinstance(main_program, Program):
        raise TypeError(f"program_guard: main_program must be a Program, got "
                        f"{type(main_program).__name__}")
    saved = _main, _startup
    _main = main_program
    _startup = startup_program if startup_program is not None else _startup
    try:
        yield
    finally:
        _main, _startup = saved


def _require_static(what: str) -> None:
    if in_dynamic_mode():
        raise RuntimeError(f"{what} is only available in static mode; call "
                           f"paddle.enable_static() first")


# --- the static-only API -----------------------------------------------------------------

def data(name: str, shape: Sequence[int | None], dtype: Any = "float32",
         lod_level: int = 0) -> Variable:
    """paddle.static.data: a feed variable (None or -1 dims are filled at run time)."""
    _require_static("paddle.static.data")
    dims = tuple(-1 if d is None else int(d) for d in shape)
    program = default_main_program()
    old = program._vars.get(name)
    if old is not None:  # as Paddle: the same name is the same variable, if it fits
        if tuple(old.shape) != dims or old.dtype != dtypes.convert_dtype(dtype):
            raise ValueError(f"Variable '{name}' has been created before. The previous shape "
                             f"is {tuple(old.shape)}, the new shape is {dims}; the "
                             f"previous dtype is {old.dtype.name}, the new dtype is "
                             f"{dtypes.convert_dtype(dtype).name} (at "
                             f"{user_location()})")
        return old
    ab = Abstract(dims, dtypes.convert_dtype(dtype))
    fields = {"persistable": False, "lod_level": lod_level, "need_check_feed": True}
    return program._add_feed(lambda arg: Variable(name, arg, program.global_block(), True,
                                                  fields), ab.tensor_type())


def create_parameter(name: str, shape: Sequence[int], dtype: Any, initializer: Any,
                     trainable: bool = True) -> Parameter:
    """A parameter of the main program (a pd.persistable) plus its initialising op in the
    startup program."""
    main = default_main_program()
    param = _parameter(main, name, tuple(int(d) for d in shape), dtype, trainable,
                       lambda ty: Persistable.make([], {"var_name": name,
                                                        "trainable": trainable,
                                                        "is_parameter": True}, [ty]))
    startup = default_startup_program()
    if name not in startup._vars:
        _parameter(startup, name, tuple(shape), dtype, trainable,
                   lambda ty: append_initializer(name, tuple(shape), dtype, initializer, ty))
    return param


def _parameter(program: Program, name: str, shape: tuple[int, ...], dtype: Any,
               trainable: bool, make: Any) -> Parameter:
    """A Parameter of `program`, defined by the op `make(type)` (in the global block)."""
    op = make(Abstract(shape, dtypes.convert_dtype(dtype)).tensor_type())
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(name)])
    if name in program._vars:
        raise ValueError(f"variable {name!r} already exists in the program")
    program._append(op, root=True)
    param = Parameter(name, op.results[0], program.global_block(), trainable,
                      {"lod_level": None})
    return program._register(param, program._frames[0])  # type: ignore[return-value]
