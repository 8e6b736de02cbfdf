"""Eager autograd's API: backward, .grad accumulation, stop_gradient, no_grad, paddle.grad
(second order), hooks, detach, clear_grad, and the error on a freed graph. References are
hand-computed derivatives."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic as paddle


def t(values, stop_gradient=False, dtype="float64"):
    return paddle.to_tensor(np.array(values, dtype=dtype), stop_gradient=stop_gradient)


def test_backward_accumulates_and_retain_graph():
    x = t([1.0, 2.0, 3.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), [2, 4, 6])
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4, 8, 12])
    assert x.grad.stop_gradient and x.is_leaf and not y.is_leaf


def test_second_backward_through_a_freed_graph_fails_like_paddle():
    x = t([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_grad_tensor_and_non_scalar_outputs():
    x = t([[1.0, 2.0], [3.0, 4.0]])
    y = paddle.exp(x)
    y.backward(paddle.to_tensor(np.array([[1.0, 0.0], [2.0, 1.0]])))
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x.numpy()) * [[1, 0], [2, 1]])
    z = t([1.0, 2.0])
    (z * 3.0).backward()  # no grad_tensor: ones, as Paddle
    np.testing.assert_allclose(z.grad.numpy(), [3, 3])


def test_stop_gradient_propagation():
    a, b = t([1.0], stop_gradient=True), t([2.0], stop_gradient=True)
    assert (a + b).stop_gradient
    w = paddle.nn.Linear(2, 2).weight
    assert not w.stop_gradient and not (w * 2.0).stop_gradient
    assert (w > 0).stop_gradient  # comparisons have no gradient
    assert paddle.argmax(w).stop_gradient


def test_no_grad_enable_grad_set_grad_enabled():
    x = t([1.0, 2.0])
    with paddle.no_grad():
        assert not paddle.is_grad_enabled()
        assert (x * 2.0).stop_gradient
        with paddle.enable_grad():
            assert not (x * 2.0).stop_gradient
    assert paddle.is_grad_enabled()

    @paddle.no_grad()
    def double(v):
        return v * 2.0

    @paddle.no_grad
    def triple(v):
        return v * 3.0

    assert double(x).stop_gradient and triple(x).stop_gradient and paddle.is_grad_enabled()
    with paddle.set_grad_enabled(False):
        assert (x * 2.0).stop_gradient
    assert paddle.is_grad_enabled()
    paddle.set_grad_enabled(False)
    assert not paddle.is_grad_enabled()
    paddle.set_grad_enabled(True)


def test_paddle_grad_first_and_second_order():
    x = t([0.5, -1.0, 2.0])
    y = (x * x * x).sum()
    (dx,) = paddle.grad(y, x, create_graph=True)
    np.testing.assert_allclose(dx.numpy(), 3 * x.numpy() ** 2)
    assert x.grad is None  # paddle.grad leaves .grad alone
    (ddx,) = paddle.grad(dx.sum(), x)
    np.testing.assert_allclose(ddx.numpy(), 6 * x.numpy())
    # through tanh (an activation using its output) and a reduction
    v = t([0.3, -0.7])
    (g,) = paddle.grad(paddle.tanh(v).sum(), v, create_graph=True)
    (gg,) = paddle.grad(g.sum(), v)
    th = np.tanh(v.numpy())
    np.testing.assert_allclose(gg.numpy(), -2 * th * (1 - th ** 2))


def test_second_order_through_matmul():
    rng = np.random.default_rng(0)
    xv, wv = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    x, w = t(xv), t(wv)
    loss = ((x @ w) * (x @ w)).sum()
    (gx,) = paddle.grad(loss, x, create_graph=True)
    np.testing.assert_allclose(gx.numpy(), 2 * xv @ wv @ wv.T)
    (gw,) = paddle.grad(gx.sum(), w)
    # d/dw sum(2 x w w^T) = 2 (x^T 1 w + 1^T x w ... ) computed by hand:
    ones = np.ones((3, 4))
    np.testing.assert_allclose(gw.numpy(), 2 * (xv.T @ ones @ wv + ones.T @ xv @ wv))


def test_paddle_grad_unused_inputs():
    x, z = t([1.0]), t([2.0])
    y = x * 2.0
    with pytest.raises(RuntimeError, match="allow_unused"):
        paddle.grad(y, [x, z], retain_graph=True)
    gx, gz = paddle.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.numpy().tolist() == [2.0]


def test_grad_of_an_intermediate_tensor():
    x = t([1.0, 2.0])
    h = x * 3.0
    y = (h * h).sum()
    (gh,) = paddle.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())


def test_hooks_detach_and_clear_grad():
    x = t([1.0, 2.0])
    handle = x.register_hook(lambda g: g * 10.0)
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [20, 20])
    assert handle.remove()
    x.clear_grad()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0])
    x.clear_gradient(set_to_zero=False)
    assert x.grad is None
    h = x * 2.0
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    (h * h).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * h.numpy())
    d = x.detach()
    assert d.stop_gradient and d.is_leaf
    x.clear_grad(set_to_zero=False)
    (x + d * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1, 1])


def test_layer_clear_gradients():
    layer = paddle.nn.Linear(3, 2)
    layer(paddle.to_tensor(np.ones((4, 3), "float32"))).sum().backward()
    np.testing.assert_allclose(layer.bias.grad.numpy(), [4, 4])
    np.testing.assert_allclose(layer.weight.grad.numpy(), np.full((3, 2), 4.0))
    layer.clear_gradients()
    assert float(np.abs(layer.weight.grad.numpy()).sum()) == 0.0
    layer.clear_gradients(set_to_zero=False)
    assert layer.weight.grad is None


def test_backward_of_a_tensor_without_history_fails():
    with pytest.raises(RuntimeError, match="stop_gradient"):
        t([1.0], stop_gradient=True).backward()


def test_autograd_backward_of_several_tensors():
    x = t([1.0, 2.0])
    a, b = (x * x).sum(), (x * 3.0).sum()
    paddle.autograd.backward([a, b], [None, paddle.to_tensor(np.array(2.0))])
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 6.0)
