"""The architectures of paddle.vision.models as test cases, and what the vision-model tests
share: Paddle's models built, their batch norms randomised, saved by paddle.jit.save (legacy
format) and run by Paddle Inference once per test session; OpenVINO's Paddle reader.

Each case names a factory that exists under the same name in paddle.vision.models and
tostatic.vision.models, its arguments, and the smallest input the architecture takes (with its
classifier). The default run checks the smallest member of every family; the rest run with
TOSTATIC_ALL_MODELS=1.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ALL_MODELS = os.environ.get("TOSTATIC_ALL_MODELS", "") not in ("", "0")
BATCHES = (1, 3)  # batch 1 and a second batch size, through one dynamic-batch file


@dataclass(frozen=True)
class Case:
    id: str
    factory: str  # the same name in paddle.vision.models and tostatic.vision.models
    input: tuple[int, int, int]  # C, H, W
    kwargs: dict[str, Any] = field(default_factory=dict)
    default: bool = False  # in the default run (else only with TOSTATIC_ALL_MODELS=1)

    def build(self, models_module: Any) -> Any:
        return getattr(models_module, self.factory)(**self.kwargs)


def _family(factories: list[str], size: tuple[int, int, int],
            default: str | None = None) -> list[Case]:
    return [Case(f, f, size, default=f == default) for f in factories]


S64 = (3, 64, 64)
CASES: list[Case] = [
    Case("lenet", "LeNet", (1, 28, 28), default=True),
    Case("lenet_no_head", "LeNet", (1, 28, 28), {"num_classes": 0}),
    # AlexNet's classifier wants 256x6x6 features: 224x224 input; without it, any size
    Case("alexnet_no_head", "alexnet", S64, {"num_classes": 0}, default=True),
    Case("alexnet", "alexnet", (3, 224, 224)),
    # VGG's classifier is 120M parameters whatever the input: the default run checks the
    # batch-norm VGG-11 without it (features and adaptive pool), the rest run in full
    Case("vgg11_bn_no_head", "vgg11", (3, 32, 32), {"batch_norm": True, "num_classes": 0},
         default=True),
    *_family(["vgg11", "vgg13", "vgg16", "vgg19"], (3, 32, 32)),
    *[Case(f"{f}_bn", f, (3, 32, 32), {"batch_norm": True}) for f in
      ["vgg11", "vgg13", "vgg16", "vgg19"]],
    *_family(["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"], S64,
             default="resnet18"),
    Case("resnet18_no_pool_no_head", "resnet18", S64, {"num_classes": 0, "with_pool": False},
         default=True),
    *_family(["resnext50_32x4d", "resnext50_64x4d", "resnext101_32x4d", "resnext101_64x4d",
              "resnext152_32x4d", "resnext152_64x4d"], S64, default="resnext50_32x4d"),
    *_family(["wide_resnet50_2", "wide_resnet101_2"], S64),
    Case("mobilenet_v1", "mobilenet_v1", S64, default=True),
    Case("mobilenet_v1_x0_5", "mobilenet_v1", S64, {"scale": 0.5, "num_classes": 10}),
    Case("mobilenet_v2", "mobilenet_v2", S64, default=True),
    Case("mobilenet_v2_x0_5", "mobilenet_v2", S64, {"scale": 0.5, "with_pool": False,
                                                    "num_classes": 0}),
    *_family(["mobilenet_v3_small", "mobilenet_v3_large"], S64, default="mobilenet_v3_small"),
    Case("mobilenet_v3_large_x0_75", "mobilenet_v3_large", S64, {"scale": 0.75}),
    *_family(["shufflenet_v2_x0_25", "shufflenet_v2_x0_33", "shufflenet_v2_x0_5",
              "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
              "shufflenet_v2_swish"], S64, default="shufflenet_v2_x0_25"),
    Case("shufflenet_v2_swish_x0_25", "shufflenet_v2_x0_25", S64, {"act": "swish"},
         default=True),
    *_family(["squeezenet1_0", "squeezenet1_1"], S64, default="squeezenet1_1"),
    *_family(["densenet121", "densenet161", "densenet169", "densenet201", "densenet264"], S64,
             default="densenet121"),
    # GoogLeNet's auxiliary heads want 3x3 maps after their 5x5/3 pools: 189..236 pixels
    Case("googlenet", "googlenet", (3, 192, 192), default=True),
    Case("inception_v3", "inception_v3", (3, 75, 75), default=True),
]
assert len({c.id for c in CASES}) == len(CASES)


def selected() -> list[Any]:
    """The cases as pytest params: the default set always, the others (marked slow) behind
    TOSTATIC_ALL_MODELS=1 (skipped, with the reason, otherwise)."""
    larger = (pytest.mark.slow,
              pytest.mark.skipif(not ALL_MODELS, reason="set TOSTATIC_ALL_MODELS=1 to run"))
    return [pytest.param(c, id=c.id, marks=() if c.default else larger) for c in CASES]


# ------------------------------------------------------------------------- Paddle's side

def randomise(paddle: Any, model: Any, case: Case, seed: int) -> None:
    """Random batch-norm scales and shifts and random conv / linear biases, so every
    parameter shows in the outputs; the running statistics are those of a random batch
    (one training-mode pass with momentum 0), then perturbed (mean by up to 0.1 standard
    deviations, variance by a factor 0.8 .. 1.25), so that even 150-layer networks keep
    activations, and outputs, of order 1."""
    rng = np.random.default_rng(seed)
    norms = [m for m in model.sublayers()
             if isinstance(m, (paddle.nn.BatchNorm, paddle.nn.BatchNorm2D))]
    for layer in model.sublayers():
        if isinstance(layer, (paddle.nn.Conv2D, paddle.nn.Linear)) and layer.bias is not None:
            layer.bias.set_value(rng.uniform(-0.1, 0.1, layer.bias.shape).astype(np.float32))
    momenta = [bn._momentum for bn in norms]
    for bn in norms:
        n = bn.weight.shape[0]
        bn.weight.set_value(rng.uniform(0.5, 1.5, n).astype(np.float32))
        bn.bias.set_value(rng.uniform(-0.2, 0.2, n).astype(np.float32))
        bn._momentum = 0.0  # running statistics := this batch's
    if norms:
        model.train()
        with paddle.no_grad():
            model(paddle.to_tensor(rng.standard_normal((4, *case.input)).astype(np.float32)))
    model.eval()
    for bn, momentum in zip(norms, momenta):
        bn._momentum = momentum
        n = bn.weight.shape[0]
        mean, var = bn._mean.numpy(), bn._variance.numpy()
        bn._mean.set_value((mean + rng.uniform(-0.1, 0.1, n) * np.sqrt(var)).astype(np.float32))
        bn._variance.set_value((var * np.exp(rng.uniform(-0.22, 0.22, n))).astype(np.float32))


def paddle_inference_run(model: Path, params: Path,
                         feeds: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Paddle Inference on CPU, one predictor for all feeds; each feed's outputs in fetch
    order."""
    from paddle import inference

    cfg = inference.Config(str(model), str(params))
    cfg.disable_gpu()
    cfg.disable_glog_info()
    predictor = inference.create_predictor(cfg)
    (name,) = predictor.get_input_names()
    results = []
    for feed in feeds:
        handle = predictor.get_input_handle(name)
        handle.reshape(feed.shape)
        handle.copy_from_cpu(feed)
        predictor.run()
        results.append([predictor.get_output_handle(n).copy_to_cpu()
                        for n in predictor.get_output_names()])
    return results


