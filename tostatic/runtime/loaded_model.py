"""A model read from Paddle inference files, raised to `pd` and ready to run."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from tostatic.dialects.program import ProgramOp
from tostatic.passes.base import CompileState, entry
from tostatic.ops.core import Persistable
from tostatic.passes.lowering import input_names, output_names
from tostatic.passes.manager import PassManager
from tostatic.runtime.plan import ExecutionPlan
from tostatic.serialization.pdiparams import load_combine
from tostatic.serialization.program_desc import load_program


@dataclass
class LoadedModel:
    program: ProgramOp
    feed_names: list[str]
    fetch_names: list[str]
    weights: dict[str, np.ndarray]
    plan: ExecutionPlan
    module: ModuleOp  # the raised `pd` function the plan runs (jit.save writes it again)

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        return self.plan.run(feeds)


def model_paths(path_prefix: str) -> tuple[str, str]:
    """`dir/name` -> (`dir/name.pdmodel`, `dir/name.pdiparams`)."""
    for suffix in (".pdmodel", ".pdiparams"):
        if path_prefix.endswith(suffix):
            path_prefix = path_prefix[: -len(suffix)]
    return path_prefix + ".pdmodel", path_prefix + ".pdiparams"


def load_model(model_file: str, params_file: str | None) -> LoadedModel:
    if not os.path.exists(model_file):
        raise FileNotFoundError(f"model file {model_file!r} does not exist")
    program = load_program(model_file)
    module = ModuleOp([program.clone()])
    PassManager("load", verify="end").run(module, CompileState(), first_stage="loaded")
    fn = entry(module)
    feeds, fetches = input_names(fn), output_names(fn)
    persistables = sorted(op.attr_values()["var_name"] for op in fn.body.block.ops
                          if isinstance(op, Persistable))
    weights: dict[str, np.ndarray] = {}
    if persistables:
        if not params_file or not os.path.exists(params_file):
            raise FileNotFoundError(f"{model_file} has {len(persistables)} persistable "
                                    f"variables but the params file {params_file!r} is missing")
        weights = load_combine(params_file, persistables)
    plan = ExecutionPlan(fn, weights, feeds)
    return LoadedModel(program, feeds, fetches, weights, plan, module)
