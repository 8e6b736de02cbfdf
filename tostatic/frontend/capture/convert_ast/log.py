"""`jit.set_code_level` / `TOSTATIC_CODE_LEVEL` (print the converted source) and
`jit.set_verbosity` / `TOSTATIC_VERBOSITY` (say what the converter decides), as Paddle's."""
from __future__ import annotations

import os
import sys

_levels = {"code": None, "verbosity": None}


def _level(kind: str, env: str) -> int:
    value = _levels[kind]
    if value is None:
        try:
            return int(os.environ.get(env, "0"))
        except ValueError:
            return 0
    return value


def set_code_level(level: int = 100, also_to_stdout: bool = False) -> None:
    _levels["code"] = int(level)


def set_verbosity(level: int = 0, also_to_stdout: bool = False) -> None:
    _levels["verbosity"] = int(level)


def code_level() -> int:
    return _level("code", "TOSTATIC_CODE_LEVEL")


def verbosity() -> int:
    return _level("verbosity", "TOSTATIC_VERBOSITY")


def code(title: str, source: str) -> None:
    if code_level() > 0:
        print(f"# tostatic: {title}\n{source}\n", file=sys.stdout, flush=True)


def decision(level: int, message: str) -> None:
    if verbosity() >= level:
        print(f"tostatic.jit: {message}", file=sys.stderr, flush=True)
