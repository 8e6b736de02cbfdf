"""The static Program behind a to_static function (`concrete_program.main_program`), as
Paddle builds it: its `pd` function lowered live (variables in creation order, parameters as
Parameters, no feed/fetch ops), the feeds' stop_gradient as their InputSpecs say."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.capture.input_spec import InputSpec
from tostatic.frontend.static.program import Frame, Parameter, Program, Variable
from tostatic.ops.core import Persistable
from tostatic.passes.lowering import input_names


def _stop_gradients(specs: Any, out: list[bool]) -> list[bool]:
    """Each feed's stop_gradient, in feed order (InputSpec's default is False)."""
    if isinstance(specs, (list, tuple)):
        for s in specs:
            _stop_gradients(s, out)
    elif isinstance(specs, dict):
        for s in specs.values():
            _stop_gradients(s, out)
    elif isinstance(specs, InputSpec) or hasattr(specs, "stop_gradient"):
        out.append(bool(specs.stop_gradient))
    elif hasattr(specs, "shape"):  # a numpy array
        out.append(True)
    return out


def main_program(concrete: Any) -> Program:
    """A Program of the concrete program's (optimised) function; no ops can be added."""
    program = Program()
    fn = concrete.function.clone()
    program._fn = fn
    program._frames = [Frame(fn.body.block, 0, None)]
    root = program.global_block()
    stops = _stop_gradients(concrete.input_specs, [])
    for i, (arg, name) in enumerate(zip(fn.body.block.args, input_names(fn))):
        var = Variable(name, arg, root, stops[i] if i < len(stops) else True, {})
        program._vars[name] = var
        program._feeds.append(var)
    for op in fn.walk():  # the parameters, for printing ("persist trainable param ...")
        if isinstance(op, Persistable) and op.attr_values()["is_parameter"]:
            values = op.attr_values()
            program._vars[values["var_name"]] = Parameter(values["var_name"], op.results[0],
                                                          root, values["trainable"])
    return program
