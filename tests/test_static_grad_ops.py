"""Static mode's backward as Paddle writes it: `<type>_grad` ops (ops/grad_ops.py, kernels
from the forward ops' own VJP rules), `@GRAD` names, `sum` accumulation, op_role; minimize
with an LRScheduler and with parameter groups. References: real Paddle 3.3.1's static mode
building the same networks with the same calls (its ops, slots and variable names; its
losses and weights over 10 steps), our eager mode, and real Paddle's dygraph (parameter
groups: Paddle's static minimize refuses them)."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic as paddle

STEPS = 10
rng = np.random.default_rng(3)
IMGS = rng.standard_normal((STEPS, 4, 3, 8, 8)).astype(np.float32)
LABELS = rng.integers(0, 4, (STEPS, 4, 1)).astype(np.int64)
XS = rng.standard_normal((STEPS, 8, 4)).astype(np.float32)
YS = rng.standard_normal((STEPS, 8, 2)).astype(np.float32)


def cnn(p, bias=True):
    x = p.static.data("x", [4, 3, 8, 8], "float32")
    y = p.static.data("y", [4, 1], "int64")
    h = p.nn.Conv2D(3, 4, 3, padding=1, bias_attr=None if bias else False)(x)
    h = p.nn.functional.relu(p.nn.BatchNorm2D(4)(h))
    h = p.flatten(p.nn.MaxPool2D(2)(h), 1)
    return p.nn.functional.cross_entropy(p.nn.Linear(64, 4)(h), y)


def convnet(p):
    """The CNN without batch norm (our batch_norm writes no ReserveSpace, which Paddle's
    training kernel requires)."""
    x = p.static.data("x", [4, 3, 8, 8], "float32")
    y = p.static.data("y", [4, 1], "int64")
    h = p.nn.functional.relu(p.nn.Conv2D(3, 4, 3, padding=1)(x))
    h = p.flatten(p.nn.functional.avg_pool2d(h, 2), 1)
    return p.nn.functional.cross_entropy(p.nn.Linear(64, 4)(h), y)


def mlp(p):
    x = p.static.data("x", [8, 4], "float32")
    y = p.static.data("y", [8, 2], "float32")
    h = p.static.nn.fc(x, 5, activation="relu")
    h = p.concat([h, p.nn.functional.softmax(h)], axis=1)
    out = p.static.nn.fc(p.transpose(p.transpose(h, [1, 0]), [1, 0]), 2)
    return p.mean((out - y) ** 2) + p.mean(p.nn.functional.leaky_relu(out) / (y * y + 1.0))


def nlp(p):
    ids = p.static.data("ids", [8, 3], "int64")
    y = p.static.data("y", [8, 2], "float32")
    h = p.nn.LayerNorm(6)(p.nn.Embedding(10, 6)(ids))
    h = p.squeeze(p.unsqueeze(p.reshape(h, [8, 18]), [0]), [0])
    h = p.static.nn.fc(h, 4, activation="tanh")
    out = p.static.nn.fc(h, 2, activation="sigmoid")
    return p.mean((out - y) ** 2)


def mlp_dynamic_batch(p):
    x = p.static.data("x", [None, 4], "float32")
    y = p.static.data("y", [None, 1], "int64")
    out = p.static.nn.fc(p.static.nn.fc(x, 5, activation="relu"), 3)
    return p.nn.functional.cross_entropy(out, y)


IDS = rng.integers(0, 10, (STEPS, 8, 3)).astype(np.int64)
NETS = {"nlp": (nlp, lambda: {"ids": IDS, "y": YS}),
        "cnn": (cnn, lambda: {"x": IMGS, "y": LABELS}),
        "convnet": (convnet, lambda: {"x": IMGS, "y": LABELS}),
        # Adam on a conv bias before batch norm steps by the sign of rounding noise (its
        # gradient is 0 but for rounding), so the Adam case has none
        "cnn_nobias": (lambda p: cnn(p, bias=False), lambda: {"x": IMGS, "y": LABELS}),
        "mlp": (mlp, lambda: {"x": XS, "y": YS}),
        # batches of 8, 7 and 6 rows through one program
        "mlp_dynamic_batch": (mlp_dynamic_batch, lambda: {
            "x": [x[:8 - k % 3] for k, x in enumerate(XS)],
            "y": [(np.abs(y[:8 - k % 3, :1]) * 2).astype(np.int64) % 3
                  for k, y in enumerate(YS)]})}
OPTS = {"sgd": lambda p: p.optimizer.SGD(0.1),
        "adam": lambda p: p.optimizer.Adam(0.01),
        "adam_step_decay": lambda p: p.optimizer.Adam(p.optimizer.lr.StepDecay(0.05, 3, 0.5))}


def build(p, net, opt):
    main, startup = p.static.Program(), p.static.Program()
    with p.utils.unique_name.guard(), p.static.program_guard(main, startup):
        loss = NETS[net][0](p)
        optimizer = OPTS[opt](p)
        optimizer.minimize(loss)
    return main, startup, loss, optimizer


# batch_norm's cuDNN workspace: our batch_norm does not write it, so batch_norm_grad does not
# read it (the one difference from Paddle's programs here)
SKIPPED_SLOTS = {"ReserveSpace"}


def op_list(program):
    """(type, filled input slots, filled output slots, op_role, op_role_var) of each op of
    block 0."""
    out = []
    for op in program.global_block().ops:
        ins = {k: op.input(k) for k in op.input_names if op.input(k) and k not in SKIPPED_SLOTS}
        outs = {k: op.output(k) for k in op.output_names
                if op.output(k) and k not in SKIPPED_SLOTS}
        out.append((op.type, ins, outs, op.attr("op_role"), op.attr("op_role_var")))
    return out


def feeds(net, step):
    return {k: v[step] for k, v in NETS[net][1]().items()}


def ours(net, opt, init):
    """10 steps in our static mode from Paddle's initial values `init`."""
    paddle.enable_static()
    try:
        main, startup, loss, optimizer = build(paddle, net, opt)
        scope = paddle.static.Scope()
        exe = paddle.static.Executor()
        exe.run(startup, scope=scope)
        for name, value in init.items():
            scope.set(name, value.copy())
        losses = []
        for step in range(STEPS):
            losses.append(float(exe.run(main, feed=feeds(net, step), fetch_list=[loss],
                                        scope=scope)[0]))
            if isinstance(optimizer._learning_rate, paddle.optimizer.lr.LRScheduler):
                optimizer._learning_rate.step()
        return main, losses, {n: scope.get(n) for n in init}
    finally:
        paddle.disable_static()


