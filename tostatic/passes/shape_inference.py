"""shape-inference: re-derive result types from each op's `infer` rule and refine them."""
from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.rewriter import Rewriter
from xdsl.traits import IsTerminator

from tostatic.ir.attr_keys import LOC_ATTR
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops.core import Constant
from tostatic.passes.base import CompilePass, CompileState, register


class ShapeInferenceError(ShapeError):
    """A result type contradicts what its op's rule derives; `op` is the offender."""

    def __init__(self, message: str, op: Operation):
        super().__init__(message)
        self.op = op


def inferred(op: PdOp) -> list[Abstract] | None:
    """What the op's rule says of its results; None for ops without one (parameters)."""
    if isinstance(op, Constant):
        return [Abstract.of_type(op.attr_values()["value"].type)]
    if not hasattr(type(op), "infer"):
        return None
    return type(op).infer_results([Abstract.of_value(v) for v in op.operands], op.attr_values())


def meet(have: Abstract, want: Abstract) -> Abstract | None:
    """Both facts at once: static dims from either side; None if they contradict."""
    if not have.compatible(want):
        return None
    return Abstract(tuple(a if a >= 0 else b for a, b in zip(have.shape, want.shape)), have.dtype)


def may_retype(value: SSAValue) -> bool:
    """A value may get a more static type when every user re-derives its own types: pd ops
    without regions, and the return of a func.func (whose signature follows)."""
    for use in value.uses:
        user = use.operation
        if isinstance(user, func.ReturnOp) and isinstance(user.parent_op(), func.FuncOp):
            continue
        if not isinstance(user, PdOp) or user.regions or user.has_trait(IsTerminator):
            return False
    return True


def error(op: Operation, what: str) -> ShapeInferenceError:
    loc = op.attributes.get(LOC_ATTR)
    where = f" at {loc.data}" if loc is not None else ""
    return ShapeInferenceError(f"shape-inference: {op.name}{where}: {what}", op)


def refine(op: PdOp) -> None:
    try:
        results = inferred(op)
    except (ShapeError, TypeError, ValueError, IndexError) as e:
        raise error(op, str(e)) from None
    if results is None:
        return
    if len(results) != len(op.results):
        raise error(op, f"it has {len(op.results)} results, its rule gives {len(results)}")
    for i, (r, want) in enumerate(zip(list(op.results), results)):
        if not isinstance(r.type, TensorType):
            continue
        new = meet(Abstract.of_value(r), want)
        if new is None:
            raise error(op, f"result {i} is {r.type}, but its operands give "
                            f"{want.tensor_type()}")
        if new.tensor_type() != r.type and may_retype(r):
            Rewriter.replace_value_with_new_type(r, new.tensor_type())


def update_signature(fn: func.FuncOp) -> None:
    ret = fn.body.blocks[-1].last_op if fn.body.blocks else None
    if isinstance(ret, func.ReturnOp):
        outputs: list[Attribute] = [v.type for v in ret.operands]
        if tuple(outputs) != tuple(fn.function_type.outputs.data):
            fn.function_type = func.FunctionType.from_lists(fn.function_type.inputs.data, outputs)


def infer_shapes(module: ModuleOp) -> None:
    for op in list(module.walk()):  # definitions before uses: operands are refined first
        if isinstance(op, PdOp) and not op.regions:
            refine(op)
    for op in module.walk():
        if isinstance(op, func.FuncOp):
            update_signature(op)


@register
class ShapeInference(CompilePass):
    """Run each `pd` op's `infer` rule on its operand types again and refine its result types:
    a dynamic dim the rule now knows becomes static, and the func.func signature follows its
    return. A result type that contradicts the rule (another dtype, rank or static dim) is an
    error naming the op and the user's line (`pd.loc`).

    Never touches: dims nobody knows (they stay dynamic), static dims the rule does not know
    (they stay static), function arguments, parameters and other ops without a rule, and the
    results of ops with regions (their nested ops are inferred). A value whose users cannot
    re-derive their types (region ops, terminators other than func.return) keeps its type."""

    name = "shape-inference"

    def apply(self, module: ModuleOp, state: CompileState) -> None:
        infer_shapes(module)
