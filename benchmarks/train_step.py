"""One training step against real Paddle's eager mode, in one process: forward, cross-entropy,
backward, an optimizer step and clear_grad, for an MLP (batch 64, 784-256-256-10, Adam) and
ResNet-18 (batch 8, 3x224x224, Momentum with weight decay); and the optimizer step alone on
ResNet-18's parameters (Adam, with and without global-norm clipping). The frameworks run in
alternating rounds and the best round is kept, so a busy machine slows both alike.

    python benchmarks/train_step.py [--rounds 5] [--skip-resnet]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def mlp_step(P):
    rng = np.random.default_rng(0)
    net = P.nn.Sequential(P.nn.Linear(784, 256), P.nn.ReLU(), P.nn.Linear(256, 256),
                          P.nn.ReLU(), P.nn.Linear(256, 10))
    opt = P.optimizer.Adam(1e-3, parameters=net.parameters())
    x = P.to_tensor(rng.random((64, 784), dtype=np.float32))
    y = P.to_tensor(rng.integers(0, 10, 64))

    def step():
        loss = P.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        opt.clear_grad()

    return step, 20


def resnet_step(P):
    rng = np.random.default_rng(0)
    net = P.vision.models.resnet18()
    opt = P.optimizer.Momentum(0.01, parameters=net.parameters(), weight_decay=1e-4)
    x = P.to_tensor(rng.random((8, 3, 224, 224), dtype=np.float32))
    y = P.to_tensor(rng.integers(0, 1000, 8))

    def step():
        loss = P.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        opt.clear_grad()

    return step, 1


def optimizer_step(clip):
    def make(P):
        net = P.vision.models.resnet18()
        params = [p for p in net.parameters() if not p.stop_gradient]
        opt = P.optimizer.Adam(1e-3, parameters=params,
                               grad_clip=P.nn.ClipGradByGlobalNorm(1.0) if clip else None)
        rng = np.random.default_rng(0)
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
        if P.__name__ == "paddle":  # gradients through its own backward: d sum(p g)/dp = g
            sum((p * P.to_tensor(g)).sum() for p, g in zip(params, grads)).backward()
        else:
            for p, g in zip(params, grads):
                p.grad = P.to_tensor(g)
        return opt.step, 3

    return make


CASES = {"MLP train step (batch 64)": mlp_step,
         "ResNet-18 train step (batch 8)": resnet_step,
         "Adam step, ResNet-18 params": optimizer_step(False),
         "Adam + ClipGradByGlobalNorm step, ResNet-18 params": optimizer_step(True)}


def best_time(step, number: int) -> float:
    step()  # warm-up (accumulators, caches)
    start = time.perf_counter()
    for _ in range(number):
        step()
    return (time.perf_counter() - start) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-resnet", action="store_true")
    args = parser.parse_args()
    import paddle

    import tostatic

    print(f"{'case':52s} {'tostatic':>10s} {'paddle':>10s} {'ratio':>7s}")
    for name, make in CASES.items():
        if args.skip_resnet and "ResNet-18 train" in name:
            continue
        steps = {P.__name__: make(P) for P in (tostatic, paddle)}
        best = {k: float("inf") for k in steps}
        for _ in range(args.rounds):
            for k, (step, number) in steps.items():
                best[k] = min(best[k], best_time(step, number))
        ours, theirs = best["tostatic"], best["paddle"]
        print(f"{name:52s} {ours * 1e3:8.1f}ms {theirs * 1e3:8.1f}ms {ours / theirs:6.2f}x")


if __name__ == "__main__":
    main()
