"""Reading IR text: an xDSL context that knows every dialect tostatic prints, and the parser."""
from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.dialects.func import Func

from tostatic.dialects.pd import Pd
from tostatic.dialects.program import Program
from tostatic.dialects.program_parser import ProgramParser


def context() -> Context:
    """An xDSL context that knows every dialect tostatic prints or parses."""
    ctx = Context()
    for dialect in (Builtin, Func, Pd, Program):
        ctx.load_dialect(dialect)
    return ctx


def parse_ir(text: str, filename: str = "<text>") -> ModuleOp:
    """Parse text written by print_ir (a module, or one top-level op wrapped into a module)."""
    op = ProgramParser(context(), text, name=filename).parse_op()
    if isinstance(op, ModuleOp):
        return op
    return ModuleOp([op])
