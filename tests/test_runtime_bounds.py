"""slice and clip whose bounds Paddle reads from tensors when the program runs
(StartsTensor / EndsTensor / *TensorList, clip's Min / Max), in files real Paddle 3.3.1 wrote:
tostatic runs them with Paddle Inference's outputs at several bound values, and writes them
back (jit.save of the loaded model) as the same legacy ops, which Paddle Inference runs."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.ir.errors import ShapeError
from tostatic.ops import runtime_bounds as RB
from tostatic.runtime.loaded_model import load_model
from tostatic.serialization import framework_pb2 as fpb

from conftest import paddle_predict

pytestmark = pytest.mark.interop

TYPES = ("slice", "clip")


def _build(paddle):
    x = paddle.static.data("x", [-1, 6, 5], "float32")
    n = paddle.static.data("n", [1], "int64")
    se = paddle.static.data("se", [2], "int32")
    return [x, n, se], [
        paddle.slice(x, [1], [n], [4]),              # StartsTensorList
        paddle.slice(x, [1, 2], se, [5, 4]),         # StartsTensor
        x[:, 1:n],                                   # EndsTensorList
        x[:, n:n + 2],                               # both lists
        paddle.slice(x, [1, 2], [1, 0], se),         # EndsTensor
        x[:, n:n + 1, 0],                            # lists and a decreased axis
        paddle.clip(x, paddle.min(x) * 0.5, paddle.max(x) * 0.5),   # Min and Max
        paddle.clip(x, paddle.mean(x)),              # Min only
        paddle.clip(x, max=paddle.mean(x) + 0.1),    # Max only
    ]


@pytest.fixture(scope="module")
def paddle_file(real_paddle, tmp_path_factory):
    paddle = real_paddle
    paddle.enable_static()
    try:
        main, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.utils.unique_name.guard(), paddle.static.program_guard(main, startup):
            feeds, fetches = _build(paddle)
        exe = paddle.static.Executor(paddle.CPUPlace())
        prefix = str(tmp_path_factory.mktemp("bounds") / "m")
        paddle.static.save_inference_model(prefix, feeds, fetches, exe, program=main)
    finally:
        paddle.disable_static()
    return prefix + ".pdmodel"


def _feeds(n, se, seed=0):
    x = np.random.default_rng(seed).standard_normal((2, 6, 5)).astype(np.float32)
    return {"x": x, "n": np.array([n], np.int64), "se": np.array(se, np.int32)}


def _ops(path):
    prog = fpb.ProgramDesc.FromString(open(path, "rb").read())
    out = []
    for op in prog.blocks[0].ops:
        if op.type in TYPES:
            slots = {v.parameter: len(v.arguments) for v in op.inputs}
            attrs = {a.name: (list(a.ints) or list(a.floats) or a.f) for a in op.attrs
                     if a.name in ("axes", "starts", "ends", "infer_flags", "decrease_axis",
                                   "min", "max")}
            out.append((op.type, slots, attrs))
    return out


@pytest.mark.parametrize("n, se", [(2, [1, 0]), (3, [-4, 2]), (0, [2, -2])])
def test_paddle_file_runs_with_bounds_read_when_it_runs(paddle_file, n, se):
    feeds = _feeds(n, se, seed=n)
    want = paddle_predict(paddle_file, None, feeds, onednn=False)
    model = load_model(paddle_file, None)
    got = model.run([feeds[k] for k in model.feed_names])
    assert len(got) == len(want) == 9
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, (i, g.shape, w.shape)
        # exact but for the last bits of a mean (its summation order)
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=0, err_msg=f"output {i}")


def test_raised_as_the_runtime_bound_ops(paddle_file):
    model = load_model(paddle_file, None)
    used = [op.name for op in model.module.walk() if op.name.startswith(("pd.slice",
                                                                         "pd.clip"))]
    # one op a combination of the slots a bound is read from, whatever the number of axes
    assert used == ["pd.slice_starts_list", "pd.slice_starts_tensor", "pd.slice_ends_list",
                    "pd.slice_starts_list_ends_list", "pd.slice_ends_tensor",
                    "pd.slice_starts_list_ends_list", "pd.clip_tensor_min_max",
                    "pd.clip_tensor_min", "pd.clip_tensor_max"]


def test_saved_again_writes_paddles_ops_and_runs_in_paddle_inference(paddle_file, tmp_path):
    loaded = tostatic.jit.load(paddle_file[:-len(".pdmodel")])
    tostatic.jit.save(loaded, str(tmp_path / "again"))
    assert _ops(tmp_path / "again.pdmodel") == _ops(paddle_file)
    feeds = _feeds(1, [2, 1])
    want = paddle_predict(paddle_file, None, feeds, onednn=False)
    got = paddle_predict(tmp_path / "again.pdmodel", None, feeds, onednn=False)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert len(got) == 9


def test_bad_bounds_are_named():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ShapeError, match="starts must be int32 or int64"):
        RB.SLICE_OPS[("tensor", "attr")].eager(x, np.array([0.5]), axes=(1,), starts=(),
                                               ends=(2,), decrease_axis=(), infer_flags=(-1,))
    with pytest.raises(ShapeError, match="2 starts and 1 ends for 1 axes"):
        RB.SLICE_OPS[("tensor", "attr")].eager(x, np.array([0, 1]), axes=(1,), starts=(),
                                               ends=(2,), decrease_axis=(), infer_flags=(-1,))


def _clip_model(P):
    class ClipNet(P.nn.Layer):
        def forward(self, x):
            return (P.clip(x, x.mean(), 1.0), P.clip(x, max=x.min() + 0.5),
                    P.clip(x, x.mean() - 0.2, x.mean() + 0.2))
    return ClipNet()


def test_clip_with_tensor_bounds_matches_paddle_eager_and_export(real_paddle, tmp_path):
    paddle = real_paddle
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    want = [o.numpy() for o in _clip_model(paddle)(paddle.to_tensor(x))]
    ours = _clip_model(tostatic)
    for g, w in zip(ours(tostatic.to_tensor(x)), want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-6)
    spec = [paddle.static.InputSpec([None, 4], "float32", "x")]
    paddle.jit.save(paddle.jit.to_static(_clip_model(paddle), input_spec=spec),
                    str(tmp_path / "theirs"))
    tostatic.jit.save(ours, str(tmp_path / "ours"),
                      input_spec=[tostatic.static.InputSpec([None, 4], "float32", "x")])
    assert _ops(tmp_path / "ours.pdmodel") == _ops(tmp_path / "theirs.pdmodel")
    got = paddle_predict(tmp_path / "ours.pdmodel", None, {"x": x}, onednn=False)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def _slice_model(P):
    class SliceNet(P.nn.Layer):
        def forward(self, x, n):
            s = P.cast(n, "int32")
            return (P.slice(x, [1], [n], [4]), P.slice(x, [1, 2], [0, n], [n + 2, 5]),
                    P.slice(x, [1, 2], P.concat([s, s]), [5, 4]))
    return SliceNet()


def test_slice_with_tensor_bounds_matches_paddle_eager_and_runs_exported(real_paddle,
                                                                         tmp_path):
    paddle = real_paddle
    feeds = {"x": np.random.default_rng(6).standard_normal((2, 6, 5)).astype(np.float32),
             "n": np.array([1], np.int64)}
    want = [o.numpy() for o in _slice_model(paddle)(*map(paddle.to_tensor, feeds.values()))]
    ours = _slice_model(tostatic)
    got = ours(*map(tostatic.to_tensor, feeds.values()))
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w)
    spec = tostatic.static.InputSpec
    tostatic.jit.save(ours, str(tmp_path / "ours"), input_spec=[
        spec([None, 6, 5], "float32", "x"), spec([1], "int64", "n")])
    types = {t for t, _, _ in _ops(tmp_path / "ours.pdmodel")}
    assert types == {"slice"}
    for n in (1, 2, 3):  # one file, bounds read when it runs
        feeds["n"] = np.array([n], np.int64)
        want = [o.numpy() for o in _slice_model(paddle)(*map(paddle.to_tensor,
                                                              feeds.values()))]
        got = paddle_predict(tmp_path / "ours.pdmodel", None, feeds, onednn=False)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
