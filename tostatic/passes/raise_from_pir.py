"""Raising a Paddle 3.x PIR program (serialization/pir_json.py) into a `pd` function.

The PIR program is already SSA with structured control flow, so raising is a walk: pd_op.data
ops become the function's arguments (in program order, as Paddle Inference lists its inputs),
builtin.parameter ops `pd.persistable`, pd_op.fetch ops its results (in `col` order, named
as Paddle names them: fetch_name_0, ...), and every other op is raised by its entry in
pir_ops.PIR_OPS. builtin.combine / split / slice only regroup values (vectors).

Control flow: pd_op.if (two regions, each ending in cf.yield) and pd_op.while (operands:
condition then loop-carried values; one body region whose arguments are those values and
which yields the next condition and values) read outer values directly; our pd.if / pd.while
regions are isolated from above, so the outer values a region reads (its free values, nested
regions included) become operands of the op and arguments of its blocks. PIR's while results
are its loop values; ours put the condition first.

Unsupported ops, attributes and operands fail with UnsupportedError naming the file, the
op's JSON path (`program.regions[0].blocks[0].ops[12]`) and the op name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Block, Region, SSAValue

import tostatic.dialects.pd  # noqa: F401  (registers every pd op the table names)
from tostatic.ir.attr_keys import INPUT_NAME_ATTR, NAMES_ATTR
from tostatic.ir.errors import ToStaticError, UnsupportedError
from tostatic.ir.opdef import Abstract
from tostatic.ops.control_flow import If, While, Yield
from tostatic.ops.core import Persistable
from tostatic.passes.lowering import name_results
from tostatic.passes.pir_ops import rule_for
from tostatic.passes.pir_raising import (
    Const,
    Dim,
    Entry,
    MissingValue,
    OpContext,
    Scope,
    Sym,
    tensor_abstract,
)
from tostatic.serialization.pir_json import (
    PirBlock,
    PirFormatError,
    PirOp,
    PirProgram,
    PirRegion,
)


@dataclass
class PirParameter:
    """A builtin.parameter: its variable in .pdiparams and the flags .pdiparams.info keeps."""

    name: str
    is_parameter: bool
    trainable: bool
    stop_gradient: bool


@dataclass
class RaisedPir:
    module: ModuleOp
    feed_names: list[str]
    fetch_names: list[str]
    parameters: list[PirParameter] = field(default_factory=list)  # in file order

    def info(self) -> dict[str, dict[str, Any]]:
        """.pdiparams.info entries, as jit.save writes them (PIR keeps no state-dict keys:
        the structured name is the variable's)."""
        out: dict[str, dict[str, Any]] = {}
        for p in self.parameters:
            entry: dict[str, Any] = {"structured_name": p.name,
                                     "stop_gradient": p.stop_gradient}
            if p.is_parameter:
                entry["trainable"] = p.trainable
            out[p.name] = entry
        return out


def raise_pir(program: PirProgram) -> RaisedPir:
    """The `pd` module of a PIR program (see the module docstring)."""
    try:
        return _PirRaiser(program).run()
    except (ToStaticError, RecursionError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - a malformed program from a file
        raise PirFormatError(program.source, "program", f"cannot be raised "
                             f"({type(e).__name__}: {e})") from None


class _PirRaiser:
    def __init__(self, program: PirProgram):
        self.program = program
        self.feeds: list[str] = []
        self.fetches: list[tuple[int, str, SSAValue]] = []
        self.parameters: list[PirParameter] = []

    def fail(self, op: PirOp, reason: str) -> UnsupportedError:
        return UnsupportedError(f"{self.program.source}: {op.path} ({op.name}): {reason}")

    def run(self) -> RaisedPir:
        if len(self.program.regions) != 1 or len(self.program.regions[0].blocks) != 1:
            raise UnsupportedError(f"{self.program.source}: program.regions: expected one "
                                   f"region of one block at the top level")
        top = Scope(Block())
        self.raise_block(self.program.regions[0].blocks[0], top, top=True)
        self.fetches.sort(key=lambda f: f[0])
        cols = [c for c, _, _ in self.fetches]
        if cols != list(range(len(cols))):
            raise UnsupportedError(f"{self.program.source}: "
                                   f"{self.program.regions[0].blocks[0].path}: the fetch ops' "
                                   f"col attributes are {cols}, expected 0..{len(cols) - 1}")
        results = [v for _, _, v in self.fetches]
        top.block.add_op(func.ReturnOp(*results))
        ftype = func.FunctionType.from_lists([a.type for a in top.block.args],
                                             [v.type for v in results])
        fn = func.FuncOp("main", ftype, Region(top.block))
        fn.arg_attrs = ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(n)})
                                  for n in self.feeds])
        names = [n for _, n, _ in self.fetches]
        name_results(fn, names)
        return RaisedPir(ModuleOp([fn]), list(self.feeds), names, self.parameters)

    # --- blocks ----------------------------------------------------------------------

    def raise_block(self, pblock: PirBlock, scope: Scope, top: bool = False) -> list[SSAValue]:
        """Raise the ops of a block into `scope.block`; a region's block ends in cf.yield,
        whose values are returned (as tensors)."""
        for op in pblock.ops:
            if op.name == "cf.yield":
                if top:
                    raise self.fail(op, "cf.yield outside a region")
                ctx = OpContext(self.program, op, scope)
                return [ctx.tensor(i) for i in range(len(op.operands))]
            try:
                self.raise_op(op, scope, top)
            except (ToStaticError, RecursionError, MemoryError):
                raise
            except Exception as e:  # noqa: BLE001 - a malformed op from a file
                raise PirFormatError(self.program.source, op.path, f"{op.name}: cannot be "
                                     f"raised ({type(e).__name__}: {e})") from None
        if not top:
            raise UnsupportedError(f"{self.program.source}: {pblock.path}: a region's block "
                                   f"must end with cf.yield")
        return []

    def raise_op(self, op: PirOp, scope: Scope, top: bool) -> None:
        ctx = OpContext(self.program, op, scope)
        if op.name in _TOP_ONLY and not top:
            raise self.fail(op, "only allowed in the program's top-level block")
        special = _SPECIAL.get(op.name)
        if special is not None:
            entries = special(self, ctx)
        else:
            rule = rule_for(op.name)
            if rule is None:
                raise self.fail(op, "this PIR op is not supported by tostatic (op "
                                f"{op.path.rsplit('[', 1)[-1].rstrip(']')} of its block)")
            entries = rule(ctx)
        if len(entries) != len(op.results):
            raise self.fail(op, f"raised to {len(entries)} values for {len(op.results)} "
                            f"results")
        for r, e in zip(op.results, entries):
            if r.id in scope.env:
                raise self.fail(op, f"value %{r.id} is defined twice")
            scope.env[r.id] = e

    # --- top-level ops -----------------------------------------------------------------

    def data(self, ctx: OpContext) -> list[Entry]:
        name = ctx.attrs.get("name")
        if not isinstance(name, str) or not name:
            raise ctx.fail("a data op needs a name")
        if name in self.feeds:
            raise ctx.fail(f"input {name!r} is declared twice")
        ab = tensor_abstract(ctx.op.results[0].type, ctx.where)
        block = ctx.scope.block
        arg = block.insert_arg(ab.tensor_type(), len(block.args))
        self.feeds.append(name)
        return [arg]

    def parameter(self, ctx: OpContext) -> list[Entry]:
        a, ra = ctx.attrs, ctx.op.result_attrs
        name = a["parameter_name"]
        if not ra.get("persistable", True):
            # not in .pdiparams (an rnn's dropout state, read only when training): any use
            # of it is an error naming it
            return [MissingValue(f"parameter {name!r} (not persistable: no value in the "
                                 f".pdiparams) at {ctx.op.path}")]
        ab = tensor_abstract(ctx.op.results[0].type, ctx.where)
        trainable = bool(ra.get("trainable", True))
        stop_gradient = bool(ra.get("stop_gradient", True))
        # Paddle writes is_parameter 1 for buffers too; a buffer (batch norm's running
        # statistics) is what neither trains nor takes gradients. (A frozen parameter looks
        # the same: the file cannot tell them apart.)
        is_parameter = bool(a.get("is_parameter", True)) and (trainable or not stop_gradient)
        p = PirParameter(name, is_parameter, trainable, stop_gradient)
        if any(q.name == name for q in self.parameters):
            raise ctx.fail(f"parameter {name!r} is declared twice")
        self.parameters.append(p)
        op = Persistable.make([], {"var_name": name, "trainable": p.trainable,
                                   "is_parameter": p.is_parameter}, [ab.tensor_type()])
        op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(name)])
        ctx.scope.block.add_op(op)
        return [op.results[0]]

    def fetch(self, ctx: OpContext) -> list[Entry]:
        col = ctx.attrs.get("col")
        name = ctx.attrs.get("name") or f"fetch_name_{col}"
        if not isinstance(col, int):
            raise ctx.fail("a fetch op needs an integer col")
        v = ctx.tensor(0)
        self.fetches.append((col, str(name), v))
        return [v]

    # --- vectors -----------------------------------------------------------------------

    def combine(self, ctx: OpContext) -> list[Entry]:
        items: list[Entry] = []
        for i in range(len(ctx.op.operands)):
            e = ctx.entry(i)
            if e is None:
                raise ctx.fail(f"operand {i} is empty")
            items.append(e)
        return [items]

    def split(self, ctx: OpContext) -> list[Entry]:
        e = ctx.entry(0)
        if not isinstance(e, list) or len(e) != len(ctx.op.results):
            raise ctx.fail(f"expected a vector of {len(ctx.op.results)} values")
        return list(e)

    def slice(self, ctx: OpContext) -> list[Entry]:
        e = ctx.entry(0)
        index = ctx.attrs.get("index")
        if not isinstance(e, list) or not isinstance(index, int) or not 0 <= index < len(e):
            raise ctx.fail(f"index {index!r} out of the vector")
        return [e[index]]

    # --- control flow --------------------------------------------------------------------

    def capture(self, ctx: OpContext, regions: list[PirRegion],
                bound: set[int]) -> tuple[list[SSAValue], list[tuple[int, Any]]]:
        """The outer SSA values the regions read (their block arguments come after any in
        `bound`), and how to bind each free id inside: ("arg", k) / an entry to copy."""
        captured: list[SSAValue] = []
        index: dict[SSAValue, int] = {}
        plan: list[tuple[int, Any]] = []

        def grab(e: Entry) -> Any:
            if isinstance(e, list):
                return [grab(x) for x in e]
            if isinstance(e, SSAValue):
                if e not in index:
                    index[e] = len(captured)
                    captured.append(e)
                return ("arg", index[e])
            return e  # Const and MissingValue travel as they are
        for vid in _free_values(regions):
            if vid in bound:
                continue
            if vid not in ctx.scope.env:
                raise PirFormatError(self.program.source, ctx.op.path,
                                     f"a region of {ctx.op.name} reads value %{vid}, which no "
                                     f"earlier op defines")
            plan.append((vid, grab(ctx.scope.env[vid])))
        return captured, plan

    def region_scope(self, outer: Scope, block: Block, first: int, captured: list[SSAValue],
                     plan: list[tuple[int, Any]]) -> Scope:
        """A scope for a region block whose arguments from `first` on are `captured`."""
        inner = Scope(block)
        args = block.args[first:]
        moved = dict(zip(captured, args))

        def bind(x: Any) -> Entry:
            if isinstance(x, list):
                return [bind(y) for y in x]
            if isinstance(x, tuple) and x[0] == "arg":
                return args[x[1]]
            return x
        for vid, x in plan:
            inner.env[vid] = bind(x)
        for old, new in moved.items():  # what is known of a shape survives the move
            if old in outer.sym:
                s = outer.sym[old]
                inner.sym[new] = Sym(tuple(Dim(moved.get(e.value, e.value), e.axis)
                                           if isinstance(e, Dim) else e for e in s.elems),
                                     s.scalar)
        return inner

    def if_op(self, ctx: OpContext) -> list[Entry]:
        op = ctx.op
        if len(op.regions) != 2 or any(len(r.blocks) != 1 for r in op.regions):
            raise ctx.fail("pd_op.if has two regions of one block each")
        cond = ctx.tensor(0)
        captured, plan = self.capture(ctx, op.regions, set())
        blocks = []
        for region in op.regions:
            b = Block(arg_types=[v.type for v in captured])
            inner = self.region_scope(ctx.scope, b, 0, captured, plan)
            values = self.raise_block(region.blocks[0], inner)
            if len(values) != len(op.results):
                raise ctx.fail(f"{region.path} yields {len(values)} values for "
                               f"{len(op.results)} results")
            b.add_op(Yield.make(values, {}, []))
            blocks.append(b)
        c = Abstract.of_value(cond)
        if c.dtype.name != "bool" or any(d > 1 for d in c.shape):
            raise ctx.fail(f"the condition must be a one-element bool tensor, found "
                           f"{list(c.shape)} {c.dtype.name}")
        if_op = If.new(cond, captured, blocks[0], blocks[1])
        try:
            if_op.verify()  # both branches must yield what the op's results are
        except Exception as e:  # noqa: BLE001 - xDSL's VerifyException
            raise ctx.fail(f"the branches do not fit together: {e}") from None
        ctx.scope.block.add_op(if_op)
        return list(if_op.results)

    def while_op(self, ctx: OpContext) -> list[Entry]:
        op = ctx.op
        if len(op.regions) != 1 or len(op.regions[0].blocks) != 1:
            raise ctx.fail("pd_op.while has one region of one block")
        body = op.regions[0].blocks[0]
        n = len(op.operands) - 1
        if len(body.args) != n or len(op.results) != n:
            raise ctx.fail(f"{n} loop values, but the body takes {len(body.args)} and the op "
                           f"has {len(op.results)} results")
        state = [ctx.tensor(i) for i in range(n + 1)]
        loop_types = [state[0].type] + [
            tensor_abstract(a.type, f"{ctx.where} {body.path}.args[{i}]").tensor_type()
            for i, a in enumerate(body.args)]
        for i, (v, t) in enumerate(zip(state[1:], loop_types[1:]), 1):
            if not Abstract.of_value(v).compatible(Abstract.of_type(t)):
                raise ctx.fail(f"loop value {i - 1} starts as {v.type}, the body takes {t}")
        captured, plan = self.capture(ctx, op.regions, {a.id for a in body.args})
        b = Block(arg_types=[*loop_types, *(v.type for v in captured)])
        inner = self.region_scope(ctx.scope, b, n + 1, captured, plan)
        for a, arg in zip(body.args, b.args[1:]):
            inner.env[a.id] = arg
        values = self.raise_block(body, inner)
        if len(values) != n + 1:
            raise ctx.fail(f"the body yields {len(values)} values, expected the condition "
                           f"and {n} loop values")
        b.add_op(Yield.make(values, {}, []))
        w = While.new(state, captured, b, loop_types)
        try:
            w.verify()  # what the body yields must fit the loop's values
        except Exception as e:  # noqa: BLE001 - xDSL's VerifyException
            raise ctx.fail(f"the loop does not fit together: {e}") from None
        ctx.scope.block.add_op(w)
        return list(w.results[1:])


def _free_values(regions: list[PirRegion]) -> list[int]:
    """Ids the regions read but do not define (nested regions included), in order of use."""
    defined: set[int] = set()
    used: dict[int, None] = {}

    def walk(block: PirBlock) -> None:
        defined.update(a.id for a in block.args)
        for op in block.ops:
            for v in op.operands:
                if v != 0 and v not in defined:
                    used.setdefault(v)
            for r in op.regions:
                for b in r.blocks:
                    walk(b)
            defined.update(r.id for r in op.results)
    for region in regions:
        for b in region.blocks:
            walk(b)
    return [v for v in used if v not in defined]


_SPECIAL = {
    "pd_op.data": _PirRaiser.data, "builtin.parameter": _PirRaiser.parameter,
    "pd_op.fetch": _PirRaiser.fetch, "builtin.combine": _PirRaiser.combine,
    "builtin.split": _PirRaiser.split, "builtin.slice": _PirRaiser.slice,
    "pd_op.if": _PirRaiser.if_op, "pd_op.while": _PirRaiser.while_op,
}
_TOP_ONLY = {"pd_op.data", "builtin.parameter", "pd_op.fetch"}

__all__ = ["raise_pir", "RaisedPir", "PirParameter", "Const", "MissingValue"]
