"""Pipelines: a string of pass names with options, run in order (`a,b{k=v},c`).

A name may also be one of the named PIPELINES, which expands in place.
"""
from __future__ import annotations

import re
from typing import Any

# Importing the pass modules registers them.
from tostatic.passes import (  # noqa: F401
    append_backward,
    canonicalize,
    choose_layout,
    constant_folding,
    cse,
    dead_op_elimination,
    fold_batch_norm,
    fold_matmul_scale,
    fold_static_shapes,
    fuse_attention,
    fuse_elementwise,
    fuse_epilogue,
    fuse_qkv,
    if_to_select,
    loop_invariant_code_motion,
    lower_to_program,
    persistable_extraction,
    raise_from_program,
    remove_test_dropout,
    set_is_test,
    shape_inference,
)
from tostatic.passes.base import PASSES, CompilePass

# The pipelines tostatic itself runs; `tostatic opt --pipeline default` names them too.
PIPELINES = {
    "default": "persistable-extraction,canonicalize,constant-folding,loop-invariant-code-motion,"
               "cse,dead-op-elimination",
    "export": "default,lower-to-program,set-is-test",
    "load": "raise-from-program,dead-op-elimination",
    # what jit.load / paddle.inference run on the plan's copy of a loaded model (with its
    # weights): batch-norm folding and epilogue fusion make ops Paddle has not, so the loaded
    # module keeps `load`'s IR; fuse-elementwise comes after fuse-epilogue, which takes the
    # bias / activation / residual ops after a conv or matmul first; choose-layout comes after
    # both, so a chain's convolutions carry their epilogues into NHWC
    "inference": "fold-static-shapes,constant-folding,fold-batch-norm,remove-test-dropout,"
                 "fuse-epilogue,fold-matmul-scale,fuse-qkv,fuse-attention,fuse-elementwise,"
                 "choose-layout,dead-op-elimination",
}

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
        pos = m.end()
        if name in PIPELINES and opts is None:
            passes += parse_pipeline(PIPELINES[name])
            continue
        if name not in PASSES:
            raise ValueError(f"unknown pass {name!r}; known passes: {sorted(PASSES)}, "
                             f"pipelines: {sorted(PIPELINES)}")
        options = {}
        for item in filter(None, (o.strip() for o in (opts or "").split(" "))):
            key, _, val = item.partition("=")
            options[key] = _value(val)
        passes.append(PASSES[name](**options))
    return passes
