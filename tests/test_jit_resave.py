"""jit.save of what jit.load returned: a Paddle model read, optimised and written again."""
import numpy as np
import pytest

import tostatic as paddle

from conftest import FIXTURES, assert_close, fixture_cases, paddle_predict

RESAVABLE = ["simple_net", "mlp", "two_outputs", "static_fc", "control_flow"]


@pytest.mark.parametrize("name", RESAVABLE)
def test_a_loaded_paddle_model_saves_again_and_runs_the_same(tmp_path, name):
    loaded = paddle.jit.load(str(FIXTURES / name / "model"))
    paddle.jit.save(loaded, str(tmp_path / "again"))
    again = paddle.jit.load(str(tmp_path / "again"))
    for _, feeds, expected in fixture_cases(name):
        got = again(*[paddle.to_tensor(v) for v in feeds.values()])
        got = got if isinstance(got, list) else [got]
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_close(g.numpy(), e)


@pytest.mark.interop
@pytest.mark.parametrize("name", RESAVABLE)
def test_the_saved_again_model_runs_in_paddle_inference(tmp_path, real_paddle, name):
    paddle.jit.save(paddle.jit.load(str(FIXTURES / name / "model")), str(tmp_path / "again"))
    params = tmp_path / "again.pdiparams"
    for _, feeds, expected in fixture_cases(name):
        got = paddle_predict(tmp_path / "again.pdmodel", params if params.exists() else None,
                             feeds)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