def openvino_run(model: Path, feeds: list[np.ndarray]) -> list[list[np.ndarray]]:
    """OpenVINO's Paddle reader on `model` (.pdmodel), compiled for the CPU in f32; the
    outputs for each feed."""
    import openvino

    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(model)), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    results = []
    for feed in feeds:
        out = compiled([feed])
        results.append([np.asarray(out[o]) for o in compiled.outputs])
    return results


@dataclass
class PaddleModel:
    """One case as Paddle made it: its saved files, its weights (numpy, on disk), inputs at
    each batch size and Paddle Inference's outputs for them."""
    case: Case
    prefix: Path  # prefix.pdmodel / .pdiparams / .pdiparams.info, written by paddle.jit.save
    weights: Path  # .npz of the state dict, keys as state_dict() gives them
    parameter_names: list[str]  # as Paddle names them in a fresh unique_name scope
    inputs: dict[int, np.ndarray]
    outputs: dict[int, list[np.ndarray]]
    # how far from `outputs` another engine may be, as a fraction of their largest magnitude:
    # 1e-4, or twice as far as Paddle's own dygraph run of the model is from Paddle Inference
    # (float32 summation order: about 1.2e-4 for the 100+ layer ResNets / ResNeXts)
    tolerance: float

    def state_dict(self) -> dict[str, np.ndarray]:
        with np.load(self.weights) as z:
            return {k: z[k] for k in z.files}


