"""tostatic.vision.models against paddle.vision.models 3.3.1: the same names and factories;
pretrained=True refused with the way out; every architecture built by tostatic has Paddle's
state-dict keys, parameter shapes and parameter names, takes Paddle's weights through
set_state_dict, and, exported by tostatic.jit.save, gives Paddle Inference's outputs (on
Paddle's own file of the model) in paddle.inference and in OpenVINO's Paddle reader, at batch
1 and 3. (vision_models_harness lists the cases; the larger ones need TOSTATIC_ALL_MODELS=1.)"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import tostatic
import tostatic.vision.models as models
from tostatic.static import InputSpec

from vision_models_harness import (
    BATCHES,
    assert_outputs_close,
    openvino_run,
    paddle_inference_run,
    selected,
)


@pytest.mark.interop
def test_the_same_public_names_as_paddle(real_paddle):
    theirs = real_paddle.vision.models
    assert sorted(models.__all__) == sorted(theirs.__all__)
    for name in theirs.__all__:
        ours = getattr(models, name)
        if inspect.isfunction(ours):  # the factories' own arguments, in Paddle's order
            assert list(inspect.signature(ours).parameters) == \
                list(inspect.signature(getattr(theirs, name)).parameters), name


FACTORIES = [n for n in models.__all__ if inspect.isfunction(getattr(models, n))]


@pytest.mark.parametrize("name", FACTORIES)
def test_pretrained_weights_are_refused_with_the_way_to_load_them(name):
    with pytest.raises(models.PretrainedWeightsError,
                       match=rf"{name}\(pretrained=True\).*no network access.*set_state_dict"):
        getattr(models, name)(pretrained=True)


def test_constructor_arguments_shape_the_model():
    x = tostatic.to_tensor(np.random.default_rng(0).standard_normal((1, 3, 32, 32))
                           .astype(np.float32))
    assert models.resnet18(num_classes=7)(x).shape == [1, 7]
    assert models.resnet18(num_classes=0)(x).shape == [1, 512, 1, 1]
    assert models.mobilenet_v1(scale=0.25).fc.weight.shape == [256, 1000]
    assert models.mobilenet_v2(scale=0.5).features[0][0].weight.shape == [16, 3, 3, 3]
    block = models.resnet.BottleneckBlock
    assert block(64, 64, base_width=128).conv2.weight.shape == [128, 128, 3, 3]  # wide
    assert block(256, 128, groups=32, base_width=4).conv2.weight.shape == [256, 8, 3, 3]
    assert models.densenet121(num_classes=0, with_pool=False)(x).shape == [1, 1024, 1, 1]
    with pytest.raises(NotImplementedError, match="scale size"):
        models.ShuffleNetV2(scale=0.75)
    with pytest.raises(RuntimeError, match="activation function is not supported: gelu"):
        models.ShuffleNetV2(act="gelu")
    with pytest.raises(ValueError, match="supported layers"):
        models.DenseNet(layers=100)
    with pytest.raises(ValueError, match="supported versions"):
        models.SqueezeNet("1.2")


@pytest.mark.interop
@pytest.mark.parametrize("case", selected())
def test_tostatic_model_with_paddle_weights_exports_and_runs_in_paddle_and_openvino(
        paddle_vision_models, tmp_path, case):
    made = paddle_vision_models[case]
    weights = made.state_dict()
    with tostatic.utils.unique_name.guard():
        model = case.build(models)
    state = model.state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == \
        [(k, list(v.shape)) for k, v in weights.items()]
    assert [p.name for p in model.parameters()] == made.parameter_names
    missing, unexpected = model.set_state_dict(weights)
    assert not missing and not unexpected
    model.eval()
    prefix = tmp_path / "model"
    tostatic.jit.save(model, str(prefix),
                      input_spec=[InputSpec([None, *case.input], "float32", "x")])
    feeds = [made.inputs[b] for b in BATCHES]
    wants = [made.outputs[b] for b in BATCHES]
    in_paddle = paddle_inference_run(prefix.with_suffix(".pdmodel"),
                                     prefix.with_suffix(".pdiparams"), feeds)
    in_openvino = openvino_run(prefix.with_suffix(".pdmodel"), feeds)
    for batch, want, got_paddle, got_openvino in zip(BATCHES, wants, in_paddle, in_openvino):
        assert_outputs_close(got_paddle, want, f"{case.id} paddle.inference batch {batch}",
                             made.tolerance)
        assert_outputs_close(got_openvino, want, f"{case.id} OpenVINO batch {batch}",
                             made.tolerance)
