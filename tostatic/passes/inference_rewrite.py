"""What the inference passes share (fold-batch-norm, fuse-epilogue, fold-static-shapes): the
values of weights, single uses, and new weights made from old ones.

Weights are known only when the pass runs with them in `CompileState.weights` (jit.load and
paddle.inference read them before the inference pipeline); on textual IR without them
(`tostatic opt`), these passes change nothing.
"""
from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from tostatic.ir import dtypes
from tostatic.ir.attr_keys import LOC_ATTR
from tostatic.ops.elementwise import aligned
from tostatic.ops.manipulation import Reshape, Squeeze, Unsqueeze
from tostatic.ops.core import Constant, Persistable, dense_to_array
from tostatic.passes.base import CompileState


def weight_value(v: SSAValue, state: CompileState) -> np.ndarray | None:
    """The array a persistable (with its data in the weights) or a constant holds."""
    op = v.owner
    if isinstance(op, Persistable):
        name = op.attr_values()["var_name"]
        return state.weight_array(name) if name in state.weights else None
    if isinstance(op, Constant):
        return dense_to_array(op.attr_values()["value"])
    if isinstance(op, (Reshape, Unsqueeze, Squeeze)):  # a bias shaped for broadcasting
        inner = weight_value(op.operands[0], state)
        if inner is not None:
            return np.asarray(op.run_eager([inner], op.attr_values())[0])
    return None


def only_use(v: SSAValue) -> Operation | None:
    """The one op that reads `v` (once), or None."""
    if not v.has_one_use():
        return None
    return v.get_user_of_unique_use()


def new_weight(state: CompileState, base: str, array: np.ndarray, before: Operation) -> SSAValue:
    """A new persistable `base@<n>` holding `array`, inserted before `before`."""
    name, k = base, 0
    while name in state.weights:
        k += 1
        name = f"{base}_{k}" if k > 1 else base
    state.weights[name] = array
    t = TensorType(dtypes.convert_dtype(array.dtype).element_type(), list(array.shape))
    op = Persistable.make([], {"var_name": name}, [t])
    Rewriter.insert_op(op, InsertPoint.before(before))
    return op.results[0]


def persistable_name(v: SSAValue) -> str:
    op = v.owner
    return op.attr_values()["var_name"] if isinstance(op, Persistable) else "constant"


def replace(old: Operation, new: Operation) -> None:
    """Put `new` where `old` was, with `old`'s source location, and let `old`'s first
    result's users read `new`'s."""
    if LOC_ATTR in old.attributes:
        new.attributes[LOC_ATTR] = old.attributes[LOC_ATTR]
    Rewriter.insert_op(new, InsertPoint.before(old))
    old.results[0].replace_all_uses_with(new.results[0])


def per_channel(out: tuple[int, ...], bias: tuple[int, ...], add_axis: int, axis: int,
                c: int) -> bool:
    """Whether adding `bias` to a tensor of shape `out` (elementwise axis `add_axis`) adds
    one value per channel of dim `axis`."""
    if int(np.prod(bias)) != c:
        return False
    try:
        _, b = aligned(out, bias, add_axis, "pd.add")
    except ValueError:
        return False
    b = (1,) * (len(out) - len(b)) + tuple(b)
    return len(b) == len(out) and all(d == 1 for i, d in enumerate(b) if i != axis)
