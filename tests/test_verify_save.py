"""Verify on save: jit.save compares the program it writes with the eager model (numpy) and
names the first diverging op when a lowering is wrong (here made wrong on purpose)."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

import tostatic as paddle
import tostatic.frontend.capture.jit_save as jit_save
from tostatic.frontend.capture.verify_save import SaveVerificationError
from tostatic.ops.activation import Relu
from tostatic.static import InputSpec

SPEC = [InputSpec([None, 6], "float32", "x")]


class Net(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc1 = paddle.nn.Linear(6, 5)
        self.fc2 = paddle.nn.Linear(5, 2)

    def forward(self, x):
        h = self.fc1(x)
        h = paddle.nn.functional.relu(h)  # RELU_LINE
        return self.fc2(h) * 2.0


RELU_LINE = next(i for i, line in enumerate(open(__file__), 1) if "# RELU_LINE" in line)


@pytest.fixture
def wrong_relu(monkeypatch):
    """relu written as Paddle's sigmoid: a lowering bug."""
    monkeypatch.setattr(Relu, "PADDLE", dataclasses.replace(Relu.PADDLE, type="sigmoid"))


def test_a_wrong_lowering_is_caught_naming_the_op_and_the_line(tmp_path, wrong_relu):
    prefix = str(tmp_path / "net")
    with pytest.raises(SaveVerificationError) as e:
        paddle.jit.save(Net(), prefix, input_spec=SPEC)
    text = str(e.value)
    assert f"traced from pd.relu at {__file__}:{RELU_LINE}" in text, text
    assert "first diverging op: pd.sigmoid" in text and "writing 'relu_0.tmp_0'" in text, text
    assert "max difference" in text and "output 0 differs" in text, text
    assert os.listdir(tmp_path) == []  # nothing written
    paddle.jit.save(Net(), prefix, input_spec=SPEC, verify=False)  # written when asked
    assert sorted(os.listdir(tmp_path)) == ["net.pdiparams", "net.pdiparams.info",
                                            "net.pdmodel", "net.tostatic-manifest"]


def test_big_models_are_verified_only_when_asked(tmp_path, wrong_relu, monkeypatch):
    monkeypatch.setattr(jit_save, "MAX_VERIFY_BYTES", 64)  # this model has 152 bytes
    paddle.jit.save(Net(), str(tmp_path / "a"), input_spec=SPEC)  # skipped: too big
    with pytest.raises(SaveVerificationError, match="pd.sigmoid"):
        paddle.jit.save(Net(), str(tmp_path / "b"), input_spec=SPEC, verify=True)


def test_a_correct_model_saves_and_both_sizes_are_run(tmp_path, monkeypatch):
    import tostatic.frontend.capture.verify_save as vs

    runs = []
    real = vs.ExecutionPlan.run

    def spy(self, feeds):
        runs.append([f.shape for f in feeds])
        return real(self, feeds)

    monkeypatch.setattr(vs.ExecutionPlan, "run", spy)
    net = Net()
    net.train()  # verified in eval mode, as exported; the mode is restored afterwards
    paddle.jit.save(net, str(tmp_path / "net"), input_spec=SPEC)
    assert net.training and net.fc1.training
    assert runs == [[(2, 6)], [(3, 6)]]
    x = np.random.default_rng(0).standard_normal([4, 6]).astype(np.float32)
    net.eval()
    np.testing.assert_allclose(paddle.jit.load(str(tmp_path / "net"))(x).numpy(),
                               net(paddle.to_tensor(x)).numpy(), rtol=1e-6)
