"""The guide's section 1 (export inference models) run with `import tostatic as paddle`."""
import os

import numpy as np
import pytest

import tostatic as paddle
from tostatic.ir.errors import ShapeError
from tostatic.jit import to_static
from tostatic.static import InputSpec

from conftest import assert_close, paddle_predict


class SimpleNet(paddle.nn.Layer):
    def __init__(self):
        super(SimpleNet, self).__init__()
        self.linear = paddle.nn.Linear(10, 3)

    def forward(self, x, y):
        out = self.linear(x)
        out = out + y
        return out

    def another_func(self, x):
        out = self.linear(x)
        out = out * 2
        return out


def _files(prefix):
    return [prefix + s for s in (".pdmodel", ".pdiparams", ".pdiparams.info")]


def test_section_1_1_as_written_fails_like_paddle_naming_the_line(tmp_path):
    # The guide's x_spec has 3 columns but Linear(10, 3) needs 10: Paddle refuses it too.
    net = SimpleNet()
    net.eval()
    x_spec = InputSpec(shape=[None, 3], dtype="float32", name="x")
    y_spec = InputSpec(shape=[3], dtype="float32", name="y")
    with pytest.raises(ShapeError) as err:
        paddle.jit.save(net, path=str(tmp_path / "simple_net"), input_spec=[x_spec, y_spec])
    assert "pd.matmul" in str(err.value) and "test_guide_export.py" in str(err.value)
    assert not any(os.path.exists(f) for f in _files(str(tmp_path / "simple_net")))


def export_1_1(prefix):
    net = SimpleNet()
    net.eval()
    x_spec = InputSpec(shape=[None, 10], dtype="float32", name="x")
    y_spec = InputSpec(shape=[3], dtype="float32", name="y")
    result = paddle.jit.save(net, path=prefix, input_spec=[x_spec, y_spec])
    assert result is None
    return net


def export_1_2(prefix):
    net = SimpleNet()
    net.eval()
    x_spec = InputSpec(shape=[None, 10], dtype="float32", name="x")
    static_func = to_static(net.another_func, input_spec=[x_spec])
    paddle.jit.save(static_func, path=prefix)
    return net


def _inputs():
    rng = np.random.default_rng(7)
    return rng.standard_normal((4, 10)).astype("float32"), rng.standard_normal(3).astype("float32")


def test_section_1_1_writes_three_files_that_run_natively(tmp_path):
    prefix = str(tmp_path / "simple_net")
    net = export_1_1(prefix)
    assert all(os.path.getsize(f) > 0 for f in _files(prefix))
    x, y = _inputs()
    eager = net(paddle.to_tensor(x), paddle.to_tensor(y)).numpy()
    loaded = paddle.jit.load(prefix)
    assert_close(loaded(paddle.to_tensor(x), paddle.to_tensor(y)).numpy(), eager)
    np.testing.assert_allclose(eager, x @ net.linear.weight.numpy() + net.linear.bias.numpy() + y,
                               rtol=1e-6)


