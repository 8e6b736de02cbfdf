"""Paddle's names for what one public call makes while tracing: the LayerHelper prefix a
user's `name=` sets, and the few results Paddle names outside any helper (`x[1:]` is
`x_slice_0`, named after its input). Eager calls (no builder) run as they are.
"""
from __future__ import annotations

import contextlib
from typing import Any, Sequence

from xdsl.dialects.builtin import ArrayAttr, StringAttr

from tostatic.frontend.tensor.dispatch import apply
from tostatic.ir import builder as builders
from tostatic.ir.attr_keys import NAMES_ATTR
from tostatic.ir.opdef import PdOp

SCRATCH = "tostatic_unnamed"  # the helper key results are first named under, then renamed


_EAGER: contextlib.AbstractContextManager = contextlib.nullcontext()


def helper(key: str, name: str | None = None) -> contextlib.AbstractContextManager:
    """Paddle's LayerHelper(key, name=name): the ops made inside share `<key>_K` (or the
    user's `name`) as the prefix of their variables; `with` gives the prefix (None when
    eager, where this costs one check)."""
    builder = builders.current()
    if builder is None:
        return _EAGER
    return builder.helper(key, name)


def renamable(builder: Any) -> bool:
    """A trace names results through the op's `pd.names` hints, which can still change after
    the op is made; static mode's program builder has declared its variables already."""
    return hasattr(builder, "captures")


def rename(results: Sequence[Any], names: Sequence[str]) -> None:
    """Give the traced results of one op these names (in result order; hints past them, the
    op's extra outputs, are kept)."""
    op = results[0].value.owner
    hinted = [s.data for s in op.attributes[NAMES_ATTR].data]
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n)
                                           for n in list(names) + hinted[len(names):]])
    for r, n in zip(results, names):
        r.name = n


def apply_as(op_cls: type[PdOp], inputs: Sequence[Any], attrs: dict[str, Any],
             key: str) -> Any:
    """`apply(op_cls, *inputs, **attrs)` with its one result named `<key>_K`, Paddle's
    `unique_name.generate_with_ignorable_key(key)` (what `x[1:]` names `x_slice_0`)."""
    builder = builders.current()
    if builder is None:
        return apply(op_cls, *inputs, **attrs)
    if not renamable(builder):
        with builder.name_next(builder.names(key)):
            return apply(op_cls, *inputs, **attrs)
    with builder.helper(SCRATCH):
        out = apply(op_cls, *inputs, **attrs)
    rename([out], [builder.names(key)])
    return out
