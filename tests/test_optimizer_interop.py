"""Optimizers against real Paddle 3.3.1: from the same weights, 10 steps of each optimizer (with
weight decay, gradient clipping and a learning-rate schedule) give the same weights (rtol 1e-5)
and the same state_dict keys; `.pdopt` files written by either side resume training on the other.

The same code builds both sides (`P` is paddle or tostatic). Paddle gets each step's gradient g
by minimising sum(p * g), whose gradient is exactly g; tostatic is given p.grad = g.
"""
from __future__ import annotations

import numpy as np
import pytest

import tostatic

pytestmark = pytest.mark.interop
STEPS = 10


def model(P):
    """Two linears; the second's weight learns at half rate, its bias is never clipped."""
    return [P.nn.Linear(4, 3),
            P.nn.Linear(3, 2, weight_attr=P.ParamAttr(learning_rate=0.5),
                        bias_attr=P.ParamAttr(need_clip=False))]


def params(layers):
    return [p for layer in layers for p in layer.parameters()]


CONFIGS = {
    "sgd": lambda P, ps: P.optimizer.SGD(
        P.optimizer.lr.StepDecay(0.1, 3, 0.5), parameters=ps, weight_decay=0.01,
        grad_clip=P.nn.ClipGradByGlobalNorm(1.0)),
    "momentum_nesterov": lambda P, ps: P.optimizer.Momentum(
        P.optimizer.lr.MultiStepDecay(0.1, [3, 6]), momentum=0.9, parameters=ps,
        use_nesterov=True, weight_decay=P.regularizer.L2Decay(0.01),
        grad_clip=P.nn.ClipGradByNorm(0.5)),
    "momentum_l1": lambda P, ps: P.optimizer.Momentum(
        0.05, parameters=ps, weight_decay=P.regularizer.L1Decay(0.02),
        grad_clip=P.nn.ClipGradByValue(0.3)),
    "adam": lambda P, ps: P.optimizer.Adam(
        P.optimizer.lr.ExponentialDecay(0.01, 0.9), parameters=ps, weight_decay=0.01,
        grad_clip=P.nn.ClipGradByGlobalNorm(1.0)),
    "adamw": lambda P, ps: P.optimizer.AdamW(
        P.optimizer.lr.CosineAnnealingDecay(0.01, 4), parameters=ps, weight_decay=0.05,
        apply_decay_param_fun=lambda name: "b_" not in name,
        grad_clip=P.nn.ClipGradByValue(0.5, -0.2)),
    "rmsprop_centered": lambda P, ps: P.optimizer.RMSProp(
        P.optimizer.lr.LinearWarmup(P.optimizer.lr.StepDecay(0.01, 2), 3, 0.001, 0.01),
        centered=True, momentum=0.9, parameters=ps, weight_decay=P.regularizer.L1Decay(0.001),
        grad_clip=P.nn.ClipGradByGlobalNorm(2.0)),
    "rmsprop": lambda P, ps: P.optimizer.RMSProp(
        P.optimizer.lr.OneCycleLR(0.02, STEPS, three_phase=True), rho=0.9, parameters=ps,
        weight_decay=0.01),
    "adagrad": lambda P, ps: P.optimizer.Adagrad(
        P.optimizer.lr.OneCycleLR(0.1, STEPS, anneal_strategy="linear"), parameters=ps,
        weight_decay=0.01, grad_clip=P.nn.ClipGradByNorm(1.0), initial_accumulator_value=0.1),
    "lamb": lambda P, ps: P.optimizer.Lamb(
        P.optimizer.lr.StepDecay(0.02, 4), lamb_weight_decay=0.02, parameters=ps,
        exclude_from_weight_decay_fn=lambda p: "b_" in p.name,
        grad_clip=P.nn.ClipGradByGlobalNorm(1.0)),
    "adam_plateau": lambda P, ps: P.optimizer.Adam(
        P.optimizer.lr.ReduceOnPlateau(0.02, patience=1, factor=0.5), parameters=ps,
        beta1=0.8, epsilon=1e-6),
    "adam_groups": lambda P, ps: P.optimizer.Adam(
        0.01, parameters=[{"params": ps[:2], "weight_decay": 0.1, "learning_rate": 0.5,
                           "beta1": 0.8},
                          {"params": ps[2:], "weight_decay": P.regularizer.L1Decay(0.01)}],
        grad_clip=P.nn.ClipGradByGlobalNorm(1.0)),
    "adamw_groups": lambda P, ps: P.optimizer.AdamW(
        P.optimizer.lr.StepDecay(0.02, 3), weight_decay=0.02,
        parameters=[{"params": ps[:2], "weight_decay": 0.3, "epsilon": 1e-6},
                    {"params": ps[2:], "grad_clip": P.nn.ClipGradByValue(0.1)}]),
    "momentum_groups": lambda P, ps: P.optimizer.Momentum(
        0.05, weight_decay=0.01,
        parameters=[{"params": ps[:2], "momentum": 0.5, "weight_decay": 0.05},
                    {"params": ps[2:], "use_nesterov": True, "learning_rate": 2.0}]),
    "adam_amsgrad": lambda P, ps: P.optimizer.Adam(
        P.optimizer.lr.ExponentialDecay(0.02, 0.9), parameters=ps, weight_decay=0.01,
        amsgrad=True, grad_clip=P.nn.ClipGradByGlobalNorm(1.0)),
    "adamw_amsgrad": lambda P, ps: P.optimizer.AdamW(
        0.02, parameters=ps, weight_decay=0.05, amsgrad=True, beta2=0.9,
        apply_decay_param_fun=lambda name: "b_" not in name),
    # dense gradients: Paddle's lazy adam is the plain one; fp32 parameters need no master
    "adam_lazy_multi_precision": lambda P, ps: P.optimizer.Adam(
        0.02, parameters=ps, beta1=0.8, lazy_mode=True, multi_precision=True),
    "adamw_lazy": lambda P, ps: P.optimizer.AdamW(
        P.optimizer.lr.StepDecay(0.02, 3), parameters=ps, lazy_mode=True,
        grad_clip=P.nn.ClipGradByNorm(0.5)),
}

