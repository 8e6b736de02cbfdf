"""Training through a tensor `if` in to_static: the if-to-select pass runs both pure branches
and selects (select_input), so append-backward differentiates the program; eager tostatic
training of the same Layer from the same weights is the reference (both branches taken,
alternating, and a nested if)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tostatic as paddle
from tostatic.ir.errors import UnsupportedError
from tostatic.passes.base import CompileState, entry
from tostatic.passes.manager import PassManager
from tostatic.runtime.plan import ExecutionPlan

nn = paddle.nn


class Branchy(nn.Layer):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(3, 3)

    def forward(self, x):
        h = self.a(x)
        if x.mean() > 0:
            y = paddle.tanh(h) + self.c(h)
            if y.sum() > 0:  # nested
                y = y * 0.5
        else:
            y = self.b(x) * 2.0 - h
        return y


def train(net, steps=12):
    rng = np.random.default_rng(0)
    # SGD: a parameter of the branch not taken gets a zero gradient in the program where
    # eager has none; Adam would still advance its moments, SGD leaves it alone
    opt = paddle.optimizer.SGD(0.05, parameters=net.parameters())
    losses = []
    for i in range(steps):
        shift = (1.0 if i % 3 else -1.0)
        x = paddle.to_tensor(rng.standard_normal((5, 4)).astype(np.float32) + shift)
        loss = (net(x) ** 2).mean()
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(float(loss))
    return losses


def test_to_static_trains_through_tensor_if_like_eager():
    paddle.seed(1)
    eager, static = Branchy(), Branchy()
    static.set_state_dict(eager.state_dict())
    want = train(eager)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no backward for this program" fallback
        got = train(paddle.jit.to_static(static))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(eager.parameters(), static.parameters()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
    branch_only = {"b": static.b.weight, "c": static.c.weight}
    start = Branchy()
    paddle.seed(1)
    start = Branchy()  # the same initial weights again
    for name, p in branch_only.items():  # each branch was taken and trained
        assert not np.allclose(p.numpy(), getattr(start, name).weight.numpy()), name


def test_if_to_select_keeps_an_if_with_effects():
    """A branch with dropout (an effect) keeps its pd.if: no backward, the documented
    warning, and forward still runs."""
    class Dropping(nn.Layer):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)

        def forward(self, x):
            if x.mean() > 0:
                y = nn.functional.dropout(self.a(x), 0.5)
            else:
                y = self.a(x)
            return y

    net = paddle.jit.to_static(Dropping())
    net.train()
    with pytest.warns(UserWarning, match="no backward for this program"):
        out = net(paddle.ones([2, 4]))
    assert out.shape == [2, 3]


def test_if_to_select_pass_on_the_ir():
    """The pass in isolation on the forward program: no pd.if left, a select_input per
    result of each if (the nested one included), and the same outputs on both branches."""
    net = paddle.jit.to_static(Branchy())
    program = net.forward.concrete_program_for([paddle.static.InputSpec([5, 4], "float32")])
    module = program.module.clone()
    assert "pd.if" in _names(module)
    PassManager("if-to-select", verify="end").run(module, CompileState(), first_stage="test")
    assert "pd.if" not in _names(module)
    assert _names(module).count("pd.select_input") == 2
    plan = ExecutionPlan(entry(module), program.state.weights)
    for shift in (1.0, -1.0):
        x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32) + shift
        np.testing.assert_allclose(plan.run([x])[0], net(paddle.to_tensor(x)).numpy(),
                                   rtol=1e-6, atol=1e-6)


def _names(module):
    return [op.name for op in entry(module).walk()]


class NormInBranch(nn.Layer):
    def __init__(self):
        super().__init__()
        self.a, self.bn, self.b = nn.Linear(4, 4), nn.BatchNorm1D(4), nn.Linear(4, 2)

    def forward(self, x):
        h = self.a(x)
        if x.mean() > 0:
            h = paddle.nn.functional.relu(self.bn(h))
        else:
            h = h * 2.0
        return self.b(h)


def test_batch_norm_in_a_tensor_if_updates_statistics_only_when_taken():
    """Gradients, losses and running statistics as eager's for 10 steps, branches
    alternating: the branch not taken leaves the statistics alone."""
    paddle.seed(2)
    eager, static = NormInBranch(), NormInBranch()
    static.set_state_dict(eager.state_dict())
    runs = []
    for net in (eager, paddle.jit.to_static(static)):
        rng = np.random.default_rng(1)
        opt = paddle.optimizer.SGD(0.05, parameters=net.parameters())
        losses, stats = [], []
        for i in range(10):
            x = paddle.to_tensor(rng.standard_normal((6, 4)).astype(np.float32)
                                 + (1.0 if i % 3 else -1.0))
            loss = (net(x) ** 2).mean()
            loss.backward()
            opt.step()
            opt.clear_grad()
            losses.append(float(loss))
            stats.append(net.bn._mean.numpy().copy())
        runs.append((losses, stats))
    (want, want_stats), (got, got_stats) = runs
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(got_stats, want_stats, rtol=1e-5, atol=1e-7)
    assert not np.allclose(want_stats[0], want_stats[1])  # taken at step 1 ...
    np.testing.assert_array_equal(want_stats[2], want_stats[3])  # ... not at step 3


class NoisyBranch(nn.Layer):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = self.a(x)
        if x.mean() > 0:
            h = paddle.nn.functional.dropout(h, 0.5) * 2.0
        else:
            h = paddle.tanh(h)
        return self.b(h)


def test_dropout_in_a_tensor_if_trains_like_eager():
    """The program's if draws only in the branch taken (the random stream stays eager's)
    and yields its mask, which the backward reads: the same losses and gradients."""
    paddle.seed(1)
    eager, static = NoisyBranch(), NoisyBranch()
    static.set_state_dict(eager.state_dict())
    runs = []
    for net in (eager, paddle.jit.to_static(static)):
        paddle.seed(7)
        rng = np.random.default_rng(1)
        opt = paddle.optimizer.SGD(0.05, parameters=net.parameters())
        steps = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no forward-only fallback
            for i in range(10):
                x = paddle.to_tensor(rng.standard_normal((6, 4)).astype(np.float32)
                                     + (1.0 if i % 3 else -1.0))
                loss = (net(x) ** 2).mean()
                loss.backward()
                steps.append((float(loss), net.a.weight.grad.numpy().copy()))
                opt.step()
                opt.clear_grad()
        runs.append(steps)
    for k, ((want, gw), (got, gg)) in enumerate(zip(*runs)):
        assert got == pytest.approx(want, rel=1e-5), k
        np.testing.assert_allclose(gg, gw, rtol=1e-5, atol=1e-7, err_msg=str(k))


class StatsInBranch(nn.Layer):
    def __init__(self, with_dropout=False):
        super().__init__()
        self.bn = nn.BatchNorm1D(4)
        self.drop = nn.Dropout(0.5) if with_dropout else None

    def forward(self, x):
        if x.sum() > 0:
            y = self.bn(x)
            if self.drop is not None:
                y = self.drop(y)
        else:
            y = x * 2.0
        return y


def test_a_call_without_backward_in_train_mode_updates_statistics_like_eager():
    """Under no_grad (or with nothing to differentiate) a train-mode call runs the forward
    program alone: the branch's batch norm must still update its running statistics when
    taken, and only then (it used to leave them at zero)."""
    rng = np.random.default_rng(5)
    feeds = [np.abs(rng.standard_normal((8, 4))).astype("float32"),
             -np.abs(rng.standard_normal((8, 4))).astype("float32"),
             rng.standard_normal((8, 4)).astype("float32") + 1.0]
    stats = {}
    for mode in ("eager", "static"):
        paddle.seed(3)
        net = StatsInBranch()
        net.train()
        f = paddle.jit.to_static(net) if mode == "static" else net
        seen = []
        with paddle.no_grad():
            for x in feeds:
                out = f(paddle.to_tensor(x))
                seen.append((out.numpy(), net.bn._mean.numpy().copy(),
                             net.bn._variance.numpy().copy()))
        stats[mode] = seen
    for (o1, m1, v1), (o2, m2, v2) in zip(stats["eager"], stats["static"]):
        np.testing.assert_allclose(o2, o1, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m2, m1, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(v2, v1, rtol=1e-6, atol=1e-7)
    assert not np.allclose(stats["eager"][0][1], 0)  # taken: updated
    np.testing.assert_array_equal(stats["eager"][1][1], stats["eager"][0][1])  # not taken


def test_statistics_a_call_cannot_write_back_are_refused_naming_the_line():
    """Batch norm with dropout in one branch keeps its pd.if (effects): a train-mode call
    without backward is refused, not run with the statistics silently left alone."""
    net = StatsInBranch(with_dropout=True)
    net.train()
    f = paddle.jit.to_static(net)
    with paddle.no_grad(), pytest.raises(UnsupportedError, match=r"test_train_if.py:\d+.*updates"):
        f(paddle.to_tensor(np.ones((8, 4), "float32")))
