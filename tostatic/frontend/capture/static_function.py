"""to_static and StaticFunction: capture a dygraph function once, run the compiled program.

A StaticFunction traces its function with symbolic inputs built from InputSpecs (nested lists
and dicts mirror the arguments; Python values are baked in), runs the compile pipeline and keeps
the result per input signature. Calling it runs the compiled program natively on the live
parameters, so training can go on changing them.
"""
from __future__ import annotations

import functools
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr

from tostatic.frontend.capture import tracing, training
from tostatic.frontend.capture.convert_ast import function as convert_ast
from tostatic.frontend.capture.convert_ast.runtime import UndefinedVar
from tostatic.ir import names as unique_name
from tostatic.frontend.capture.input_spec import InputSpec
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.frontend.tensor.variable import Variable
from tostatic.ir import dtypes
from tostatic.ir.attr_keys import INPUT_NAME_ATTR
from tostatic.ir.errors import ToStaticError, UnsupportedError
from tostatic.ir.opdef import Abstract
from tostatic.passes.base import CompileState, entry
from tostatic.passes.lowering import name_results
from tostatic.ir import builder as builders
from tostatic.runtime.plan import ExecutionPlan
from tostatic.frontend.tensor.tensor import Parameter
from tostatic.passes.manager import PassManager
from tostatic.frontend.nn.layer import Layer

DEFAULT_PIPELINE = "default"  # named in passes/pipeline.py


@dataclass
class ConcreteProgram:
    """One traced and compiled signature of a StaticFunction."""

    module: ModuleOp  # the pd module after the pipeline
    state: CompileState
    feed_names: list[str]
    output_tree: Any  # the function's return structure with output indices as leaves
    input_specs: list[Any] = field(default_factory=list)
    manager: Any = None  # the PassManager that compiled it (stages, timings)
    _plan: Any = None

    @property
    def function(self) -> func.FuncOp:
        return entry(self.module)

    # ConcreteProgram -> static Program; frontend/static fills it in (it lives above capture)
    program_view: ClassVar[Callable[["ConcreteProgram"], Any] | None] = None

    @property
    def main_program(self) -> Any:
        """The static Program Paddle would have built (print it to see Paddle's text)."""
        assert ConcreteProgram.program_view is not None, "tostatic.frontend.static not imported"
        return ConcreteProgram.program_view(self)

    def plan(self):
        if self._plan is None:
            self._plan = ExecutionPlan(self.function, self.state.weights, self.feed_names)
        return self._plan


def _flatten(tree: Any, leaves: list[Any]) -> Any:
    """Replace tensor leaves by their index in `leaves` (appending them)."""
    if isinstance(tree, (list, tuple)):
        return type(tree)(_flatten(t, leaves) for t in tree)
    if isinstance(tree, dict):
        return {k: _flatten(v, leaves) for k, v in tree.items()}
    if isinstance(tree, (Variable, Tensor)):
        leaves.append(tree)
        return len(leaves) - 1
    if tree is None:
        return None
    if isinstance(tree, UndefinedVar):
        tree._fail()
    if isinstance(tree, (bool, int, float, str)):  # a Python value beside tensors, as
        return _Const(tree)                         # Paddle's converted functions return
    raise UnsupportedError(f"to_static functions may return tensors, lists, tuples and dicts "
                           f"of them; got {type(tree).__name__}")


class _Const:
    """A Python value a converted function returns: the same on every call."""

    def __init__(self, value: Any):
        self.value = value


def _unflatten(tree: Any, values: Sequence[Any]) -> Any:
    if isinstance(tree, _Const):
        return tree.value
    if isinstance(tree, (list, tuple)):
        return type(tree)(_unflatten(t, values) for t in tree)
    if isinstance(tree, dict):
        return {k: _unflatten(v, values) for k, v in tree.items()}
    return None if tree is None else values[tree]


