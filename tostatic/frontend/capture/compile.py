"""tostatic.compile: the compiler's own interface, for people who debug what it does.

Same capture and pipeline as to_static and jit.save, but it keeps every stage (the captured
`pd` module, the IR after each pass, the lowered `program`) so each can be printed.
"""
from __future__ import annotations

from typing import Any, Sequence

from xdsl.dialects.builtin import ModuleOp

from tostatic.frontend.capture.static_function import (
    DEFAULT_PIPELINE,
    ConcreteProgram,
    StaticFunction,
    _collect_feeds,
    _unflatten,
    trace,
)
from tostatic.frontend.capture.translated_layer import TranslatedLayer
from tostatic.frontend.static.program import Program
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.dialects.program import ProgramOp
from tostatic.passes.base import CompileState, entry
from tostatic.passes.lowering import input_names
from tostatic.passes.manager import PassManager
from tostatic.runtime.program_run import with_feeds_and_fetches
from tostatic.runtime.scope import global_scope
from tostatic.ir.text import print_ir
from tostatic.passes.pipeline import parse_pipeline
from tostatic.frontend.capture.jit_save import write_inference_model
from tostatic.frontend.capture.jit_save import _static_function


class CompiledFunction:
    """A traced and compiled function: call it, print its stages, save its Paddle files."""

    def __init__(self, concrete: ConcreteProgram, lowered: ModuleOp):
        self._concrete = concrete
        self._lowered = lowered  # module holding the `program.program`

    def __call__(self, *args: Any) -> Any:
        feeds: list[Any] = []
        _collect_feeds(args, feeds)
        outs = self._concrete.plan().run(feeds)
        return _unflatten(self._concrete.output_tree, [Tensor(o) for o in outs])

    @property
    def stages(self) -> list[str]:
        """Stage names in order: "captured", one per pass, "lower-to-program" last."""
        return [name for name, _ in self._concrete.manager.stages]

    def ir(self, stage: str | int = -1, locations: bool = False) -> str:
        """The IR text of one stage, by name or index (default: the last, the program)."""
        stages = self._concrete.manager.stages
        if isinstance(stage, int):
            return print_ir(stages[stage][1], locations)
        for name, module in reversed(stages):  # a pass run twice: its last run
            if name == stage:
                return print_ir(module, locations)
        raise KeyError(f"no stage {stage!r}; stages are {self.stages}")

    @property
    def module(self) -> ModuleOp:
        """The optimised `pd` module that runs when the function is called."""
        return self._concrete.module

    @property
    def program(self) -> ModuleOp:
        """The module holding the lowered `program.program`, as saved."""
        return self._lowered

    @property
    def timings(self) -> list[tuple[str, float]]:
        return list(self._concrete.manager.timings)

    @property
    def pipeline(self) -> str:
        return ",".join(p.spec() for p in self._concrete.manager.passes)

    def save(self, path: str) -> None:
        """Write path.pdmodel / .pdiparams / .pdiparams.info (weights as they are now)."""
        write_inference_model(path, self._lowered, self._concrete.state)


def compile(fn: Any, input_spec: Sequence[Any] | None = None, passes: str | None = None,
            dump: Any = None, verify: str = "each",
            fetch_list: Sequence[Any] | None = None) -> CompiledFunction:
    """Trace `fn` (a function, method, Layer or to_static function) on `input_spec`, run
    `passes` (default: the "default" pipeline; persistable-extraction is put first when it
    is missing) and lower to a Paddle program.

    `fn` may also be a loaded model (`jit.load`'s TranslatedLayer: its program is raised by
    the "load" pipeline first) or a static `Program` (then `input_spec` names its feeds and
    `fetch_list` its fetches, and persistables come from the global scope), so every path
    into the compiler shows its passes.

    `dump` takes the options of `tostatic.passes.dump` ("after-all", "folder=DIR,timings",
    ...); None falls back to $TOSTATIC_DUMP. `verify`: "each" (after every pass, the
    default here), "end" (once; what to_static and jit.save do) or "off".
    """
    if isinstance(fn, TranslatedLayer):
        model = fn._model
        return _compile_program(model.program, dict(model.weights), passes, dump, verify)
    if isinstance(fn, Program):
        feeds = [_var_name(v) for v in (input_spec or [])]
        fetches = [_var_name(v) for v in (fetch_list or [])]
        if not fetches:
            raise ValueError("tostatic.compile(program, ...): give fetch_list, the variables "
                             "the compiled program returns")
        desc = with_feeds_and_fetches(fn.desc, feeds, fetches)
        scope = global_scope()
        weights = {v.var_name: scope.get(v.var_name) for v in desc.blocks[0].vars
                   if v.persistable and v.var_type == "DENSE_TENSOR"
                   and scope.get(v.var_name) is not None}
        return _compile_program(desc, weights, passes, dump, verify)
    if input_spec is None:
        raise TypeError("tostatic.compile needs input_spec for a function or Layer")
    sf: StaticFunction = _static_function(fn, input_spec)
    pipeline = passes if passes is not None else DEFAULT_PIPELINE
    if "persistable-extraction" not in [p.name for p in parse_pipeline(pipeline)]:
        # captured tensors become persistables before anything can run or lower them
        pipeline = f"persistable-extraction,{pipeline}" if pipeline else "persistable-extraction"
    concrete = trace(sf._call_target(), list(input_spec), sf._layer,
                     pipeline=f"{pipeline},lower-to-program",
                     live=True, func_name=sf.__name__, dump=dump, record=True, verify=verify)
    lowered = concrete.module
    concrete.module = concrete.manager.stages[-2][1]  # the optimised pd module
    return CompiledFunction(concrete, lowered)


def _var_name(v: Any) -> str:
    return v if isinstance(v, str) else v.name


def _compile_program(desc: ProgramOp, weights: dict[str, Any], passes: str | None,
                     dump: Any, verify: str) -> CompiledFunction:
    """A Paddle program through "load", `passes` and lower-to-program, every stage kept."""
    module = ModuleOp([desc.clone()])
    state = CompileState(weights=weights)
    pipeline = passes if passes is not None else DEFAULT_PIPELINE
    manager = PassManager(f"load,{pipeline},lower-to-program" if pipeline
                          else "load,lower-to-program", dump, verify=verify, record=True)
    manager.run(module, state, first_stage="program")
    optimised = manager.stages[-2][1]
    fn = entry(optimised)
    outputs = list(range(len(fn.function_type.outputs.data)))
    concrete = ConcreteProgram(optimised, state, input_names(fn), outputs, [], manager)
    return CompiledFunction(concrete, module)
