"""lower-to-program: the `pd` function becomes a `program.program` Paddle can read as it is.

The function's ops go to block 0; the regions of pd.if / pd.while become sub-blocks run by
Paddle's conditional_block / while ops (lower_control_flow.py). The machinery both share is
in lowering.py.
"""
from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from tostatic.dialects.program import ProgramOp
from tostatic.ir.opdef import Abstract
from tostatic.ops.manipulation import Assign
from tostatic.passes import lower_control_flow  # noqa: F401  (registers pd.if / pd.while)
from tostatic.passes.base import CompilePass, CompileState, entry, register
from tostatic.passes.lowering import (
    LoweredBlock,
    Lowering,
    inference_program,
    input_names,
    output_names,
    result_var_fields,
    var_op,
)


def lower_function(fn: func.FuncOp) -> ProgramOp:
    """Build the ProgramDesc mirror of one traced function (block 0, feeds and fetches, then
    the sub-blocks of its control flow)."""
    lowered = lower_block(fn)
    variables = [var_op(n, v) for n, v in sorted(lowered.variables.items())]
    program = inference_program(variables, lowered.ops, lowered.feeds, lowered.fetches)
    for block in lowered.sub_blocks:
        program.body.block.add_op(block)
    return program


def lower_block(fn: func.FuncOp, keep_extra: bool | None = None) -> LoweredBlock:
    """The variables and legacy ops of one traced function; `keep_extra` as in legacy_op."""
    lowering = Lowering(fn, keep_extra)
    top = lowering.top
    feeds = input_names(fn)
    wanted = output_names(fn)
    lowering.names.hinted.update(n for n in wanted if n)
    for arg, name in zip(fn.body.block.args, feeds):
        lowering.names.claim(arg, name)
        top.declare(name, Abstract.of_value(arg))
    ret = lowering.lower_ops(fn.body.block, top)
    fetches = []
    for value, want in zip(ret.operands if ret is not None else [], wanted):
        name = lowering.name_of(value, top)
        if want and want != name and want not in lowering.names.taken:
            # the value's op was merged or dropped: an assign keeps the output's name
            lowering.names.taken.add(want)
            top.declare(want, Abstract.of_value(value), **result_var_fields(want, Assign))
            lowering.write(top, Assign, {}, [value], [want], None)
            name = want
        fetches.append(name)
    return LoweredBlock(top.variables, top.ops, feeds, fetches, lowering.parameters,
                        [lowering.built[i] for i in sorted(lowering.built)])


@register
class LowerToProgram(CompilePass):
    """Replace the module's `pd` function by the `program.program` Paddle would have saved for
    it: Paddle's variable names (`linear_0.tmp_0`, `tmp_3`), each pd op as its legacy op with
    every attribute Paddle requires, persistables as persistable vars, and feed/fetch ops."""

    name = "lower-to-program"
    changes_dialect = True

    def apply(self, module: ModuleOp, state: CompileState) -> None:
        fn = entry(module)
        program = lower_function(fn)
        module.body.block.insert_op_before(program, fn)
        module.body.block.erase_op(fn)
