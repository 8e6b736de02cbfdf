"""A bound plan's steps as one generated Python function: straight-line calls, no loop.

Running a plan as a loop over (kernel, input slots, output slots) costs, per step, a list
built from the slots, a functools.partial call merging `out=` and the loop's own bytecode:
on the MLP (three GEMMs at batch 1, 25 us of kernels) a tenth of a call. Written out as
`k3(s0, s2, s1, out=b3)` lines, a step is one call. Values live in local variables
(inputs, results returned by a step) or in the function's namespace (weights, the planned
buffers, the kernels), so nothing is looked up by index; nothing outlives a run but the
buffers. The source is made here from slot numbers only (no text from the model), so
what it runs is exactly the steps given. The run is bracketed by the thread pool's
begin_run / end_run (codegen/threads.py): its threads wake as the run starts and spin
between the run's parallel kernels, so a hand-off costs a microsecond, not a wake-up.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic.codegen.threads import begin_run, end_run


class StraightLine:
    """Collects the steps of a bound plan, in order; `function()` compiles them."""

    def __init__(self, num_inputs: int, outputs: Sequence[int]):
        self.num_inputs = num_inputs
        self.outputs = list(outputs)
        self.namespace: dict[str, Any] = {"_copy": np.array, "_begin": begin_run,
                                          "_end": end_run}
        self.lines: list[str] = []

    def _kernel(self, fn: Callable[..., Any]) -> str:
        name = f"k{len(self.lines)}"
        self.namespace[name] = fn
        return name

    def constant(self, slot: int, value: Any) -> None:
        self.namespace[f"s{slot}"] = value

    def into_buffer(self, fn: Callable[..., Any], ins: Sequence[int], slot: int,
                    buffer: np.ndarray) -> None:
        """A kernel writing its one result into `buffer`, the slot's value from now on."""
        self.namespace[f"s{slot}"] = buffer
        args = "".join(f"s{i}, " for i in ins)
        self.lines.append(f"{self._kernel(fn)}({args}out=s{slot})")

    def returning(self, fn: Callable[..., Any], ins: Sequence[int], outs: Sequence[int]) -> None:
        """A kernel returning its results (a list) for the `outs` slots."""
        args = ", ".join(f"s{i}" for i in ins)
        call = f"{self._kernel(fn)}({args})"
        if not outs:
            self.lines.append(call)
            return
        self.lines.append(f"_r = {call}")
        self.lines += [f"s{o} = _r[{j}]" for j, o in enumerate(outs)]

    def function(self) -> Callable[..., list[np.ndarray]]:
        """run(*inputs) -> copies of the outputs (the next run overwrites the buffers)."""
        params = ", ".join(f"s{i}" for i in range(self.num_inputs))
        body = self.lines + [
            "return [" + ", ".join(f"_copy(s{i}, copy=True)" for i in self.outputs) + "]"]
        source = (f"def run({params}):\n    _begin()\n    try:\n"
                  + "".join(f"        {line}\n" for line in body)
                  + "    finally:\n        _end()\n")
        code = compile(source, "<bound plan>", "exec")
        namespace = dict(self.namespace)
        exec(code, namespace)  # noqa: S102 - source made above from slot numbers only
        return namespace["run"]
