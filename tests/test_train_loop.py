"""A whole training loop (DataLoader, a loss Layer, an optimizer with clipping and a schedule,
the Accuracy metric): eager and to_static training of the same model from the same weights
give the same losses for 20 steps, for an MLP and a CNN with batch norm (the to_static Layer
runs its program's forward half and loss.backward() its backward half)."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic as paddle

STEPS = 20


def model(kind):
    nn = paddle.nn
    if kind == "mlp":
        return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    return nn.Sequential(nn.Conv2D(2, 4, 3, padding=1, bias_attr=False), nn.BatchNorm2D(4),
                         nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Linear(36, 3))


def data(kind):
    rng = np.random.default_rng(2)
    shape = (40, 6) if kind == "mlp" else (40, 2, 6, 6)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, 3, 40).astype(np.int64)
    return paddle.io.TensorDataset([paddle.to_tensor(x), paddle.to_tensor(y)])


def train(net, kind):
    np.random.seed(0)  # the same shuffling for both runs
    loader = paddle.io.DataLoader(data(kind), batch_size=8, shuffle=True)
    schedule = paddle.optimizer.lr.CosineAnnealingDecay(0.01, STEPS)
    opt = paddle.optimizer.Adam(schedule, parameters=net.parameters(), weight_decay=1e-3,
                                grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0))
    loss_fn = paddle.nn.CrossEntropyLoss(label_smoothing=0.05)
    metric = paddle.metric.Accuracy()
    net.train()
    losses = []
    while len(losses) < STEPS:
        for x, y in loader:
            logits = net(x)
            loss = loss_fn(logits, y)
            loss.backward()
            opt.step()
            opt.clear_grad()
            schedule.step()
            metric.update(metric.compute(logits, y))
            losses.append(float(loss))
    return losses, metric.accumulate()


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_eager_and_to_static_training_agree(kind):
    paddle.seed(5)
    eager = model(kind)
    static = model(kind)
    static.set_state_dict(eager.state_dict())
    want, want_acc = train(eager, kind)
    got, got_acc = train(paddle.jit.to_static(static), kind)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got_acc == pytest.approx(want_acc)
    assert np.mean(want[-5:]) < np.mean(want[:5])  # it learns (the data repeats every 5 steps)
    for a, b in zip(eager.parameters(), static.parameters()):  # running statistics too
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)


def test_to_static_batch_norm_statistics_follow_eager_in_train_and_eval():
    """Train mode (with and without grad) updates the running statistics with Paddle's
    momentum, as eager does; eval mode reads them and leaves them alone."""
    paddle.seed(3)
    eager, static = model("cnn"), model("cnn")
    static.set_state_dict(eager.state_dict())
    compiled = paddle.jit.to_static(static)
    x = paddle.to_tensor(np.random.default_rng(4).standard_normal((8, 2, 6, 6))
                         .astype(np.float32) * 3 + 1)
    mean0 = eager[1]._mean.numpy().copy()
    for net in (eager, compiled):
        net.train()
        net(x).sum().backward()
        with paddle.no_grad():
            net(x)
        net.eval()
        net(x)
    for name in ("_mean", "_variance"):
        np.testing.assert_allclose(getattr(static[1], name).numpy(),
                                   getattr(eager[1], name).numpy(), rtol=1e-5, atol=1e-6)
    # by hand: two momentum steps from zeros towards the batch mean of conv(x)
    batch_mean = eager[0](x).numpy().mean(axis=(0, 2, 3))
    np.testing.assert_allclose(eager[1]._mean.numpy(),
                               0.81 * mean0 + 0.19 * batch_mean, rtol=1e-4, atol=1e-6)
