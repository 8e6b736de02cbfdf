"""Eager op overhead against real Paddle's eager mode, in one process: `add` of two 8x8
float32 tensors, inputs not requiring grad (no tape) and requiring it (one GradNode
recorded), `nn.Linear(64, 64)` forward, one backward of `(x * y).sum()`, and a forward +
backward of a small MLP (no optimizer). The two
frameworks are timed in alternating rounds and the best round kept, so a busy machine slows
both alike.

    python benchmarks/eager_overhead.py [--rounds 7] [--number 20000]
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np


def cases(P):
    rng = np.random.default_rng(0)
    a = P.to_tensor(rng.random((8, 8), dtype=np.float32))
    b = P.to_tensor(rng.random((8, 8), dtype=np.float32))
    c = P.to_tensor(rng.random((8, 8), dtype=np.float32), stop_gradient=False)
    lin = P.nn.Linear(64, 64)
    x = P.to_tensor(rng.random((8, 64), dtype=np.float32))

    def step():
        (c * b).sum().backward()

    mlp = P.nn.Sequential(P.nn.Linear(64, 128), P.nn.ReLU(), P.nn.Linear(128, 128), P.nn.ReLU(),
                          P.nn.Linear(128, 10))
    batch = P.to_tensor(rng.random((32, 64), dtype=np.float32))
    onehot = P.to_tensor(np.eye(10, dtype=np.float32)[rng.integers(0, 10, 32)])

    def mlp_step():
        loss = -(P.nn.functional.log_softmax(mlp(batch)) * onehot).sum(axis=1).mean()
        loss.backward()
        mlp.clear_gradients()

    return {"add 8x8, stop_gradient=True": lambda: P.add(a, b),
            "add 8x8, stop_gradient=False": lambda: P.add(c, b),
            "Linear(64) forward": lambda: lin(x),
            "(x*y).sum().backward()": step,
            "MLP 64-128-128-10 fwd+bwd, b32": mlp_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    import paddle

    import tostatic

    ours, theirs = cases(tostatic), cases(paddle)
    best: dict[str, list[float]] = {k: [1e9, 1e9] for k in ours if not k.startswith("_")}
    for _ in range(args.rounds):
        for name in best:
            n = args.number // 10 if "backward" in name or "bwd" in name else args.number
            for i, fns in enumerate((ours, theirs)):
                t = timeit.timeit(fns[name], number=n) / n
                best[name][i] = min(best[name][i], t)
    print(f"{'case':32s} {'tostatic':>10s} {'paddle':>10s} {'ratio':>7s}")
    for name, (o, p) in best.items():
        print(f"{name:32s} {o * 1e6:8.2f}us {p * 1e6:8.2f}us {o / p:6.2f}x")


if __name__ == "__main__":
    main()
