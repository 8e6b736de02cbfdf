"""An execution plan: a `pd` function flattened into a list of numpy kernel calls.

Built once per program; running it is a loop over (kernel, input slots, output slots) with no
IR objects touched, so the cost per op is one Python call plus the kernel. An op with regions
(pd.if, pd.while) is one step too: its kernel calls nested plans, one per region, built once.

A plan over frozen weights (a loaded model: `specialize=True`) is also bound per input-shape
signature (runtime/bound_plan.py): the first run with new shapes runs the generic steps and
records every value; later runs use kernels bound to those shapes, writing into buffers
planned by liveness, so a repeated shape allocates nothing.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.ir import Block

from tostatic.ir.attr_keys import BACKWARD_ATTR
from tostatic.codegen import compiled_kernel
from tostatic.ir.errors import FeedError
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops.control_flow import RegionOp, Yield
from tostatic.ops.core import Capture, Constant, Persistable, dense_to_array
from tostatic.ops.fused_elementwise import FusedElementwise
from tostatic.runtime.bound_plan import BoundPlan, Profile
from tostatic.runtime.memory import keep_freed_memory

Kernel = Callable[[list[np.ndarray]], list[np.ndarray]]


def _compiled(op: PdOp) -> Kernel | None:
    """The op's generated kernel (tostatic.codegen), None where the numpy kernel runs."""
    compiled = compiled_kernel(op)
    return None if compiled is None else (lambda arrays: compiled(*arrays))


def _kernel(op: PdOp) -> Kernel:
    attrs = op.attr_values()
    run = type(op).run_eager
    return lambda arrays: run(arrays, attrs)


class BlockPlan:
    """One block (a function body or a region) as numbered slots and a flat list of steps:
    its arguments take the first slots, its terminator's operands are the outputs."""

    def __init__(self, block: Block, weights: Mapping[str, Any]):
        slot: dict[Any, int] = {a: i for i, a in enumerate(block.args)}
        self.num_inputs = len(block.args)
        self.constants: list[tuple[int, Any]] = []  # (slot, array or live tensor)
        self.steps: list[tuple[Kernel, list[int], list[int]]] = []
        # the ops append-backward added (marked pd.backward): `run` runs them after the
        # others, `run_forward` / `run_backward` in two calls
        self.backward_steps: list[tuple[Kernel, list[int], list[int]]] = []
        self.outputs: list[int] = []
        self.ops: list[PdOp] = []  # the op of each (forward) step
        # (slot, var name): a forward result that is the new value of a persistable (an op's
        # UPDATES, e.g. batch_norm's MeanOut); a to_static Layer writes them into its buffers
        self.state_writes: list[tuple[int, str]] = []
        for op in block.ops:
            if isinstance(op, (func.ReturnOp, Yield)):
                self.outputs = [slot[v] for v in op.operands]
                continue
            for r in op.results:
                slot[r] = len(slot)
            if isinstance(op, Persistable):
                name = op.attr_values()["var_name"]
                if name not in weights:
                    raise KeyError(f"persistable {name!r} has no data in the weights")
                self.constants.append((slot[op.results[0]], weights[name]))
            elif isinstance(op, Constant):
                self.constants.append((slot[op.results[0]],
                                       dense_to_array(op.attr_values()["value"])))
            elif isinstance(op, Capture):
                raise ValueError("run persistable-extraction before building an execution plan")
            elif isinstance(op, RegionOp):
                nested = [BlockPlan(r.block, weights).run for r in op.regions]
                step = (op.kernel(nested), [slot[v] for v in op.operands],
                        [slot[r] for r in op.results])
                if BACKWARD_ATTR in op.attributes:  # a control-flow op's backward
                    self.backward_steps.append(step)
                else:
                    self.steps.append(step)
                    self.ops.append(op)
            elif isinstance(op, PdOp):
                steps = self.backward_steps if BACKWARD_ATTR in op.attributes else self.steps
                if steps is self.steps:
                    self.state_writes += _state_writes(op, slot)
                steps.append((_compiled(op) or _kernel(op), [slot[v] for v in op.operands],
                              [slot[r] for r in op.results]))
                if steps is self.steps:
                    self.ops.append(op)
            else:
                raise TypeError(f"cannot execute {op.name}")
        self.num_slots = len(slot)

    def run(self, arrays: Sequence[Any], record: list[Any] | None = None,
            profile: Profile | None = None) -> list[Any]:
        """`record`: filled with every slot's value (what a bound plan is built from)."""
        env = self.run_forward(arrays, profile)
        if self.backward_steps:
            _run_steps(self.backward_steps, env)
        if record is not None:
            record[:] = env
        return [env[i] for i in self.outputs]

    def run_forward(self, arrays: Sequence[Any], profile: Profile | None = None) -> list[Any]:
        """Every slot after the forward steps (arguments only backward reads may be None)."""
        env: list[Any] = [None] * self.num_slots
        env[:len(arrays)] = arrays
        for i, value in self.constants:
            env[i] = value.numpy() if hasattr(value, "numpy") else value
        if profile is None:
            _run_steps(self.steps, env)
            return env
        for op, step in zip(self.ops, self.steps):
            with profile.timing(op.name, "numpy"):
                _run_steps([step], env)
        return env

    def run_backward(self, env: list[Any], late: Mapping[int, Any]) -> list[Any]:
        """The backward steps on a forward `env`, with the arguments `late` gives by index."""
        env = list(env)
        for i, value in late.items():
            env[i] = value
        _run_steps(self.backward_steps, env)
        return [env[i] for i in self.outputs]


