"""tostatic.inference: the paddle.inference API over our native runtime."""
from __future__ import annotations

import os
import sys
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from tostatic.ir.errors import ExecutionError, FeedError
from tostatic.runtime import threads
from tostatic.runtime.model_files import MODEL_SUFFIXES, model_paths, params_beside

if TYPE_CHECKING:
    from tostatic.runtime.bound_plan import Profile
    from tostatic.runtime.loaded_model import LoadedModel


class Config:
    """paddle.inference.Config(model_file, params_file) or Config(prefix_or_dir). The model
    file may be a legacy .pdmodel or a Paddle 3.x .json program: its content decides."""

    def __init__(self, model: str | None = None, params: str | None = None):
        if model is not None and params is None:
            if model.endswith(MODEL_SUFFIXES):
                params = params_beside(model)
            else:
                model, params = model_paths(model)
        self._model, self._params = model, params
        self._threads: int | None = None  # None: TOSTATIC_NUM_THREADS, else the BLAS default
        self._ir_optim = True
        self._profile = False
        self._nan_check = False

    def set_model(self, model: str, params: str | None = None) -> None:
        self._model, self._params = model, params

    def model_file(self) -> str | None:
        return self._model

    def params_file(self) -> str | None:
        return self._params

    # Switches Paddle users call; CPU-only native execution has nothing to toggle.
    def disable_gpu(self) -> None: ...
    def disable_glog_info(self) -> None: ...
    def enable_memory_optim(self, *a: Any) -> None: ...
    def enable_mkldnn(self) -> None: ...

    def switch_ir_optim(self, flag: bool = True) -> None:
        """False: run the model as loaded, without the `inference` passes (batch-norm
        folding, epilogue fusion): the reference the fused plan is compared with."""
        self._ir_optim = bool(flag)

    def ir_optim(self) -> bool:
        return self._ir_optim

    def enable_profile(self) -> None:
        """Time every kernel; the table (per op type and kernel) is printed to stderr when
        the predictor goes away, as Paddle prints its profile."""
        self._profile = True

    def set_cpu_math_library_num_threads(self, n: int) -> None:
        if int(n) < 1:
            raise ValueError(f"set_cpu_math_library_num_threads: expected a positive "
                             f"number of threads, got {n}")
        self._threads = int(n)

    def cpu_math_library_num_threads(self) -> int:
        return self._threads if self._threads is not None else threads.current()

    def use_gpu(self) -> bool:
        return False

    def enable_nan_check(self, flag: bool = True) -> None:
        """Check every input and output for NaN and infinity (tostatic's own switch): a
        FeedError names the input, an ExecutionError the output, with the first bad index."""
        self._nan_check = bool(flag)

    def nan_check_enabled(self) -> bool:
        return self._nan_check


class Tensor:
    """An input or output handle of a Predictor (paddle.inference.Tensor)."""

    def __init__(self, name: str, predictor: "Predictor"):
        self._name = name
        self._predictor = predictor
        self._shape: list[int] | None = None

    def name(self) -> str:
        return self._name

    def reshape(self, shape: Any) -> None:
        self._shape = [int(d) for d in shape]

    def copy_from_cpu(self, data: np.ndarray) -> None:
        if not isinstance(data, np.ndarray):  # as Paddle's: a numpy array, nothing else
            raise FeedError(f"input {self._name!r}: copy_from_cpu takes a numpy array, but was "
                            f"given a {type(data).__name__}; convert it with np.asarray(..., "
                            f"dtype=...)")
        data = data if data.flags.c_contiguous else data.copy(order="C")  # keeps 0-d
        if self._shape is not None and list(data.shape) != self._shape:
            if int(np.prod(self._shape)) != data.size:
                raise FeedError(f"input {self._name!r}: reshape({self._shape}) does not fit "
                                f"data of shape {list(data.shape)}")
            data = data.reshape(self._shape)
        self._predictor._inputs[self._name] = data.copy()

    def copy_to_cpu(self) -> np.ndarray:
        if self._name not in self._predictor._outputs:
            raise RuntimeError(f"output {self._name!r} has no value: call predictor.run() first")
        return self._predictor._outputs[self._name].copy()

    def shape(self) -> list[int]:
        src = self._predictor._outputs.get(self._name, self._predictor._inputs.get(self._name))
        return list(src.shape) if src is not None else list(self._shape or [])


