"""Train LeNet on a generated image set, export it, and run the export.

    python examples/train_lenet.py [OUTDIR]

The images (1x28x28) are noise with a bright blob whose place says the class (10 places,
jittered by a pixel or two): separable, so LeNet should reach > 95% test accuracy in two
epochs. Then `jit.save` writes OUTDIR/lenet.{pdmodel,pdiparams,pdiparams.info}; `jit.load`
and `paddle.inference` run those files (no model code) and must predict what the trained
model predicts.
"""
import os
import sys
import time

import numpy as np

import tostatic as paddle
from tostatic.static import InputSpec
from tostatic.utils import ProgressBar
from tostatic.vision.models import LeNet

CLASSES = 10
CENTRES = [(6 + 8 * (k % 3), 5 + 6 * (k // 3)) for k in range(CLASSES)]  # (col, row) a class


def make_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    images = rng.normal(0.0, 0.3, (n, 1, 28, 28)).astype(np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    for i, k in enumerate(labels):
        cx, cy = np.array(CENTRES[k]) + rng.integers(-2, 3, 2)
        images[i, 0] += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 6.0).astype(np.float32)
    return images, labels.astype(np.int64)


class Images(paddle.io.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        self.images, self.labels = make_images(n, seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]


def evaluate(model, loader) -> float:
    metric = paddle.metric.Accuracy()
    model.eval()
    with paddle.no_grad():
        for x, y in loader:
            metric.update(metric.compute(model(x), y))
    model.train()
    return metric.accumulate()


def main(outdir: str, epochs: int = 2) -> float:
    start = time.perf_counter()
    paddle.seed(0)
    np.random.seed(0)  # the DataLoader's shuffling
    train = paddle.io.DataLoader(Images(1280, seed=1), batch_size=32, shuffle=True)
    test = paddle.io.DataLoader(Images(320, seed=2), batch_size=64)
    model = LeNet(num_classes=CLASSES)
    loss_fn = paddle.nn.CrossEntropyLoss()
    schedule = paddle.optimizer.lr.CosineAnnealingDecay(0.003, epochs * len(train))
    opt = paddle.optimizer.Adam(schedule, parameters=model.parameters())
    for epoch in range(epochs):
        bar = ProgressBar(train, desc=f"epoch {epoch + 1}/{epochs}")
        for x, y in bar:
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            opt.clear_grad()
            schedule.step()
            bar.set_postfix(loss=float(loss))
        print(f"epoch {epoch + 1}: test accuracy {evaluate(model, test):.4f}")
    accuracy = evaluate(model, test)

    prefix = os.path.join(outdir, "lenet")
    model.eval()
    paddle.jit.save(model, prefix, input_spec=[InputSpec([None, 1, 28, 28], "float32", "image")])
    images, labels = test.dataset.images, test.dataset.labels
    expected = model(paddle.to_tensor(images)).numpy()

    loaded = paddle.jit.load(prefix)  # the files alone
    from_files = loaded(paddle.to_tensor(images)).numpy()
    predictor = paddle.inference.create_predictor(
        paddle.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams"))
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(images.shape)
    handle.copy_from_cpu(images)
    predictor.run()
    inferred = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    for what, out in (("jit.load", from_files), ("paddle.inference", inferred)):
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5, err_msg=what)
        assert (out.argmax(1) == expected.argmax(1)).all(), what
    export_accuracy = float((inferred.argmax(1) == labels).mean())
    print(f"exported to {prefix}.pdmodel: accuracy {export_accuracy:.4f} from the files "
          f"(trained model {accuracy:.4f}), {time.perf_counter() - start:.1f} s in all")
    return accuracy


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out")
