"""Tracing with symbolic tensors: running user code on `Variable`s builds a `pd` function.

Every public op goes through `dispatch.apply`; while a Tracer is active it calls `Tracer.emit`,
which inserts the op with the type its `infer` rule gives, Paddle's variable names and the
user's source line. Eager tensors the code reads (parameters, buffers, other tensors) become
`pd.capture` ops; `persistable-extraction` decides later what they become in the program.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr
from xdsl.ir import Block, Region, SSAValue

from tostatic.frontend.tensor.tensor import Tensor, TensorMethods
from tostatic.ir.names import NameGenerator
from tostatic.ir import dtypes
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ir.text import LOC_ATTR  # noqa: F401  (re-exported)

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NAMES_ATTR = "pd.names"  # Paddle variable names of an op's results (and extra outputs)


def user_location() -> str | None:
    """file:line of the innermost frame outside tostatic (the user's line)."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_PACKAGE_DIR + os.sep) and not path.startswith("<frozen"):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class Variable(TensorMethods):
    """A symbolic tensor: an SSA value of the function being traced."""

    def __init__(self, value: SSAValue, name: str, stop_gradient: bool = True):
        self.value = value
        self.name = name
        self.stop_gradient = stop_gradient
        self.persistable = False

    @property
    def abstract(self) -> Abstract:
        return Abstract.of_value(self.value)

    @property
    def shape(self) -> list[int]:
        return list(self.abstract.shape)

    @property
    def dtype(self) -> dtypes.DType:
        return self.abstract.dtype

    def __repr__(self) -> str:
        shape = tuple(self.shape)
        return (f"var {self.name} : DENSE_TENSOR.shape{shape}.dtype({self.dtype.name})"
                f".stop_gradient({self.stop_gradient})")

    def _dygraph_only(self, what: str):
        raise UnsupportedError(
            f"{what} needs a concrete value, but {self.name} is symbolic while tracing "
            f"(at {user_location()}); keep it outside the function passed to to_static")

    def numpy(self):
        self._dygraph_only("Tensor.numpy()")

    def item(self):
        self._dygraph_only("Tensor.item()")

    def __bool__(self) -> bool:
        raise UnsupportedError(
            f"a Tensor was used as a Python bool (if/while/and/or) at {user_location()}; "
            f"data-dependent control flow is not supported yet: compute both branches and use "
            f"paddle.where, or pass the condition as a Python value")

    def __len__(self) -> int:
        d = self.shape[0] if self.shape else None
        if d is None or d < 0:
            self._dygraph_only("len()")
        return d

    __hash__ = object.__hash__


@dataclass
class CaptureInfo:
    tensor: Tensor
    kind: str  # "param", "buffer" or "tensor"
    structured_name: str | None


class Builder:
    """Whatever records ops while user code runs (a Tracer, or static mode's ProgramBuilder):
    `dispatch.apply` calls `emit`; naming follows Paddle's LayerHelper."""

    def __init__(self, names: Any):
        self.names = names  # key -> unique name ("linear" -> "linear_0")
        self._helpers: list[str] = []

    def emit(self, op_cls: type[PdOp], inputs: Sequence[Any], attrs: dict[str, Any],
             name_hint: str | None = None) -> list[Any]:
        raise NotImplementedError

    def touch(self, tensor: Tensor) -> None:
        """A parameter was read; tracing declares it now, as Paddle does (variable order)."""

    def infer(self, op_cls: type[PdOp], abstracts: list[Abstract], attrs: dict[str, Any],
              name_hint: str | None, location: str | None) -> tuple[list[Abstract], list[str]]:
        """Result types from the op's rule, and Paddle's names for the results and any extra
        outputs (reshape2's XShape)."""
        results = self.infer_types(op_cls, abstracts, attrs, location)
        n_extra = len(op_cls.PADDLE.extra_outputs) if op_cls.PADDLE else 0
        return results, self._names_for(op_cls, name_hint, len(results) + n_extra)

    @staticmethod
    def infer_types(op_cls: type[PdOp], abstracts: list[Abstract], attrs: dict[str, Any],
                    location: str | None) -> list[Abstract]:
        """The op's shape rule at build time; a mismatch names the user's line."""
        try:
            return op_cls.infer_results(abstracts, attrs)
        except ShapeError as e:
            raise ShapeError(f"{e} (in {op_cls.name} at {location})") from None

    def _names_for(self, op_cls: type[PdOp], hint: str | None, count: int) -> list[str]:
        """Paddle's names: `tmp_N` for operators, `<helper>_K.tmp_J` for API calls."""
        if hint == "tmp":
            return [self.names("tmp") for _ in range(count)]
        prefix = self._helpers[-1] if self._helpers else self.names(hint or op_cls.NAME_HINT or "tmp")
        return [self.names(prefix + ".tmp") for _ in range(count)]

    @contextlib.contextmanager
    def helper(self, key: str, name: str | None = None) -> Iterator[str]:
        """Ops made inside share one Paddle LayerHelper name (F.linear: linear_0.tmp_0/1);
        a user-given `name` is taken as it is, as LayerHelper does."""
        self._helpers.append(name or self.names(key))
        try:
            yield self._helpers[-1]
        finally:
            self._helpers.pop()


class Tracer(Builder):
    """Builds one `func.func` of `pd` ops from the ops user code applies to Variables."""

    def __init__(self, structured_names: dict[int, tuple[str, str]] | None = None):
        super().__init__(NameGenerator())
        self.block = Block()
        self.captures: list[CaptureInfo] = []
        self._capture_values: dict[int, SSAValue] = {}
        self._structured = structured_names or {}  # id(tensor) -> (structured name, kind)

    # --- inputs ----------------------------------------------------------------------------
    def add_input(self, abstract: Abstract, name: str, stop_gradient: bool = True) -> Variable:
        arg = self.block.insert_arg(abstract.tensor_type(), len(self.block.args))
        return Variable(arg, name, stop_gradient)

    def touch(self, tensor: Tensor) -> None:
        self._capture(tensor)

    def value_of(self, x: Any) -> SSAValue:
        if isinstance(x, Variable):
            return x.value
        if isinstance(x, Tensor):
            return self._capture(x)
        raise TypeError(f"expected a Tensor, got {type(x).__name__}")

    def _capture(self, t: Tensor) -> SSAValue:
        if id(t) in self._capture_values:
            return self._capture_values[id(t)]
        structured, kind = self._structured.get(id(t), (None, "tensor"))
        from tostatic.ops.core import Capture

        op = Capture.make([], {"index": len(self.captures), "kind": kind,
                               "structured_name": structured, "var_name": t.name},
                          [Abstract.of_array(t.numpy()).tensor_type()])
        self.block.add_op(op)
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
        return [Variable(r, n, stop) for r, n in zip(op.results, names)]

    # --- result ----------------------------------------------------------------------------
    def finish(self, outputs: Sequence[Variable], func_name: str = "forward") -> ModuleOp:
        ret = func.ReturnOp(*[self.value_of(o) for o in outputs])
        self.block.add_op(ret)
        ftype = func.FunctionType.from_lists([a.type for a in self.block.args],
                                             [o.type for o in ret.operands])
        fn = func.FuncOp(func_name, ftype, Region(self.block))
        return ModuleOp([fn])


_active: list[Builder] = []
static_builder: Any = None  # set by static mode: () -> the ProgramBuilder of the main program


def current() -> Builder | None:
    """The builder recording ops now: an active trace, else static mode's, else None (eager)."""
    if _active:
        return _active[-1]
    return static_builder() if static_builder is not None else None


@contextlib.contextmanager
def tracing(tracer: Tracer) -> Iterator[Tracer]:
    _active.append(tracer)
    try:
        yield tracer
    finally:
        _active.pop()


@contextlib.contextmanager
def helper(key: str) -> Iterator[None]:
    """Name the ops of one public API call as Paddle's LayerHelper would (no-op when eager)."""
    tracer = current()
    if tracer is None:
        yield
    else:
        with tracer.helper(key):
            yield

