"""What we write for a model equals what Paddle 3.3.1 wrote for it, op by op and var by var."""
import numpy as np

import tostatic as paddle
from tostatic.static import InputSpec

from conftest import FIXTURES, describe_program as _describe, guide_simple_net


SimpleNet = guide_simple_net()


class MLP(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.layers = paddle.nn.Sequential(
            paddle.nn.Linear(16, 32), paddle.nn.ReLU(), paddle.nn.Linear(32, 32),
            paddle.nn.ReLU(), paddle.nn.Linear(32, 4))

    def forward(self, x):
        return self.layers(x)


def _export(tmp_path, net, specs):
    from tostatic.ir import names as unique_name

    with unique_name.guard():  # Paddle's fixtures start their names at _0
        net = net()
    net.eval()
    prefix = str(tmp_path / "model")
    paddle.jit.save(net, prefix, input_spec=specs)
    return prefix


def test_simple_net_program_equals_paddles(tmp_path):
    prefix = _export(tmp_path, SimpleNet, [InputSpec([None, 10], "float32", "x"),
                                           InputSpec([3], "float32", "y")])
    ours, theirs = _describe(prefix + ".pdmodel"), _describe(FIXTURES / "simple_net/model.pdmodel")
    assert ours == theirs


def test_mlp_program_and_info_equal_paddles(tmp_path):
    prefix = _export(tmp_path, MLP, [InputSpec([None, 16], "float32", "x")])
    assert _describe(prefix + ".pdmodel") == _describe(FIXTURES / "mlp/model.pdmodel")
    from tostatic.serialization.pdiparams_info import load_info

    assert load_info(prefix + ".pdiparams.info") == load_info(FIXTURES / "mlp/model.pdiparams.info")
    # same names and shapes in .pdiparams: same byte size
    assert (tmp_path / "model.pdiparams").stat().st_size == (FIXTURES / "mlp/model.pdiparams").stat().st_size


def two_outputs(x, k):  # the fixture's function, as make_fixtures.py defines it
    kf = paddle.cast(k, "float32")
    a = x * kf + 0.5
    b = (x - kf) / (kf * kf + 1.0)
    c = a - paddle.mean(x, axis=0)
    mask = paddle.cast(x > 0.0, "int64")
    return c + b, mask * k + k % 3


def test_two_outputs_function_program_equals_paddles(tmp_path):
    prefix = str(tmp_path / "model")
    specs = [InputSpec([None, 4], "float32", "x"), InputSpec([None, 1], "int64", "k")]
    paddle.jit.save(paddle.jit.to_static(two_outputs, input_spec=specs), prefix)
    assert _describe(prefix + ".pdmodel") == _describe(FIXTURES / "two_outputs/model.pdmodel")
    assert not (tmp_path / "model.pdiparams").exists()  # no persistables: no file, like Paddle
    z = np.load(FIXTURES / "two_outputs/io.npz")
    out = paddle.jit.load(prefix)(z["x"], z["k"])
    np.testing.assert_allclose(out[0].numpy(), z["out0"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[1].numpy(), z["out1"])
