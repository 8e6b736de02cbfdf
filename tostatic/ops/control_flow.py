"""Structured control flow in the spirit of MLIR's scf: `pd.if`, `pd.while`, their `pd.yield`.

Regions are isolated from above: every value a region reads is an operand of its op and
arrives as a block argument. So an op with regions is still a function of its operands alone:
constant folding may evaluate it, dead-op elimination may drop it when nobody reads its results
(unless its EFFECTS says otherwise, see RegionOp), CSE never looks through it, and the execution
plan compiles each region into a nested plan of its own.

    %r = "pd.if"(%cond, %a, %b) ({ ^bb0(%a, %b): ... "pd.yield"(%x) },
                                 { ^bb0(%a, %b): ... "pd.yield"(%y) })
    %c, %i, %acc = "pd.while"(%c0, %i0, %acc0, %n) ({
        ^bb0(%c, %i, %acc, %n): ... "pd.yield"(%c_next, %i_next, %acc_next) })

`pd.while` keeps Paddle's shape of a loop: the condition is the first loop-carried value, the
body recomputes it. With k results, operands[:k] are the initial loop-carried state and the rest
loop invariants; the body takes all operands and yields the next state; the loop runs while
state[0] is true and its results are the final state (so the first result is always false).

An op with regions defines `kernel(regions)`, its execution semantics given one callable per
region; eager evaluation (`run_region`) and the execution plan (nested plans) both use it.
Their Paddle counterparts run a sub-block instead of a region (conditional_block, while:
dialects/program_block_ops.py says how Paddle writes them).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
from xdsl.ir import Attribute, Block, BlockArgument, Region, SSAValue
from xdsl.irdl import region_def, traits_def
from xdsl.traits import IsolatedFromAbove, IsTerminator, is_side_effect_free
from xdsl.utils.exceptions import VerifyException

from tostatic.ir import dtypes
from tostatic.ir.attributes import INT, INTS, attr
from tostatic.ir.errors import ExecutionError, ShapeError
from tostatic.ir.opdef import REGISTRY, Abstract, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A

RegionFn = Callable[[list[Any]], list[Any]]  # block arguments -> yielded values
Kernel = Callable[[list[Any]], list[Any]]


def truth(cond: np.ndarray) -> bool:
    """A condition tensor's value: Paddle requires exactly one element (0-D or [1])."""
    cond = np.asarray(cond)
    if cond.size != 1:
        raise ValueError(f"a condition must hold one element, got shape {list(cond.shape)}")
    return bool(cond.reshape(-1)[0])


def join(a: Abstract, b: Abstract, what: str) -> Abstract:
    """The type of a value that is either `a` or `b`: dims that differ become dynamic."""
    if a.dtype != b.dtype or a.ndim != b.ndim:
        raise ShapeError(f"{what}: {list(a.shape)} {a.dtype.name} vs {list(b.shape)} "
                         f"{b.dtype.name} (dtype and rank must agree)")
    return Abstract(tuple(x if x == y else -1 for x, y in zip(a.shape, b.shape)), a.dtype)


def join_all(xs: list[Abstract], what: str) -> Abstract:
    """The type of a value that is any one of `xs` (at least one)."""
    if not xs:
        raise ShapeError(f"{what} needs at least one input")
    out = xs[0]
    for i, x in enumerate(xs[1:], 1):
        out = join(out, x, f"{what} input {i}")
    return out


@pd_op
class Yield(PdOp):
    """Ends a region of pd.if / pd.while; its operands are what the region produces."""

    name = "pd.yield"
    NONDIFF = True
    INPUTS = ("*values",)
    NUM_RESULTS = 0
    traits = traits_def(IsTerminator())  # pure, but a terminator: never removed

    @staticmethod
    def eager(values: list[np.ndarray]) -> list[np.ndarray]:
        return list(values)


@pd_op
class Undefined(PdOp):
    """A var no op has written: what a Paddle var holds on the path where its
    conditional_block did not run. In practice only select_input's unchosen side; its value
    is None, so an op that does read it fails."""

    name = "pd.undefined"
    NONDIFF = True
    EFFECTS = True  # it has no value: never folded (and harmless to keep)

    @staticmethod
    def eager() -> None:
        return None


