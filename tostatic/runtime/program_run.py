"""Running a static Program's desc: raised to `pd` through the "load" pipeline once per
(feeds, fetches), then an execution plan per Scope that reads and writes its persistables."""
from __future__ import annotations

import weakref

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from tostatic.dialects.program import BlockOp, OpOp, ProgramOp, VarOp
from tostatic.passes.base import CompileState, entry
from tostatic.passes.lowering import input_names
from tostatic.passes.manager import PassManager
from tostatic.runtime.plan import ExecutionPlan
from tostatic.runtime.scope import Scope


class ProgramRun:
    """One program with a given feed and fetch set, raised to `pd` and planned."""

    def __init__(self, desc: ProgramOp, feed_names: list[str], fetches: list[str]):
        block0 = desc.blocks[0]
        var_of = {v.var_name: v for v in block0.vars}
        for n in fetches:
            if n not in var_of:
                raise ValueError(f"fetch {n!r} is not a variable of the program")
        body = [op for op in block0.ops if op.op_type not in ("feed", "fetch")]
        self.writes = sorted({n for op in body for n in op.output_names
                              if n in var_of and var_of[n].persistable
                              and var_of[n].var_type == "DENSE_TENSOR"})
        run_desc = with_feeds_and_fetches(desc, feed_names, fetches + self.writes)
        module = ModuleOp([run_desc])
        PassManager("load", verify="end").run(module, CompileState(), first_stage="program")
        fn = entry(module)
        self.feed_names = input_names(fn)
        self.reads = [op.attr_values()["var_name"] for op in fn.body.block.ops
                      if op.name == "pd.persistable"]
        self._fn = fn
        self._plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Scope -> plan

    def run(self, arrays: list[np.ndarray], scope: Scope) -> list[np.ndarray]:
        plan = self._plans.get(scope)
        if plan is None:
            weights = {n: _ScopeValue(scope, n) for n in self.reads}
            plan = self._plans[scope] = ExecutionPlan(self._fn, weights, self.feed_names)
        return plan.run(arrays)


class _ScopeValue:
    """A persistable read from the scope when the plan runs (so runs see each other's writes).
    Holds the scope weakly: the plan is cached under the scope and must not keep it alive."""

    def __init__(self, scope: Scope, name: str):
        self._scope, self._name = weakref.ref(scope), name

    def numpy(self) -> np.ndarray:
        scope = self._scope()
        value = scope.get(self._name) if scope is not None else None
        if value is None:
            raise RuntimeError(f"persistable variable {self._name!r} has no value in the "
                               f"scope; run the startup program first")
        return value


def with_feeds_and_fetches(desc: ProgramOp, feeds: list[str], fetches: list[str]) -> ProgramOp:
    """A copy of the program whose block 0 feeds `feeds` and fetches `fetches` (existing
    feed/fetch ops, as in a loaded inference program, are replaced)."""
    copy = desc.clone()
    block0: BlockOp = copy.blocks[0]
    ops = block0.body.block
    for op in list(block0.ops):
        if op.op_type in ("feed", "fetch"):
            ops.erase_op(op)
    names = {v.var_name for v in block0.vars}
    first = next(iter(block0.ops), None)
    for name, kind in (("feed", "FEED_MINIBATCH"), ("fetch", "FETCH_LIST")):
        if name not in names:
            var = VarOp.build(name, kind, persistable=True)
            if first is None:
                ops.add_op(var)
            else:
                ops.insert_op_before(var, first)
    first = next(iter(block0.ops), None)
    for col, n in enumerate(feeds):
        feed = OpOp.build("feed", {"X": ["feed"]}, {"Out": [n]}, {"col": ("INT", col)})
        if first is None:
            ops.add_op(feed)
        else:
            ops.insert_op_before(feed, first)
    for col, n in enumerate(fetches):
        ops.add_op(OpOp.build("fetch", {"X": [n]}, {"Out": ["fetch"]}, {"col": ("INT", col)}))
    return copy
