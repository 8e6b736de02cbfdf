"""Training against real Paddle 3.3.1: an MLP and a small CNN with batch norm, from the same
initial weights and data, trained 10 steps with each optimizer configuration of
test_optimizer_interop (weight decay, clipping, a schedule): the same losses and the same
weights (and batch-norm statistics), rtol 1e-5. Gradients come from each framework's own
backward through cross_entropy (tostatic: the autograd tape's VJPs)."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic

from test_optimizer_interop import CONFIGS, METRICS, STEPS

pytestmark = pytest.mark.interop
rng = np.random.default_rng(5)
DATA = {
    "mlp": (rng.standard_normal((STEPS, 8, 6)).astype(np.float32),
            rng.integers(0, 4, (STEPS, 8)).astype(np.int64)),
    "cnn": (rng.standard_normal((STEPS, 8, 3, 6, 6)).astype(np.float32),
            rng.integers(0, 4, (STEPS, 8)).astype(np.int64)),
}


def build(P, kind):
    nn = P.nn
    if kind == "mlp":
        return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    # no conv bias before batch norm: its gradient is exactly 0 in theory, rounding noise in
    # practice, which Adam-style optimizers would amplify into +-lr steps
    return nn.Sequential(nn.Conv2D(3, 4, 3, padding=1, bias_attr=False), nn.BatchNorm2D(4),
                         nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Linear(36, 4))


def train(P, kind, config, init):
    with P.utils.unique_name.guard():
        net = build(P, kind)
        if init is not None:
            net.set_state_dict({k: P.to_tensor(v) for k, v in init.items()})
        net.train()
        opt = CONFIGS[config](P, net.parameters())
        sched = opt._learning_rate if not isinstance(opt._learning_rate, float) else None
        xs, ys = DATA[kind]
        losses = []
        for k in range(STEPS):
            loss = P.nn.functional.cross_entropy(net(P.to_tensor(xs[k])), P.to_tensor(ys[k]))
            loss.backward()
            opt.step()
            opt.clear_grad()
            losses.append(float(loss))
            if sched is not None:
                sched.step(METRICS[k]) if type(sched).__name__ == "ReduceOnPlateau" \
                    else sched.step()
        return losses, {k: v.numpy().copy() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_training_matches_paddle(real_paddle, kind, config):
    real_paddle.seed(11)
    with real_paddle.utils.unique_name.guard():
        init = {k: v.numpy().copy() for k, v in build(real_paddle, kind).state_dict().items()}
    want_losses, want = train(real_paddle, kind, config, init)
    got_losses, got = train(tostatic, kind, config, init)
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-5, err_msg=f"{kind} {config}")
    assert len(set(want_losses)) == STEPS  # one loss per batch (each its own random data)
    assert list(got) == list(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{kind} {config} {key}")
    first = next(iter(want))
    assert not np.allclose(got[first], init[first])  # it trained
