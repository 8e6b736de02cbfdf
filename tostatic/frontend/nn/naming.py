"""Paddle's variable names for what one nn.functional call makes, while tracing.

Paddle's LayerHelper names the variables of one API call `<helper>_K.tmp_J`, J counting in the
order the helper *creates* them, which is not always the order of the op's results: batch_norm
creates SavedMean, SavedVariance, then Y (Y is `batch_norm_0.tmp_2`), group_norm Mean,
Variance, then Y, and the old `nn.BatchNorm` layer also makes a ReserveSpace variable that no
op of an inference file writes. `emit` runs an op like `dispatch.apply` and then gives its
results the names Paddle would, so traced programs name every variable as Paddle's jit.save
does. Eager calls (no builder) run the op as it is; static mode (whose program builder writes
names at once) has them named as the op is made.
"""
from __future__ import annotations

from typing import Any, Sequence

from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.naming import SCRATCH, helper, renamable, rename
from tostatic.ir import builder as builders
from tostatic.ir.opdef import PdOp

__all__ = ["emit", "helper"]


def emit(op_cls: type[PdOp], inputs: Sequence[Any], attrs: dict[str, Any], key: str,
         name: str | None = None, created: Sequence[int | None] | None = None) -> Any:
    """`apply(op_cls, *inputs, **attrs)` inside helper `key`, its results named in the order
    Paddle's helper creates its variables: `created` lists, in that order, the result index
    each variable is, or None for a variable Paddle makes that the op has no result for (its
    name is used up, as in Paddle). Results not listed (those written into an input's own
    variable, UPDATES) get names nobody sees."""
    builder = builders.current()
    if builder is None or created is None:
        with helper(key, name):
            return apply(op_cls, *inputs, **attrs)
    if not renamable(builder):  # static mode names the results as the op is made
        with builder.helper(key, name) as prefix:
            fresh = [builder.names(prefix + ".tmp") for _ in created]
            names = [builder.names(SCRATCH)] * (max(i for i in created if i is not None) + 1)
            for index, n in zip(created, fresh):
                if index is not None:
                    names[index] = n
            with builder.name_next(*names):
                return apply(op_cls, *inputs, **attrs)
    with builder.helper(key, name) as prefix:
        with builder.helper(SCRATCH):
            outs = apply(op_cls, *inputs, **attrs)
        results = outs if isinstance(outs, list) else [outs]
        names = [r.name for r in results]
        for index in created:
            fresh = builder.names(prefix + ".tmp")
            if index is not None:
                names[index] = fresh
        rename(results, names)
    return outs
