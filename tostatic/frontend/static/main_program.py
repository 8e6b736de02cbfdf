"""The static Program behind a to_static function (`concrete_program.main_program`), as
Paddle builds it: variables in creation order, parameters as Parameters, no feed/fetch ops."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.capture.input_spec import InputSpec
from tostatic.frontend.static.program import Program
from tostatic.passes.lower_to_program import lower_block


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
    lowered = lower_block(concrete.function, keep_extra=True)
    stop = dict(zip(lowered.feeds, _stop_gradients(concrete.input_specs, [])))
    for name, (_, kw) in lowered.variables.items():
        if kw.get("persistable"):
            stop[name] = not lowered.parameters.get(name, False)
    for op in lowered.ops:
        flag = all(stop.get(n, True) for n in op.input_names)
        for n in op.output_names:
            stop[n] = flag
    program = Program()
    block = program.global_block()
    for name, (ab, kw) in lowered.variables.items():
        if name in lowered.parameters:
            block.create_parameter(name, ab.shape, ab.dtype, lowered.parameters[name])
        else:
            block.create_var(name, ab.shape, ab.dtype, persistable=kw.get("persistable"),
                             lod_level=kw.get("lod_level"), stop_gradient=stop.get(name, True))
    for op in lowered.ops:
        block.append_op(op)
    return program
