"""paddle.static.Executor and Scope: run a static Program's ops on the native kernels.

A run feeds named arrays, reads persistables from the scope, and writes back every
persistable the program assigns (the startup program's initialisers, for one). The program
is raised to a `pd` function once per (program state, feeds, fetches) and then cached.
"""
from __future__ import annotations

import contextlib
import warnings
import weakref
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from tostatic.dialects.program import BlockOp, OpOp, ProgramOp, VarOp


class Scope:
    """Name -> array: where static programs keep persistable values between runs."""

    def __init__(self) -> None:
        self._vars: dict[str, np.ndarray] = {}

    def get(self, name: str) -> np.ndarray | None:
        return self._vars.get(name)

    def set(self, name: str, value: np.ndarray) -> None:
        self._vars[name] = np.array(value)  # a copy: the caller's array stays theirs

    def find_var(self, name: str) -> "_ScopeVar | None":
        return _ScopeVar(self, name) if name in self._vars else None

    def var(self, name: str) -> "_ScopeVar":
        return _ScopeVar(self, name)

    def local_var_names(self) -> list[str]:
        return list(self._vars)


class _ScopeVar:
    """scope.find_var(name).get_tensor() as Paddle has it (np.array(t) gives the data)."""

    def __init__(self, scope: Scope, name: str):
        self._scope, self._name = scope, name

    def get_tensor(self) -> "DenseTensor":
        return DenseTensor(self._scope, self._name)


class DenseTensor:
    """A scope variable's tensor, live as Paddle's is: np.array(t) reads it, t.set() writes."""

    def __init__(self, scope: Scope, name: str):
        self._scope, self._name = scope, name

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self._scope.get(self._name)
        if copy is False:
            return a if dtype is None else a.astype(dtype, copy=False)
        return np.array(a, dtype=dtype)  # Paddle's np.array(tensor) copies too

    def set(self, value: Any, place: Any = None) -> None:
        self._scope.set(self._name, value)

    def shape(self) -> list[int]:
        return list(self._scope.get(self._name).shape)

    def __repr__(self) -> str:
        return f"DenseTensor({self._name}: {np.asarray(self)!r})"


_global_scope = Scope()


def global_scope() -> Scope:
    return _global_scope


@contextlib.contextmanager
def scope_guard(scope: Scope) -> Iterator[None]:
    """paddle.static.scope_guard: `scope` is the global scope inside the block."""
    global _global_scope
    saved, _global_scope = _global_scope, scope
    try:
        yield
    finally:
        _global_scope = saved


def _name(x: Any) -> str:
    return x if isinstance(x, str) else x.name


class Executor:
    """paddle.static.Executor: `run(program, feed, fetch_list)` returns the fetched arrays."""

    def __init__(self, place: Any = None):
        self.place = place
        # Program -> (version, {(feeds, fetches): compiled run}); weak, so a collected
        # Program's entries go with it (an id() could be reused by a new one)
        self._cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def run(self, program: Any = None, feed: Mapping[str, Any] | None = None,
            fetch_list: Sequence[Any] | Any = None, feed_var_name: str = "feed",
            fetch_var_name: str = "fetch", scope: Scope | None = None,
            return_numpy: bool = True, use_program_cache: bool = False) -> list[Any]:
        from tostatic.frontend.static.mode import default_main_program

        program = program if program is not None else default_main_program()
        scope = scope or global_scope()
        feed = dict(feed or {})
        if fetch_list is None:
            fetch_list = []
        elif not isinstance(fetch_list, (list, tuple)):
            fetch_list = [fetch_list]
        fetches = [_name(f) for f in fetch_list]
        names = program.global_block().vars
        for n in feed:
            if n not in names:  # as Paddle: ignored, with a warning
                warnings.warn(f"The variable {n} is not found in program. It is not declared "
                              f"or is pruned.", stacklevel=2)
        compiled = self._compiled(program, sorted(n for n in feed if n in names), fetches)
        arrays = [np.asarray(feed[n].numpy() if hasattr(feed[n], "numpy") else feed[n])
                  for n in compiled.feed_names]
        outs = compiled.run(arrays, scope)
        for n, v in zip(compiled.writes, outs[len(fetches):]):
            scope.set(n, v)
        results = [np.array(r) for r in outs[:len(fetches)]]  # never the scope's own arrays
        if return_numpy:
            return results
        from tostatic.frontend.tensor.tensor import Tensor

        return [Tensor(r) for r in results]

    def _compiled(self, program: Any, feed_names: list[str], fetches: list[str]) -> Any:
        version, runs = self._cache.get(program, (None, {}))
        if version != program._version:  # edited since: the old runs are stale
            runs = {}
            self._cache[program] = (program._version, runs)
        key = (tuple(feed_names), tuple(fetches))
        if key not in runs:
            runs[key] = _CompiledRun(program.desc, feed_names, fetches)
        return runs[key]

    def close(self) -> None:
        self._cache.clear()


class _CompiledRun:
    """One program with a given feed and fetch set, raised to `pd` and planned."""

    def __init__(self, desc: ProgramOp, feed_names: list[str], fetches: list[str]):
        from tostatic.passes.dead_op_elimination import DeadOpElimination
        from tostatic.passes.raise_from_program import raise_program

        block0 = desc.blocks[0]
        var_of = {v.var_name: v for v in block0.vars}
        for n in fetches:
            if n not in var_of:
                raise ValueError(f"fetch {n!r} is not a variable of the program")
        body = [op for op in block0.ops if op.op_type not in ("feed", "fetch")]
        self.writes = sorted({n for op in body for n in op.output_names
                              if n in var_of and var_of[n].persistable
                              and var_of[n].var_type == "DENSE_TENSOR"})
        run_desc = _with_feeds_and_fetches(desc, feed_names, fetches + self.writes)
        module, self.feed_names, _, _ = raise_program(run_desc)
        fn = module.body.block.first_op
        DeadOpElimination().apply(module, None)
        self.reads = [op.attr_values()["var_name"] for op in fn.body.block.ops
                      if op.name == "pd.persistable"]
        self._fn = fn
        self._plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Scope -> plan

    def run(self, arrays: list[np.ndarray], scope: Scope) -> list[np.ndarray]:
        from tostatic.runtime.plan import ExecutionPlan

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


def _with_feeds_and_fetches(desc: ProgramOp, feeds: list[str], fetches: list[str]) -> ProgramOp:
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
