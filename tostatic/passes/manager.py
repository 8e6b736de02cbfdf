"""The pass manager: runs a pipeline with verification, dumps, timings and reproducers.

Every caller (to_static, jit.save, tostatic.compile, `tostatic opt`) goes through here, so
a dump option or a failure report works the same wherever the compiler runs.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

from xdsl.dialects.builtin import ModuleOp

from tostatic.ir.errors import ToStaticError
from tostatic.ir.text import location_of, print_ir
from tostatic.ir.verify import VerifyError, verify
from tostatic.passes.base import CompilePass, CompileState
from tostatic.passes.dump import ALL, DumpOptions, ir_diff, timing_report
from tostatic.passes.pipeline import parse_pipeline

REPRODUCER_ENV = "TOSTATIC_REPRODUCER_DIR"
# "each": after every pass (names the pass that broke the IR); "end": after the last pass and
# before a pass that changes dialect (half the cost on big models: what to_static and
# jit.save use); "off".
VERIFY_MODES = ("each", "end", "off")


class PassFailure(ToStaticError, RuntimeError):
    """A compiler bug: a pass crashed or left IR the verifier rejects. Names the pass, the op,
    the user's line and a reproducer file. (Errors in the user's program, ShapeError or
    UnsupportedError raised by a pass, propagate as themselves.)"""

    def __init__(self, message: str, pass_name: str, op_name: str | None,
                 location: str | None, reproducer: str | None):
        super().__init__(message)
        self.pass_name, self.op_name, self.location = pass_name, op_name, location
        self.reproducer = reproducer


class PassManager:
    """Runs passes in order on one module; `stages` keeps a copy of each stage when recording."""

    def __init__(self, passes: "str | Sequence[CompilePass]",
                 dump: "str | DumpOptions | None" = None, verify: str = "each",
                 record: bool = False, reproducer_dir: str | None = None):
        self.passes = parse_pipeline(passes) if isinstance(passes, str) else list(passes)
        self.dump = DumpOptions.resolve(dump)
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
        self.verify = verify
        self.record = record
        self.reproducer_dir = reproducer_dir
        self.stages: list[tuple[str, ModuleOp]] = []  # (stage name, IR copy), when recording
        self.timings: list[tuple[str, float]] = []

    @property
    def pipeline(self) -> str:
        return ",".join(p.spec() for p in self.passes)

    def _text(self, module: ModuleOp) -> str:
        return print_ir(module, self.dump.locations)

    def run(self, module: ModuleOp, state: CompileState | None = None,
            first_stage: str = "input",
            input_copy: "Callable[[], ModuleOp] | None" = None) -> None:
        """Run the passes; `first_stage` names the incoming IR in recordings and dumps.
        `input_copy` makes a copy of the incoming IR on demand (re-reading the file it came
        from, say), for a reproducer; without it, verify="end" or "off" copies it up front.

        Dumps name each pass by its exact spec (with its options) and carry the pipeline that
        runs on the dumped IR next, so a dump saved to a file replays with `tostatic opt`."""
        state = state if state is not None else CompileState()
        dump = self.dump
        specs = [p.spec() for p in self.passes]
        rest = lambda i: ",".join(specs[i:])  # noqa: E731  what runs on the IR before pass i
        self._stage(first_stage, module, f"the input ({first_stage})", rest(0))
        if dump.diff is ALL and self.passes:  # the input in full; then each pass's change
            dump.emit(f"At Start ({first_stage})", self._text(module), rest(0))
        # what a reproducer is made from: with verify="each" (debugging, tostatic opt) a copy of
        # the IR before each pass; otherwise (load, inference, to_static) one copy of the input
        # and its state, on which a failure replays the passes before the failing one (a copy
        # per pass was a third of ResNet-50's inference pipeline)
        start = None if self.verify == "each" else (input_copy or module.clone(),
                                                    _copy_state(state))
        for i, p in enumerate(self.passes):
            before = module.clone() if start is None else start
            diffs = dump.prints_diff(p.name)
            text_before = self._text(module) if (dump.prints_before(p.name) or diffs
                                                 or dump.after_change) else None
            if dump.prints_before(p.name):
                dump.emit(f"Before {specs[i]}", text_before, rest(i))
            try:
                self._timed(p.name, lambda: p.apply(module, state))
                if self._verifies_after(i):
                    self._timed("(verifier)", lambda: verify(module))
            except ToStaticError as e:
                if isinstance(e, VerifyError):  # the pass broke the IR: a compiler bug
                    raise self._failure(p, e, before, module, i) from e
                self._user_error(p, e, module)  # the user's program: its own error, no file
                raise
            except Exception as e:  # a bug in the pass
                raise self._failure(p, e, before, module, i) from e
            text = self._text(module) if dump.prints_after(p.name) or diffs else None
            if dump.prints_after(p.name) and not (dump.after_change and text == text_before):
                dump.emit(f"After {specs[i]}", text, rest(i + 1))
            if diffs:
                assert text is not None and text_before is not None
                if text == text_before:
                    dump.emit(f"After {specs[i]} (no change)", "")
                else:
                    dump.emit(f"After {specs[i]} (diff)", ir_diff(text_before, text, specs[i]))
            self._stage(p.name, module, f"after {specs[i]}", rest(i + 1))
        if dump.timings:
            (dump.stream or sys.stderr).write(timing_report(self.timings))

    def _verifies_after(self, i: int) -> bool:
        if self.verify != "end":
            return self.verify == "each"
        return i + 1 == len(self.passes) or self.passes[i + 1].changes_dialect

    def _timed(self, name: str, work: "Callable[[], None]") -> None:
        start = time.perf_counter()
        try:
            work()
        finally:
            self.timings.append((name, time.perf_counter() - start))

    def _stage(self, name: str, module: ModuleOp, header: str, pipeline: str) -> None:
        """Keep a stage (recording) and write it to the dump folder, numbered in order."""
        if self.record:
            self.stages.append((name, module.clone()))
        if self.dump.folder:
            self.dump.write_file(name, self._text(module), header, pipeline)

    def _user_error(self, p: CompilePass, error: ToStaticError, after: ModuleOp) -> None:
        """Errors the user's program causes keep their class and message; they learn which
        pass found them (and the after-failure dump still prints)."""
        op = getattr(error, "op", None) or p.current_op
        error.pass_name = p.name  # type: ignore[attr-defined]
        if hasattr(error, "add_note"):
            where = f" on {op.name}" if op is not None else ""
            error.add_note(f"(found by pass {p.name!r}{where})")
        if self.dump.after_failure:
            self.dump.emit(f"After {p.spec()} Failed", self._text(after))

    def _before(self, i: int, start: "ModuleOp | tuple[Any, CompileState]"
                ) -> tuple[ModuleOp, str]:
        """The IR before pass `i` and the pipeline that replays the failure on it: passes
        0..i-1 replayed on the copy of the input (or, should that fail, the input itself
        with the pipeline up to pass `i`)."""
        specs = [p.spec() for p in self.passes]
        if isinstance(start, ModuleOp):
            return start, specs[i]
        copy, state = start
        module = copy() if callable(copy) else copy
        try:
            replayed = module.clone()
            for p in self.passes[:i]:
                p.apply(replayed, state)
            return replayed, specs[i]
        except Exception:  # noqa: BLE001 - the input and the longer pipeline still reproduce
            return module, ",".join(specs[:i + 1])

    def _failure(self, p: CompilePass, error: Exception, start: Any,
                 after: ModuleOp, i: int) -> PassFailure:
        op = getattr(error, "op", None) or p.current_op
        op_name = op.name if op is not None else None
        location = location_of(op) if op is not None else None
        if self.dump.after_failure:
            self.dump.emit(f"After {p.spec()} Failed", self._text(after))
        before, replay = self._before(i, start)
        reproducer = self._write_reproducer(p, error, before, replay)
        where = f" on {op_name}" + (f" at {location}" if location else "") if op_name else ""
        if self.verify == "end" and isinstance(error, VerifyError):
            where += (" (the verifier ran only at the end of the pipeline: an earlier pass may "
                      "be at fault; verify='each' names it)")
        message = (f"pass {p.name!r} failed{where}: {error}\n"
                   f"  reproducer: {reproducer}\n"
                   f"  replay with: tostatic opt {reproducer} --pipeline '{replay}'")
        return PassFailure(message, p.name, op_name, location, reproducer)

    def _write_reproducer(self, p: CompilePass, error: Exception, before: ModuleOp,
                          replay: str) -> str:
        directory = (self.reproducer_dir or os.environ.get(REPRODUCER_ENV)
                     or os.path.join(tempfile.gettempdir(), "tostatic-reproducers"))
        os.makedirs(directory, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"{p.name}-", suffix=".mlir", dir=directory)
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        header = (f"// tostatic reproducer: pass {p.name!r} failed: {first_line}\n"
                  f"// pipeline: {replay}\n"
                  f"// replay with: tostatic opt {path} --pipeline '{replay}'\n")
        with os.fdopen(fd, "w") as f:
            f.write(header + print_ir(before, locations=True))
        return path


def _copy_state(state: CompileState) -> CompileState:
    """A copy a replay may change (its tables copied, the tensors they hold shared)."""
    return dataclasses.replace(state, captures=list(state.captures),
                               weights=dict(state.weights), info=dict(state.info))


def run_pipeline(module: ModuleOp, state: CompileState, pipeline: str,
                 dump: "str | DumpOptions | None" = None, verify: str = "end") -> None:
    """Run `pipeline` on `module` through a PassManager (the one way passes run)."""
    PassManager(pipeline, dump, verify=verify).run(module, state)
