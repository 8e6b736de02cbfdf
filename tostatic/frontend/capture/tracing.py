"""Tracing with symbolic tensors: running user code on `Variable`s builds a `pd` function.

Every public op goes through `dispatch.apply`; while a Tracer is active it calls `Tracer.emit`,
which inserts the op with the type its `infer` rule gives, Paddle's variable names and the
user's source line. Eager tensors the code reads (parameters, buffers, other tensors) become
`pd.capture` ops; `persistable-extraction` decides later what they become in the program.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import contextlib
from typing import Any, Iterator, Sequence

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr
from xdsl.ir import Block, BlockArgument, Region, SSAValue

from tostatic.frontend.tensor.tensor import Tensor
from tostatic.frontend.tensor.variable import Variable
from tostatic.ir.names import NameGenerator
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ir.attr_keys import LOC_ATTR, NAMES_ATTR
from tostatic.ir.builder import Builder
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.location import user_location
from tostatic.ops.core import Capture


@dataclass
class RegionFrame:
    """A region block being built (a branch of a pd.if, a pd.while body): the outer values
    it reads become trailing arguments of its block (regions are isolated from above), in
    `captured` order, and operands of the op that will hold it."""

    block: Block
    captured: list[SSAValue] = field(default_factory=list)
    args: dict[SSAValue, SSAValue] = field(default_factory=dict)  # outer value -> argument


@dataclass
class CaptureInfo:
    tensor: Tensor
    kind: str  # "param", "buffer" or "tensor"
    structured_name: str | None


class Tracer(Builder):
    """Builds one `func.func` of `pd` ops from the ops user code applies to Variables."""

    def __init__(self, structured_names: dict[int, tuple[str, str]] | None = None):
        super().__init__(NameGenerator())
        self.block = Block()
        self.root = self.block
        self.regions: list[RegionFrame] = []  # the region blocks being built, innermost last
        self.problems: list[str] = []  # what the converted code cannot be; reported together
        self.captures: list[CaptureInfo] = []
        self._capture_values: dict[int, SSAValue] = {}
        self._structured = structured_names or {}  # id(tensor) -> (structured name, kind)

    # --- inputs ----------------------------------------------------------------------------
    def add_input(self, abstract: Abstract, name: str, stop_gradient: bool = True) -> Variable:
        arg = self.block.insert_arg(abstract.tensor_type(), len(self.block.args))
        return Variable(name, arg, stop_gradient=stop_gradient)

    def touch(self, tensor: Tensor) -> None:
        self._capture(tensor)

    def value_of(self, x: Any) -> SSAValue:
        if isinstance(x, Variable):
            return self.import_value(x.value, x.name)
        if isinstance(x, Tensor):
            return self.import_value(self._capture(x), x.name)
        raise TypeError(f"expected a Tensor, got {type(x).__name__}")

    # --- regions ---------------------------------------------------------------------------
    def open_region(self, arg_types: Sequence[Any] = ()) -> RegionFrame:
        """A new region block, which becomes current (its first arguments `arg_types`)."""
        region = RegionFrame(Block(arg_types=list(arg_types)))
        self.regions.append(region)
        self.block = region.block
        return region

    def close_region(self) -> None:
        self.regions.pop()
        self.block = self.regions[-1].block if self.regions else self.root

    @contextlib.contextmanager
    def inside(self, region: RegionFrame) -> Iterator[RegionFrame]:
        """Build into `region` again (a branch gets constants and yields after it ran)."""
        self.regions.append(region)
        self.block = region.block
        try:
            yield region
        finally:
            self.close_region()

    def import_value(self, v: SSAValue, name: str = "") -> SSAValue:
        """`v` as the current block sees it: a value of an enclosing block arrives as an
        argument of every region block between (made on first use)."""
        home = v.block if isinstance(v, BlockArgument) else v.owner.parent_block()
        blocks = [self.root] + [r.block for r in self.regions]
        if home not in blocks:
            raise UnsupportedError(
                f"the tensor {name or v.name_hint} was made inside a tensor-dependent branch or "
                f"loop body and is used outside it (at {user_location()}); assign it to a "
                f"variable in every branch (or before the loop) so the converter carries it out")
        for region in self.regions[blocks.index(home):]:
            if v not in region.args:
                region.args[v] = region.block.insert_arg(v.type, len(region.block.args))
                region.captured.append(v)
            v = region.args[v]
        return v

    def region_depth(self) -> int:
        return len(self.regions)

    def _capture(self, t: Tensor) -> SSAValue:
        if id(t) in self._capture_values:
            return self._capture_values[id(t)]
        structured, kind = self._structured.get(id(t), (None, "tensor"))
        op = Capture.make([], {"index": len(self.captures), "kind": kind,
                               "structured_name": structured, "var_name": t.name},
                          [Abstract.of_array(t.numpy()).tensor_type()])
        self.root.add_op(op)
        self.captures.append(CaptureInfo(t, kind, structured))
        self._capture_values[id(t)] = op.results[0]
        return op.results[0]

    # --- ops -------------------------------------------------------------------------------
    def emit(self, op_cls: type[PdOp], inputs: Sequence[Any], attrs: dict[str, Any],
             name_hint: str | None = None) -> list[Variable]:
        location = user_location()
        values = [self.value_of(x) for x in inputs]
        results, names = self.infer(op_cls, [Abstract.of_value(v) for v in values], attrs,
                                    name_hint, location)
        op = op_cls.make(values, attrs, [r.tensor_type() for r in results])
        op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in names])
        if location:
            op.attributes[LOC_ATTR] = StringAttr(location)
        self.block.add_op(op)
        stop = all(getattr(x, "stop_gradient", True) for x in inputs)
        return [Variable(n, r, stop_gradient=stop) for r, n in zip(op.results, names)]

    # --- result ----------------------------------------------------------------------------
    def finish(self, outputs: Sequence[Variable], func_name: str = "forward") -> ModuleOp:
        assert not self.regions, "a region is still open"
        ret = func.ReturnOp(*[self.value_of(o) for o in outputs])
        self.block.add_op(ret)
        ftype = func.FunctionType.from_lists([a.type for a in self.block.args],
                                             [o.type for o in ret.operands])
        fn = func.FuncOp(func_name, ftype, Region(self.block))
        return ModuleOp([fn])