class PaddleModels:
    """Builds each case with real Paddle on first use and keeps it for the session."""

    def __init__(self, paddle: Any, root: Path) -> None:
        self.paddle = paddle
        self.root = root
        self._made: dict[str, PaddleModel] = {}

    def __getitem__(self, case: Case) -> PaddleModel:
        if case.id not in self._made:
            self._made[case.id] = self._make(case)
        return self._made[case.id]

    def _make(self, case: Case) -> PaddleModel:
        paddle = self.paddle
        from paddle.static import InputSpec

        seed = zlib.crc32(case.id.encode())
        paddle.seed(seed)
        with paddle.utils.unique_name.guard():
            model = case.build(paddle.vision.models)
        parameter_names = [p.name for p in model.parameters()]
        randomise(paddle, model, case, seed)
        d = self.root / case.id
        d.mkdir(exist_ok=True)  # a retry after a failure here
        prefix = d / "model"
        paddle.jit.save(model, str(prefix),
                        input_spec=[InputSpec([None, *case.input], "float32", "x")])
        weights = d / "weights.npz"
        np.savez(weights, **{k: v.numpy() for k, v in model.state_dict().items()})
        rng = np.random.default_rng(seed)
        inputs = {b: rng.standard_normal((b, *case.input)).astype(np.float32) for b in BATCHES}
        outputs = dict(zip(BATCHES, paddle_inference_run(
            prefix.with_suffix(".pdmodel"), prefix.with_suffix(".pdiparams"),
            [inputs[b] for b in BATCHES])))
        tolerance = 1e-4
        for b, outs in outputs.items():
            scale = max(float(np.abs(o).max()) for o in outs)
            assert 1e-3 < scale < 1e4, f"{case.id}: outputs of scale {scale}, not O(1)"
            with paddle.no_grad():
                dygraph = model(paddle.to_tensor(inputs[b]))
            dygraph = dygraph if isinstance(dygraph, (list, tuple)) else [dygraph]
            for o, y in zip(outs, dygraph):
                gap = float(np.abs(y.numpy() - o).max()) / float(np.abs(o).max())
                tolerance = max(tolerance, 2 * gap)
        assert tolerance < 1e-3, f"{case.id}: Paddle's dygraph and Inference differ by " \
                                 f"{tolerance / 2:.1e} of the output scale"
        return PaddleModel(case, prefix, weights, parameter_names, inputs, outputs, tolerance)


def assert_outputs_close(got: list[Any], want: list[np.ndarray], what: str,
                         tol: float = 1e-4) -> None:
    """Same number, shapes and dtypes of outputs; values within rtol 1e-4 and an absolute
    `tol` times the output's largest magnitude (for elements near zero)."""
    got = [np.asarray(g) for g in got]
    assert len(got) == len(want), f"{what}: {len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, \
            f"{what} output {i}: {g.dtype}{list(g.shape)}, expected {w.dtype}{list(w.shape)}"
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=tol * float(np.abs(w).max()),
                                   err_msg=f"{what} output {i}")
