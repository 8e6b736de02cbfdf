"""Static-mode training: `paddle.static.append_backward` and `optimizer.minimize(loss)` build
backward and update ops in the Program, and each Executor.run updates the parameters in the
scope. References: eager tostatic training of the same MLP from the same weights (which
checks the gradients and the update ops end to end), central differences for the gradients
append_backward returns, and (interop) real Paddle 3.3.1's static mode on the same program."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic as paddle

STEPS = 10
rng = np.random.default_rng(7)
W0 = (rng.standard_normal((4, 5)) * 0.5).astype(np.float32)
B0 = (rng.standard_normal(5) * 0.1).astype(np.float32)
W1 = (rng.standard_normal((5, 2)) * 0.5).astype(np.float32)
B1 = (rng.standard_normal(2) * 0.1).astype(np.float32)
XS = rng.standard_normal((STEPS, 8, 4)).astype(np.float32)
YS = rng.standard_normal((STEPS, 8, 2)).astype(np.float32)
INIT = {"fc_0.w_0": W0, "fc_0.b_0": B0, "fc_1.w_0": W1, "fc_1.b_0": B1}
OPTIMIZERS = {"sgd": lambda p, **k: p.optimizer.SGD(0.1, **k),
              "adam": lambda p, **k: p.optimizer.Adam(0.05, **k),
              "adamw_clip": lambda p, **k: p.optimizer.AdamW(
                  0.05, weight_decay=0.01, grad_clip=p.nn.ClipGradByGlobalNorm(0.5), **k),
              "momentum_l2_clip": lambda p, **k: p.optimizer.Momentum(
                  0.1, weight_decay=1e-3, grad_clip=p.nn.ClipGradByNorm(0.3), **k),
              "sgd_l1": lambda p, **k: p.optimizer.SGD(
                  0.1, weight_decay=p.regularizer.L1Decay(1e-3), **k)}


def build(p, opt_name):
    """The static program, in tostatic or in real Paddle (the same calls)."""
    x = p.static.data("x", [8, 4], "float32")
    y = p.static.data("y", [8, 2], "float32")
    h = p.static.nn.fc(x, 5, activation="relu")
    out = p.static.nn.fc(h, 2)
    loss = p.mean((out - y) ** 2)
    OPTIMIZERS[opt_name](p).minimize(loss)
    return loss


def eager_run(opt_name):
    nn = paddle.nn
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    for param, value in zip(net.parameters(), (W0, B0, W1, B1)):
        param.set_value(value)
    opt = OPTIMIZERS[opt_name](paddle, parameters=net.parameters())
    losses = []
    for x, y in zip(XS, YS):
        loss = paddle.mean((net(paddle.to_tensor(x)) - paddle.to_tensor(y)) ** 2)
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(float(loss))
    return losses, [q.numpy() for q in net.parameters()]


def static_run(opt_name, scope):
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        loss = build(paddle, opt_name)
    exe = paddle.static.Executor()
    exe.run(startup, scope=scope)
    for name, value in INIT.items():
        scope.set(name, value.copy())
    losses = [float(exe.run(main, feed={"x": x, "y": y}, fetch_list=[loss], scope=scope)[0])
              for x, y in zip(XS, YS)]
    return losses, [scope.get(n) for n in INIT], main, startup


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_minimize_trains_as_eager(static, opt_name):
    want_losses, want_params = eager_run_outside_static(opt_name)
    got_losses, got_params, main, _ = static_run(opt_name, paddle.static.Scope())
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-5)
    for name, got, want in zip(INIT, got_params, want_params):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=name)
    assert want_losses[-1] < want_losses[0]
    types = [op.type for op in main.global_block().ops]
    assert types.count(opt_name.split("_")[0]) == 4
    assert "fc_0.w_0@GRAD" in main.global_block().vars
    assert "learning_rate_0" in str(main)  # the program prints, backward and updates included


def eager_run_outside_static(opt_name):
    paddle.disable_static()
    try:
        return eager_run(opt_name)
    finally:
        paddle.enable_static()


def test_append_backward_gradients_match_central_differences(static):
    x = paddle.static.data("x", [3, 4], "float32")
    out = paddle.static.nn.fc(x, 2, activation="tanh")
    loss = paddle.sum(out * out)
    pairs = paddle.static.append_backward(loss)
    assert [p.name for p, _ in pairs] == ["fc_0.w_0", "fc_0.b_0"]
    assert [g.name for _, g in pairs] == ["fc_0.w_0@GRAD", "fc_0.b_0@GRAD"]
    assert [g.name for _, g in paddle.static.append_backward(loss)] == [
        "fc_0.w_0@GRAD@RENAME_1", "fc_0.b_0@GRAD@RENAME_1"]  # a second backward
    scope = paddle.static.Scope()
    exe = paddle.static.Executor()
    main, startup = static
    exe.run(startup, scope=scope)
    X = rng.standard_normal((3, 4)).astype(np.float32)
    w = scope.get("fc_0.w_0").astype(np.float64)
    b = scope.get("fc_0.b_0").astype(np.float64)
    grads = exe.run(main, feed={"x": X}, fetch_list=[g for _, g in pairs], scope=scope)

    def f(w_, b_):
        return float((np.tanh(X.astype(np.float64) @ w_ + b_) ** 2).sum())

    eps = 1e-6
    num_w = np.zeros_like(w)
    for i in np.ndindex(*w.shape):
        d = np.zeros_like(w)
        d[i] = eps
        num_w[i] = (f(w + d, b) - f(w - d, b)) / (2 * eps)
    num_b = np.array([(f(w, b + eps * np.eye(2)[k]) - f(w, b - eps * np.eye(2)[k])) / (2 * eps)
                      for k in range(2)])
    np.testing.assert_allclose(grads[0], num_w, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(grads[1], num_b, rtol=1e-3, atol=1e-4)


def test_append_backward_parameter_list_and_errors(static):
    x = paddle.static.data("x", [3, 4], "float32")
    loss = paddle.mean(paddle.static.nn.fc(x, 2))
    pairs = paddle.static.append_backward(loss, parameter_list=["fc_0.b_0"])
    assert [p.name for p, _ in pairs] == ["fc_0.b_0"]
    with pytest.raises(ValueError, match="one value"):
        paddle.static.append_backward(paddle.static.nn.fc(x, 2))


@pytest.mark.interop
# (Paddle 3.3.1's ClipGradByGlobalNorm fails in its legacy-IR static mode: sqrt() of a Variable)
@pytest.mark.parametrize("opt_name", ["adam", "momentum_l2_clip", "sgd", "sgd_l1"])
def test_minimize_trains_as_real_paddle_static_mode(static, real_paddle, opt_name):
    got_losses, got_params, _, _ = static_run(opt_name, paddle.static.Scope())
    pd = real_paddle
    pd.enable_static()
    try:
        main, startup = pd.static.Program(), pd.static.Program()
        with pd.utils.unique_name.guard(), pd.static.program_guard(main, startup):
            loss = build(pd, opt_name)
        scope = pd.static.Scope()
        with pd.static.scope_guard(scope):
            exe = pd.static.Executor(pd.CPUPlace())
            exe.run(startup)
            for name, value in INIT.items():
                scope.find_var(name).get_tensor().set(value, pd.CPUPlace())
            want = [float(exe.run(main, feed={"x": x, "y": y}, fetch_list=[loss])[0])
                    for x, y in zip(XS, YS)]
            want_params = [np.array(scope.find_var(n).get_tensor()) for n in INIT]
    finally:
        pd.disable_static()
    np.testing.assert_allclose(got_losses, want, rtol=1e-5)
    for name, got, ref in zip(INIT, got_params, want_params):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.interop
def test_our_training_program_runs_in_paddles_executor(static, real_paddle, tmp_path):
    """The Program minimize built (backward as our ops' legacy types, adam updates) saved with
    paddle.save; real Paddle parses it and trains with it: the same losses."""
    got_losses, _, main, startup = static_run("adam", paddle.static.Scope())
    paddle.save(main, str(tmp_path / "main.pdmodel"))
    paddle.save(startup, str(tmp_path / "startup.pdmodel"))
    loss_name = next(op.output("Out")[0] for op in main.global_block().ops
                     if op.type == "reduce_mean")
    pd = real_paddle
    pd.enable_static()
    try:
        programs = [pd.static.Program.parse_from_string((tmp_path / f).read_bytes())
                    for f in ("startup.pdmodel", "main.pdmodel")]
        scope = pd.static.Scope()
        with pd.static.scope_guard(scope):
            exe = pd.static.Executor(pd.CPUPlace())
            exe.run(programs[0])
            for name, value in INIT.items():
                scope.find_var(name).get_tensor().set(value, pd.CPUPlace())
            want = [float(exe.run(programs[1], feed={"x": x, "y": y}, fetch_list=[loss_name])[0])
                    for x, y in zip(XS, YS)]
    finally:
        pd.disable_static()
    np.testing.assert_allclose(got_losses, want, rtol=1e-5)


def test_nn_layers_cross_entropy_momentum_train_as_eager(static):
    """nn Layers built in static mode, a loss Layer, Momentum: the startup program's weights,
    copied into an eager twin, train to the same losses and weights."""
    nn = paddle.nn
    x = paddle.static.data("x", [8, 4], "float32")
    y = paddle.static.data("y", [8], "int64")
    net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    loss = nn.CrossEntropyLoss()(net(x), y)
    paddle.optimizer.Momentum(0.1, momentum=0.9, use_nesterov=True).minimize(loss)
    main, startup = static
    scope = paddle.static.Scope()
    exe = paddle.static.Executor()
    exe.run(startup, scope=scope)
    names = [p.name for p in main.all_parameters()]
    assert len(names) == 4
    init = [scope.get(n).copy() for n in names]
    labels = rng.integers(0, 3, (STEPS, 8))
    got = [float(exe.run(main, feed={"x": xs, "y": ys}, fetch_list=[loss], scope=scope)[0])
           for xs, ys in zip(XS, labels)]
    got_params = [scope.get(n) for n in names]
    paddle.disable_static()
    try:
        twin = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
        for p, v in zip(twin.parameters(), init):
            p.set_value(v)
        opt = paddle.optimizer.Momentum(0.1, momentum=0.9, use_nesterov=True,
                                        parameters=twin.parameters())
        want = []
        for xs, ys in zip(XS, labels):
            out = nn.CrossEntropyLoss()(twin(paddle.to_tensor(xs)), paddle.to_tensor(ys))
            out.backward()
            opt.step()
            opt.clear_grad()
            want.append(float(out))
        want_params = [p.numpy() for p in twin.parameters()]
    finally:
        paddle.enable_static()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(got_params, want_params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