def _structured_names(layer: Any) -> dict[int, tuple[str, str]]:
    """id(tensor) -> (structured name, "param" | "buffer"), as Paddle's to_static sees them.
    A tensor under several names (nn.LSTM's `weight_ih_l0` is also `0.cell.weight_ih`, tied
    weights) keeps the last, as Paddle's jit.save writes it in .pdiparams.info."""
    if layer is None:
        return {}
    out: dict[int, tuple[str, str]] = {}
    for name, t in layer.to_static_state_dict().items():
        out[id(t)] = (name, "param" if isinstance(t, Parameter) else "buffer")
    return out


def _spec_of(value: Any, name: str | None) -> InputSpec:
    if isinstance(value, InputSpec):
        return value
    if isinstance(value, Tensor):
        return InputSpec(list(value.shape), value.dtype.name, name or value.name)
    if isinstance(value, np.ndarray):
        return InputSpec(list(value.shape), str(value.dtype), name)
    raise TypeError(value)


class Signature:
    """Binds InputSpecs (or example tensors) to the function's parameters."""

    def __init__(self, fn: Callable, bound_self: bool):
        params = list(inspect.signature(fn).parameters.values())
        self.params = params[1:] if bound_self else params

    def symbolic_args(self, tracer: tracing.Tracer, specs: Sequence[Any],
                      feed_names: list[str]) -> tuple[list[Any], dict[str, Any]]:
        if len(specs) > len(self.params) and not any(
                p.kind == p.VAR_POSITIONAL for p in self.params):
            raise TypeError(f"input_spec has {len(specs)} entries but the function takes "
                            f"{len(self.params)} arguments")
        args = []
        for i, spec in enumerate(specs):
            pname = self.params[i].name if i < len(self.params) else f"args_{i}"
            args.append(self._symbolic(tracer, spec, pname, feed_names))
        return args, {}

    def _symbolic(self, tracer: tracing.Tracer, spec: Any, name: str, feeds: list[str]) -> Any:
        if isinstance(spec, (InputSpec, Tensor, np.ndarray)):
            s = _spec_of(spec, None)
            feed = s.name or name
            if feed in feeds:
                raise ValueError(f"two inputs are both named {feed!r}; name the InputSpecs")
            feeds.append(feed)
            ab = Abstract(tuple(s.shape), dtypes.convert_dtype(s.dtype))
            return tracer.add_input(ab, feed, stop_gradient=bool(s.stop_gradient))
        if isinstance(spec, (list, tuple)):
            return type(spec)(self._symbolic(tracer, s, f"{name}_{i}", feeds)
                              for i, s in enumerate(spec))
        if isinstance(spec, dict):
            return {k: self._symbolic(tracer, s, k, feeds) for k, s in spec.items()}
        return spec  # a Python value: baked into the program


def trace(fn: Callable, specs: Sequence[Any], layer: Any = None,
          pipeline: str | None = DEFAULT_PIPELINE, live: bool = False,
          func_name: str = "forward", dump: Any = None, record: bool = False,
          verify: str = "end", convert: bool = True,
          snapshot: bool = True) -> ConcreteProgram:
    """Trace `fn` on symbolic inputs described by `specs` and run `pipeline` on the result
    (dumps as `dump` or $TOSTATIC_DUMP say; `record` keeps a copy of every stage; `verify`
    as PassManager takes it; `convert`: AST-convert its tensor-dependent control flow;
    `snapshot=False` keeps the weights' own arrays, uncopied, for a caller that writes them
    at once)."""
    tracer = tracing.Tracer(_structured_names(layer))
    sig = Signature(fn, bound_self=False)
    feed_names: list[str] = []
    target = convert_ast.convert_target(fn) if convert else fn
    with unique_name.guard(), builders.recording(tracer):
        args, kwargs = sig.symbolic_args(tracer, specs, feed_names)
        try:
            result = target(*args, **kwargs)
        except Exception as e:
            if tracer.problems:  # what went wrong after them, with them
                raise UnsupportedError(_problems(tracer.problems + [str(e)])) from e
            raise
        if tracer.problems:
            raise UnsupportedError(_problems(tracer.problems))
        leaves: list[Any] = []
        tree = _flatten(result, leaves)
    module = tracer.finish(leaves, func_name)
    fn_op = entry(module)
    fn_op.arg_attrs = ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(n)}) for n in feed_names])
    name_results(fn_op, [leaf.name for leaf in leaves])
    state = CompileState(captures=tracer.captures, snapshot_weights=snapshot)
    manager = PassManager(pipeline or "", dump, verify=verify, record=record)
    manager.run(module, state, first_stage="captured")
    if live:  # read the captured tensors at run time, so training keeps updating them
        for cap in state.captures:
            if cap.tensor.name in state.weights:
                state.weights[cap.tensor.name] = cap.tensor
    return ConcreteProgram(module, state, feed_names, tree, list(specs), manager)