def test_section_1_2_exports_another_func(tmp_path):
    prefix = str(tmp_path / "another_func")
    net = export_1_2(prefix)
    assert all(os.path.exists(f) for f in _files(prefix))
    x, _ = _inputs()
    want = (x @ net.linear.weight.numpy() + net.linear.bias.numpy()) * 2
    predictor = paddle.inference.create_predictor(
        paddle.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams"))
    assert predictor.get_input_names() == ["x"]
    got = predictor.run([x])
    assert len(got) == 1
    assert_close(got[0], want)
    assert_close(net.another_func(paddle.to_tensor(x)).numpy(), want)


def test_section_1_3_1_inputspec_prints_like_paddle_3(capsys):
    x = InputSpec([None, 784], "float32", "x")
    label = InputSpec([None, 1], "int64", "label")
    print(x)
    print(label)
    t = paddle.to_tensor(np.ones([2, 2], np.float32))
    print(InputSpec.from_tensor(t, name="x"))
    print(InputSpec.from_numpy(np.ones([2, 2], np.float32), name="x"))
    assert capsys.readouterr().out.splitlines() == [
        "InputSpec(shape=(-1, 784), dtype=paddle.float32, name=x, stop_gradient=False)",
        "InputSpec(shape=(-1, 1), dtype=paddle.int64, name=label, stop_gradient=False)",
        "InputSpec(shape=(2, 2), dtype=paddle.float32, name=x, stop_gradient=False)",
        "InputSpec(shape=(2, 2), dtype=paddle.float32, name=x, stop_gradient=False)",
    ]


def test_zeros_prints_like_the_guide(capsys):
    print(paddle.zeros(shape=[1, 2], dtype="float32"))
    assert capsys.readouterr().out == (
        "Tensor(shape=[1, 2], dtype=float32, place=Place(cpu), stop_gradient=True,\n"
        "       [[0., 0.]])\n")


def test_decorator_form_with_input_spec(tmp_path):
    class Net(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.linear = paddle.nn.Linear(10, 3)

        @to_static(input_spec=[InputSpec(shape=[None, 10], name="x"), InputSpec(shape=[3], name="y")])
        def forward(self, x, y):
            return self.linear(x) + y

    net = Net()
    prefix = str(tmp_path / "deco")
    paddle.jit.save(net, prefix)
    x, y = _inputs()
    want = x @ net.linear.weight.numpy() + net.linear.bias.numpy() + y
    assert_close(net(paddle.to_tensor(x), paddle.to_tensor(y)).numpy(), want.astype("float32"))
    assert_close(paddle.jit.load(prefix)(x, y).numpy(), want.astype("float32"))


def test_list_and_dict_specs_and_python_values(tmp_path):
    class ListNet(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.linear = paddle.nn.Linear(10, 3)
            self.relu = paddle.nn.ReLU()

        def forward(self, inputs, bias_info, use_act=False):
            x, y = inputs[0], inputs[1]
            out = self.linear(x) + y + bias_info["x"]
            if use_act:
                out = self.relu(out)
            return out

    net = ListNet()
    specs = [[InputSpec([None, 10], name="x"), InputSpec([3], name="y")],
             {"x": InputSpec([3], name="bias")}, True]
    prefix = str(tmp_path / "nested")
    paddle.jit.save(to_static(net, input_spec=specs), prefix)
    predictor = paddle.inference.create_predictor(paddle.inference.Config(prefix + ".pdmodel",
                                                                         prefix + ".pdiparams"))
    assert predictor.get_input_names() == ["x", "y", "bias"]
    x, y = _inputs()
    bias = np.full(3, -5.0, "float32")
    want = np.maximum(x @ net.linear.weight.numpy() + net.linear.bias.numpy() + y + bias, 0)
    assert_close(predictor.run([x, y, bias])[0], want.astype("float32"))


def test_feed_errors_name_the_input_and_spec(tmp_path):
    prefix = str(tmp_path / "simple_net")
    export_1_1(prefix)
    loaded = paddle.jit.load(prefix)
    x, y = _inputs()
    with pytest.raises(ValueError, match=r"input 'x' expects shape \[-1, 10\] dtype float32.*\[4, 9\]"):
        loaded(x[:, :9], y)
    with pytest.raises(ValueError, match=r"input 'y' .*float64"):
        loaded(x, y.astype("float64"))
    with pytest.raises(ValueError, match=r"input 'x' .*\[10\]"):
        loaded(x[0], y)


@pytest.mark.interop
@pytest.mark.parametrize("section", ["1.1", "1.2"])
def test_our_files_run_in_real_paddle_inference(tmp_path, real_paddle, section):
    prefix = str(tmp_path / "model")
    x, y = _inputs()
    if section == "1.1":
        net = export_1_1(prefix)
        eager = net(paddle.to_tensor(x), paddle.to_tensor(y)).numpy()
        feeds = {"x": x, "y": y}
    else:
        net = export_1_2(prefix)
        eager = net.another_func(paddle.to_tensor(x)).numpy()
        feeds = {"x": x}
    (got,) = paddle_predict(prefix + ".pdmodel", prefix + ".pdiparams", feeds)
    assert_close(got, eager)


@pytest.mark.interop
def test_our_files_load_in_real_paddle_jit_load(tmp_path, real_paddle):
    prefix = str(tmp_path / "simple_net")
    net = export_1_1(prefix)
    x, y = _inputs()
    loaded = real_paddle.jit.load(prefix)
    got = loaded(real_paddle.to_tensor(x), real_paddle.to_tensor(y)).numpy()
    assert_close(got, net(paddle.to_tensor(x), paddle.to_tensor(y)).numpy())
    # Paddle's jit.load names loaded parameters param_N (it does so for its own files too);
    # the values must be ours.
    values = sorted((v.numpy().tolist() for v in loaded.state_dict().values()), key=len)
    assert values == [net.linear.bias.numpy().tolist(), net.linear.weight.numpy().tolist()]


def test_buffers_become_persistables_with_structured_names(tmp_path):
    class WithBuffer(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.linear = paddle.nn.Linear(4, 2)
            self.register_buffer("offset", paddle.to_tensor(np.arange(2, dtype="float32")))

        def forward(self, x):
            return self.linear(x) + self.offset

    net = WithBuffer()
    prefix = str(tmp_path / "buf")
    paddle.jit.save(net, prefix, input_spec=[InputSpec([None, 4], "float32", "x")])
    from tostatic.serialization.pdiparams_info import load_info

    info = load_info(prefix + ".pdiparams.info")
    by_structured = {v["structured_name"]: (k, v) for k, v in info.items()}
    assert set(by_structured) == {"linear.weight", "linear.bias", "offset"}
    assert "trainable" not in by_structured["offset"][1]  # buffers carry no trainable flag
    x = np.ones((3, 4), "float32")
    want = x @ net.linear.weight.numpy() + net.linear.bias.numpy() + np.arange(2)
    assert_close(paddle.jit.load(prefix)(x).numpy(), want.astype("float32"))
