"""lower-to-program: the `pd` function becomes a `program.program` Paddle can read as it is.

The function's ops go to block 0; the regions of pd.if / pd.while become sub-blocks run by
Paddle's conditional_block / while ops (lower_control_flow.py). The machinery both share is
in lowering.py, and so are the three modes (export, live, save).
"""
from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from tostatic.dialects.program import BlockOp, ProgramOp
from tostatic.ir.opdef import Abstract
from tostatic.ops.manipulation import Assign
from tostatic.passes import lower_control_flow  # noqa: F401  (registers pd.if / pd.while)
from tostatic.passes import lower_export_forms  # noqa: F401  (registers export's forms)
from tostatic.passes.base import CompilePass, CompileState, entry, register
from tostatic.passes.lowering import (
    Lowering,
    VarTable,
    inference_program,
    input_names,
    output_names,
    result_var_fields,
)
from tostatic.serialization.paddle_version import OP_VERSION_MAP, PADDLE_VERSION


def lower_function(fn: func.FuncOp, mode: str = "export",
                   variables: VarTable | None = None) -> ProgramOp:
    """Build the ProgramDesc mirror of one function (block 0, in export and save mode with
    feed and fetch ops, then the sub-blocks of its control flow); modes as in lowering.py."""
    lowering = Lowering(fn, mode, variables)
    feeds, fetches = _lower_entry(lowering, fn)
    variables_0 = lowering.var_ops(lowering.top)
    if lowering.live:
        block0 = BlockOp.build(0, -1, variables_0, lowering.top.ops)
        program = ProgramOp.build([block0], version=PADDLE_VERSION,
                                  op_version_map=OP_VERSION_MAP)
    else:
        program = inference_program(variables_0, lowering.top.ops, feeds, fetches)
    for i in sorted(lowering.built):
        program.body.block.add_op(lowering.built[i])
    return program


def _lower_entry(lowering: Lowering, fn: func.FuncOp) -> tuple[list[str], list[str]]:
    """Block 0: the function's arguments (feeds), its ops, its results (fetches)."""
    top = lowering.top
    feeds = input_names(fn)
    wanted = output_names(fn)
    lowering.names.hinted.update(n for n in wanted if n)
    for arg, name in zip(fn.body.block.args, feeds):
        lowering.names.claim(arg, name)
        lowering.declare(top, name, Abstract.of_value(arg))
    ret = lowering.lower_ops(fn.body.block, top)
    fetches = []
    for value, want in zip(ret.operands if ret is not None else [], wanted):
        name = lowering.name_of(value, top)
        if want and want != name and want not in lowering.names.taken:
            # the value's op was merged or dropped: an assign keeps the output's name
            lowering.names.taken.add(want)
            lowering.declare(top, want, Abstract.of_value(value),
                             **result_var_fields(want, Assign))
            lowering.write(top, Assign, {}, [value], [want], None)
            name = want
        fetches.append(name)
    return feeds, fetches


@register
class LowerToProgram(CompilePass):
    """Replace the module's `pd` function by the `program.program` Paddle would have saved for
    it: Paddle's variable names (`linear_0.tmp_0`, `tmp_3`), each pd op as its legacy op with
    every attribute Paddle requires, persistables as persistable vars, and feed/fetch ops.
    `mode=live` writes what a live static Program holds instead, `mode=save` what
    static.save_inference_model writes (both read the program's variables from the state)."""

    name = "lower-to-program"
    options = {"mode": "export"}
    changes_dialect = True

    def spec(self) -> str:
        return self.name if self.values["mode"] == "export" else super().spec()

    def apply(self, module: ModuleOp, state: CompileState) -> None:
        fn = entry(module)
        program = lower_function(fn, str(self.values["mode"]), state.variables)
        module.body.block.insert_op_before(program, fn)
        module.body.block.erase_op(fn)