def _problems(problems: list[str]) -> str:
    return (f"to_static cannot convert {len(problems)} construct(s):\n"
            + "\n".join(f"  {p}" for p in problems))


class StaticFunction:
    """What `to_static` returns: callable like the function, with its compiled programs."""

    def __init__(self, function: Callable, input_spec: Sequence[Any] | None = None,
                 layer: Any = None, **options: Any):
        self._function = function  # unbound function (layer passed as self) or plain function
        self._input_spec = list(input_spec) if input_spec is not None else None
        self._layer = layer
        self._options = options
        self._cache: dict[Any, ConcreteProgram] = {}
        functools.update_wrapper(self, function)

    # Decorating a method: `@to_static def forward(self, x)` binds per instance.
    def __get__(self, instance: Any, owner: Any = None) -> "StaticFunction":
        if instance is None:
            return self
        key = f"__static_{self._function.__name__}"
        bound = instance.__dict__.get(key)
        if bound is None:
            bound = StaticFunction(self._function, self._input_spec, instance, **self._options)
            instance.__dict__[key] = bound
        return bound

    @property
    def dygraph_function(self) -> Callable:
        return self._call_target()

    def _call_target(self) -> Callable:
        if self._layer is None:
            return self._function
        return functools.partial(self._function, self._layer)

    @property
    def input_spec(self) -> list[Any] | None:
        return self._input_spec

    def concrete_program_for(self, specs: Sequence[Any] | None = None) -> ConcreteProgram:
        specs = list(specs) if specs is not None else self._input_spec
        if specs is None:
            raise ValueError(f"{self._function.__name__}: no input_spec; pass input_spec to "
                             f"to_static or jit.save, or call the function once with tensors")
        key = self._key(specs)
        if key not in self._cache:
            self._cache[key] = trace(self._call_target(), specs, self._layer, live=True,
                                     func_name=self._function.__name__)
        return self._cache[key]

    @property
    def concrete_program(self) -> ConcreteProgram:
        return self.concrete_program_for()

    @property
    def main_program(self) -> Any:
        return self.concrete_program.main_program

    def _key(self, specs: Sequence[Any]) -> Any:
        def k(s: Any) -> Any:
            if isinstance(s, InputSpec):
                return ("spec", tuple(s.shape), str(s.dtype), s.name)
            if isinstance(s, Tensor):
                return ("tensor", tuple(s.shape), s.dtype.name)
            if isinstance(s, (list, tuple)):
                return tuple(k(x) for x in s)
            if isinstance(s, dict):
                return tuple(sorted((kk, k(v)) for kk, v in s.items()))
            return ("value", repr(s))
        training = getattr(self._layer, "training", None)
        return (k(list(specs)), training)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if builders.current() is not None or kwargs:
            return self._call_target()(*args, **kwargs)  # inside another trace: inline
        specs = self._specs_for_call(args)
        feeds: list[np.ndarray] = []
        _collect_feeds(args, feeds)
        if training.wants_grad(self._layer, args):
            # the call's own shapes: append-backward needs static ones (a dynamic batch in
            # the input_spec gets one training program per batch size)
            program = self._training_program(list(args))
            if program is not None:
                outs = training.run_training(program, args, feeds, self._function.__name__)
                return _unflatten(program.output_tree, outs)
        program = self._forward_program(specs)
        outs = training.run_forward(program, feeds)
        return _unflatten(program.output_tree, [Tensor(o) for o in outs])

    def _forward_program(self, specs: Sequence[Any]) -> ConcreteProgram:
        """The program a call without backward runs. In train mode, its tensor `if`s are
        inlined as training's are (if-to-select), so a branch's batch norm updates its
        running statistics when taken, as in eager; a state write left inside an `if` or
        `while` is refused (the plan would not write it back)."""
        if not getattr(self._layer, "training", False):
            return self.concrete_program_for(specs)
        key = ("forward-train", self._key(specs))
        if key not in self._cache:
            program = trace(self._call_target(), specs, self._layer, live=True,
                            func_name=self._function.__name__,
                            pipeline=training.FORWARD_TRAIN_PIPELINE)
            training.refuse_state_writes_in_regions(program.module, self._function.__name__)
            self._cache[key] = program
        return self._cache[key]

    def _training_program(self, specs: Sequence[Any]) -> ConcreteProgram | None:
        """The program with its backward appended (cached like the forward ones); None when
        append-backward cannot differentiate it (control flow, dynamic shapes): the call
        then runs the forward program alone, and its results have no history."""
        key = ("train", self._key(specs))
        if key not in self._cache:
            try:
                self._cache[key] = trace(self._call_target(), specs, self._layer, live=True,
                                         func_name=self._function.__name__,
                                         pipeline=training.TRAIN_PIPELINE)
            except ToStaticError as e:  # PassError, UnsupportedError, or a PassFailure
                warnings.warn(f"to_static {self._function.__name__}: no backward for this "
                              f"program ({str(e).splitlines()[0]}); it runs forward only, "
                              f"its results have no gradient history", stacklevel=3)
                self._cache[key] = None
        return self._cache[key]

    def _specs_for_call(self, args: Sequence[Any]) -> list[Any]:
        if self._input_spec is None:
            return list(args)
        specs = list(self._input_spec)
        if len(args) > len(specs):
            specs += list(args[len(specs):])
        return specs


