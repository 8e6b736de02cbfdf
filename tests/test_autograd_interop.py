"""Gradients against real Paddle 3.3.1's backward(): representative ops through the public
API (ties and boundaries included, where the rules differ between frameworks), and every
parameter of a small MLP and of a CNN with batch norm, from the same weights and data."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic

pytestmark = pytest.mark.interop

RNG = np.random.default_rng(7)


def _grads(lib, fn, arrays):
    ts = [lib.to_tensor(a, stop_gradient=a.dtype.kind != "f") for a in arrays]
    out = fn(lib, *ts)
    weight = np.random.default_rng(1).standard_normal(out.shape).astype(out.numpy().dtype)
    (out * lib.to_tensor(weight)).sum().backward()
    return out.numpy(), [t.grad.numpy() for t in ts if not t.stop_gradient]


def X(*shape):
    return RNG.standard_normal(shape).astype("float32")


TIES = np.array([[1.0, 1.0, -2.0], [0.5, 3.0, 3.0]], "float32")
CASES = {
    "relu": (lambda p, x: p.nn.functional.relu(x), [X(3, 4)]),
    "gelu": (lambda p, x: p.nn.functional.gelu(x), [X(3, 4)]),
    "gelu_tanh": (lambda p, x: p.nn.functional.gelu(x, approximate=True), [X(3, 4)]),
    "hardswish": (lambda p, x: p.nn.functional.hardswish(x * 4.0), [X(3, 4)]),
    "softmax": (lambda p, x: p.nn.functional.softmax(x, axis=0), [X(3, 4)]),
    "log_softmax": (lambda p, x: p.nn.functional.log_softmax(x), [X(3, 4)]),
    "maximum_ties": (lambda p, x, y: p.maximum(x, y), [TIES, np.ones_like(TIES)]),
    "minimum_ties": (lambda p, x, y: p.minimum(x, y), [TIES, np.ones_like(TIES)]),
    "max_ties": (lambda p, x: p.max(x, axis=1), [TIES]),
    "clip_bounds": (lambda p, x: p.clip(x, -2.0, 1.0), [TIES]),
    "matmul_broadcast": (lambda p, x, y: p.matmul(x, y, transpose_y=True), [X(2, 3, 4), X(5, 4)]),
    "divide_broadcast": (lambda p, x, y: x / (y * y + 1.0), [X(2, 3), X(3)]),
    "mean_sum": (lambda p, x: p.mean(x, axis=1) + p.sum(x, axis=1), [X(3, 4)]),
    "getitem": (lambda p, x: x[1:, 1:4] * 2.0, [X(3, 5)]),
    "concat_split": (lambda p, x, y: p.split(p.concat([x, y], axis=1), 2, axis=1)[1],
                     [X(2, 3), X(2, 1)]),
    "gather": (lambda p, x: p.gather(x, p.to_tensor(np.array([2, 0, 2]))), [X(3, 4)]),
    "embedding_pad": (lambda p, ids, w: p.nn.functional.embedding(ids, w, padding_idx=1),
                      [np.array([[1, 2], [0, 2]]), X(4, 3)]),
    "layer_norm": (lambda p, x, w, b: p.nn.functional.layer_norm(x, [4], w, b), [X(2, 3, 4), X(4), X(4)]),
    "conv2d": (lambda p, x, w: p.nn.functional.conv2d(x, w, stride=2, padding=1, groups=2),
               [X(2, 4, 6, 5), X(6, 2, 3, 3)]),
    "conv2d_transpose": (lambda p, x, w: p.nn.functional.conv2d_transpose(x, w, stride=2, padding=1),
                         [X(1, 4, 3, 3), X(4, 3, 3, 3)]),
    "max_pool_ties": (lambda p, x: p.nn.functional.max_pool2d(x, 2, 2),
                      [np.repeat(np.repeat(X(1, 2, 2, 2), 2, axis=2), 2, axis=3)]),
    "avg_pool": (lambda p, x: p.nn.functional.avg_pool2d(x, 3, 2, padding=1), [X(1, 2, 5, 5)]),
    "adaptive_avg_pool": (lambda p, x: p.nn.functional.adaptive_avg_pool2d(x, (2, 3)), [X(1, 2, 5, 7)]),
    "pad_reflect": (lambda p, x: p.nn.functional.pad(x, [1, 2, 1, 0], mode="reflect"), [X(1, 2, 4, 5)]),
    "batch_norm_train": (lambda p, x, w, b: p.nn.functional.batch_norm(
        x, p.zeros([3]), p.ones([3]), w, b, training=True), [X(2, 3, 4, 4), X(3), X(3)]),
    "group_norm": (lambda p, x, w, b: p.nn.functional.group_norm(x, 2, weight=w, bias=b),
                   [X(2, 4, 3, 3), X(4), X(4)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_gradients_match_paddle(case, real_paddle):
    fn, arrays = CASES[case]
    out, grads = _grads(tostatic, fn, arrays)
    want_out, want = _grads(real_paddle, fn, arrays)
    np.testing.assert_allclose(out, want_out, rtol=1e-5, atol=1e-5)
    assert len(grads) == len(want)
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def _mlp(p):
    return p.nn.Sequential(p.nn.Linear(8, 16), p.nn.ReLU(), p.nn.Linear(16, 16), p.nn.Tanh(),
                           p.nn.Linear(16, 3))


def _cnn(p):
    return p.nn.Sequential(p.nn.Conv2D(3, 6, 3, padding=1), p.nn.BatchNorm2D(6), p.nn.ReLU(),
                           p.nn.MaxPool2D(2, 2), p.nn.Conv2D(6, 4, 3, stride=2),
                           p.nn.BatchNorm2D(4), p.nn.ReLU(), p.nn.Flatten(), p.nn.Linear(4, 3))


def _train_grads(p, build, x, labels, state):
    model = build(p)
    model.set_state_dict({k: p.to_tensor(v) for k, v in state.items()})
    model.train()
    logits = model(p.to_tensor(x))
    onehot = p.to_tensor(np.eye(3, dtype="float32")[labels])
    loss = -(p.nn.functional.log_softmax(logits) * onehot).sum(axis=1).mean()
    loss.backward()
    return float(loss), {k: v.grad.numpy() for k, v in model.named_parameters()
                         if v.grad is not None}


@pytest.mark.parametrize("build,shape", [(_mlp, (6, 8)), (_cnn, (4, 3, 8, 8))],
                         ids=["mlp", "cnn_batchnorm"])
def test_model_gradients_match_paddle(build, shape, real_paddle):
    state = {k: v.numpy() for k, v in build(tostatic).state_dict().items()}
    x = RNG.standard_normal(shape).astype("float32")
    labels = RNG.integers(0, 3, shape[0])
    loss, grads = _train_grads(tostatic, build, x, labels, state)
    want_loss, want = _train_grads(real_paddle, build, x, labels, state)
    assert abs(loss - want_loss) < 1e-5
    assert sorted(grads) == sorted(want)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)


RESIZE = {
    "nearest": dict(size=(5, 7), mode="nearest"),
    "bilinear": dict(size=(5, 7), mode="bilinear"),
    "bilinear_corners": dict(scale_factor=1.5, mode="bilinear", align_corners=True),
    "bicubic": dict(size=(6, 5), mode="bicubic"),
}


@pytest.mark.parametrize("case", sorted(RESIZE))
def test_interpolate_gradients_match_paddle(case, real_paddle):
    def fn(p, x):
        return p.nn.functional.interpolate(x, **RESIZE[case])

    x = X(1, 2, 4, 3)
    out, grads = _grads(tostatic, fn, [x])
    want_out, want = _grads(real_paddle, fn, [x])
    np.testing.assert_allclose(out, want_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads[0], want[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_grid_sample_and_affine_grid_gradients_match_paddle(padding, real_paddle):
    def fn(p, x, theta):
        grid = p.nn.functional.affine_grid(theta, [2, 3, 5, 4], align_corners=False)
        return p.nn.functional.grid_sample(x, grid, padding_mode=padding, align_corners=False)

    theta = (np.array([[1.3, 0.2, 0.1], [-0.3, 0.9, -0.2]], "float32")
             + RNG.standard_normal((2, 2, 3)).astype("float32") * 0.3)
    x = X(2, 3, 4, 6)
    out, grads = _grads(tostatic, fn, [x, theta])
    want_out, want = _grads(real_paddle, fn, [x, theta])
    np.testing.assert_allclose(out, want_out, rtol=1e-4, atol=1e-5)
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_rnn_gradients_match_paddle(kind, real_paddle):
    def run(p, state):
        net = getattr(p.nn, kind)(3, 4, num_layers=2, direction="bidirect")
        net.set_state_dict({k: p.to_tensor(v) for k, v in state.items()})
        x = p.to_tensor(np.linspace(-1, 1, 2 * 5 * 3, dtype="float32").reshape(2, 5, 3),
                        stop_gradient=False)
        out, _ = net(x)
        (out * out).sum().backward()
        return x.grad.numpy(), {k: v.grad.numpy() for k, v in net.named_parameters()}

    state = {k: v.numpy() for k, v in getattr(tostatic.nn, kind)(
        3, 4, num_layers=2, direction="bidirect").state_dict().items()}
    dx, grads = run(tostatic, state)
    want_dx, want = run(real_paddle, state)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-5)
    assert sorted(grads) == sorted(want)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)
