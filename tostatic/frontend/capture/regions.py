"""pd.if and pd.while built on a Tracer: what the AST converter's runtime helpers and
`paddle.static.nn.cond` / `while_loop` called while tracing share.

A branch or a loop body runs the user's code with the Tracer building into a region block
(`Tracer.open_region`): outer values it reads arrive as block arguments, made on first use.
Here the regions become one op: a pd.if's two regions take the same arguments (the union of
what either read, in one order), a pd.while's body takes the loop-carried state first and the
loop invariants after. Types join (dims that differ become dynamic, ops.control_flow.join).
"""
from __future__ import annotations

from typing import Any, Sequence

from xdsl.dialects.builtin import ArrayAttr, StringAttr
from xdsl.ir import Block, SSAValue

from tostatic.frontend.capture.tracing import RegionFrame, Tracer
from tostatic.frontend.tensor import math as tensor_math
from tostatic.frontend.tensor.variable import Variable
from tostatic.ir import dtypes
from tostatic.ir.attr_keys import LOC_ATTR, NAMES_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import Abstract
from tostatic.ops.control_flow import If, Undefined, While, Yield


def condition(tracer: Tracer, pred: Any, what: str, location: str | None) -> SSAValue:
    """A one-element bool value for a pd.if / pd.while; other dtypes are cast (their truth:
    non-zero), more elements are an error, as Python's truth of a tensor is."""
    ab = Abstract.of_value(tracer.value_of(pred))
    if any(d != 1 for d in ab.shape):
        raise UnsupportedError(
            f"{what} at {location}: the condition is a tensor of shape {list(ab.shape)}, whose "
            f"truth is ambiguous; reduce it to one element (.all(), .any(), x[0])")
    if ab.dtype != dtypes.bool_:
        pred = tensor_math.cast(pred, "bool")
    return tracer.value_of(pred)


def _typed_undefined(tracer: Tracer, region: RegionFrame, like: SSAValue) -> SSAValue:
    with tracer.inside(region):
        op = Undefined.make([], {}, [like.type])
        region.block.add_op(op)
    return op.results[0]


def _unify_args(block: Block, region: RegionFrame, union: list[SSAValue]) -> None:
    """Give `block` one argument per value of `union`, in that order (the region's own
    arguments keep their uses)."""
    old = list(block.args)
    for v in union:
        arg = block.insert_arg(v.type, len(block.args))
        if v in region.args:
            region.args[v].replace_all_uses_with(arg)
        region.args[v] = arg
    for arg in old:
        block.erase_arg(arg)


def finish_if(tracer: Tracer, pred: SSAValue, regions: Sequence[RegionFrame],
              sides: Sequence[Sequence[Any]], location: str | None,
              stop_gradient: Sequence[bool]) -> list[Variable]:
    """The pd.if of two built branches yielding `sides[0]` / `sides[1]` (tensors, or None
    where the variable is not set on that side: a pd.undefined of the other side's type)."""
    yields: list[list[SSAValue | None]] = []
    for region, leaves in zip(regions, sides):
        with tracer.inside(region):
            yields.append([None if x is None else tracer.value_of(x) for x in leaves])
    for i in range(2):
        for j, v in enumerate(yields[i]):
            if v is None:
                other = yields[1 - i][j]
                assert other is not None, "a result undefined on both sides"
                yields[i][j] = _typed_undefined(tracer, regions[i], other)
    union: list[SSAValue] = []
    for region in regions:
        for v in region.captured:
            if v not in union:
                union.append(v)
    for region, values in zip(regions, yields):
        region.block.add_op(Yield.make(values, {}, []))
        _unify_args(region.block, region, union)
    op = If.new(pred, [tracer.import_value(v) for v in union], regions[0].block,
                regions[1].block)
    return _append(tracer, op, "cond", location, stop_gradient)


def _append(tracer: Tracer, op: Any, key: str, location: str | None,
            stop_gradient: Sequence[bool]) -> list[Variable]:
    prefix = tracer.names(key)
    names = [tracer.names(prefix + ".tmp") for _ in op.results]
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in names])
    if location:
        op.attributes[LOC_ATTR] = StringAttr(location)
    tracer.block.add_op(op)
    return [Variable(n, r, stop_gradient=s) for n, r, s in zip(names, op.results, stop_gradient)]


def finish_while(tracer: Tracer, region: RegionFrame, initial: Sequence[Any],
                 nexts: Sequence[Any], types: Sequence[Any], location: str | None,
                 stop_gradient: Sequence[bool]) -> list[Variable]:
    """The pd.while whose body `region` (its first arguments the loop-carried state, of
    `types`) yields `nexts`; `initial` holds the state on entry (the condition first)."""
    with tracer.inside(region):
        values = [tracer.value_of(x) for x in nexts]
    region.block.add_op(Yield.make(values, {}, []))
    init = [tracer.value_of(x) for x in initial]
    invariants = [tracer.import_value(v) for v in region.captured]
    op = While.new(init, invariants, region.block, list(types))
    return _append(tracer, op, "while", location, stop_gradient)
