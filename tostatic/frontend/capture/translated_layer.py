"""What `jit.load` returns: a Layer-like callable that runs the saved program alone."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.tensor.tensor import Tensor
from tostatic.runtime.loaded_model import LoadedModel, load_model, model_paths
from tostatic.serialization.artifact import check_file, read_manifest
from tostatic.serialization.pdiparams_info import load_info


class TranslatedLayer:
    """Runs a loaded program; parameters are exposed by their structured names like Paddle's."""

    def __init__(self, model: LoadedModel, info: dict[str, dict[str, Any]] | None = None):
        self._model = model
        self._info = info or dict(model.info)  # a PIR .json model keeps its flags itself
        self.training = False

    def __call__(self, *inputs: Any) -> Any:
        return self.forward(*inputs)

    def forward(self, *inputs: Any) -> Any:
        arrays = [x.numpy() if isinstance(x, Tensor) else x for x in inputs]
        outs = [Tensor(o) for o in self._model.run(arrays)]
        return outs[0] if len(outs) == 1 else outs

    def eval(self) -> "TranslatedLayer":
        self.training = False
        return self

    def train(self) -> "TranslatedLayer":
        self.training = True
        return self

    def state_dict(self) -> dict[str, Tensor]:
        out = {}
        for name, array in self._model.weights.items():
            key = self._info.get(name, {}).get("structured_name", name)
            out[key] = Tensor(array, stop_gradient=True, name=name, persistable=True)
        return out

    def parameters(self) -> list[Tensor]:
        return list(self.state_dict().values())

    @property
    def program(self):
        return self._model.program


def load(path: str, **configs: Any) -> TranslatedLayer:
    """paddle.jit.load: `path` is the prefix given to jit.save (which wrote path.pdmodel, or
    path.json in Paddle 3.x)."""
    import os

    model_file, params_file = model_paths(path)
    model = load_model(model_file, params_file)  # finishes a killed save of the prefix first
    info_file = params_file + ".info"
    info = None
    if os.path.exists(info_file):
        info = load_info(info_file)
        if model_file.endswith(".pdmodel"):
            with open(info_file, "rb") as f:
                check_file(read_manifest(model_file[: -len(".pdmodel")]), info_file, f.read())
    return TranslatedLayer(model, info)
