"""Feeds checked before running (runtime/feeds.py), the nan check, threads and long runs:
through paddle.inference and jit.load, against the eager model's outputs (numpy)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tostatic as paddle
from tostatic import inference
from tostatic.ir.errors import ExecutionError, FeedError
from tostatic.static import InputSpec


class Net(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc = paddle.nn.Linear(4, 3)

    def forward(self, x, ids):
        return paddle.log(self.fc(x)) + paddle.cast(ids, "float32")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    paddle.seed(3)
    net = Net()
    net.eval()
    prefix = str(tmp_path_factory.mktemp("feeds") / "net")
    paddle.jit.save(net, prefix, input_spec=[InputSpec([None, 4], "float32", "x"),
                                             InputSpec([3], "int64", "ids")])
    return net, prefix


X = np.abs(np.random.default_rng(0).standard_normal([2, 4])).astype(np.float32) + 1.0
IDS = np.array([1, 2, 3], np.int64)

SPEC_X = r"input 'x' expects shape \[-1, 4\] dtype float32 \(-1 = any size\), but was given"


@pytest.mark.parametrize("feeds, message", [
    ([X], r"expected 2 inputs \[x \(shape \[-1, 4\] dtype float32.*\), ids \(shape \[3\] "
          r"dtype int64.*\)\], but was given 1 \(missing: ids\)"),
    ([X, IDS, IDS], r"expected 2 inputs .* but was given 3 \(extra: 1 more\)"),
    ([X[0], IDS], SPEC_X + r" shape \[4\] dtype float32 \(rank 1, not 2\)"),
    ([X[:, :3], IDS], SPEC_X + r" shape \[2, 3\] dtype float32$"),
    ([X.astype(np.float64), IDS], SPEC_X + r" shape \[2, 4\] dtype float64$"),
    ([X, IDS.astype(np.int32)], r"input 'ids' expects shape \[3\] dtype int64 .* given shape "
                                r"\[3\] dtype int32"),
    ([X, [1, [2, 3]]], r"input 'ids' expects .* given a list that is not a rectangular array"),
    ([X, ["a", "b", "c"]], r"input 'ids' expects .* given a list of <U1 values"),
    ([X, {"a": 1}], r"input 'ids' expects .* given a dict; pass a numpy array"),
    ([X.astype(object), IDS], SPEC_X + r" an array of dtype object"),
])
def test_bad_feeds_name_the_input_the_spec_and_what_was_given(saved, feeds, message):
    _, prefix = saved
    predictor = inference.create_predictor(inference.Config(prefix))
    with pytest.raises(FeedError, match=message):
        predictor.run(feeds)
    layer = paddle.jit.load(prefix)
    with pytest.raises(FeedError, match=message):
        layer(*feeds)


def test_python_values_convert_as_paddle_to_tensor_does(saved):
    net, prefix = saved
    layer = paddle.jit.load(prefix)
    want = net(paddle.to_tensor(X), paddle.to_tensor(IDS)).numpy()
    got = layer(X.tolist(), [1, 2, 3])  # floats -> float32, ints -> int64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    with pytest.raises(FeedError, match=r"input 'ids' expects .* dtype int64 .* given shape "
                                        r"\[3\] dtype float32"):
        layer(X, [1.0, 2.0, 3.0])  # floats are float32, not the int64 the model takes


def test_non_contiguous_inputs_are_copied(saved):
    net, prefix = saved
    wide = np.repeat(X, 2, axis=1)[:, ::2]  # a strided view equal to X
    assert not wide.flags.c_contiguous
    out = inference.create_predictor(inference.Config(prefix)).run([wide, IDS])[0]
    np.testing.assert_allclose(out, net(paddle.to_tensor(X), paddle.to_tensor(IDS)).numpy(),
                               rtol=1e-6)


def test_copy_from_cpu_takes_numpy_arrays_only(saved):
    _, prefix = saved
    predictor = inference.create_predictor(inference.Config(prefix))
    with pytest.raises(FeedError, match=r"input 'x': copy_from_cpu takes a numpy array, but "
                                        r"was given a list"):
        predictor.get_input_handle("x").copy_from_cpu(X.tolist())


def test_nan_check(saved):
    _, prefix = saved
    config = inference.Config(prefix)
    plain = inference.create_predictor(config)
    config.enable_nan_check()
    checked = inference.create_predictor(config)
    bad_in = X.copy()
    bad_in[1, 2] = np.nan
    assert np.isnan(plain.run([bad_in, IDS])[0]).any()  # off by default: NaN goes through
    with pytest.raises(FeedError, match=r"input 'x' holds nan at index \[1, 2\]"):
        checked.run([bad_in, IDS])
    negative = X.copy()
    negative[0, :] = -100.0  # log of a negative value: NaN in the output
    if not np.isnan(plain.run([negative, IDS])[0]).any():
        pytest.skip("these weights give no negative logit")
    with pytest.raises(ExecutionError, match=r"output '.*' holds nan at index \[0, \d\]"):
        checked.run([negative, IDS])


def test_eight_threads_share_one_predictor(saved):
    net, prefix = saved
    predictor = inference.create_predictor(inference.Config(prefix))
    rng = np.random.default_rng(1)
    inputs = [np.abs(rng.standard_normal([i + 1, 4])).astype(np.float32) + 1 for i in range(8)]
    want = [net(paddle.to_tensor(x), paddle.to_tensor(IDS)).numpy() for x in inputs]
    errors, barrier = [], threading.Barrier(8)

    def work(i: int) -> None:
        try:
            barrier.wait()
            mine = predictor.clone()  # handles per thread, as in Paddle
            x, ids = mine.get_input_handle("x"), mine.get_input_handle("ids")
            out = mine.get_output_handle(mine.get_output_names()[0])
            for _ in range(50):
                got = predictor.run([inputs[i], IDS])[0]  # the shared predictor, list API
                np.testing.assert_allclose(got, want[i], rtol=1e-6)
                x.copy_from_cpu(inputs[i])
                ids.copy_from_cpu(IDS)
                mine.run()
                np.testing.assert_allclose(out.copy_to_cpu(), want[i], rtol=1e-6)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_ten_thousand_runs_do_not_grow_memory(saved):
    _, prefix = saved
    predictor = inference.create_predictor(inference.Config(prefix))
    x = predictor.get_input_handle("x")
    ids = predictor.get_input_handle("ids")
    out = predictor.get_output_handle(predictor.get_output_names()[0])
    for _ in range(500):  # warm-up: caches, allocator pools
        x.copy_from_cpu(X)
        ids.copy_from_cpu(IDS)
        predictor.run()
        out.copy_to_cpu()
    before = _rss()
    for _ in range(10_000):
        x.copy_from_cpu(X)
        ids.copy_from_cpu(IDS)
        predictor.run()
        out.copy_to_cpu()
    grown = _rss() - before
    assert grown < 4 << 20, f"RSS grew by {grown / 2**20:.1f} MiB over 10,000 runs"


def test_bad_feeds_after_good_runs_are_still_refused(saved):
    """Runs repeating the last run's shapes skip the checks (plan.run_hot): a feed that
    differs in anything (dtype, shape, contiguity, type) still gets the checked path."""
    net, prefix = saved
    predictor = inference.create_predictor(inference.Config(prefix))
    want = net(paddle.to_tensor(X), paddle.to_tensor(IDS)).numpy()
    first = predictor.run([X, IDS])[0]
    second = predictor.run([X, IDS])[0]  # the hot path
    np.testing.assert_allclose(second, want, rtol=1e-6)
    assert first is not second and not np.shares_memory(first, second)
    second[...] = 0  # the caller's copy: the next run does not see it, nor overwrite it
    np.testing.assert_allclose(predictor.run((X, IDS))[0], want, rtol=1e-6)
    assert (second == 0).all()
    for feeds, message in [([X.astype(np.float64), IDS], SPEC_X + r" shape \[2, 4\] dtype "
                                                                  r"float64$"),
                           ([X.astype(">f4"), IDS], SPEC_X + r" shape \[2, 4\] dtype >f4$"),
                           ([X[:, :3], IDS], SPEC_X + r" shape \[2, 3\] dtype float32$"),
                           ([X, IDS.astype(np.int32)], r"input 'ids' expects shape \[3\]"),
                           ([X], r"expected 2 inputs"),
                           ([X, IDS, IDS], r"expected 2 inputs")]:
        with pytest.raises(FeedError, match=message):
            predictor.run(feeds)
        np.testing.assert_allclose(predictor.run([X, IDS])[0], want, rtol=1e-6)
    # same shape and dtype, other strides or types: converted as the first run's were
    wide = np.repeat(X, 2, axis=1)[:, ::2]
    fortran = np.asfortranarray(X)
    for x in (wide, fortran, X.tolist(), paddle.to_tensor(X)):
        np.testing.assert_allclose(predictor.run([x, IDS])[0], want, rtol=1e-6)
    # a different batch, then the first one again: each its own plan
    x3 = np.concatenate([X, X[:1]])
    np.testing.assert_allclose(predictor.run([x3, IDS])[0][:2], want, rtol=1e-6)
    np.testing.assert_allclose(predictor.run([X, IDS])[0], want, rtol=1e-6)
