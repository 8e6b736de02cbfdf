"""Dump options: what the pass manager prints or writes while it runs, as mlir-opt's
`--mlir-print-ir-*` flags do. One spelling for Python (`dump=`), the environment
(`TOSTATIC_DUMP`) and the command line (`--dump`); the default prints nothing.

A spec is a comma-separated list of items:

    before-all | after-all          IR before / after every pass
    before=a+b | after=a+b          ... only around the named passes
    after-change                    IR after a pass only if it changed the IR (alone: after-all)
    after-failure                   IR as the failing pass left it
    folder=DIR                      one numbered file per stage: 00_captured.mlir, 01_cse.mlir,
                                    ... (numbers run on across the pipelines of a process)
    timings                         a wall-time table per pass at the end
    locations                       print each op's user file:line (`pd.loc`)
"""
from __future__ import annotations

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
            elif key == "folder" and value:
                opts.folder = value
            elif key in ("timings", "locations") and not has_value:
                setattr(opts, key, True)
            else:
                raise ValueError(f"unknown dump option {item!r}; expected one of before-all, "
                                 f"after-all, before=PASS+PASS, after=PASS+PASS, after-change, "
                                 f"after-failure, folder=DIR, timings, locations")
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

    @property
    def active(self) -> bool:
        return bool(self.before or self.after or self.after_failure or self.folder
                    or self.timings)

    def emit(self, header: str, text: str) -> None:
        out = self.stream or sys.stderr
        out.write(f"// -----// IR Dump {header} //----- //\n{text}\n")
        out.flush()

    def write_file(self, stage: str, text: str) -> str:
        """The next numbered file of the folder: numbers run on across the pipelines one
        process runs into it (jit.save, then jit.load's), so no run overwrites another's."""
        assert self.folder is not None
        os.makedirs(self.folder, exist_ok=True)
        key = os.path.abspath(self.folder)
        index = _next_file_number.get(key, 0)
        _next_file_number[key] = index + 1
        path = os.path.join(self.folder, f"{index:02d}_{stage}.mlir")
        with open(path, "w") as f:
            f.write(text)
        return path


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
