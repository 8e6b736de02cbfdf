"""Files written by real Paddle 3.3.1 run in tostatic with the outputs Paddle computed."""
import pytest

import tostatic as paddle

from conftest import assert_close, fixture_cases

SUPPORTED = ["simple_net", "mlp", "two_outputs", "static_fc", "control_flow"]


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
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_close(g, e)


@pytest.mark.parametrize("name", ["simple_net", "mlp"])
def test_fixture_runs_through_jit_load(name):
    for d, feeds, expected in fixture_cases(name):
        layer = paddle.jit.load(str(d / "model"))
        out = layer(*[paddle.to_tensor(v) for v in feeds.values()])
        assert_close(out.numpy(), expected[0])
        assert set(layer.state_dict()) >= {"linear.weight"} if name == "simple_net" else True
