"""paddle.static: static-graph mode (Program, Executor, data, nn.fc) and InputSpec."""
from tostatic.frontend.capture.input_spec import InputSpec
from tostatic.frontend.static.program import Block, Operator, Parameter, Program, Variable
from tostatic.frontend.static.io import load_inference_model, save_inference_model
from tostatic.frontend.static.mode import (
    data,
    default_main_program,
    default_startup_program,
    program_guard,
)
from tostatic.frontend.static.executor import Executor
from tostatic.frontend.static.backward import append_backward
from tostatic.runtime.scope import Scope, global_scope, scope_guard
from tostatic.static import nn
from tostatic.frontend.tensor.indexing import set_value as setitem  # paddle.static.setitem


def cpu_places(device_count=None):
    return ["Place(cpu)"] * (device_count or 1)


__all__ = ["InputSpec", "Program", "Block", "Variable", "Operator", "Parameter", "data",
           "default_main_program", "default_startup_program", "program_guard", "Executor",
           "Scope", "global_scope", "scope_guard", "save_inference_model", "load_inference_model", "nn",
           "cpu_places", "setitem", "append_backward"]