METRICS = [1.0, 0.9, 0.95, 0.97, 0.5, 0.6, 0.7, 0.4, 0.41, 0.42]  # for ReduceOnPlateau


def gradients(shapes, steps=STEPS):
    rng = np.random.default_rng(7)
    return [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(steps)]


def take_steps(P, opt, ps, grads, first, last, is_paddle):
    sched = opt._learning_rate if not isinstance(opt._learning_rate, float) else None
    for k in range(first, last):
        if is_paddle:
            loss = sum((p * P.to_tensor(g)).sum() for p, g in zip(ps, grads[k]))
            loss.backward()
        else:
            for p, g in zip(ps, grads[k]):
                p.grad = P.to_tensor(g)
        opt.step()
        opt.clear_grad()
        if sched is not None:
            sched.step(METRICS[k]) if type(sched).__name__ == "ReduceOnPlateau" else sched.step()


def build(P, config, init=None):
    with P.utils.unique_name.guard():
        layers = model(P)
        ps = params(layers)
        if init is not None:
            for p, w in zip(ps, init):
                p.set_value(w)
        return ps, CONFIGS[config](P, ps)


def run(P, config, init, grads, is_paddle, steps=STEPS):
    with P.utils.unique_name.guard():
        ps, opt = build(P, config, init)
        take_steps(P, opt, ps, grads, 0, steps, is_paddle)
        return [p.numpy().copy() for p in ps], opt


@pytest.fixture(scope="module")
def init(real_paddle):
    real_paddle.seed(3)
    ps, _ = build(real_paddle, "sgd")
    return [p.numpy().copy() for p in ps]


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_ten_steps_match_paddle(real_paddle, init, config):
    grads = gradients([w.shape for w in init])
    want, popt = run(real_paddle, config, init, grads, True)
    got, topt = run(tostatic, config, init, grads, False)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=f"{config} param {i}")
    assert not np.allclose(got[0], init[0])  # it trained
    psd, tsd = popt.state_dict(), topt.state_dict()
    assert list(tsd) == list(psd)
    for key, value in psd.items():
        if key == "LR_Scheduler":
            assert tsd[key].keys() == value.keys()
            for k, v in value.items():
                if isinstance(v, dict):
                    assert tsd[key][k] == pytest.approx(v)
                else:
                    assert tsd[key][k] == pytest.approx(v, rel=1e-6, abs=1e-12), k
        else:
            np.testing.assert_allclose(tsd[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=key)
    assert topt.get_lr() == pytest.approx(popt.get_lr())


@pytest.mark.parametrize("config", ["adam", "momentum_nesterov", "rmsprop_centered", "lamb",
                                    "adamw_amsgrad"])
@pytest.mark.parametrize("writer", ["paddle", "tostatic"])
def test_pdopt_files_resume_on_the_other_side(real_paddle, init, tmp_path, config, writer):
    """3 steps on one side, paddle.save(opt.state_dict()) and the weights, then 7 steps on the
    other side from the files: the weights of 10 uninterrupted steps in Paddle."""
    grads = gradients([w.shape for w in init])
    want, _ = run(real_paddle, config, init, grads, True)
    first, second = (real_paddle, tostatic) if writer == "paddle" else (tostatic, real_paddle)
    with first.utils.unique_name.guard():
        ps, opt = build(first, config, init)
        take_steps(first, opt, ps, grads, 0, 3, first is real_paddle)
        first.save(opt.state_dict(), str(tmp_path / "opt.pdopt"))
        mid = [p.numpy().copy() for p in ps]
    with second.utils.unique_name.guard():
        ps, opt = build(second, config, mid)
        opt.set_state_dict(second.load(str(tmp_path / "opt.pdopt")))
        take_steps(second, opt, ps, grads, 3, STEPS, second is real_paddle)
        got = [p.numpy() for p in ps]
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=f"{config} param {i}")
