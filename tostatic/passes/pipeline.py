"""Pipelines: a string of pass names with options, run in order (`a,b{k=v},c`)."""
from __future__ import annotations

import re
from typing import Any

from xdsl.dialects.builtin import ModuleOp

# Importing the pass modules registers them.
from tostatic.passes import (  # noqa: F401
    constant_folding,
    dead_op_elimination,
    lower_to_program,
    persistable_extraction,
)
from tostatic.passes.base import PASSES, CompilePass, CompileState

_ITEM = re.compile(r"\s*([a-z0-9-]+)\s*(?:\{([^}]*)\})?\s*(?:,|$)")


def _value(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_pipeline(text: str) -> list[CompilePass]:
    passes, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad pipeline at column {pos}: {text[pos:]!r}")
        name, opts = m.group(1), m.group(2)
        if name not in PASSES:
            raise ValueError(f"unknown pass {name!r}; known passes: {sorted(PASSES)}")
        options = {}
        for item in filter(None, (o.strip() for o in (opts or "").split(" "))):
            key, _, val = item.partition("=")
            options[key] = _value(val)
        passes.append(PASSES[name](**options))
        pos = m.end()
    return passes


def run_pipeline(module: ModuleOp, state: CompileState, pipeline: str) -> None:
    for p in parse_pipeline(pipeline):
        p.apply(module, state)
