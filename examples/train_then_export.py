"""Train a small MLP in dygraph, then export it for inference: the guide's whole workflow in
a few seconds.

    python examples/train_then_export.py [OUTDIR]

The data: 2-D points in three interleaved spirals (not linearly separable). An MLP trained
with AdamW, gradient clipping and a warm-up schedule classifies them; `jit.save` exports it to
OUTDIR/mlp.{pdmodel,pdiparams,pdiparams.info}, and `paddle.inference` runs the files.
"""
import os
import sys
import time

import numpy as np

import tostatic as paddle
from tostatic.static import InputSpec
from tostatic.utils import ProgressBar


def spirals(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points, labels = [], []
    for k in range(3):
        r = np.linspace(0.1, 1.0, n_per_class)
        theta = 4.0 * r + 2 * np.pi * k / 3 + rng.normal(0, 0.1, n_per_class)
        points.append(np.stack([r * np.cos(theta), r * np.sin(theta)], 1))
        labels.append(np.full(n_per_class, k))
    return np.concatenate(points).astype(np.float32), np.concatenate(labels).astype(np.int64)


class MLP(paddle.nn.Layer):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = paddle.nn.Sequential(
            paddle.nn.Linear(2, hidden), paddle.nn.ReLU(),
            paddle.nn.Linear(hidden, hidden), paddle.nn.ReLU(),
            paddle.nn.Linear(hidden, 3))

    def forward(self, x):
        return self.net(x)


def main(outdir: str, epochs: int = 60) -> float:
    start = time.perf_counter()
    paddle.seed(0)
    np.random.seed(0)
    x, y = spirals(200, seed=0)
    loader = paddle.io.DataLoader(
        paddle.io.TensorDataset([paddle.to_tensor(x), paddle.to_tensor(y)]),
        batch_size=50, shuffle=True)
    model = MLP()
    schedule = paddle.optimizer.lr.LinearWarmup(
        paddle.optimizer.lr.CosineAnnealingDecay(0.02, epochs * len(loader)), 20, 0.0, 0.02)
    opt = paddle.optimizer.AdamW(schedule, parameters=model.parameters(), weight_decay=1e-4,
                                 grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0))
    bar = ProgressBar(total=epochs * len(loader), desc="training")
    for _ in range(epochs):
        for xb, yb in loader:
            loss = paddle.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.clear_grad()
            schedule.step()
            bar.set_postfix(loss=float(loss), lr=opt.get_lr())
            bar.update()
    bar.close()
    model.eval()
    logits = model(paddle.to_tensor(x)).numpy()
    x_test, y_test = spirals(100, seed=1)
    accuracy = float((model(paddle.to_tensor(x_test)).numpy().argmax(1) == y_test).mean())

    prefix = os.path.join(outdir, "mlp")
    paddle.jit.save(model, prefix, input_spec=[InputSpec([None, 2], "float32", "points")])
    predictor = paddle.inference.create_predictor(
        paddle.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams"))
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(x.shape)
    handle.copy_from_cpu(x)
    predictor.run()
    out = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    np.testing.assert_allclose(out, logits, rtol=1e-4, atol=1e-5)
    print(f"held-out accuracy {accuracy:.4f}; exported to {prefix}.pdmodel, whose inference "
          f"output matches; {time.perf_counter() - start:.1f} s in all")
    return accuracy


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out")
