"""jit.save: trace (if needed), compile and write the three Paddle inference files."""
from __future__ import annotations

import warnings
from typing import Any, Sequence


from xdsl.dialects.builtin import ModuleOp

from tostatic.dialects.program import ProgramOp
from tostatic.frontend.capture.static_function import StaticFunction, to_static, trace
from tostatic.serialization.artifact import save_files
from tostatic.serialization.pdiparams import write_combine
from tostatic.serialization.pdiparams_info import info_bytes
from tostatic.serialization.program_desc import to_program_desc
from tostatic.frontend.nn.layer import Layer
from tostatic.frontend.capture.translated_layer import TranslatedLayer
from tostatic.frontend.capture.verify_save import MAX_VERIFY_BYTES, verify_export
from tostatic.passes.base import CompileState, entry
from tostatic.passes.manager import PassManager


def _static_function(layer: Any, input_spec: Sequence[Any] | None) -> StaticFunction:
    if isinstance(layer, StaticFunction):
        return layer
    if isinstance(layer, Layer):
        forward = layer.forward
        if isinstance(forward, StaticFunction):
            return forward
        return to_static(layer, input_spec=input_spec).forward
    if callable(layer):
        return StaticFunction(layer, input_spec)
    raise TypeError(f"jit.save expects a Layer or a to_static function, got "
                    f"{type(layer).__name__}")


def save(layer: Any, path: str, input_spec: Sequence[Any] | None = None,
         verify: bool | None = None, **configs: Any) -> None:
    """paddle.jit.save: writes path.pdmodel, path.pdiparams and path.pdiparams.info (and the
    manifest, path.tostatic-manifest), all at once (serialization/artifact.py).

    `verify` (tostatic's own): before writing, run the exported program against the eager
    model on inputs drawn from the spec (frontend/capture/verify_save.py); a mismatch raises
    SaveVerificationError naming the first diverging op and writes nothing. None (the
    default) verifies models with up to MAX_VERIFY_BYTES (256 MiB) of parameters, True
    always, False never."""
    if isinstance(layer, TranslatedLayer):  # a loaded model, saved again (optimised)
        if input_spec is not None or configs:
            warnings.warn("jit.save of a loaded model keeps its own inputs and outputs; "
                          "input_spec and configs are ignored", stacklevel=2)
        return _save_loaded(layer, path)
    sf = _static_function(layer, input_spec)
    specs = input_spec if input_spec is not None else sf.input_spec
    if specs is None:
        raise ValueError("jit.save needs input_spec: pass it here or to to_static")
    concrete = trace(sf._call_target(), specs, sf._layer, pipeline="export",
                     func_name=sf.__name__, snapshot=False)
    if verify is not False:
        _verify(sf, specs, concrete, force=verify is True)
    write_inference_model(path, concrete.module, concrete.state)


def _verify(sf: StaticFunction, specs: Sequence[Any], concrete: Any, force: bool) -> None:
    state = concrete.state
    weights = {name: state.weight_array(name) for name in state.weights}
    if not force and sum(int(w.nbytes) for w in weights.values()) > MAX_VERIFY_BYTES:
        return
    program = next(op for op in concrete.module.body.block.ops if isinstance(op, ProgramOp))

    def reference() -> Any:  # the traced program before lowering, only on a mismatch
        return entry(trace(sf._call_target(), specs, sf._layer, pipeline="default",
                           func_name=sf.__name__, snapshot=False).module)

    verify_export(sf._call_target(), specs, program, weights, sf._layer, reference)


def _save_loaded(layer: Any, path: str) -> None:
    """Its raised `pd` function through the export pipeline, with its weights and info."""
    model = layer._model
    module = model.module.clone()
    state = CompileState(weights=dict(model.weights), info=dict(layer._info))
    PassManager("export", verify="end").run(module, state, first_stage="loaded")
    write_inference_model(path, module, state)


def write_inference_model(path: str, module: ModuleOp, state: Any) -> None:
    """Write the module's program (lowering its `pd` function if the pipeline did not)."""
    program = next((op for op in module.body.block.ops if isinstance(op, ProgramOp)), None)
    if program is None:  # the pipeline stopped before lowering: lower a copy
        module = module.clone()
        PassManager("lower-to-program", verify="end").run(module, state, first_stage="optimised")
        program = next(op for op in module.body.block.ops if isinstance(op, ProgramOp))
    persistables = {v.var_name for v in program.blocks[0].vars if v.persistable}
    weights = {name: state.weight_array(name) for name in state.weights if name in persistables}
    info = {name: entry for name, entry in state.info.items() if name in persistables}
    model = to_program_desc(program).SerializeToString()
    # all files of the prefix as one unit (serialization/artifact.py); a file this save does
    # not have (no parameters) is removed, as a leftover of an earlier save would mislead
    save_files(path, {
        ".pdmodel": lambda f: f.write(model),
        ".pdiparams": (lambda f: write_combine(f, weights)) if weights else None,
        ".pdiparams.info": (lambda f: f.write(info_bytes(info))) if info else None})
