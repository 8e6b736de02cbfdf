"""tostatic.compile: the compiler's own interface, for people who debug what it does.

Same capture and pipeline as to_static and jit.save, but it keeps every stage (the captured
`pd` module, the IR after each pass, the lowered `program`) so each can be printed.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from xdsl.dialects.builtin import ModuleOp

from tostatic.frontend.capture.static_function import (
    DEFAULT_PIPELINE,
    ConcreteProgram,
    StaticFunction,
    _collect_feeds,
    _unflatten,
    trace,
)
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ir.text import print_ir
from tostatic.passes.pipeline import parse_pipeline


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
        from tostatic.frontend.capture.jit_save import write_inference_model

        write_inference_model(path, self._lowered, self._concrete.state)


def compile(fn: Callable, input_spec: Sequence[Any], passes: str | None = None,
            dump: Any = None, verify: str = "each") -> CompiledFunction:
    """Trace `fn` (a function, method, Layer or to_static function) on `input_spec`, run
    `passes` (default: the "default" pipeline; persistable-extraction is put first when it
    is missing) and lower to a Paddle program.

    `dump` takes the options of `tostatic.passes.dump` ("after-all", "folder=DIR,timings",
    ...); None falls back to $TOSTATIC_DUMP. `verify`: "each" (after every pass, the
    default here), "end" (once; what to_static and jit.save do) or "off".
    """
    from tostatic.frontend.capture.jit_save import _static_function

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
