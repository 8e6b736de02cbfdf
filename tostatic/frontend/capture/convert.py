"""`tostatic convert`: a model file to Paddle's legacy inference files.

The source is a Paddle 3.x PIR program (`model.json` + `model.pdiparams`, what jit.save writes
by default in 3.x) or a legacy `.pdmodel`; its content decides which, not its name. It is
raised into `pd` (as jit.load raises it), then written as jit.save writes a loaded model: the
`export` pipeline, then `.pdmodel` / `.pdiparams` / `.pdiparams.info` that Paddle Inference
3.3.1 and older deployment tools (OpenVINO's Paddle reader, paddle2onnx, Paddle-Lite,
FastDeploy) read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from tostatic.frontend.capture.jit_save import write_inference_model
from tostatic.passes.base import CompileState
from tostatic.passes.manager import PassManager
from tostatic.serialization.pdiparams_info import load_info
from tostatic.runtime.loaded_model import (
    MODEL_SUFFIXES,
    load_model,
    model_paths,
    params_beside,
)


@dataclass
class Converted:
    """What convert wrote and what it read."""

    source: str
    source_format: str  # "pir-json" or "program-desc"
    model_file: str
    params_file: str | None
    info_file: str | None
    inputs: list[str]
    outputs: list[str]


def source_files(src: str, params: str | None = None) -> tuple[str, str]:
    """(model file, params file) for `src`: a model file (any name) or a prefix whose
    `.json` or `.pdmodel` exists."""
    if os.path.isfile(src):
        return src, params or params_beside(src)
    model, default_params = model_paths(src)
    if not os.path.exists(model):
        base = src[: -len(next(s for s in MODEL_SUFFIXES if src.endswith(s)))] \
            if src.endswith(MODEL_SUFFIXES) else src
        raise FileNotFoundError(f"no model at {src!r}: neither a file of that name nor "
                                f"{base}.json / {base}.pdmodel exists")
    return model, params or default_params


def convert(src: str, dst_prefix: str, params: str | None = None,
            pipeline: str = "export") -> Converted:
    """Read the model at `src` (a .json or .pdmodel file, or their prefix; `params` defaults
    to the .pdiparams beside it) and write `dst_prefix`.pdmodel / .pdiparams /
    .pdiparams.info. Errors name the file and where in it (UnsupportedError for an op
    tostatic cannot raise, FormatError for a malformed file)."""
    model_file, params_file = source_files(src, params)
    model = load_model(model_file, params_file)
    module = model.module.clone()
    info = dict(model.info)
    if not info and os.path.exists(params_file + ".info"):  # a legacy model's own
        info = load_info(params_file + ".info")
    state = CompileState(weights=dict(model.weights), info=info)
    PassManager(pipeline, verify="end").run(module, state, first_stage="loaded")
    write_inference_model(dst_prefix, module, state)
    written = [dst_prefix + s for s in (".pdiparams", ".pdiparams.info")]
    return Converted(src, model.source_format, dst_prefix + ".pdmodel",
                     written[0] if os.path.exists(written[0]) and model.weights else None,
                     written[1] if os.path.exists(written[1]) and state.info else None,
                     list(model.feed_names), list(model.fetch_names))