def invariant_source(v: SSAValue) -> SSAValue:
    """The value `v` holds on every run of its region: for an argument of a pd.if region or
    a loop invariant of a pd.while body, the operand it receives (followed outwards through
    nested regions); loop-carried state and everything else is itself."""
    while isinstance(v, BlockArgument) and isinstance(op := v.block.parent_op(), RegionOp):
        i = op.operand_index(v)
        if i is None:
            break
        v = op.operands[i]
    return v


def run_region(block: Block, arrays: Sequence[Any]) -> list[Any]:
    """Evaluate one region block op by op (reference semantics; the plan compiles instead)."""
    env: dict[SSAValue, Any] = dict(zip(block.args, arrays))
    for op in block.ops:
        if isinstance(op, Yield):
            return [env[v] for v in op.operands]
        assert isinstance(op, PdOp), f"cannot evaluate {op.name}"
        outs = op.run_eager([env[v] for v in op.operands], op.attr_values())
        env.update(zip(op.results, outs))
    raise ValueError("region block does not end with pd.yield")


def terminator(block: Block) -> Yield:
    term = block.last_op
    if not isinstance(term, Yield):
        raise VerifyException("a region block must end with pd.yield")
    return term


def yielded(block: Block) -> list[Abstract | None]:
    """Abstracts of what a region block yields; None where it yields a pd.undefined."""
    return [None if isinstance(v.owner, Undefined) else Abstract.of_value(v)
            for v in terminator(block).operands]


class RegionOp(PdOp):
    """Base of ops with regions. Their result types come from their regions (no `infer`);
    `kernel(regions)` is their semantics, `run_eager` evaluates them with `run_region`."""

    HAS_REGIONS = True  # pd_op gives it RecursiveMemoryEffect: the effects of the ops inside
    NUM_RESULTS = None
    traits = traits_def(IsolatedFromAbove())

    @property
    def EFFECTS(self) -> bool:  # noqa: N802  (read as op.EFFECTS like the class constants)
        """True when a nested op has effects (a random draw in a loop body), or when a region
        may yield pd.undefined (no value to fold into a constant): xDSL's
        RecursiveMemoryEffect over the EFFECTS of the ops inside."""
        return not is_side_effect_free(self)

    def kernel(self, regions: Sequence[RegionFn]) -> Kernel:
        raise NotImplementedError

    def operand_index(self, arg: BlockArgument) -> int | None:
        """The index of the operand that block argument `arg` of one of this op's regions
        holds every time the region runs, or None when it changes between runs (loop-carried
        state)."""
        raise NotImplementedError

    def drop_unused_arguments(self) -> bool:
        """Remove the operands that only feed region arguments nobody reads (a pd.if's
        arguments unused in both regions, a pd.while's unused loop invariants), with those
        arguments; say whether any went. Their producers may then be dead."""
        unused: dict[int, bool] = {}
        for region in self.regions:
            for arg in region.block.args:
                if (i := self.operand_index(arg)) is not None:
                    unused[i] = unused.get(i, True) and not arg.uses
        drop = {i for i, u in unused.items() if u}
        if not drop:
            return False
        for region in self.regions:
            for arg in reversed(region.block.args):  # later arguments first: indices hold
                if self.operand_index(arg) in drop:
                    region.block.erase_arg(arg)
        self.operands = [v for i, v in enumerate(self.operands) if i not in drop]
        return True

    def run_eager(self, arrays: Sequence[Any],  # type: ignore[override]
                  attrs: dict[str, Any]) -> list[Any]:
        """An instance method (PdOp's is a classmethod): the semantics need the regions."""
        fns = [lambda args, b=r.block: run_region(b, args) for r in self.regions]
        return self.kernel(fns)(list(arrays))

    def check_cond(self) -> None:
        c = Abstract.of_value(self.operands[0])
        if c.dtype != dtypes.bool_ or any(d > 1 for d in c.shape):
            raise VerifyException(f"{self.name}: the condition must be a one-element bool "
                                  f"tensor, got {list(c.shape)} {c.dtype.name}")

    def check_region(self, region: Region, what: str, arg_types: Sequence[Attribute],
                     results: Sequence[SSAValue]) -> None:
        block = region.block
        if [a.type for a in block.args] != list(arg_types):
            raise VerifyException(f"{self.name}: {what} region takes "
                                  f"{[str(a.type) for a in block.args]}, expected "
                                  f"{[str(t) for t in arg_types]}")
        got = yielded(block)
        if len(got) != len(results):
            raise VerifyException(f"{self.name}: {what} region yields {len(got)} values, "
                                  f"the op has {len(results)} results")
        for i, (g, r) in enumerate(zip(got, results)):
            if g is not None and not g.compatible(Abstract.of_value(r)):
                raise VerifyException(f"{self.name}: {what} region yields {list(g.shape)} "
                                      f"{g.dtype.name} as result {i}, which is {r.type}")


