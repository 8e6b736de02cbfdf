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


@pytest.mark.interop
def test_a_layer_saved_in_train_mode_is_written_for_inference_as_paddle_writes_it(
        tmp_path, real_paddle):
    """jit.save of a Layer still in train mode: dropout and batch_norm get is_test=True (the
    set-is-test pass), so the file computes what the eval Layer computes, in tostatic and in
    paddle.inference, and its ops carry the same is_test as Paddle's own save."""
    from tostatic.serialization.program_desc import load_program

    def build(nn):
        return nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1D(4))

    ours, theirs = build(paddle.nn), build(real_paddle.nn)
    theirs.set_state_dict({k: real_paddle.to_tensor(v.numpy())
                           for k, v in ours.state_dict().items()})
    ours.train()
    theirs.train()
    spec = [paddle.static.InputSpec([None, 4], "float32", "x")]
    paddle.jit.save(ours, str(tmp_path / "ours"), input_spec=spec)
    real_paddle.jit.save(theirs, str(tmp_path / "theirs"),
                         input_spec=[real_paddle.static.InputSpec([None, 4], "float32", "x")])
    flags = {name: [(op.op_type, op.attr("is_test")) for op in
                    load_program(tmp_path / f"{name}.pdmodel").blocks[0].ops
                    if op.has_attr("is_test")] for name in ("ours", "theirs")}
    assert flags["ours"] == flags["theirs"] == [("dropout", True), ("batch_norm", True)]
    x = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    ours.eval()
    want = ours(paddle.to_tensor(x)).numpy()
    (got,) = paddle_predict(tmp_path / "ours.pdmodel", tmp_path / "ours.pdiparams", {"x": x})
    (paddles,) = paddle_predict(tmp_path / "theirs.pdmodel", tmp_path / "theirs.pdiparams",
                                {"x": x})
    np.testing.assert_allclose(got, paddles, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(paddle.jit.load(str(tmp_path / "ours"))(x).numpy(), want,
                               rtol=1e-5, atol=1e-6)