def _state_writes(op: PdOp, slot: Mapping[Any, int]) -> list[tuple[int, str]]:
    """The (result slot, persistable name) pairs of the results that update a persistable."""
    inputs = [n.lstrip("*") for n in op.INPUTS]
    out = []
    for i, name in op.UPDATES.items():
        source = op.operands[inputs.index(name)].owner
        if isinstance(source, Persistable):
            out.append((slot[op.results[i]], source.attr_values()["var_name"]))
    return out


def _run_steps(steps: list[tuple[Kernel, list[int], list[int]]], env: list[Any]) -> None:
    for kernel, ins, outs in steps:
        results = kernel([env[i] for i in ins])
        for i, r in zip(outs, results):
            env[i] = np.asarray(r)


class ExecutionPlan:
    """Runs one `func.func` of `pd` ops on numpy arrays, checking the feeds first.

    `specialize`: the weights are frozen arrays (a loaded model), so the plan may bind
    kernels to them and to the input shapes (one BoundPlan per shape signature)."""

    def __init__(self, fn: func.FuncOp, weights: Mapping[str, Any],
                 input_names: Sequence[str] | None = None, specialize: bool = False):
        block = fn.body.block
        self.input_abstracts = [Abstract.of_value(a) for a in block.args]
        self.input_names = list(input_names or [f"input_{i}" for i in range(len(block.args))])
        self.num_inputs = len(block.args)
        self.body = BlockPlan(block, weights)
        keep_freed_memory()  # results are allocated afresh each run (see runtime/memory.py)
        # a region op (pd.if, pd.while, pd.fused_elementwise) is one step of a bound plan
        # like any op without a bound kernel; a plan with backward steps stays generic
        self.specialize = specialize and not self.body.backward_steps
        self.bound: dict[tuple[Any, ...], BoundPlan] = {}
        # (shape, dtype, strides) of each array of the last run a bound plan ran, and that
        # plan: feeds that match it exactly need no other check (see run_hot)
        self._hot: tuple[tuple[tuple[Any, ...], ...], BoundPlan] | None = None
        self.profile: Profile | None = None

    def enable_profile(self) -> Profile:
        if self.profile is None:
            self.profile = Profile()
        return self.profile

    def check_feed(self, arrays: Sequence[np.ndarray]) -> None:
        if len(arrays) != self.num_inputs:
            raise FeedError(f"expected {self.num_inputs} inputs {self.input_names}, "
                            f"got {len(arrays)}")
        for name, spec, a in zip(self.input_names, self.input_abstracts, arrays):
            shape = tuple(a.shape)
            bad_rank = len(shape) != len(spec.shape)
            bad_dim = not bad_rank and any(s >= 0 and s != d for s, d in zip(spec.shape, shape))
            if bad_rank or bad_dim or a.dtype != spec.dtype.numpy:
                raise FeedError(
                    f"input {name!r} expects shape {list(spec.shape)} dtype {spec.dtype.name} "
                    f"(-1 = any size), but was given shape {list(shape)} dtype {a.dtype}")

    def run_hot(self, feeds: Sequence[Any]) -> list[np.ndarray] | None:
        """The outputs, when `feeds` are numpy arrays of exactly the shapes, dtypes and
        strides of the last run's (checked, contiguous) arrays: such feeds pass every check
        `check_feeds` and `check_feed` make, so the bound plan runs them directly. None
        otherwise (and while another thread runs that plan): the caller takes the checked
        path, which refuses a bad feed as it always did."""
        hot = self._hot
        if hot is None:
            return None
        keys, bound = hot
        if len(feeds) != len(keys):
            return None
        for a, key in zip(feeds, keys):
            if type(a) is not np.ndarray or (a.shape, a.dtype, a.strides) != key:
                return None
        if not bound.lock.acquire(blocking=False):
            return None
        try:
            return bound.run(feeds, self.profile)
        finally:
            bound.lock.release()

    def _remember(self, arrays: Sequence[np.ndarray], bound: BoundPlan) -> None:
        if all(type(a) is np.ndarray and a.flags.c_contiguous for a in arrays):
            self._hot = (tuple((a.shape, a.dtype, a.strides) for a in arrays), bound)

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        arrays = [np.asarray(a) for a in arrays]
        if not self.specialize:
            self.check_feed(arrays)
            if self.profile is not None:
                self.profile.runs += 1
            return self.body.run(arrays, profile=self.profile)
        signature = tuple((a.shape, a.dtype.char) for a in arrays)
        bound = self.bound.get(signature)
        if bound is not None:
            # a bound plan runs in its own buffers, one run at a time; a run from another
            # thread meanwhile takes the generic path, which keeps its values to itself
            if bound.lock.acquire(blocking=False):
                try:
                    outs = bound.run(arrays, self.profile)
                finally:
                    bound.lock.release()
                self._remember(arrays, bound)
                return outs
            self.check_feed(arrays)
            return [np.array(o, copy=True) for o in self.body.run(arrays)]
        self.check_feed(arrays)
        if self.profile is None:
            ahead = _shapes_ahead(self.body, arrays)
            if ahead is not None:  # bound first: the first run already runs bound kernels
                try:
                    bound = BoundPlan(self.body, ahead, compiled_kernel)
                    outs = bound.run_checked(arrays, ahead)
                except Exception:  # noqa: BLE001 - a shape rule wrong for a kernel, or an
                    outs = None    # error the generic run below raises again, as itself
                if outs is not None:
                    self.bound[signature] = bound
                    self._remember(arrays, bound)
                    return outs
        else:
            self.profile.runs += 1
        record: list[Any] = []
        outs = self.body.run(arrays, record, self.profile)
        self.bound[signature] = BoundPlan(self.body, record, compiled_kernel)
        return [np.array(o, copy=True) for o in outs]


