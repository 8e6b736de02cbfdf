"""The textual form of tostatic's IR: every stage prints and parses (`pd` and `program`).

Text is xDSL's generic format (dialects/context.py parses it back). Source locations live in
the discardable `pd.loc` attribute (xDSL has no MLIR `loc(...)`), so printing them is a matter
of keeping or dropping it.
"""
from __future__ import annotations

import io

from xdsl.ir import Operation
from xdsl.printer import Printer

from tostatic.ir.attr_keys import LOC_ATTR


def print_ir(op: Operation, locations: bool = False) -> str:
    """Generic-format text of `op`; `pd.loc` attributes only when `locations` is set."""
    if not locations and any(LOC_ATTR in o.attributes for o in op.walk()):
        op = op.clone()
        for o in op.walk():
            o.attributes.pop(LOC_ATTR, None)
    buf = io.StringIO()
    Printer(stream=buf, print_generic_format=True).print_op(op)
    buf.write("\n")
    return buf.getvalue()


def location_of(op: Operation) -> str | None:
    a = op.attributes.get(LOC_ATTR)
    return getattr(a, "data", None)
