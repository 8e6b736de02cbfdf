"""Learning-rate schedules against real Paddle 3.3.1, the optimizer ops' legacy mapping against
Paddle's op makers, and the optimizer API (set_lr, clear_grad, state before the first step,
AdamW's lr_ratio by hand)."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.ir.opdef import Fixed
from tostatic.ops import optimizer as opt_ops

SCHEDULES = {
    "step": lambda lr: lr.StepDecay(0.5, step_size=4, gamma=0.5),
    "multistep": lambda lr: lr.MultiStepDecay(0.5, milestones=[3, 7, 20], gamma=0.3),
    "exponential": lambda lr: lr.ExponentialDecay(0.5, gamma=0.8),
    "cosine": lambda lr: lr.CosineAnnealingDecay(0.5, T_max=6, eta_min=0.01),
    "warmup_float": lambda lr: lr.LinearWarmup(0.5, warmup_steps=5, start_lr=0.0, end_lr=0.5),
    "warmup_cosine": lambda lr: lr.LinearWarmup(lr.CosineAnnealingDecay(0.5, T_max=5), 4,
                                                0.01, 0.5),
    "onecycle": lambda lr: lr.OneCycleLR(1.0, total_steps=25),
    "onecycle_three_linear": lambda lr: lr.OneCycleLR(0.3, 25, divide_factor=10,
                                                      end_learning_rate=1e-3, phase_pct=0.2,
                                                      anneal_strategy="linear",
                                                      three_phase=True),
    "lambda": lambda lr: lr.LambdaDecay(0.5, lambda e: 0.9 ** e),
    "noam": lambda lr: lr.NoamDecay(64, warmup_steps=6, learning_rate=2.0),
    "piecewise": lambda lr: lr.PiecewiseDecay([3, 9], [0.5, 0.1, 0.01]),
    "natural_exp": lambda lr: lr.NaturalExpDecay(0.5, gamma=0.1),
    "inverse_time": lambda lr: lr.InverseTimeDecay(0.5, gamma=0.2),
    "polynomial": lambda lr: lr.PolynomialDecay(0.5, decay_steps=10, power=2.0),
    "polynomial_cycle": lambda lr: lr.PolynomialDecay(0.5, decay_steps=7, cycle=True),
    "multiplicative": lambda lr: lr.MultiplicativeDecay(0.5, lambda e: 0.95),
    "linear_lr": lambda lr: lr.LinearLR(0.5, total_steps=10, start_factor=0.2),
}


@pytest.mark.interop
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_paddle(real_paddle, name):
    def run(P):
        s = SCHEDULES[name](P.optimizer.lr)
        seq = [s()]
        for _ in range(24):
            s.step()
            seq.append(s())
        state = s.state_dict()
        s.step(3)  # an explicit epoch: the closed form where there is one
        return seq, state, s(), s.last_epoch

    got, want = run(tostatic), run(real_paddle)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert got[1].keys() == want[1].keys()
    assert got[2] == pytest.approx(want[2], rel=1e-12) and got[3] == want[3]


@pytest.mark.interop
def test_reduce_on_plateau_matches_paddle(real_paddle):
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.5, 0.5, 0.5, 0.5, 0.49, 0.6, 0.7]

    def run(P):
        s = P.optimizer.lr.ReduceOnPlateau(0.1, patience=1, factor=0.5, cooldown=1,
                                           threshold=0.05)
        seq = []
        for m in metrics:
            s.step(m)
            seq.append(s())
        m_max = P.optimizer.lr.ReduceOnPlateau(0.1, mode="max", threshold_mode="abs",
                                               patience=0)
        for m in metrics:
            m_max.step(P.to_tensor(m))
            seq.append(m_max())
        return seq, s.state_dict()

    got, want = run(tostatic), run(real_paddle)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert got[1] == pytest.approx(want[1])


@pytest.mark.interop
@pytest.mark.parametrize("op", [opt_ops.Sgd, opt_ops.Momentum, opt_ops.Adam, opt_ops.AdamW,
                                opt_ops.Rmsprop, opt_ops.Adagrad, opt_ops.Lamb])
def test_update_op_slots_are_paddles(real_paddle, op):
    """Every input slot of Paddle's op maker is written (the dispensable ones as optional,
    empty), every required output and every non-extra attribute, and nothing else."""
    from paddle.base import core
    from paddle.base.proto import framework_pb2

    protos = {p.type: p for p in (framework_pb2.OpProto.FromString(bytes(s))
                                  for s in core.get_all_op_protos())}
    proto = protos[op.PADDLE.type]
    legacy = op.PADDLE
    assert set(legacy.inputs) | set(legacy.optional_inputs) == {i.name for i in proto.inputs}
    assert set(legacy.optional_inputs) <= {i.name for i in proto.inputs if i.dispensable}
    outputs = {o.name: o.dispensable for o in proto.outputs}
    assert set(legacy.outputs) <= set(outputs)
    assert {n for n, optional in outputs.items() if not optional} <= set(legacy.outputs)
    assert set(legacy.attrs) == {a.name for a in proto.attrs if not a.extra}
    for key, spec in legacy.attrs.items():
        kind = next(a.type for a in proto.attrs if a.name == key)
        assert spec.attr_type == framework_pb2.AttrType.Name(kind), key
    for i, target in op.UPDATES.items():  # each result updates an input of its slot's name
        slot = next(s for s, idx in legacy.outputs.items() if idx == i)
        assert legacy.inputs[slot[:-3]] == target
    assert not any(isinstance(s, Fixed) and s.attr_type != "LONG" and s.value
                   for s in legacy.attrs.values())


@pytest.fixture(autouse=True)
def fresh_names():
    """Paddle's accumulator names count per process: start each test at _0."""
    with tostatic.utils.unique_name.guard():
        yield


