"""(interop) Every architecture of paddle.vision.models, saved by real Paddle 3.3.1 with
paddle.jit.save (legacy format, eval mode, batch norms randomised), runs in tostatic through
jit.load and through tostatic.inference with Paddle Inference's outputs, at batch 1 and 3
through one dynamic-batch file. (vision_models_harness lists the cases; the larger ones need
TOSTATIC_ALL_MODELS=1.)"""
from __future__ import annotations

import pytest

import tostatic

from vision_models_harness import BATCHES, assert_outputs_close, selected

pytestmark = pytest.mark.interop


def _as_list(y):
    return list(y) if isinstance(y, (tuple, list)) else [y]


@pytest.mark.parametrize("case", selected())
def test_paddle_saved_model_runs_in_jit_load_and_inference(paddle_vision_models, case):
    made = paddle_vision_models[case]
    layer = tostatic.jit.load(str(made.prefix))
    config = tostatic.inference.Config(str(made.prefix.with_suffix(".pdmodel")),
                                       str(made.prefix.with_suffix(".pdiparams")))
    predictor = tostatic.inference.create_predictor(config)
    config.switch_ir_optim(False)
    unfused_predictor = tostatic.inference.create_predictor(config)
    (name,) = predictor.get_input_names()
    for batch in BATCHES:
        x, want = made.inputs[batch], made.outputs[batch]
        got = [t.numpy() for t in _as_list(layer(tostatic.to_tensor(x)))]
        assert_outputs_close(got, want, f"{case.id} jit.load batch {batch}",
                             made.tolerance)
        handle = predictor.get_input_handle(name)
        handle.reshape(x.shape)
        handle.copy_from_cpu(x)
        predictor.run()
        got = [predictor.get_output_handle(n).copy_to_cpu()
               for n in predictor.get_output_names()]
        assert_outputs_close(got, want, f"{case.id} tostatic.inference batch {batch}",
                             made.tolerance)
        # without the inference passes (batch-norm folding, epilogue fusion): as close as
        # each is to Paddle (the harness's tolerance: 1e-4 of the output scale at least, twice
        # Paddle's own dygraph-to-Inference gap). Float32 summation order alone moves the
        # shallow nets by 1e-5 of the scale, the deep ones (ResNet-50 and up, ResNeXt, wide
        # ResNets, MobileNetV2 x0.5 with these random weights) by 4e-5 to 2e-4
        unfused = unfused_predictor.run([x])
        assert_outputs_close(got, unfused, f"{case.id} with / without inference passes",
                             made.tolerance)
