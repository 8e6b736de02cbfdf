"""The main job: the guide's SimpleNet exported to Paddle inference files and run back natively.

    python examples/export_simple_net.py [OUTDIR]

Writes OUTDIR/simple_net.{pdmodel,pdiparams,pdiparams.info} with `jit.save`, loads them with
`tostatic.inference` (the files alone, no model code) and checks the outputs against eager mode.
"""
import os
import sys

import numpy as np

import tostatic as paddle
from tostatic.static import InputSpec


class SimpleNet(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.linear = paddle.nn.Linear(10, 3)

    def forward(self, x, y):
        out = self.linear(x)
        out = out + y
        return out


def main(outdir: str) -> None:
    paddle.seed(2024)
    net = SimpleNet()
    net.eval()
    x_spec = InputSpec(shape=[None, 10], dtype="float32", name="x")
    y_spec = InputSpec(shape=[3], dtype="float32", name="y")
    prefix = os.path.join(outdir, "simple_net")
    paddle.jit.save(net, path=prefix, input_spec=[x_spec, y_spec])
    for suffix in (".pdmodel", ".pdiparams", ".pdiparams.info"):
        print(f"wrote {prefix + suffix} ({os.path.getsize(prefix + suffix)} bytes)")

    x = np.random.default_rng(0).standard_normal((4, 10)).astype("float32")
    y = np.random.default_rng(1).standard_normal(3).astype("float32")
    eager = net(paddle.to_tensor(x), paddle.to_tensor(y)).numpy()

    config = paddle.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    predictor = paddle.inference.create_predictor(config)
    for name, value in zip(predictor.get_input_names(), (x, y)):
        handle = predictor.get_input_handle(name)
        handle.reshape(value.shape)
        handle.copy_from_cpu(value)
    predictor.run()
    out = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    print("inputs:", predictor.get_input_names(), "outputs:", predictor.get_output_names())
    print("output:\n", out)
    np.testing.assert_allclose(out, eager, rtol=1e-5, atol=1e-6)
    print("native run of the exported files matches eager mode: OK")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out")
