"""jit.save of what jit.load returned: a Paddle model read, optimised and written again."""
import numpy as np
import pytest

import tostatic as paddle

from conftest import FIXTURES, assert_all_close, fixture_cases, paddle_predict

RESAVABLE = ["simple_net", "mlp", "two_outputs", "static_fc", "control_flow"]


@pytest.mark.parametrize("name", RESAVABLE)
def test_a_loaded_paddle_model_saves_again_and_runs_the_same(tmp_path, name):
    loaded = paddle.jit.load(str(FIXTURES / name / "model"))
    paddle.jit.save(loaded, str(tmp_path / "again"))
    again = paddle.jit.load(str(tmp_path / "again"))
    for _, feeds, expected in fixture_cases(name):
        got = again(*[paddle.to_tensor(v) for v in feeds.values()])
        got = got if isinstance(got, list) else [got]
        assert_all_close([g.numpy() for g in got], expected)


@pytest.mark.interop
@pytest.mark.parametrize("name", RESAVABLE)
def test_the_saved_again_model_runs_in_paddle_inference(tmp_path, real_paddle, name):
    paddle.jit.save(paddle.jit.load(str(FIXTURES / name / "model")), str(tmp_path / "again"))
    params = tmp_path / "again.pdiparams"
    for _, feeds, expected in fixture_cases(name):
        got = paddle_predict(tmp_path / "again.pdmodel", params if params.exists() else None,
                             feeds)
        assert_all_close(got, expected)


def test_saving_again_keeps_output_names_even_when_optimisation_merges_outputs(tmp_path):
    """Older Paddle's save_inference_model puts scale(x, 1.0) on every output
    (save_infer_model/scale_0.tmp_0); canonicalize drops it and CSE may merge two outputs,
    but the re-saved model must answer to the same output names."""
    def fn(x):
        a = paddle.relu(x)
        b = paddle.relu(x)  # CSE merges it into `a`
        return a, b, paddle.scale(a, scale=1.0), x

    paddle.jit.save(fn, str(tmp_path / "m"),
                    input_spec=[paddle.static.InputSpec([None, 3], "float32", "x")])
    first = paddle.jit.load(str(tmp_path / "m"))
    names = first._model.fetch_names
    assert len(set(names)) == 4
    paddle.jit.save(first, str(tmp_path / "again"))
    again = paddle.jit.load(str(tmp_path / "again"))
    assert again._model.fetch_names == names
    xs = np.array([[-1.0, 2.0, 3.0]], "float32")
    relu = np.maximum(xs, 0)
    assert_all_close([g.numpy() for g in again(paddle.to_tensor(xs))], [relu, relu, relu, xs])
    with pytest.warns(UserWarning, match="input_spec and configs are ignored"):
        paddle.jit.save(first, str(tmp_path / "third"), input_spec=[None])
