"""Which files a model is: the names Config and jit.load accept, resolved to the model file
and its .pdiparams. Apart from runtime/loaded_model.py, which raises the model: a predictor's
Config resolves them before anything heavy is imported."""
from __future__ import annotations

import os

MODEL_SUFFIXES = (".pdmodel", ".json")


def model_paths(path_prefix: str) -> tuple[str, str]:
    """`dir/name` -> (`dir/name.pdmodel`, `dir/name.pdiparams`), or `dir/name.json` when only
    that exists (what Paddle 3.x's jit.save writes by default)."""
    for suffix in (*MODEL_SUFFIXES, ".pdiparams"):
        if path_prefix.endswith(suffix):
            path_prefix = path_prefix[: -len(suffix)]
    legacy, pir = path_prefix + ".pdmodel", path_prefix + ".json"
    model = pir if os.path.exists(pir) and not os.path.exists(legacy) else legacy
    return model, path_prefix + ".pdiparams"


def params_beside(model_file: str) -> str:
    """The .pdiparams that goes with a model file (`m.json` / `m.pdmodel` -> `m.pdiparams`)."""
    for suffix in MODEL_SUFFIXES:
        if model_file.endswith(suffix):
            return model_file[: -len(suffix)] + ".pdiparams"
    return model_file + ".pdiparams"