@pd_op
class If(RegionOp):
    """Runs `then` when the one-element bool `cond` is true, else `else`; both regions take
    the operands after `cond` and the results are what the region that ran yields."""

    name = "pd.if"
    INPUTS = ("cond", "*args")
    then_region = region_def("single_block")
    else_region = region_def("single_block")

    def kernel(self, regions: Sequence[RegionFn]) -> Kernel:
        then_fn, else_fn = regions
        return lambda arrays: (then_fn if truth(arrays[0]) else else_fn)(arrays[1:])

    def operand_index(self, arg: BlockArgument) -> int | None:
        return 1 + arg.index  # both regions take the operands after cond

    @classmethod
    def new(cls, cond: SSAValue, args: Sequence[SSAValue], then_block: Block,
            else_block: Block) -> "If":
        """An if from two blocks ending in pd.yield; result types join what they yield."""
        types = []
        then_values = terminator(then_block).operands
        for i, (t, e) in enumerate(zip(yielded(then_block), yielded(else_block))):
            if t is None or e is None:
                types.append(then_values[i].type if t is None and e is None
                             else (t or e).tensor_type())
            else:
                types.append(join(t, e, f"pd.if result {i}").tensor_type())
        return cls(operands=[[cond, *args]], result_types=[types],
                   regions=[Region(then_block), Region(else_block)])

    def vjp(self, e: Any, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        """A pd.if on the same condition whose branches are the branches' backwards (each
        recomputes its branch's forward). A random draw in a branch (dropout) is not
        redrawn: this if is rebuilt to also yield what it drew (zeros from the other
        branch), and the backward reads that."""
        refuse_effects(self, e, allow_top=True)
        cond, args = inputs
        wrt = [i for i, (v, need) in enumerate(zip(args, needs[1]))
               if need and Abstract.of_value(v).dtype.is_floating]
        cts_of = [j for j, r in enumerate(outputs) if Abstract.of_value(r).dtype.is_floating]
        if not wrt:
            return [None, [None] * len(args)]
        drawn = [[r for o in reg.block.ops if isinstance(o, PdOp) and o.EFFECTS
                  for r in o.results] for reg in self.regions]
        fwd, saved = self._yield_drawn(drawn) if any(drawn) else (self, [])
        every = [v for d in drawn for v in d]
        blocks = [e.grad_region(region.block, wrt, cts_of,
                                [(v.type, v if v in drawn[k] else None) for v in every])
                  for k, region in enumerate(fwd.regions)]
        op = If.new(cond, [*args, *(cts[j] for j in cts_of), *saved], *blocks)
        grads = dict(zip(wrt, e.insert(op)))
        return [None, [grads.get(i) for i in range(len(args))]]

    def _yield_drawn(self, drawn: list[list[Any]]) -> tuple["If", list[Any]]:
        """Replace this op by one that also yields the values `drawn` in each region (the
        other region yields zeros in their place); returns it and those new results."""
        every = [v for d in drawn for v in d]
        for v in every:
            if any(d < 0 for d in Abstract.of_value(v).shape):
                raise NotImplementedError(f"{self.name}: cannot train through a random "
                                          f"draw of dynamic shape in a branch")
        blocks = []
        for k, region in enumerate(self.regions):
            block = region.block
            term = terminator(block)
            extra = []
            for v in every:
                if v in drawn[k]:
                    extra.append(v)
                    continue
                a = Abstract.of_value(v)
                full = REGISTRY["pd.full"]
                attrs = full.normalize_attrs({"shape": a.shape, "value": 0.0, "dtype": a.dtype})
                zero = full.make([], attrs, [a.tensor_type()])
                block.insert_op_before(zero, term)
                extra.append(zero.results[0])
            block.insert_op_before(Yield.make([*term.operands, *extra], {}, []), term)
            block.erase_op(term)
            blocks.append(region.detach_block(block))
        new = If.new(self.operands[0], list(self.operands[1:]), *blocks)
        parent = self.parent_block()
        parent.insert_op_before(new, self)
        for old, r in zip(self.results, new.results):
            old.replace_all_uses_with(r)
        parent.erase_op(self)
        return new, list(new.results[len(self.results):])

    def verify_(self) -> None:
        self.check_cond()
        arg_types = [v.type for v in self.operands[1:]]
        self.check_region(self.then_region, "then", arg_types, self.results)
        self.check_region(self.else_region, "else", arg_types, self.results)


MAX_WHILE_ENV = "TOSTATIC_MAX_WHILE_ITERATIONS"


def max_while_iterations() -> int:
    """How many iterations one pd.while may run before it is taken for an endless loop (a
    model file can hold one): $TOSTATIC_MAX_WHILE_ITERATIONS, else ten million."""
    try:
        return max(1, int(os.environ.get(MAX_WHILE_ENV, "10000000")))
    except ValueError:
        return 10_000_000


@pd_op
class While(RegionOp):
    """`state = operands[:k]; while state[0]: state = body(*state, *operands[k:])`, with k the
    number of results; the results are the final state. A loop that never runs returns its
    initial state."""

    name = "pd.while"
    INPUTS = ("cond", "*args")
    body = region_def("single_block")

    def kernel(self, regions: Sequence[RegionFn]) -> Kernel:
        (body,) = regions
        k = len(self.results)

        limit = max_while_iterations()

        def run(arrays: list[Any]) -> list[Any]:
            state, invariants = list(arrays[:k]), list(arrays[k:])
            n = 0
            while truth(state[0]):
                n += 1
                if n > limit:
                    raise ExecutionError(f"{self.name} ran more than {limit} iterations: an "
                                         f"endless loop? (${MAX_WHILE_ENV} raises the limit)")
                state = body(state + invariants)
            return state
        return run

    def operand_index(self, arg: BlockArgument) -> int | None:
        k = len(self.results)  # the body's first k arguments are the loop-carried state
        return arg.index if arg.index >= k else None

    def vjp(self, e: Any, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        """One pd.while_grad: it reruns the loop keeping each iteration's state (the stack),
        then runs the body's backward over it in reverse."""
        refuse_effects(self, e)
        operands = [inputs[0], *inputs[1]]
        k = len(outputs)
        floats = [i for i, v in enumerate(operands) if Abstract.of_value(v).dtype.is_floating]
        state = [i for i in floats if i < k]
        wrt = state + [i for i in floats if i >= k and ([True] + needs[1])[i]]
        if not wrt:
            return [None, [None] * len(inputs[1])]
        body = self.body.block
        grad = e.grad_region(body, wrt, state)
        op = WhileGrad(operands=[[*operands, *(cts[j] for j in state)]],
                       result_types=[[operands[i].type for i in wrt]],
                       regions=[self.body.clone(), Region(grad)],
                       properties={"num_state": INT.to_attr(k), "wrt": INTS.to_attr(wrt)})
        grads = dict(zip(wrt, e.insert(op)))
        return [None, [grads.get(i) for i in range(1, len(operands))]]

    @classmethod
    def new(cls, state: Sequence[SSAValue], invariants: Sequence[SSAValue],
            body: Block, result_types: Sequence[Attribute]) -> "While":
        return cls(operands=[[*state, *invariants]], result_types=[list(result_types)],
                   regions=[Region(body)])

    def verify_(self) -> None:
        k = len(self.results)
        if k < 1 or len(self.operands) < k:
            raise VerifyException(f"pd.while: {k} results need at least {k} operands "
                                  f"(the condition first), it has {len(self.operands)}")
        self.check_cond()
        for i, (v, r) in enumerate(zip(self.operands, self.results)):
            if not Abstract.of_value(v).compatible(Abstract.of_value(r)):
                raise VerifyException(f"pd.while: initial value {i} is {v.type}, "
                                      f"result {i} is {r.type}")
        # the loop-carried block arguments have the result types (dims that change between
        # iterations are dynamic there), the invariant ones their operands' types
        arg_types = [*self.result_types, *(v.type for v in self.operands[k:])]
        self.check_region(self.body, "body", arg_types, self.results)


def refuse_effects(op: RegionOp, e: Any, allow_top: bool = False) -> None:
    """The rules rerun a region's forward: only right when it draws no random numbers
    (`allow_top`: pd.if saves the draws made directly in its branches)."""
    top = {o for r in op.regions for o in r.block.ops} if allow_top else set()
    inner = [o for r in op.regions for o in r.walk()
             if isinstance(o, PdOp) and (o.UPDATES or (o.EFFECTS and not o.regions
                                                        and o not in top)
                                         or (o.regions and o.EFFECTS and allow_top))]
    if inner:
        raise NotImplementedError(
            f"{op.name}: cannot train through it: its {inner[0].name} has effects (random "
            f"numbers or a running-statistics update) that rerunning the region for the "
            f"gradient would repeat; move it out of the tensor-dependent branch or loop")
    if not hasattr(e, "grad_region"):
        raise NotImplementedError(f"{op.name}: differentiated only in a pd function")


@pd_op
class WhileGrad(RegionOp):
    """The backward of a pd.while (built by its rule, run in a training program only).
    Operands: the loop's operands, then the cotangents of its floating state results
    (`wrt` lists first those state indexes, then the invariants' that get a cotangent);
    regions: the loop body and its backward (`grad_region`); results: the cotangents of the
    operands `wrt` names. It reruns the loop keeping every iteration's state (the stack),
    then steps back through them with the backward region, summing the invariants'."""

    name = "pd.while_grad"
    NONDIFF = True
    INPUTS = ("*args",)
    ATTRS = {"num_state": attr(INT), "wrt": attr(INTS)}
    body = region_def("single_block")
    grad = region_def("single_block")

    def kernel(self, regions: Sequence[RegionFn]) -> Kernel:
        body, grad = regions
        attrs = self.attr_values()
        k, wrt = attrs["num_state"], attrs["wrt"]
        n = len(self.body.block.args)
        num_state = sum(1 for i in wrt if i < k)
        inv_wrt = [i for i in wrt if i >= k]
        limit = max_while_iterations()

        def run(arrays: list[Any]) -> list[Any]:
            state, invariants, cts = list(arrays[:k]), list(arrays[k:n]), list(arrays[n:])
            stack = []
            while truth(state[0]):
                if len(stack) >= limit:
                    raise ExecutionError(f"{self.name} ran more than {limit} iterations")
                stack.append(state)
                state = body(state + invariants)
            sums = [np.zeros_like(np.asarray(arrays[i])) for i in inv_wrt]
            for saved in reversed(stack):
                out = grad(saved + invariants + cts)
                cts = list(out[:num_state])
                sums = [s + np.asarray(g) for s, g in zip(sums, out[num_state:])]
            return cts + sums
        return run

    def operand_index(self, arg: BlockArgument) -> int | None:
        return None  # keeps every operand: both regions read them by position


def region_block(arg_types: Sequence[Attribute],
                 build: Callable[[Block, list[SSAValue]], Sequence[SSAValue]]) -> Block:
    """A block with `arg_types` arguments: `build(block, args)` adds ops and returns the
    values to yield."""
    block = Block(arg_types=list(arg_types))
    values = build(block, list(block.args))
    block.add_op(Yield.make(list(values), {}, []))
    return block


@pd_op
class SelectInput(PdOp):
    """Paddle's `select_input`: X[Mask]. The faithful form of a `static.nn.cond` output
    (X = [false-branch value, true-branch value], Mask = int32(cond)); raising fuses the
    pattern into one pd.if where it recognises it."""

    name = "pd.select_input"
    INPUTS = ("mask", "*xs")
    PADDLE = Legacy("select_input", {"X": "*xs", "Mask": "mask"}, {"Out": 0},
                    keeps_extra_attrs=True)
    NAME_HINT = "select_input"

    @staticmethod
    def infer(mask: Abstract, xs: list[Abstract]) -> Abstract:
        return join_all(xs, "pd.select_input")

    @staticmethod
    def eager(mask: np.ndarray, xs: list[np.ndarray]) -> np.ndarray:
        i = int(np.asarray(mask).reshape(-1)[0])
        if not 0 <= i < len(xs):
            raise ValueError(f"select_input: mask {i} is out of range for {len(xs)} inputs")
        return xs[i]

    @classmethod
    def vjp(cls, e: Any, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        """The cotangent goes to the input the mask picked (0 to the others)."""
        mask, xs = inputs
        g = cts[0]
        picked = [A.mask(e, A.e(e, "pd.equal", mask, A.full_like(e, mask, float(i))), g)
                  for i in range(len(xs))]
        return [None, [A.mul(e, g, p) if need else None
                       for p, need in zip(picked, needs[1])]]
