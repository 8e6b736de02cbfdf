"""Training through a tensor-bound `while` (and a tensor `if` inside it) in to_static: the
loop's rule (pd.while_grad) reruns the loop keeping each iteration's state and runs the body's
backward in reverse. References: the same Layer run eagerly by tostatic and by real Paddle
3.3.1 (10 training steps, losses and gradients), and central differences."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tostatic

STEPS = 10


def loopy(P):
    nn = P.nn

    class Loopy(nn.Layer):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 2), nn.Linear(4, 4)

        def forward(self, x, limit):
            h = self.a(x)
            i = P.zeros([1], dtype="int64")
            while h.abs().sum() < limit:  # the trip count depends on the data
                h = P.tanh(self.a(h)) * 1.5 + h
                if h.mean() > 0:  # a tensor if inside the loop body
                    h = h + self.c(h) * 0.5
                i = i + 1
            return self.b(h), i
    return Loopy()


def batches():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((3, 4)).astype(np.float32) * (0.5 + 0.2 * k)
            for k in range(STEPS)]


def train(P, net, init=None):
    if init is not None:
        net.set_state_dict({k: P.to_tensor(v) for k, v in init.items()})
    opt = P.optimizer.Adam(0.01, parameters=net.parameters())
    limit = P.to_tensor(np.array([30.0], np.float32))
    losses, grads, trips = [], [], []
    for x in batches():
        out, i = net(P.to_tensor(x), limit)
        loss = (out ** 2).mean()
        loss.backward()
        grads.append({k: p.grad.numpy().copy() for k, p in net.named_parameters()})
        opt.step()
        opt.clear_grad()
        losses.append(float(loss))
        trips.append(int(i.numpy().reshape(-1)[0]))
    return losses, grads, trips


def check_same(got, want):
    assert got[2] == want[2]
    assert len(set(want[2])) > 1  # the trip count does change between steps
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    for g, w in zip(got[1], want[1]):
        for k in w:
            # atol relative to the largest entry: entries near 0 come from cancellation
            np.testing.assert_allclose(g[k], w[k], rtol=1e-4,
                                       atol=1e-5 * np.abs(w[k]).max(), err_msg=k)


def test_to_static_trains_through_tensor_while_like_eager():
    tostatic.seed(1)
    eager = loopy(tostatic)
    init = {k: v.numpy() for k, v in eager.state_dict().items()}
    want = train(tostatic, eager)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no backward for this program" fallback
        got = train(tostatic, tostatic.jit.to_static(loopy(tostatic)), init)
    check_same(got, want)


@pytest.mark.interop
def test_to_static_while_training_matches_real_paddle_eager():
    import paddle
    tostatic.seed(1)
    net = loopy(tostatic)
    init = {k: v.numpy() for k, v in net.state_dict().items()}
    got = train(tostatic, tostatic.jit.to_static(net))
    want = train(paddle, loopy(paddle), init)
    check_same(got, want)


def test_while_gradient_matches_central_differences():
    """d/dx and d/dw of a loop whose trip count is a tensor (range(n)), in float64."""
    def f(x, w, n):
        h = x
        for _ in range(n):
            h = tostatic.tanh(h * w) + h
        return (h * h).sum()

    rng = np.random.default_rng(3)
    x0, w0 = rng.standard_normal((2, 3)), rng.standard_normal((3,))
    n = tostatic.to_tensor(np.array(3, np.int64))
    static = tostatic.jit.to_static(f)
    x, w = tostatic.to_tensor(x0, stop_gradient=False), tostatic.to_tensor(w0, stop_gradient=False)
    static(x, w, n).backward()

    def value(xv, wv):
        return float(static(tostatic.to_tensor(xv), tostatic.to_tensor(wv), n))
    for arr, grad, other in ((x0, x.grad.numpy(), "x"), (w0, w.grad.numpy(), "w")):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            d = np.zeros_like(arr)
            d[idx] = 1e-6
            args = [(x0 + d, w0), (x0 - d, w0)] if other == "x" else [(x0, w0 + d), (x0, w0 - d)]
            num[idx] = (value(*args[0]) - value(*args[1])) / 2e-6
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7, err_msg=other)


def test_random_op_in_a_loop_body_names_it_and_the_line():
    nn = tostatic.nn

    class Noisy(nn.Layer):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            h = self.a(x)
            while h.sum() < 10.0:
                h = tostatic.nn.functional.dropout(h, 0.1) + 1.0
            return h

    net = tostatic.jit.to_static(Noisy())
    with pytest.warns(UserWarning, match=r"(?s)dropout.*test_train_while.py"):
        net(tostatic.to_tensor(np.ones((2, 4), np.float32)))