def linear_params():
    layer = tostatic.nn.Linear(3, 2)
    return layer, layer.parameters()


def set_grads(params, value=1.0):
    for p in params:
        p.grad = tostatic.full(p.shape, value)


def test_adamw_lr_ratio_and_decay_by_hand():
    layer, params = linear_params()
    w0 = layer.weight.numpy().copy()
    b0 = layer.bias.numpy().copy()
    opt = tostatic.optimizer.AdamW(0.1, parameters=params, weight_decay=0.5,
                                   lr_ratio=lambda p: 0.5 if p.name.endswith("w_0") else 1.0,
                                   apply_decay_param_fun=lambda n: n.endswith("w_0"))
    set_grads(params, 2.0)
    opt.step()
    # step 1: m = 0.1 g, v = 0.001 g^2; lr_t = lr sqrt(1-b2)/(1-b1); m/(sqrt(v)+eps') = 1
    # (up to eps' = eps sqrt(1 - b2))
    lr_w = 0.1 * 0.5
    scale = np.sqrt(1 - 0.999) / (1 - 0.9)
    step = 0.2 / (np.sqrt(0.004) + 1e-8 * np.sqrt(0.001))
    np.testing.assert_allclose(layer.weight.numpy(), w0 * (1 - lr_w * 0.5) - lr_w * scale * step,
                               rtol=1e-5)
    np.testing.assert_allclose(layer.bias.numpy(), b0 - 0.1 * scale * step, rtol=1e-5)


def test_lr_api_and_errors():
    layer, params = linear_params()
    opt = tostatic.optimizer.SGD(0.1, parameters=params)
    assert opt.get_lr() == pytest.approx(0.1)
    opt.set_lr(0.05)
    assert opt.get_lr() == pytest.approx(0.05)
    w0 = layer.weight.numpy().copy()
    set_grads(params)
    opt.step()
    np.testing.assert_allclose(layer.weight.numpy(), w0 - np.float32(0.05), rtol=1e-6)
    sched = tostatic.optimizer.lr.StepDecay(0.1, 1)
    opt2 = tostatic.optimizer.Momentum(sched, parameters=params)
    with pytest.raises(RuntimeError, match="LRScheduler"):
        opt2.set_lr(0.2)
    sched.step()
    assert opt2.get_lr() == pytest.approx(0.01)
    with pytest.raises(AttributeError, match="parameters"):
        tostatic.optimizer.Adam(0.1)
    with pytest.raises(TypeError, match="learning rate"):
        tostatic.optimizer.Adam("0.1", parameters=params)


def test_clear_grad_and_params_without_grads():
    layer, params = linear_params()
    opt = tostatic.optimizer.Adam(0.1, parameters=params)
    layer.weight.grad = tostatic.ones(layer.weight.shape)  # the bias has no gradient
    b0 = layer.bias.numpy().copy()
    opt.step()
    assert list(opt.state_dict()) == ["linear_0.w_0_moment1_0", "linear_0.w_0_moment2_0",
                                      "linear_0.w_0_beta1_pow_acc_0",
                                      "linear_0.w_0_beta2_pow_acc_0"]
    np.testing.assert_array_equal(layer.bias.numpy(), b0)
    opt.clear_grad()
    assert float(layer.weight.grad.numpy().sum()) == 0.0
    opt.clear_grad(set_to_zero=False)
    assert layer.weight.grad is None


def test_state_loaded_before_the_first_step_is_used_by_it():
    layer, params = linear_params()
    opt = tostatic.optimizer.Momentum(0.1, momentum=0.5, parameters=params)
    velocity = {"linear_0.w_0_velocity_0": np.full([3, 2], 2.0, np.float32),
                "linear_0.b_0_velocity_0": np.full([2], -1.0, np.float32)}
    opt.set_state_dict(velocity)
    assert opt.state_dict().keys() == velocity.keys()
    w0 = layer.weight.numpy().copy()
    set_grads(params)
    opt.step()
    np.testing.assert_allclose(layer.weight.numpy(), w0 - 0.1 * (0.5 * 2.0 + 1.0), rtol=1e-6)
    with pytest.raises(KeyError, match="not found"):
        opt.set_state_dict({})


def test_minimize_is_backward_then_step():
    x = tostatic.to_tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    results = []
    for use_minimize in (True, False):
        tostatic.seed(4)
        layer = tostatic.nn.Linear(3, 2)
        opt = tostatic.optimizer.SGD(0.1, parameters=layer.parameters())
        loss = tostatic.mean(layer(x))
        if use_minimize:
            _, pairs = opt.minimize(loss)
            assert [p.name for p, _ in pairs] == [p.name for p in layer.parameters()]
        else:
            loss.backward()
            opt.step()
        results.append(layer.weight.numpy().copy())
    np.testing.assert_array_equal(results[0], results[1])
    # d mean(x W + b) / dW = mean over rows of x, per output column
    tostatic.seed(4)
    w0 = tostatic.nn.Linear(3, 2).weight.numpy()
    np.testing.assert_allclose(results[0], w0 - 0.1 * np.repeat(x.numpy().mean(0)[:, None] / 2,
                                                                2, axis=1), rtol=1e-6)