def _collect_feeds(value: Any, out: list[np.ndarray]) -> None:
    if isinstance(value, Tensor):
        out.append(value.numpy())
    elif isinstance(value, np.ndarray):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect_feeds(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _collect_feeds(v, out)


def to_static(function: Any = None, input_spec: Sequence[Any] | None = None,
              build_strategy: Any = None, backend: Any = None, full_graph: bool = True,
              **kwargs: Any) -> Any:
    """paddle.jit.to_static: decorator (with or without arguments) or a call on a Layer/method."""
    def decorate(fn: Any) -> Any:
        if isinstance(fn, Layer):
            forward = type(fn).forward
            if isinstance(forward, StaticFunction):
                forward = forward._function
            spec = input_spec
            if spec is None and isinstance(fn.forward, StaticFunction):
                spec = fn.forward.input_spec
            fn.forward = StaticFunction(forward, spec, fn)
            return fn
        if isinstance(fn, StaticFunction):
            return fn if input_spec is None else StaticFunction(fn._function, input_spec,
                                                                 fn._layer)
        if inspect.ismethod(fn):
            return StaticFunction(fn.__func__, input_spec, fn.__self__)
        if callable(fn):
            return StaticFunction(fn, input_spec)
        raise TypeError(f"to_static expects a function, a method or a Layer, got "
                        f"{type(fn).__name__}")

    if function is None:
        return decorate
    return decorate(function)


def not_to_static(fn: Callable) -> Callable:
    """Leave `fn` as it is: to_static does not convert its control flow."""
    try:
        fn._not_to_static = True  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return fn