def theirs(pd, net, opt):
    pd.enable_static()
    try:
        main, startup, loss, optimizer = build(pd, net, opt)
        scope = pd.static.Scope()
        with pd.static.scope_guard(scope):
            exe = pd.static.Executor(pd.CPUPlace())
            exe.run(startup)
            names = [v.name for v in main.list_vars() if v.persistable and v.name not in
                     ("feed", "fetch", "learning_rate_0")]
            init = {n: np.array(scope.find_var(n).get_tensor()) for n in names}
            losses = []
            for step in range(STEPS):
                losses.append(float(exe.run(main, feed=feeds(net, step), fetch_list=[loss])[0]))
                if isinstance(optimizer._learning_rate, pd.optimizer.lr.LRScheduler):
                    optimizer._learning_rate.step()
            final = {n: np.array(scope.find_var(n).get_tensor()) for n in names}
        return main, init, losses, final, loss.name
    finally:
        pd.disable_static()


@pytest.mark.interop
@pytest.mark.parametrize("net,opt", [("mlp", "sgd"), ("mlp", "adam"), ("cnn", "sgd"),
                                     ("cnn_nobias", "adam"), ("convnet", "adam"),
                                     ("nlp", "adam"), ("mlp_dynamic_batch", "adam"),
                                     ("mlp", "adam_step_decay")])