def _shapes_ahead(body: BlockPlan, arrays: Sequence[np.ndarray]) -> list[Any] | None:
    """Every slot of `body` as its value would be, before running: the inputs and weights
    themselves, every op's results as empty arrays of the shape and dtype its rule (`infer`)
    gives for these inputs; None where a rule cannot tell (a shape read from a tensor's
    values, an op with regions). A bound plan built from these runs the first run itself
    (BoundPlan.run_checked, which checks them), at its speed: the generic run allocates every
    value afresh, and on ResNet-50 took a seventh of a process's start more than that."""
    values: list[Any] = [None] * body.num_slots
    values[:len(arrays)] = arrays
    for i, value in body.constants:
        values[i] = value.numpy() if hasattr(value, "numpy") else value
    for op, (_, ins, outs) in zip(body.ops, body.steps):
        try:
            given = [Abstract.of_array(np.asarray(values[i])) for i in ins]
            if isinstance(op, FusedElementwise):  # elementwise: the inputs broadcast
                shape = np.broadcast_shapes(*(a.shape for a in given))
                results = [Abstract(tuple(shape), Abstract.of_value(op.results[0]).dtype)]
            elif op.regions or not hasattr(type(op), "infer"):
                return None
            else:
                results = type(op).infer_results(given, op.attr_values())
        except Exception:  # noqa: BLE001 - a rule that needs values: the generic run tells
            return None
        if len(results) != len(outs):
            return None
        for i, a, r in zip(outs, results, op.results):
            if (min(a.shape, default=0) < 0 or a.dtype.numpy is None
                    or not Abstract.of_value(r).compatible(a)):
                return None
            values[i] = np.empty(a.shape, a.dtype.numpy)  # never written: pages untouched
    return values
