"""Files written by real Paddle 3.3.1 run in tostatic with the outputs Paddle computed."""
import numpy as np
import pytest

import tostatic as paddle

from conftest import assert_all_close, assert_close, fixture_cases

SUPPORTED = ["simple_net", "mlp", "two_outputs", "static_fc", "control_flow", "small_cnn",
             "depthwise_cnn", "embed_ln"]


@pytest.mark.parametrize("name", SUPPORTED)
def test_fixture_runs_through_inference_api(name):
    for d, feeds, expected in fixture_cases(name):
        params = d / "model.pdiparams"
        config = paddle.inference.Config(str(d / "model.pdmodel"),
                                         str(params) if params.exists() else None)
        predictor = paddle.inference.create_predictor(config)
        for n in predictor.get_input_names():
            h = predictor.get_input_handle(n)
            h.reshape(feeds[n].shape)
            h.copy_from_cpu(feeds[n])
        predictor.run()
        got = [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]
        assert_all_close(got, expected)


def _relu(a):
    return np.maximum(a, 0)


# What make_fixtures.py built, as numpy over the loaded state dict (keys by hand: the
# structured names paddle.jit.save wrote into .pdiparams.info).
FORWARD = {
    "simple_net": (["linear.weight", "linear.bias"],
                   lambda p, x, y: x @ p["linear.weight"] + p["linear.bias"] + y),
    "mlp": ([f"layers.{i}.{k}" for i in (0, 2, 4) for k in ("weight", "bias")],
            lambda p, x: _relu(_relu(x @ p["layers.0.weight"] + p["layers.0.bias"])
                               @ p["layers.2.weight"] + p["layers.2.bias"])
            @ p["layers.4.weight"] + p["layers.4.bias"]),
}


@pytest.mark.parametrize("name", sorted(FORWARD))
def test_fixture_runs_through_jit_load(name):
    """Outputs equal Paddle's, and state_dict() holds Paddle's weights under their structured
    names: numpy's forward pass over them gives Paddle's outputs too."""
    keys, forward = FORWARD[name]
    for d, feeds, expected in fixture_cases(name):
        layer = paddle.jit.load(str(d / "model"))
        out = layer(*[paddle.to_tensor(v) for v in feeds.values()])
        assert_close(out.numpy(), expected[0])
        state = {k: v.numpy() for k, v in layer.state_dict().items()}
        assert sorted(state) == sorted(keys)
        np.testing.assert_allclose(forward(state, *feeds.values()), expected[0],
                                   rtol=1e-5, atol=1e-6)