class Predictor:
    """Runs a loaded model. One predictor's input and output handles hold one run's data:
    for threads, give each its own `clone()` (sharing the weights and the plan, as Paddle's
    clone does), or call `run(inputs)` with the inputs as a list, which keeps a run's data
    to itself and may be called from any number of threads at once."""

    def __init__(self, config: Config, model: LoadedModel | None = None):
        self._config = config
        if model is None:
            if config._threads is not None:
                threads.set_num_threads(config._threads)
            model = _load(config)
            if config._profile:
                profile = model.plan.enable_profile()
                weakref.finalize(self, _print_profile, profile, config.model_file())
        self._model: LoadedModel = model
        self._nan_check = config.nan_check_enabled()
        self._inputs: dict[str, np.ndarray] = {}
        self._outputs: dict[str, np.ndarray] = {}

    def clone(self) -> "Predictor":
        """A predictor on the same model (nothing is read or copied again) with its own
        input and output handles: one per thread."""
        return Predictor(self._config, self._model)

    def get_input_names(self) -> list[str]:
        return list(self._model.feed_names)

    def get_output_names(self) -> list[str]:
        return list(self._model.fetch_names)

    def get_input_handle(self, name: str) -> Tensor:
        if name not in self._model.feed_names:
            raise KeyError(f"no input named {name!r}; inputs are {self._model.feed_names}")
        return Tensor(name, self)

    def get_output_handle(self, name: str) -> Tensor:
        if name not in self._model.fetch_names:
            raise KeyError(f"no output named {name!r}; outputs are {self._model.fetch_names}")
        return Tensor(name, self)

    def _run(self, feeds: list[Any]) -> list[np.ndarray]:
        from tostatic.runtime.feeds import first_non_finite

        if self._nan_check:
            for name, value in zip(self._model.feed_names, feeds):
                bad = first_non_finite(np.asarray(value))
                if bad is not None:
                    raise FeedError(f"input {name!r} holds {np.asarray(value)[bad]} at index "
                                    f"{list(bad)} (nan check is on)")
        outs = self._model.run(feeds)
        if self._nan_check:
            for name, value in zip(self._model.fetch_names, outs):
                bad = first_non_finite(value)
                if bad is not None:
                    raise ExecutionError(f"output {name!r} holds {value[bad]} at index "
                                         f"{list(bad)} (nan check is on)")
        return outs

    def run(self, inputs: list[np.ndarray] | None = None) -> list[np.ndarray] | None:
        if inputs is not None:
            if not self._nan_check:
                return self._model.run(inputs if type(inputs) is list else list(inputs))
            return self._run(list(inputs))
        missing = [n for n in self._model.feed_names if n not in self._inputs]
        if missing:
            raise FeedError(f"inputs {missing} were not set (copy_from_cpu) before run()")
        outs = self._run([self._inputs[n] for n in self._model.feed_names])
        self._outputs = dict(zip(self._model.fetch_names, outs))
        return None


def _load(config: Config) -> LoadedModel:
    """The model, read, raised and planned. The modules doing it (xDSL, the ops, the passes)
    are imported here, on a predictor's creation: `import tostatic.inference` is light; and
    not at all when an earlier start recorded the plan (runtime/warm_start.py)."""
    from tostatic.runtime.lazy import few_collections
    from tostatic.runtime.warm_start import open_model

    model_file, params_file = config.model_file(), config.params_file()
    optimize = config.ir_optim()

    def load() -> LoadedModel:
        with few_collections():
            from tostatic.runtime.loaded_model import load_model
        return load_model(model_file, params_file, optimize=optimize, keep_weights=False)

    record = None
    if model_file is not None and os.path.exists(model_file):
        with few_collections():
            warm, record = open_model(model_file, params_file, optimize, load)
        if warm is not None:  # an earlier start's record: no IR (runtime/warm_start.py)
            return warm  # type: ignore[return-value]
    model = load()
    model.warm_record = record
    return model


def _print_profile(profile: Profile, model: str | None) -> None:
    print(f"tostatic profile of {model}: time per op type and kernel\n{profile.table()}",
          file=sys.stderr)


def create_predictor(config: Config) -> Predictor:
    return Predictor(config)
