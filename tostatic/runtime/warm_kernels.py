"""The compiled elementwise kernels of a warm start's record (runtime/warm_start.py): an
elementwise op's (or a fused elementwise tree's) scalar expression, kept as JSON, and the
generated kernel made from it again, as codegen/kernels.py made it from the op.

Only the elementwise family is recorded: its kernel is its expression and its operands'
dtypes. A kernel that cannot take what it is given falls back to the op's numpy kernel: for
a recorded single op, its class (imported then); a fused tree's kernel is its region, which
a record does not hold: `NeedsModel` then, and the warm model loads the model and runs it
there.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tostatic.ir import scalar_expr as se


class NeedsModel(Exception):
    """A recorded step met what only its op can run: load the model and run it there."""


def recipe(op: Any) -> dict[str, Any] | None:
    """What a live op's compiled step is made of, if it is codegen's elementwise kernel
    (codegen/kernels.py `_elementwise`): its expression and its operands' dtypes; None for
    any other compiled kernel (softmax, layer norm, reductions, pooling: not recorded)."""
    from tostatic.codegen import kernels as codegen_kernels  # (the op classes: loaded)
    from tostatic.ir.opdef import Abstract
    from tostatic.ops.fused_elementwise import FusedElementwise

    if codegen_kernels.FACTORIES.get(type(op)) is not None:
        return None
    dtypes = [Abstract.of_value(v).dtype.name for v in op.operands]
    try:
        if isinstance(op, FusedElementwise):
            expr = op.scalar_expr()
        elif type(op).SCALAR is not None:
            expr = op.SCALAR(*(se.arg(i, d) for i, d in enumerate(dtypes)), **op.attr_values())
        else:
            return None
        nodes = encode(expr)
    except (se.NotScalar, TypeError):
        return None
    if decode(nodes) != expr:
        return None
    return {"expr": nodes, "dtypes": dtypes, "fused": isinstance(op, FusedElementwise)}


def encode(expr: se.Expr) -> list[list[Any]]:
    """The expression's DAG as nodes [kind, dtype, [arg node indices], value], the root
    last; TypeError for a value JSON would not give back."""
    nodes: list[list[Any]] = []
    seen: dict[se.Expr, int] = {}

    def visit(e: se.Expr) -> int:
        if e in seen:
            return seen[e]
        args = [visit(a) for a in e.args]
        if e.value is not None and type(e.value) not in (bool, int, float, str):
            raise TypeError(f"cannot record {type(e.value).__name__}")
        seen[e] = len(nodes)
        nodes.append([e.kind, e.dtype, args, e.value])
        return seen[e]
    visit(expr)
    return nodes


def decode(nodes: list[list[Any]]) -> se.Expr:
    made: list[se.Expr] = []
    for kind, dtype, args, value in nodes:
        made.append(se.Expr(kind, dtype, tuple(made[i] for i in args), value))
    return made[-1]


def kernel(recipe: dict[str, Any], eager: Callable[[list[Any]], list[Any]]) -> Callable[..., Any]:
    """The step's compiled kernel `(*arrays, out=None) -> [array]`, as codegen's for the op."""
    from tostatic.codegen.elementwise import ElementwiseKernel  # (llvmlite)

    compiled = ElementwiseKernel(decode(recipe["expr"]), recipe["dtypes"])
    fused = recipe["fused"]

    def call(*arrays: Any, out: Any = None) -> list[np.ndarray]:
        try:
            if tuple(np.asarray(a).dtype for a in arrays) != compiled.np_dtypes:
                raise se.NotScalar("other dtypes than the op was built for")
            return compiled(*arrays, out=out)
        except se.NotScalar:
            if fused:
                raise NeedsModel from None
            return eager(list(arrays))
    return call
