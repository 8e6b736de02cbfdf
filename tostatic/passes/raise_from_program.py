"""raise-from-program: a loaded `program.program` back into a `pd` function, for execution.

Feed ops become the function's arguments (in `col` order), persistable vars `pd.persistable`,
fetch ops its results; every other legacy op is raised by `Raiser` (raising.py), and
control-flow ops (`conditional_block`, `while`) turn their sub-blocks into regions
(raise_control_flow.py).
"""
from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Region

from tostatic.dialects.program import ProgramOp
from tostatic.ir.attr_keys import INPUT_NAME_ATTR
from tostatic.ir.errors import ProgramError, ToStaticError
from tostatic.passes import raise_control_flow
from tostatic.passes.base import CompilePass, CompileState, register
from tostatic.passes.lowering import name_results
from tostatic.passes.raising import Raiser


def raise_program(program: ProgramOp) -> tuple[ModuleOp, list[str], list[str], list[str]]:
    """(pd module, feed names by col, fetch var names by col, sorted persistable names)."""
    raiser = Raiser(program)
    feed_names, fetch_names, persistables = raiser.run()
    block = raiser.block
    # after the return: a fetched cond result is a select_input that fusing replaces
    raise_control_flow.fuse_conditional_pairs(block)
    ret = block.last_op
    assert isinstance(ret, func.ReturnOp)
    ftype = func.FunctionType.from_lists([a.type for a in block.args],
                                         [v.type for v in ret.operands])
    fn = func.FuncOp("main", ftype, Region(block))
    fn.arg_attrs = ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(n)})
                              for n in feed_names])
    name_results(fn, fetch_names)
    return ModuleOp([fn]), feed_names, fetch_names, persistables


@register
class RaiseFromProgram(CompilePass):
    """Replace a module's `program.program` by the equivalent `pd` function (feeds become
    arguments in `col` order, fetches results); the inverse of `lower-to-program`."""

    name = "raise-from-program"
    changes_dialect = True

    def apply(self, module: ModuleOp, state: CompileState) -> None:
        program = next(op for op in module.body.block.ops if isinstance(op, ProgramOp))
        try:
            raised, *_ = raise_program(program)
        except (ToStaticError, RecursionError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - a malformed program from a file
            raise ProgramError(f"the program cannot be raised ({type(e).__name__}: {e})") from None
        fn = raised.body.block.first_op
        assert fn is not None
        fn.detach()
        module.body.block.insert_op_before(fn, program)
        module.body.block.erase_op(program)
