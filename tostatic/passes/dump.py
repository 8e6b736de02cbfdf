"""Dump options: what the pass manager prints or writes while it runs, as mlir-opt's
`--mlir-print-ir-*` flags do. One spelling for Python (`dump=`), the environment
(`TOSTATIC_DUMP`) and the command line (`--dump`); the default prints nothing.

A spec is a comma-separated list of items:

    before-all | after-all          IR before / after every pass
    before=a+b | after=a+b          ... only around the named passes
    after-change                    IR after a pass only if it changed the IR (alone: after-all)
    after-failure                   IR as the failing pass left it
    diff | diff=a+b                 each pass's change as a unified diff of the IR text (after
                                    the pipeline's input in full, as LLVM's -print-changed=diff),
                                    "no change" for a pass that changed nothing
    folder=DIR                      one numbered file per stage: 00_captured.mlir, 01_cse.mlir,
                                    ... (numbers run on across the pipelines of a process)
    timings                         a wall-time table per pass at the end
    locations                       print each op's user file:line (`pd.loc`)

Every dump names its pass exactly as a pipeline spells it (`p.spec()`: the pass with all its
options, `constant-folding{max-elements=1024}`) and says on a `// pipeline:` line what the
pipeline runs on that IR next, so a dumped stage saved to a file replays: `tostatic opt FILE`
continues the pipeline from there, `tostatic opt FILE --pipeline 'PASS{...}'` reruns one pass.
"""
from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

ENV_VAR = "TOSTATIC_DUMP"
ALL = frozenset({"*"})
_next_file_number: dict[str, int] = {}  # dump folder -> number of its next file


@dataclass
class DumpOptions:
    before: frozenset[str] = frozenset()
    after: frozenset[str] = frozenset()
    after_change: bool = False
    after_failure: bool = False
    diff: frozenset[str] = frozenset()
    folder: str | None = None
    timings: bool = False
    locations: bool = False
    stream: TextIO | None = field(default=None, repr=False)  # None: sys.stderr at print time

    @classmethod
    def parse(cls, spec: "str | DumpOptions | None") -> "DumpOptions":
        if isinstance(spec, DumpOptions):
            return spec
        opts = cls()
        for item in filter(None, (s.strip() for s in (spec or "").split(","))):
            key, has_value, value = item.partition("=")
            names = frozenset(filter(None, value.split("+")))
            if key in ("before-all", "after-all") and not has_value:
                setattr(opts, key[:-4], ALL)
            elif key in ("before", "after") and names:
                setattr(opts, key, getattr(opts, key) | names)
            elif key == "after-change" and not has_value:
                opts.after_change = True
            elif key == "after-failure" and not has_value:
                opts.after_failure = True
            elif key == "diff" and not has_value:
                opts.diff = ALL
            elif key == "diff" and names:
                opts.diff = opts.diff | names if opts.diff is not ALL else ALL
            elif key == "folder" and value:
                opts.folder = value
            elif key in ("timings", "locations") and not has_value:
                setattr(opts, key, True)
            else:
                raise ValueError(f"unknown dump option {item!r}; expected one of before-all, "
                                 f"after-all, before=PASS+PASS, after=PASS+PASS, after-change, "
                                 f"after-failure, diff, diff=PASS+PASS, folder=DIR, timings, "
                                 f"locations")
        if opts.after_change and not opts.after:
            opts.after = ALL
        return opts

    @classmethod
    def resolve(cls, spec: "str | DumpOptions | None") -> "DumpOptions":
        """The explicit spec, else the environment's, else nothing."""
        if spec is None:
            return cls.parse(os.environ.get(ENV_VAR))
        return cls.parse(spec)

    def prints_before(self, name: str) -> bool:
        return self.before is ALL or name in self.before

    def prints_after(self, name: str) -> bool:
        return self.after is ALL or name in self.after

    def prints_diff(self, name: str) -> bool:
        return self.diff is ALL or name in self.diff

    @property
    def active(self) -> bool:
        return bool(self.before or self.after or self.after_failure or self.diff
                    or self.folder or self.timings)

    def emit(self, header: str, text: str, pipeline: str | None = None) -> None:
        """One dump: the header, the `// pipeline:` that runs on this IR next (if any), the IR
        (or a diff)."""
        out = self.stream or sys.stderr
        body = f"{pipeline_line(pipeline)}{text}\n" if text else ""
        out.write(f"// -----// IR Dump {header} //----- //\n{body}")
        out.flush()

    def write_file(self, stage: str, text: str, header: str = "",
                   pipeline: str | None = None) -> str:
        """The next numbered file of the folder: numbers run on across the pipelines one
        process runs into it (jit.save, then jit.load's), so no run overwrites another's.
        The file starts with comment lines naming the stage and the pipeline that runs on it
        next, which `tostatic opt FILE` reads."""
        assert self.folder is not None
        os.makedirs(self.folder, exist_ok=True)
        key = os.path.abspath(self.folder)
        index = _next_file_number.get(key, 0)
        _next_file_number[key] = index + 1
        path = os.path.join(self.folder, f"{index:02d}_{stage}.mlir")
        with open(path, "w") as f:
            f.write(f"// tostatic stage {index:02d}: {header or stage}\n"
                    f"{pipeline_line(pipeline)}{text}")
        return path


def pipeline_line(pipeline: str | None) -> str:
    """The comment line `tostatic opt` reads as its default pipeline (none when empty)."""
    return f"// pipeline: {pipeline}\n" if pipeline else ""


def ir_diff(before: str, after: str, label: str) -> str:
    """The change a pass made, as a unified diff of the IR text (3 lines of context)."""
    lines = difflib.unified_diff(before.splitlines(keepends=True),
                                 after.splitlines(keepends=True),
                                 fromfile=f"before {label}", tofile=f"after {label}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines).rstrip("\n")


def timing_report(timings: list[tuple[str, float]]) -> str:
    """mlir-opt's `--mlir-timing` table: wall time per pass, with its share of the total."""
    total = sum(t for _, t in timings) or 1e-12
    rule = "===" + "-" * 73 + "==="
    lines = [rule, "... Pass execution timing report ...".center(79), rule,
             f"  Total Execution Time: {total:.4f} seconds", "",
             "  ----Wall Time----  ----Name----"]
    lines += [f"  {t:8.4f} ({100 * t / total:5.1f}%)  {name}" for name, t in timings]
    lines.append(f"  {total:8.4f} (100.0%)  Total")
    return "\n".join(lines) + "\n"
