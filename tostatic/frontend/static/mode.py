"""Static-graph mode: `enable_static()` makes the public functions append ops to a Program.

Each op runs its `infer` rule at build time (Paddle's InferShape, so a shape mismatch is an
error at the user's line, before anything runs) and is written at once as its legacy op with
the same `legacy_op` that lowering uses, so a static Program and a jit.save'd one agree.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from tostatic.frontend.static.program import Block, Parameter, Program, Variable
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.passes.lowering import legacy_op, result_var_fields
from tostatic.ir import builder as builders
from tostatic.ir.location import user_location


class ProgramBuilder(builders.Builder):
    """Appends ops to the current block of the main program.

    Op outputs (and static.nn's parameters) are named by the main program's own counters, as
    Paddle 3.3.1's LayerHelpers name them: each new Program starts at fc_0 / tmp_0 again,
    apart from the global `unique_name` that names Layers and their parameters (so
    `nn.Linear`'s layer may be `linear_1` while its first call's output is `linear_0.tmp_0`)."""

    def __init__(self) -> None:
        super().__init__(lambda key: default_main_program()._name_generator(key))

    def emit(self, op_cls: type[PdOp], inputs: Sequence[Any], attrs: dict[str, Any],
             name_hint: str | None = None) -> list[Variable]:
        location = user_location()
        block = default_main_program().current_block()
        in_vars = [self._variable(block, x, op_cls) for x in inputs]
        abstracts = [v.abstract for v in in_vars]
        results, names = self.infer(op_cls, abstracts, attrs, name_hint, location)
        if op_cls.PADDLE is None:
            raise UnsupportedError(f"{op_cls.name} has no Paddle op to write in static mode "
                                   f"(at {location})")
        stop = all(v.stop_gradient for v in in_vars)
        outs = [_create_result(block, n, r, stop, op_cls)
                for n, r in zip(names, results)]
        for n in names[len(results):]:  # reshape2's XShape: (0, *x.shape)
            x = abstracts[0]
            block.create_var(n, (0,) + x.shape, x.dtype, persistable=False, lod_level=0,
                             stop_gradient=stop)
        block.append_op(legacy_op(op_cls, attrs, [v.name for v in in_vars], abstracts,
                                  names[:len(results)], names[len(results):], location,
                                  keep_extra=True))
        return outs

    def write(self, op_cls: type[PdOp], inputs: Sequence[Any], attrs: dict[str, Any],
              outs: Sequence[Variable], infer_shape: bool = True) -> None:
        """Append an op writing existing variables (`assign` onto an outer name, select_input
        into a `_generated_var`), as Paddle's append_op with given outputs: they become
        stop_gradient when all inputs are, and the op's InferShape retypes them and gives them
        legacy_lod_level 0 (select_input's, `infer_shape=False`, leaves them as declared)."""
        location = user_location()
        block = default_main_program().current_block()
        in_vars = [self._variable(block, x, op_cls) for x in inputs]
        abstracts = [v.abstract for v in in_vars]
        results = self.infer_types(op_cls, abstracts, attrs, location)
        assert op_cls.PADDLE is not None
        for var, ab in zip(outs, results):
            if all(v.stop_gradient for v in in_vars):
                var.stop_gradient = True
            if infer_shape:
                var._set_type(ab.shape, ab.dtype)
                if op_cls.PADDLE.out_lod_level and var.desc.lod_level is None:
                    var._set_lod_level(0)
        block.append_op(legacy_op(op_cls, attrs, [v.name for v in in_vars], abstracts,
                                  [o.name for o in outs], [], location, keep_extra=True))

    @staticmethod
    def _variable(block: Block, x: Any, op_cls: type[PdOp]) -> Variable:
        if isinstance(x, Variable):
            if x.block.program is not block.program:
                raise ValueError(f"{op_cls.name}: variable {x.name} belongs to another Program")
            seen = block._find_var_recursive(x.name)
            if seen is None or seen.desc is not x.desc:
                raise ValueError(
                    f"{op_cls.name}: variable {x.name} was made in block {x.block.idx} (a "
                    f"cond branch or while_loop body) and is not visible in block {block.idx}; "
                    f"return it from the branch or body instead (at {user_location()})")
            return x
        raise TypeError(f"{op_cls.name}: in static mode inputs must be static Variables "
                        f"(from paddle.static.data or other ops), got {type(x).__name__}")


def _create_result(block: Block, name: str, ab: Abstract, stop: bool,
                   op_cls: type[PdOp]) -> Variable:
    fields = result_var_fields(name, op_cls)
    return block.create_var(name, ab.shape, ab.dtype, persistable=fields.get("persistable"),
                            lod_level=fields.get("lod_level"), stop_gradient=stop)


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
    dims = [-1 if d is None else int(d) for d in shape]
    block = default_main_program().global_block()
    if block.has_var(name):  # as Paddle: the same name is the same variable, if it fits
        old = block.var(name)
        if tuple(old.shape) != tuple(dims) or old.dtype != dtypes.convert_dtype(dtype):
            raise ValueError(f"Variable '{name}' has been created before. The previous shape "
                             f"is {tuple(old.shape)}, the new shape is {tuple(dims)}; the "
                             f"previous dtype is {old.dtype.name}, the new dtype is "
                             f"{dtypes.convert_dtype(dtype).name} (at "
                             f"{user_location()})")
        return old
    return block.create_var(name, dims, dtype, persistable=False, stop_gradient=True,
                            lod_level=lod_level, need_check_feed=True)


def create_parameter(name: str, shape: Sequence[int], dtype: Any, initializer: Any,
                     trainable: bool = True) -> Parameter:
    """A parameter in the main program plus its initialising op in the startup program."""
    from tostatic.frontend.static.initializers import append_initializer

    main = default_main_program().global_block()
    param = main.create_parameter(name, shape, dtype, trainable)
    startup = default_startup_program().global_block()
    if not startup.has_var(name):
        startup.create_parameter(name, shape, dtype, trainable)
        append_initializer(startup, name, tuple(shape), dtype, initializer)
    return param