def test_program_and_training_match_paddle_static(real_paddle, net, opt):
    """The same ops (types, slots, variable names, op_role) as Paddle's program, forward,
    backward and optimizer; 10 steps give Paddle's losses and weights (BN statistics and
    Adam moments included)."""
    main_pd, init, want, final, _ = theirs(real_paddle, net, opt)
    main, got, params = ours(net, opt, init)
    assert op_list(main) == op_list(main_pd)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for name, value in final.items():
        np.testing.assert_allclose(params[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.interop
def test_paddle_training_program_loads_and_trains(real_paddle, tmp_path):
    """Paddle's own CNN training program (its grad ops, ReserveSpace, XShape, adam), saved
    with paddle.save, loaded with our paddle.load and run by our Executor: Paddle's losses."""
    pd = real_paddle
    _, init, want, _, loss_name = theirs(pd, "cnn", "adam")
    pd.enable_static()
    try:
        main, _, _, _ = build(pd, "cnn", "adam")
        pd.save(main, str(tmp_path / "main.pdmodel"))
    finally:
        pd.disable_static()
    program = paddle.load(str(tmp_path / "main.pdmodel"))
    types = [op.type for op in program.global_block().ops]
    assert "batch_norm_grad" in types and "reshape2_grad" in types
    scope = paddle.static.Scope()
    for name, value in init.items():
        scope.set(name, value.copy())
    scope.set("learning_rate_0", np.array(0.01, np.float32))
    paddle.enable_static()
    try:
        exe = paddle.static.Executor()
        got = [float(exe.run(program, feed=feeds("cnn", step), fetch_list=[loss_name],
                             scope=scope)[0]) for step in range(STEPS)]
    finally:
        paddle.disable_static()
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_cnn_static_trains_as_eager():
    """The CNN in static mode (grad ops) and in eager mode (the tape) from the same weights."""
    paddle.enable_static()
    try:
        main, startup, _, _ = build(paddle, "cnn", "adam")
        scope = paddle.static.Scope()
        paddle.static.Executor().run(startup, scope=scope)
        init = {v.name: scope.get(v.name) for v in main.list_vars()
                if v.persistable and scope.get(v.name) is not None}
    finally:
        paddle.disable_static()
    _, got, params = ours("cnn", "adam", init)
    nn = paddle.nn
    conv, bn, fc = nn.Conv2D(3, 4, 3, padding=1), nn.BatchNorm2D(4), nn.Linear(64, 4)
    for layer, prefix in ((conv, "conv2d_0"), (bn, "batch_norm2d_0"), (fc, "linear_0")):
        for key, t in layer.state_dict().items():
            suffix = {"weight": "w_0", "bias": "b_0", "_mean": "w_1", "_variance": "w_2"}[key]
            t.set_value(init[f"{prefix}.{suffix}"])
    opt = paddle.optimizer.Adam(0.01, parameters=[*conv.parameters(), *bn.parameters(),
                                                  *fc.parameters()])
    want = []
    for step in range(STEPS):
        h = nn.functional.relu(bn(conv(paddle.to_tensor(IMGS[step]))))
        h = paddle.flatten(nn.functional.max_pool2d(h, 2), 1)
        loss = nn.functional.cross_entropy(fc(h), paddle.to_tensor(LABELS[step]))
        loss.backward()
        opt.step()
        opt.clear_grad()
        want.append(float(loss))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(params["conv2d_0.w_0"], conv.weight.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params["batch_norm2d_0.w_1"], bn._mean.numpy(), rtol=1e-5,
                               atol=1e-6)


W0 = [(rng.standard_normal((4, 5)) * 0.5).astype(np.float32), np.full(5, 0.1, np.float32),
      (rng.standard_normal((5, 2)) * 0.5).astype(np.float32), np.zeros(2, np.float32)]


def grouped_adam(p, params, sched):
    return p.optimizer.Adam(sched, parameters=[
        {"params": params[:2], "learning_rate": 0.5, "weight_decay": 0.01},
        {"params": params[2:], "beta1": 0.8}])


def eager_groups(p):
    l1, l2 = p.nn.Linear(4, 5), p.nn.Linear(5, 2)
    params = [l1.weight, l1.bias, l2.weight, l2.bias]
    for q, w in zip(params, W0):
        q.set_value(w)
    sched = p.optimizer.lr.StepDecay(0.1, 2, 0.5)
    opt = grouped_adam(p, params, sched)
    losses = []
    for x, y in zip(XS, YS):
        h = p.nn.functional.relu(l1(p.to_tensor(x)))
        loss = p.mean((l2(h) - p.to_tensor(y)) ** 2)
        loss.backward()
        opt.step()
        opt.clear_grad()
        sched.step()
        losses.append(float(loss))
    return losses, [q.numpy() for q in params]


def test_param_groups_and_scheduler_train_as_eager(static):
    """Per-group learning rate (a `scale` of learning_rate_0, as Paddle's _create_param_lr),
    weight decay and beta1, with a StepDecay stepped between runs."""
    x = paddle.static.data("x", [8, 4], "float32")
    y = paddle.static.data("y", [8, 2], "float32")
    l1, l2 = paddle.nn.Linear(4, 5), paddle.nn.Linear(5, 2)
    loss = paddle.mean((l2(paddle.nn.functional.relu(l1(x))) - y) ** 2)
    params = [l1.weight, l1.bias, l2.weight, l2.bias]
    sched = paddle.optimizer.lr.StepDecay(0.1, 2, 0.5)
    grouped_adam(paddle, params, sched).minimize(loss)
    main, startup = static
    roles = [op.type for op in main.global_block().ops if op.attr("op_role") == 2]
    assert roles.count("adam") == 4 and roles[0] == "scale"
    assert main.lr_scheduler is sched and main.clone().lr_scheduler is sched
    exe, scope = paddle.static.Executor(), paddle.static.Scope()
    exe.run(startup, scope=scope)
    for q, w in zip(params, W0):
        scope.set(q.name, w.copy())
    got = []
    for xb, yb in zip(XS, YS):
        got.append(float(exe.run(main, feed={"x": xb, "y": yb}, fetch_list=[loss],
                                 scope=scope)[0]))
        sched.step()
    paddle.disable_static()
    try:
        want, want_params = eager_groups(paddle)
    finally:
        paddle.enable_static()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for q, w in zip(params, want_params):
        np.testing.assert_allclose(scope.get(q.name), w, rtol=1e-5, atol=1e-7)


@pytest.mark.interop
def test_param_groups_eager_matches_paddle_dygraph(real_paddle):
    """The reference of the test above, checked against real Paddle (its static minimize
    refuses parameter groups: append_backward's type check)."""
    want, want_params = eager_groups(real_paddle)
    got, got_params = eager_groups(paddle)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for g, w in zip(got_params, want_params):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)


def test_grad_ops_of_paddle_types_and_slots(static):
    """Every generated grad op writes Paddle's `<type>_grad` and reads `<out>@GRAD`."""
    from tostatic.ops.grad_ops import GRAD_OF
    for fwd, grad in GRAD_OF.items():
        assert grad.PADDLE.type == fwd.PADDLE.type + "_grad"
        assert any(s.endswith("@GRAD") for s in grad.PADDLE.inputs)
        assert all(s.endswith("@GRAD") for s in grad.PADDLE.outputs)


@pytest.mark.interop
def test_our_conv_training_program_runs_in_paddles_executor(real_paddle, tmp_path):
    """Our conv net's program (conv2d_grad, pool2d_grad, reshape2_grad and
    flatten_contiguous_range_grad reading the forward ops' XShape) saved with paddle.save:
    real Paddle's Executor trains with it to our losses."""
    pd = real_paddle
    _, init, _, _, loss_name = theirs(pd, "convnet", "sgd")
    main, got, _ = ours("convnet", "sgd", init)
    paddle.save(main, str(tmp_path / "main.pdmodel"))
    pd.enable_static()
    try:
        program = pd.static.Program.parse_from_string((tmp_path / "main.pdmodel").read_bytes())
        scope = pd.static.Scope()
        with pd.static.scope_guard(scope):
            exe = pd.static.Executor(pd.CPUPlace())
            for name, value in {**init, "learning_rate_0": np.array([0.1], np.float32)}.items():
                scope.var(name).get_tensor().set(value, pd.CPUPlace())
            want = [float(exe.run(program, feed=feeds("convnet", step), fetch_list=[loss_name])[0])
                    for step in range(STEPS)]
    finally:
        pd.disable_static()
    np.testing.assert_allclose(got, want, rtol=1e-5)


def dropout_net(p):
    x = p.static.data("x", [8, 4], "float32")
    pre = p.static.nn.fc(x, 5)
    h = p.nn.functional.dropout(pre, 0.5)
    return pre, h, p.mean(h * h)


@pytest.mark.interop
def test_dropout_grad_reads_the_mask(static, real_paddle):
    """dropout writes Mask in a live program and dropout_grad reads it, as in Paddle's
    program; the gradient is the hand-computed 2h/N * mask/(1-p)."""
    main, startup = static
    pre, h, loss = dropout_net(paddle)
    paddle.optimizer.SGD(0.1).minimize(loss)
    pd = real_paddle
    pd.enable_static()
    try:
        main_pd = pd.static.Program()
        with pd.utils.unique_name.guard(), pd.static.program_guard(main_pd, pd.static.Program()):
            pd.optimizer.SGD(0.1).minimize(dropout_net(pd)[2])
    finally:
        pd.disable_static()
    assert op_list(main) == op_list(main_pd)
    exe, scope = paddle.static.Executor(), paddle.static.Scope()
    exe.run(startup, scope=scope)
    got_pre, got_h, grad = exe.run(main, feed={"x": XS[0]}, fetch_list=[
        pre, h, main.global_block().var(pre.name + "@GRAD")], scope=scope)
    mask = (got_h != 0).astype(np.float32)
    np.testing.assert_allclose(got_h, got_pre * mask * 2.0, rtol=1e-6)
    np.testing.assert_allclose(grad, 2 * got_h / got_h.size * mask * 2.0, rtol=1e-5, atol=1e-8)
