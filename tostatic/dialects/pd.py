"""The `pd` dialect: high-level SSA tensor ops, one class an op (defined in `tostatic.ops`)."""
from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func
from xdsl.ir import Dialect

import tostatic.ops  # noqa: F401  (registers every primitive)
from tostatic.ir.attributes import ATTRIBUTES
from tostatic.ir.opdef import REGISTRY

Pd = Dialect("pd", list(REGISTRY.values()), ATTRIBUTES)


def context() -> Context:
    """An xDSL context that knows every dialect tostatic prints or parses."""
    ctx = Context()
    ctx.load_dialect(Builtin)
    ctx.load_dialect(Func)
    ctx.load_dialect(Pd)
    try:
        from tostatic.dialects.program import Program
    except ImportError:
        return ctx
    ctx.load_dialect(Program)
    return ctx
