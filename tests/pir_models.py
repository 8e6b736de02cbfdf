"""Paddle-made PIR models (.json + .pdiparams) for the tests, written by real Paddle 3.3.1.

Run as a script in its own process, in Paddle's default PIR mode (FLAGS_enable_pir_api unset:
the test process itself runs Paddle in legacy mode):

    python tests/pir_models.py OUT_DIR [NAME ...]

For each model NAME it writes OUT_DIR/NAME.json, NAME.pdiparams (when it has parameters) and
NAME.npz: the inputs (by feed name) and Paddle Inference's outputs on the .json (out0, ...),
plus OUT_DIR/index.json listing every model with its feed and fetch names. Batch norm
statistics and every parameter are random, so a weight read into the wrong variable shows.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

RNG = np.random.default_rng(7)


def _models():
    import paddle
    import paddle.nn as nn
    import paddle.nn.functional as F
    from paddle.static import InputSpec

    class MLP(nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, x):
            return F.softmax(self.fc2(F.relu(self.fc1(x))))

    class SmallCNN(nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2D(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2D(4)
            self.pool = nn.MaxPool2D(2)
            self.fc = nn.Linear(4 * 4 * 4, 5)

        def forward(self, x):
            y = self.pool(F.relu(self.bn(self.conv(x))))
            return self.fc(paddle.flatten(y, 1))

    class ControlFlow(nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            y = self.fc(x)
            if y.sum() > 0:
                y = y * 2
            else:
                y = y - 1
            i = paddle.zeros([1], "int64")
            while i < 3:
                y = F.relu(y) + 1
                i = i + 1
            return y

    class NestedControlFlow(nn.Layer):
        """A while loop (trip count from an input) around an if whose branches read values
        from one and two levels out."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x, n):
            y = self.fc(x)
            s = x.mean()
            i = paddle.zeros([1], "int64")
            while i < n:
                if y.sum() > s:
                    y = y * 0.5 - s
                else:
                    y = y + x
                i = i + 1
            return y, i

    class NLPOps(nn.Layer):
        """Transformer ops: embedding, layer_norm, attention with dynamic-batch reshapes,
        dropout, gelu, split / concat / stack, reductions, slicing, where."""

        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8)
            self.ln = nn.LayerNorm(8)
            self.q = nn.Linear(8, 8)
            self.drop = nn.Dropout(0.1)

        def forward(self, ids):
            h = self.ln(self.emb(ids))
            b = paddle.shape(ids)[0]
            q = self.q(h).reshape([b, -1, 2, 4]).transpose([0, 2, 1, 3])
            a = F.softmax(paddle.matmul(q, q, transpose_y=True) * 0.5, axis=-1)
            o = paddle.matmul(a, q).transpose([0, 2, 1, 3]).reshape([0, 0, 8])
            o = F.gelu(self.drop(o)) + h
            parts = paddle.split(o, 2, axis=-1)
            c = paddle.concat([parts[1], parts[0]], axis=-1)
            s = paddle.stack([c, o], axis=1).mean(axis=1)
            u = s.unsqueeze(1).squeeze(1)
            return (u[:, 1:3].sum(axis=-1), paddle.cast(paddle.argmax(u, axis=-1), "float32"),
                    F.sigmoid(u).max(axis=1), paddle.tanh(u).pow(2.0),
                    paddle.sqrt(paddle.abs(u) + 1), paddle.exp(-u),
                    paddle.where(u > 0, u, paddle.zeros_like(u)), u[:, ::2],
                    paddle.topk(u.flatten(1), k=3)[0], F.log_softmax(u, axis=-1),
                    paddle.cumsum(u, axis=1), paddle.tril(u), paddle.triu(u, 1),
                    u[0, :, 0] + paddle.arange(paddle.shape(ids)[1], dtype="float32"))

    class VisionOps(nn.Layer):
        """Convolutions (strided, depthwise, transposed), activations, pools, resizes."""

        def __init__(self):
            super().__init__()
            self.c = nn.Conv2D(3, 4, 3, stride=2, padding=1)
            self.dw = nn.Conv2D(4, 4, 3, padding=1, groups=4)
            self.ct = nn.Conv2DTranspose(4, 2, 2, stride=2)
            self.pr = nn.PReLU()
            self.gn = nn.GroupNorm(2, 4)
            self.inn = nn.InstanceNorm2D(4)

        def forward(self, x):
            y = F.hardswish(self.c(x))
            y = F.leaky_relu(F.relu6(self.dw(y)), 0.1)
            z = F.adaptive_avg_pool2d(F.avg_pool2d(y, 2), 1)
            up = F.interpolate(y, scale_factor=2, mode="nearest")
            bl = F.interpolate(y, size=[5, 5], mode="bilinear")
            mp, mask = F.max_pool2d(y, 2, return_mask=True)
            return (z, up, bl, self.pr(self.ct(y)), F.hardsigmoid(y), F.silu(y),
                    F.pad(y, [1, 1, 1, 1]), paddle.clip(y, -1, 1), y * y / (y + 2) - y,
                    self.gn(y), self.inn(y), mp, mask, F.elu(y),
                    paddle.tile(y[:, :1], [1, 2, 1, 1]),
                    paddle.gather(y, paddle.to_tensor([0, 2]), axis=1),
                    paddle.index_select(y, paddle.to_tensor([1, 3]), axis=1),
                    paddle.einsum("bchw,bchw->bc", y, y), y.reshape([paddle.shape(y)[0], -1]),
                    paddle.split(y, [1, 3], axis=1)[1], y.mean(), F.sigmoid(y) * 3.0 + 1.0)

    class MoreOps(nn.Layer):
        """The rest of the mechanical mappings: set_value, bmm, gathers, one_hot, expand_as,
        arange, logical and binary ops, reductions, cross entropy, grid sampling, bicubic resize,
        shapes from tensors, 1-D convolution and batch norm, grouped transposed convolution,
        adaptive max pooling, integer arithmetic."""

        def __init__(self):
            super().__init__()
            self.conv1d = nn.Conv1D(3, 2, 3)
            self.bn1d = nn.BatchNorm1D(3)
            self.dwt = nn.Conv2DTranspose(3, 3, 2, stride=2, groups=3)

        def forward(self, x, ids):
            a = x.reshape([-1, 4, 4])
            theta = paddle.to_tensor(np.array([[[1, 0, 0], [0, 1, 0]]] * 2, "float32"))
            logits = x.flatten(1)[:, :5]
            label = paddle.remainder(ids[:, :1], paddle.full_like(ids[:, :1], 5))
            y = x * 1.0
            y[:, 0] = 2.5  # set_value: a literal, then a tensor, into slices
            y[1:, 1:3] = x[1:, :2]
            return (y, paddle.bmm(a, a.transpose([0, 2, 1])),
                    paddle.gather_nd(x, paddle.to_tensor([[0, 1], [1, 2]])),
                    # a static target: paddle2onnx reads target_shape, -1 breaks its Expand
                    F.one_hot(ids, 20), paddle.expand_as(x[:1, :1], paddle.ones([1, 3, 4, 4])),
                    x + paddle.arange(4, dtype="float32"),
                    paddle.logical_and(x > 0, paddle.logical_not(x > 1)).astype("float32")
                    + paddle.logical_or(x < 0, x > 1).astype("float32"),
                    paddle.maximum(x, x * 0.5) + paddle.minimum(x, -x)
                    + paddle.floor_divide(x, paddle.full_like(x, 0.7)),
                    paddle.pow(paddle.abs(x) + 1, x), x.prod(axis=1), x.min(axis=0), x.max(),
                    x.sum(axis=[0, 1], keepdim=True),
                    F.softmax_with_cross_entropy(logits, label),
                    F.grid_sample(x, F.affine_grid(theta, [2, 3, 4, 4], align_corners=False),
                                  align_corners=False),
                    F.interpolate(x, size=[6, 6], mode="bicubic"),
                    paddle.zeros([paddle.shape(x)[0], 4]) + 1.5,
                    paddle.full(paddle.shape(x), 2.0) * x, x[0] + x[:, 1].sum(),
                    (ids + 1) * 2 // 3, self.conv1d(self.bn1d(a[:, :3])),
                    self.dwt(x), F.adaptive_max_pool2d(x, 1),
                    paddle.meshgrid(x[0, 0, 0], x[0, 0, :, 0])[1])

    class RandInt(nn.Layer):
        """randint (times zero: the output stays deterministic, the op is in the file)."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) + paddle.randint(0, 5, [1, 4]).astype("float32") * 0.0

    class Recurrent(nn.Layer):
        """nn.LSTM and a bidirectional two-layer nn.GRU over [batch, time, features]."""

        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 3)
            self.gru = nn.GRU(4, 3, num_layers=2, direction="bidirect")

        def forward(self, x):
            out, (h, c) = self.lstm(x)
            g, gh = self.gru(x)
            return out, h, c, g, gh

    class Unsupported(nn.Layer):
        """kron: an op tostatic has no pd op for."""

        def forward(self, x):
            return paddle.kron(x, x)

    class SortRoundNorm(nn.Layer):
        """Rounding, sign, log1p, sorting, flip, p-norms, pixel_shuffle, nonzero, and random
        ops (times zero: the outputs stay deterministic, the ops are in the file)."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x, img):
            x = self.fc(x)
            r = paddle.uniform([2, 3], min=-1.0, max=1.0) + paddle.randn([2, 3])
            return (paddle.floor(x * 3), paddle.ceil(x * 3), paddle.round(x * 3),
                    paddle.round(x * 30, decimals=-1), paddle.sign(x),
                    paddle.log1p(paddle.abs(x)), paddle.argsort(x, axis=1),
                    paddle.sort(x, axis=0, descending=True), paddle.flip(x, [1]),
                    paddle.linalg.norm(x, p=3, axis=1), paddle.linalg.norm(x),
                    paddle.linalg.norm(x, p=float("inf"), axis=-1, keepdim=True),
                    F.pixel_shuffle(img, 2), paddle.nonzero(x > 0.5),
                    (r * 0.0).sum() + x)

    class RuntimeOperand(nn.Layer):
        """topk whose k is computed when it runs (the batch size): tostatic's pd.topk takes k
        as an attribute only."""

        def forward(self, x):
            return paddle.topk(x, k=paddle.shape(x)[0])[0]

    class RuntimeBounds(nn.Layer):
        """clip bounds and slice starts / ends computed when it runs (legacy clip's Min / Max
        tensors, slice's StartsTensor / EndsTensor)."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            y = self.fc(x)
            n = paddle.shape(x)[0]  # the batch: known only when it runs
            return (paddle.clip(y, y.min(), 1.0), paddle.clip(y, max=y.mean()),
                    paddle.clip(y, y.mean() - 0.3, y.mean() + 0.3), y[:, n - 1:],
                    paddle.slice(y, [1], [0], [n + 1]), y[:, n:n + 2] * 2.0)

    def resnet18():
        from paddle.vision.models import resnet18 as make
        return make(num_classes=10)

    return {
        "mlp": (MLP, [InputSpec([None, 4], "float32", "x")]),
        "small_cnn": (SmallCNN, [InputSpec([None, 3, 8, 8], "float32", "x")]),
        "control_flow": (ControlFlow, [InputSpec([None, 4], "float32", "x")]),
        "nested_control_flow": (NestedControlFlow, [InputSpec([None, 4], "float32", "x"),
                                                    InputSpec([1], "int64", "n")]),
        "nlp_ops": (NLPOps, [InputSpec([None, 6], "int64", "ids")]),
        "vision_ops": (VisionOps, [InputSpec([None, 3, 8, 8], "float32", "x")]),
        "more_ops": (MoreOps, [InputSpec([None, 3, 4, 4], "float32", "x"),
                               InputSpec([None, 3], "int64", "ids")]),
        "recurrent": (Recurrent, [InputSpec([None, 5, 4], "float32", "x")]),
        "unsupported": (Unsupported, [InputSpec([None, 4], "float32", "x")]),
        "sort_round_norm": (SortRoundNorm, [InputSpec([None, 4], "float32", "x"),
                                            InputSpec([None, 8, 3, 3], "float32", "img")]),
        "runtime_operand": (RuntimeOperand, [InputSpec([None, 4], "float32", "x")]),
        "randint": (RandInt, [InputSpec([None, 4], "float32", "x")]),
        "runtime_bounds": (RuntimeBounds, [InputSpec([None, 4], "float32", "x")]),
        "resnet18": (resnet18, [InputSpec([None, 3, 32, 32], "float32", "x")]),
    }


# inputs per model: batch 2, values by the feed's dtype
def _feeds(name, specs):
    out = {}
    for s in specs:
        shape = [2 if d in (None, -1) else d for d in s.shape]
        if "int" in str(s.dtype):
            out[s.name] = RNG.integers(3 if s.name == "n" else 0, 20 if s.name != "n" else 6,
                                       size=shape).astype(np.int64)
        else:
            out[s.name] = RNG.standard_normal(shape).astype(np.float32)
    return out


def _randomize(layer):
    """Random parameters and batch-norm statistics (variance kept positive)."""
    import paddle

    for name, p in layer.state_dict().items():
        a = RNG.standard_normal(p.shape).astype(np.float32) * 0.5
        if name.endswith(("_variance", "variance")):
            a = np.abs(a) + 0.5
        p.set_value(paddle.to_tensor(a.astype(p.numpy().dtype)))


def _paddle_inference(prefix, feeds):
    from paddle import inference

    params = prefix + ".pdiparams"
    cfg = inference.Config(prefix + ".json", params if os.path.exists(params) else "")
    cfg.disable_gpu()
    cfg.disable_glog_info()
    cfg.disable_mkldnn()  # oneDNN cannot run nearest_interp's float scale list (3.3.1)
    pred = inference.create_predictor(cfg)
    for name in pred.get_input_names():
        h = pred.get_input_handle(name)
        h.reshape(feeds[name].shape)
        h.copy_from_cpu(feeds[name])
    pred.run()
    names = pred.get_output_names()
    return pred.get_input_names(), names, [pred.get_output_handle(n).copy_to_cpu()
                                           for n in names]


def main(out_dir, names):
    os.environ.pop("FLAGS_enable_pir_api", None)
    import paddle

    paddle.seed(0)
    os.makedirs(out_dir, exist_ok=True)
    index = {}
    for name, (make, specs) in _models().items():
        if names and name not in names:
            continue
        layer = make()
        if layer.state_dict():
            _randomize(layer)
        layer.eval()
        prefix = os.path.join(out_dir, name)
        static = paddle.jit.to_static(layer, input_spec=specs, full_graph=True)
        paddle.jit.save(static, prefix)
        assert os.path.exists(prefix + ".json"), f"{name}: Paddle wrote no .json"
        feeds = _feeds(name, specs)
        inputs, fetches, outs = _paddle_inference(prefix, feeds)
        np.savez(prefix + ".npz", **feeds, **{f"out{i}": o for i, o in enumerate(outs)})
        index[name] = {"feeds": inputs, "fetches": fetches}
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
