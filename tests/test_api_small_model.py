"""A small model using the new functions and layers together (a MobileNetV3-style block with
squeeze-excitation, an upsampling and padding branch, slicing, concat, reductions and
softmax), built by both libraries with the same weights: eager outputs equal, tostatic's
jit.save writes Paddle's program op for op and variable for variable (names run on across
layers as Paddle's do), paddle.inference runs it with Paddle's outputs, and tostatic runs
Paddle's file."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic

from api_harness import Case, check_export

rng = np.random.default_rng(17)


def small_model(P):
    nn, F = P.nn, P.nn.functional

    class SEBlock(nn.Layer):
        def __init__(self, channels):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2D(1)
            self.squeeze = nn.Conv2D(channels, channels // 2, 1)
            self.relu = nn.ReLU()
            self.expand = nn.Conv2D(channels // 2, channels, 1)
            self.gate = nn.Hardsigmoid()

        def forward(self, x):
            s = self.gate(self.expand(self.relu(self.squeeze(self.pool(x)))))
            return x * s

    class SmallModel(nn.Layer):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2D(3, 8, 3, padding=1), nn.BatchNorm2D(8),
                                      nn.Hardswish())
            self.se = SEBlock(8)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear")
            self.pad = nn.Pad2D(1, mode="reflect")
            self.conv = nn.Conv2D(8, 6, 3, stride=2)
            self.act = nn.LeakyReLU(0.1)
            self.prelu = nn.PReLU(6)
            self.head = nn.Softmax(axis=-1)

        def forward(self, x):
            y = self.se(self.stem(x))
            z = self.act(self.conv(self.pad(self.up(y))))
            z = self.prelu(z)
            left, right = P.split(z, [2, 4], axis=1)
            z = P.concat([right[:, 1:], left, F.relu6(z[:, :1])], axis=1)
            pooled = P.mean(z, axis=[2, 3])
            peak = P.max(P.flatten(z, 2), axis=-1)
            return self.head(P.clip(pooled + peak, -3.0, 3.0))

    return SmallModel()


@pytest.mark.interop
def test_small_model_exports_as_paddle_and_runs_in_paddle_inference(real_paddle, tmp_path):
    with real_paddle.utils.unique_name.guard():
        theirs = small_model(real_paddle)
    with tostatic.utils.unique_name.guard():
        ours = small_model(tostatic)
    for key, p in theirs.state_dict().items():
        value = rng.standard_normal(p.shape).astype(np.float32) * 0.5
        if key.endswith("_variance"):
            value = np.abs(value) + 0.5
        p.set_value(real_paddle.to_tensor(value))
    missing, unexpected = ours.set_state_dict({k: v.numpy()
                                               for k, v in theirs.state_dict().items()})
    assert not missing and not unexpected
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    want = [theirs(real_paddle.to_tensor(x)).numpy()]
    np.testing.assert_allclose(ours(tostatic.to_tensor(x)).numpy(), want[0], rtol=1e-4,
                               atol=1e-5)
    case = Case("small_model", None, [x], rtol=1e-4, atol=1e-5,
                dims_not_compared=("batch_norm_0.tmp_0", "batch_norm_0.tmp_1"))
    check_export(real_paddle, tmp_path, case, want,
                 make=lambda P: ours if P is tostatic else theirs)
