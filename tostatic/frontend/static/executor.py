"""paddle.static.Executor: run a static Program's ops on the native kernels.

A run feeds named arrays, reads persistables from the scope, and writes back every
persistable the program assigns (the startup program's initialisers, for one). The program
is raised to a `pd` function once per (program state, feeds, fetches) and then cached.
"""
from __future__ import annotations

import warnings
import weakref
from typing import Any, Mapping, Sequence

import numpy as np

from tostatic.frontend.static.mode import default_main_program
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.runtime.program_run import ProgramRun
from tostatic.runtime.scope import Scope, global_scope


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
        sched = getattr(program, "lr_scheduler", None)
        if sched is not None:  # as Paddle's Executor: the scheduler's rate, before each run
            scope.set(program.lr_var_name, np.array(sched(), np.float32))
        compiled = self._compiled(program, sorted(n for n in feed if n in names), fetches)
        arrays = [np.asarray(feed[n].numpy() if hasattr(feed[n], "numpy") else feed[n])
                  for n in compiled.feed_names]
        outs = compiled.run(arrays, scope)
        for n, v in zip(compiled.writes, outs[len(fetches):]):
            scope.set(n, v)
        results = [np.array(r) for r in outs[:len(fetches)]]  # never the scope's own arrays
        if return_numpy:
            return results
        return [Tensor(r) for r in results]

    def _compiled(self, program: Any, feed_names: list[str], fetches: list[str]) -> Any:
        version, runs = self._cache.get(program, (None, {}))
        if version != program._version:  # edited since: the old runs are stale
            runs = {}
            self._cache[program] = (program._version, runs)
        key = (tuple(feed_names), tuple(fetches))
        if key not in runs:
            runs[key] = ProgramRun(program.desc, feed_names, fetches)
        return runs[key]

    def close(self) -> None:
        self._cache.clear()
