"""A plan bound to one input-shape signature: kernels bound to their shapes and weights, and
the buffers they write planned by liveness.

Built from a generic run that recorded every value (so every shape is known, with no shape
inference of its own). Each step is, in order of preference, a kernel from
runtime/kernels.py writing into a planned buffer (`out=`), a compiled kernel (codegen), or the
op's numpy `eager`. A buffer is reused once no value that may alias it is read any more: an
eager kernel's result may be a view of its inputs (reshape), so it keeps their buffers alive
as long as it lives. The plan's outputs are copied out, so a caller never sees a buffer that
the next run overwrites. Not reentrant: one run at a time (as a Paddle predictor).
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tostatic.codegen.threads import begin_run, end_run
from tostatic.runtime.bind_folding import bind_constants
from tostatic.runtime.conv_chain import FUSED_KIND, fuse_chains
from tostatic.runtime.kernels import FACTORIES, Bound
from tostatic.runtime.straight_line import StraightLine
from tostatic.runtime.views import view_kernel

# kinds of bound kernel a compiled kernel (codegen) beats when it has one
COMPILED_FIRST_KINDS = ("depthwise-matvec", "ufunc")


class Profile:
    """Time per op type and kernel kind, summed over the runs (Config.enable_profile); and
    per step of a bound plan, so the slowest layers can be named by their shapes."""

    SLOWEST = 12  # steps listed by `table`

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.runs = 0
        # (plan, step) -> [seconds, calls, op, kind, its shapes]
        self.steps: dict[tuple[int, int], list[Any]] = {}

    @contextlib.contextmanager
    def timing(self, op: str, kind: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[(op, kind)] += time.perf_counter() - start
        self.calls[(op, kind)] += 1

    def step(self, key: tuple[int, int], op: str, kind: str, shapes: str,
             seconds: float) -> None:
        self.seconds[(op, kind)] += seconds
        self.calls[(op, kind)] += 1
        entry = self.steps.get(key)
        if entry is None:
            self.steps[key] = [seconds, 1, op, kind, shapes]
        else:
            entry[0] += seconds
            entry[1] += 1

    def table(self) -> str:
        total = sum(self.seconds.values()) or 1.0
        runs = max(self.runs, 1)
        lines = [f"{'op':<24}{'kernel':<20}{'calls/run':>10}{'ms/run':>10}{'share':>8}"]
        for (op, kind), s in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            lines.append(f"{op:<24}{kind:<20}{self.calls[(op, kind)] / runs:>10.1f}"
                         f"{s / runs * 1e3:>10.3f}{s / total:>8.1%}")
        lines.append(f"{'total':<44}{'':>10}{total / runs * 1e3:>10.3f}  ({self.runs} runs)")
        if self.steps:
            lines.append(f"slowest steps (of {len(self.steps)}):")
            lines.append(f"{'step':>6}  {'op':<22}{'kernel':<20}{'ms/call':>10}{'share':>8}"
                         f"  shapes (first input -> output)")
            slowest = sorted(self.steps.items(), key=lambda kv: -kv[1][0])[:self.SLOWEST]
            for (_, k), (s, calls, op, kind, shapes) in slowest:
                lines.append(f"{k:>6}  {op:<22}{kind:<20}{s / calls * 1e3:>10.3f}"
                             f"{s / total:>8.1%}  {shapes}")
        return "\n".join(lines)


def _into_buffer(fn: Callable[..., list]) -> Callable[[list], Callable[..., None]]:
    """A compiled kernel (codegen: `fn(*arrays, out=[...])`) writing into a planned buffer;
    where it falls back to the op's eager (which ignores `out`), the result is copied in."""
    def bind(_: list) -> Callable[..., None]:
        def run(*arrays: np.ndarray, out: np.ndarray) -> None:
            r = fn(*arrays, out=[out])[0]
            if r is not out:
                np.copyto(out, r)
        return run
    return bind


def _eager(kernel: Callable[[list[np.ndarray]], list[np.ndarray]]) -> Callable[..., list]:
    return lambda *arrays: [np.asarray(r) for r in kernel(list(arrays))]


class BoundPlan:
    def __init__(self, body: Any, record: Sequence[Any],
                 compiled_kernel: Callable[[Any], Any],
                 folded: dict[int, np.ndarray] | None = None, recorded: bool = False):
        """`folded` and `recorded`: a warm start's (runtime/warm_start.py), whose ops are
        recorded names and attributes: the values an earlier bind folded, and its views
        (checked against the ops' kernels then) trusted."""
        self.lock = threading.Lock()  # its buffers serve one run at a time
        n_steps = len(body.steps)
        # results known at bind (shape-only ops and what follows from them and the
        # weights): constants of this plan, no step
        if folded is None:
            folded = bind_constants(body, record)
        self.folded = folded
        # each slot's recorded (shape, dtype), what a warm start's record keeps of it; False
        # for a value not an array (such a plan is not recorded)
        self.sample_specs = [(list(v.shape), v.dtype.str) if isinstance(v, np.ndarray)
                             else None if v is None else False for v in record]
        record = list(record)
        for i, value in folded.items():
            record[i] = value
        const = {i for i, _ in body.constants} | set(folded)
        last_use = [-1] * body.num_slots
        for k, (_, ins, _) in enumerate(body.steps):
            for i in ins:
                last_use[i] = k
        for i in body.outputs:
            last_use[i] = n_steps
        # choose each step's kernel
        chosen: list[tuple[str, Any]] = []  # ("bound", Bound) | ("compiled"|"numpy"|"view", fn)
        for k, op in enumerate(body.ops):
            kernel, ins, outs = body.steps[k]
            if outs and all(o in folded for o in outs):
                chosen.append(("folded", None))
                continue
            bound = None
            factory = FACTORIES.get(op.name)
            # an op of several results binds a kernel when only its first is read (layer
            # norm's Mean and Variance in inference): the others stay unset
            sample = record[outs[0]] if outs and all(
                last_use[o] < 0 for o in outs[1:]) else None
            if factory is not None and isinstance(sample, np.ndarray) and sample.size:
                bound = factory(op, op.attr_values(), [record[i] for i in ins], sample,
                                [i in const for i in ins])
            if bound is None or bound.kind in COMPILED_FIRST_KINDS:
                fn = compiled_kernel(op)
                if fn is not None:
                    if isinstance(sample, np.ndarray) and sample.size:
                        chosen.append(("bound", Bound([], _into_buffer(fn), "compiled")))
                    else:
                        chosen.append(("compiled", fn))
                    continue
            view = view_kernel(op, op.attr_values(), [record[i] for i in ins], sample,
                               recorded) if bound is None else None
            if view is not None:  # a reshape, transpose or slice: a numpy view, no copy
                chosen.append(("view", view))
                continue
            chosen.append(("bound", bound) if bound is not None else ("numpy", _eager(kernel)))
        # an expand 1x1 read only by a depthwise: one step, band by band (conv_chain.py)
        steps = list(body.steps)
        fuse_chains(body.ops, steps, chosen, record, body.outputs, Bound)
        last_use = [-1] * body.num_slots
        for k, (_, ins, _) in enumerate(steps):
            for i in ins:
                last_use[i] = k
        for i in body.outputs:
            last_use[i] = n_steps
        # each op's kernel kind (a warm start records which need their op: "compiled")
        self.kinds = [what.kind if how == "bound" else how for how, what in chosen]
        # which buffers each value may alias, and the last step any of them is read
        refs: list[frozenset[int]] = [frozenset()] * body.num_slots
        end: dict[int, int] = {}
        for k, (how, _) in enumerate(chosen):
            _, ins, outs = steps[k]
            if how == "bound":
                refs[outs[0]] = frozenset((outs[0],))
                end[outs[0]] = k
            elif how in ("folded", FUSED_KIND):
                continue  # a constant, or computed inside its reader's step: no buffer
            else:
                shared = frozenset().union(*(refs[i] for i in ins)) if ins else frozenset()
                for o in outs:
                    refs[o] = shared
        for s, buffers in enumerate(refs):
            for b in buffers:
                end[b] = max(end[b], last_use[s])
        # buffers, by liveness; scratch, shared by all steps
        free: list[np.ndarray] = []
        release: dict[int, list[np.ndarray]] = defaultdict(list)
        self.env: list[Any] = [None] * body.num_slots
        for i, value in body.constants:
            self.env[i] = value.numpy() if hasattr(value, "numpy") else value
        for i, value in folded.items():
            self.env[i] = value
        scratch_size: dict[str, int] = defaultdict(int)
        outs_of: dict[int, np.ndarray] = {}
        for k, (how, what) in enumerate(chosen):
            if how == "bound":
                o = steps[k][2][0]
                sample = record[o]
                raw = _take(free, sample.nbytes)
                outs_of[k] = raw[:sample.nbytes].view(sample.dtype).reshape(sample.shape)
                self.env[o] = outs_of[k]
                release[end[o]].append(raw)
                for name, shape, dtype in what.scratch:
                    scratch_size[name] = max(scratch_size[name],
                                             int(np.prod(shape)) * np.dtype(dtype).itemsize)
            free.extend(release.pop(k, []))
        arenas = {name: np.empty(size, np.uint8) for name, size in scratch_size.items()}
        self.steps: list[tuple[Callable[..., Any], list[int], list[int]]] = []
        # slots holding the same array every run: weights, folded values, planned buffers
        fixed = set(const) | {steps[k][2][0] for k in outs_of}
        self.labels: list[tuple[str, str]] = []
        self.shapes: list[str] = []  # each step's first input and output, for the profile
        self.at_bind: list[tuple[str, str]] = []  # (op, how) of the steps done at bind
        line = StraightLine(body.num_inputs, body.outputs)
        for k, (how, what) in enumerate(chosen):
            _, ins, outs = steps[k]
            if how in ("folded", FUSED_KIND):
                self.at_bind.append((body.ops[k].name, how))
                continue
            if how == "view" and all(i in fixed for i in ins):
                # a view of a planned buffer (or a weight) is the same view every run:
                # made once here, no step (BERT's q / k / v slices, ResNet's flatten);
                # not a reshape numpy had to copy (of a transposed view): that copy is
                # this run's values
                given = [self.env[i] for i in ins]
                made = what(*given)
                if all(np.may_share_memory(v, given[0]) for v in made):
                    for o, v in zip(outs, made):
                        self.env[o] = v
                        fixed.add(o)
                    self.at_bind.append((body.ops[k].name, "view"))
                    continue
            if how == "bound":
                views = [arenas[name][:int(np.prod(shape)) * np.dtype(dtype).itemsize]
                         .view(dtype).reshape(shape) for name, shape, dtype in what.scratch]
                run = what.bind(views)
                self.steps.append((functools.partial(run, out=outs_of[k]), ins, []))
                self.labels.append((body.ops[k].name, what.kind))
                self.shapes.append(_shapes(record, ins, outs_of[k]))
                line.into_buffer(run, ins, steps[k][2][0], outs_of[k])
            else:
                self.steps.append((what, ins, outs))
                self.labels.append((body.ops[k].name, how))
                self.shapes.append(_shapes(record, ins, record[outs[0]] if outs else None))
                line.returning(what, ins, outs)
        for i, value in enumerate(self.env[body.num_inputs:], body.num_inputs):
            if value is not None:  # weights, values folded or views made at bind, buffers
                line.constant(i, value)
        self.num_inputs = body.num_inputs
        self.outputs = body.outputs
        self._run_fast = line.function()
        self.buffer_bytes = sum(r.nbytes for r in free) + sum(
            r.nbytes for rs in release.values() for r in rs)
        self.scratch_bytes = sum(scratch_size.values())

    def run(self, arrays: Sequence[np.ndarray], profile: Profile | None = None) -> list:
        if profile is not None:
            self.env[:self.num_inputs] = arrays
            return self._run_profiled(profile)
        return self._run_fast(*arrays)

    def run_checked(self, arrays: Sequence[np.ndarray], expected: Sequence[Any]) -> list | None:
        """The first run of a plan built from shapes known before running (plan.py
        `_shapes_ahead`): every value a step returns (not one it writes into its buffer) must
        have the shape and dtype `expected` says, checked before any step reads it; None at
        the first that does not (the caller then runs the generic plan)."""
        env = self.env
        env[:self.num_inputs] = arrays
        for fn, ins, outs in self.steps:
            r = fn(*[env[i] for i in ins])
            if outs:
                for i, v in zip(outs, r):
                    want = expected[i]
                    if getattr(v, "shape", None) != want.shape or v.dtype != want.dtype:
                        return None
                    env[i] = v
        return [np.array(env[i], copy=True) for i in self.outputs]

    def _run_profiled(self, profile: Profile) -> list:
        begin_run()
        try:
            return self._profiled_steps(profile)
        finally:
            end_run()

    def _profiled_steps(self, profile: Profile) -> list:
        env = self.env
        profile.runs += 1
        clock = time.perf_counter
        for k, ((fn, ins, outs), (op, kind)) in enumerate(zip(self.steps, self.labels)):
            start = clock()
            r = fn(*[env[i] for i in ins])
            profile.step((id(self), k), op, kind, self.shapes[k], clock() - start)
            if outs:
                for i, v in zip(outs, r):
                    env[i] = v
        return [np.array(env[i], copy=True) for i in self.outputs]


def _shapes(record: Sequence[Any], ins: Sequence[int], out: Any) -> str:
    """'[1, 64, 56, 56] -> [1, 128, 28, 28]': a step's first input and its output."""
    def shape(v: Any) -> str:
        return str(list(v.shape)) if hasattr(v, "shape") else "?"
    return f"{shape(record[ins[0]]) if ins else ''} -> {shape(out)}"


def _take(free: list[np.ndarray], nbytes: int) -> np.ndarray:
    """The smallest free buffer of at least `nbytes`, or a new one."""
    best = None
    for j, raw in enumerate(free):
        if raw.nbytes >= nbytes and (best is None or raw.nbytes < free[best].nbytes):
            best = j
    if best is not None:
        return free.pop(best)
    return np.empty(max(nbytes, 1), np.uint8)
