"""The choose-layout pass (NHWC for depthwise chains) and its kernels: on small exported models
the transposes it adds cancel inside a chain, outputs equal the NCHW program's (rtol 1e-5)
with the compiled kernels and with TOSTATIC_KERNELS=numpy, models without depthwise layers
are left alone, the dump shows the pass; the NHWC depthwise kernel against the numpy
reference of ops/conv.py (bit for bit without an epilogue) on random shapes, strides,
paddings, dilations and epilogues."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.codegen import depthwise_nhwc, direct_conv_nhwc
from tostatic.codegen.epilogue import epilogue_expr
from tostatic.ops import conv
from tostatic.ops.fused import apply_epilogue
from tostatic.passes import pipeline
from tostatic.runtime.loaded_model import load_model
from tostatic.static import InputSpec
from test_inference_passes import randomised

nn = tostatic.nn
SEED = 20261207


class Block(nn.Layer):
    """MobileNetV2's inverted residual: 1x1 expand, depthwise 3x3, 1x1 project (+ x)."""

    def __init__(self, c, cout, stride, expand=4):
        super().__init__()
        e = c * expand
        self.residual = stride == 1 and c == cout
        self.body = nn.Sequential(
            nn.Conv2D(c, e, 1, bias_attr=False), nn.BatchNorm2D(e), nn.ReLU6(),
            nn.Conv2D(e, e, 3, stride=stride, padding=1, groups=e, bias_attr=False),
            nn.BatchNorm2D(e), nn.ReLU6(),
            nn.Conv2D(e, cout, 1, bias_attr=False), nn.BatchNorm2D(cout))

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class TinyMobileNet(nn.Layer):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2D(3, 8, 3, stride=2, padding=1), nn.BatchNorm2D(8),
                                  nn.ReLU6())
        self.block = Block(8, 8, 1)
        self.full = nn.Sequential(nn.Conv2D(8, 12, 3, padding=1), nn.BatchNorm2D(12), nn.ReLU())
        self.blocks = nn.Sequential(Block(12, 12, 2), Block(12, 12, 1, 3))
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        y = self.blocks(self.full(self.block(self.stem(x))))
        y = nn.functional.adaptive_avg_pool2d(y, 1)
        return self.head(tostatic.flatten(y, 1))


class TinyResNet(nn.Layer):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2D(3, 8, 3, padding=1), nn.BatchNorm2D(8)
        self.c2, self.b2 = nn.Conv2D(8, 8, 1), nn.BatchNorm2D(8)

    def forward(self, x):
        y = nn.functional.relu(self.b1(self.c1(x)))
        return nn.functional.relu(self.b2(self.c2(y)) + y)


def _save(tmp_path, model, name):
    prefix = str(tmp_path / name)
    tostatic.jit.save(randomised(model), prefix,
                      input_spec=[InputSpec([None, 3, 18, 18], "float32", "x")])
    return prefix


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("layout"), TinyMobileNet(), "tiny")


def _model(prefix, layout, monkeypatch):
    base = pipeline.PIPELINES["inference"]
    if not layout:
        monkeypatch.setitem(pipeline.PIPELINES, "inference",
                            base.replace("choose-layout", "choose-layout{enable=false}"))
    model = load_model(prefix + ".pdmodel", prefix + ".pdiparams")
    monkeypatch.setitem(pipeline.PIPELINES, "inference", base)
    return model


def _ops(model):
    return [op for op in model.plan.body.ops]


def _run(model, x):
    return [model.run([x])[0] for _ in range(3)]  # generic, then bound runs


def test_a_depthwise_chain_runs_in_nhwc_with_one_transpose_at_each_end(tiny, monkeypatch):
    model = _model(tiny, True, monkeypatch)
    ops = _ops(model)
    convs = [op for op in ops if op.name == "pd.fused_conv2d"]
    layouts = [op.attr_values()["data_format"] for op in convs]
    # the stem and a block in NHWC, the full 3x3 convolution in NCHW, then two blocks
    assert layouts == ["NHWC"] * 4 + ["NCHW"] + ["NHWC"] * 6, layouts
    perms = [tuple(op.attr_values()["perm"]) for op in ops if op.name == "pd.transpose"]
    # of the input, around the full convolution, after the pooling
    assert perms == [(0, 2, 3, 1), (0, 3, 1, 2), (0, 2, 3, 1), (0, 3, 1, 2)], perms
    pool = next(op for op in ops if op.name == "pd.pool2d")
    assert pool.attr_values()["data_format"] == "NHWC"


@pytest.mark.parametrize("batch", [1, 3])
def test_outputs_equal_the_nchw_programs(tiny, monkeypatch, batch):
    x = np.random.default_rng(batch).standard_normal((batch, 3, 18, 18)).astype(np.float32)
    want = _run(_model(tiny, False, monkeypatch), x)[0]
    for got in _run(_model(tiny, True, monkeypatch), x):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_numpy_kernels_give_the_same_outputs(tiny, monkeypatch):
    x = np.random.default_rng(7).standard_normal((2, 3, 18, 18)).astype(np.float32)
    want = _run(_model(tiny, False, monkeypatch), x)[0]
    monkeypatch.setenv("TOSTATIC_KERNELS", "numpy")
    model = _model(tiny, True, monkeypatch)
    kinds = model.plan.enable_profile()
    for got in _run(model, x):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    table = kinds.table()
    assert "depthwise-nhwc" not in table and "gemm-1x1-nhwc" not in table  # numpy's ran


def test_the_nhwc_kernels_run(tiny, monkeypatch, compiled_kernels):
    monkeypatch.setenv("TOSTATIC_FUSE_CHAINS", "0")  # (fused: tests/test_conv_chain.py)
    model = _model(tiny, True, monkeypatch)
    x = np.ones((1, 3, 18, 18), np.float32)
    model.run([x])
    profile = model.plan.enable_profile()
    model.run([x])
    table = profile.table()
    for kind in ("direct-conv-nhwc", "gemm-1x1-nhwc", "depthwise-nhwc", "pixel-reduce-nhwc"):
        assert kind in table, table


def test_models_without_depthwise_layers_stay_nchw(tmp_path, monkeypatch):
    model = _model(_save(tmp_path, TinyResNet(), "res"), True, monkeypatch)
    ops = _ops(model)
    assert not any(op.name == "pd.transpose" for op in ops)
    assert all(op.attr_values()["data_format"] == "NCHW" for op in ops
               if op.name == "pd.fused_conv2d")


def test_the_dump_shows_the_pass(tiny, monkeypatch, capfd):
    monkeypatch.setenv("TOSTATIC_DUMP", "after=choose-layout")
    load_model(tiny + ".pdmodel", tiny + ".pdiparams")
    text = "".join(capfd.readouterr())
    assert "After choose-layout" in text and 'data_format = "NHWC"' in text


def test_the_saved_program_keeps_paddles_layout(tiny, tmp_path):
    """The pass runs on the plan's copy only: a loaded model saved again is still NCHW."""
    layer = tostatic.jit.load(tiny)
    x = tostatic.to_tensor(np.ones((1, 3, 18, 18), np.float32))
    y = layer(x).numpy()
    out = str(tmp_path / "resaved")
    tostatic.jit.save(layer, out)
    assert b"NHWC" not in open(out + ".pdmodel", "rb").read()
    np.testing.assert_allclose(tostatic.jit.load(out)(x).numpy(), y, rtol=1e-6)


# ------------------------------------------------------------------- the NHWC depthwise kernel

def random_case(rng):
    c = int(rng.choice([2, 3, 16, 21, 32, 40]))  # (one channel: the reference runs a GEMM)
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pads = [int(rng.integers(0, 4)) for _ in range(4)]
    h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    n = int(rng.integers(1, 3))
    dtype = str(rng.choice(["float32", "float64"]))
    return c, (kh, kw), strides, dil, pads, (n, h, w, c), dtype


def _reference(x, w, st, dil, pads, c):
    return conv.conv2d_kernel(x, w, st, tuple(pads), "EXPLICIT", dil, c, "NHWC")


def test_nhwc_depthwise_agrees_bit_for_bit_with_the_numpy_kernel(compiled_kernels):
    """Taps summed in the numpy kernel's order, padding read as zeros."""
    rng = np.random.default_rng(SEED)
    checked = 0
    while checked < 24:
        c, k, st, dil, pads, shape, dtype = random_case(rng)
        x = rng.standard_normal(shape).astype(dtype)
        w = rng.standard_normal((c, 1, *k)).astype(dtype)
        try:
            want = _reference(x, w, st, dil, pads, c)
        except Exception:
            continue  # an empty output
        got = depthwise_nhwc.depthwise_conv2d_nhwc(
            x, w, st, ((pads[0], pads[1]), (pads[2], pads[3])), dil)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want), (k, st, dil, pads, shape)
        checked += 1



def test_nhwc_depthwise_every_inner_column_count_matches_the_numpy_kernel(compiled_kernels):
    """Rows of 1-21 columns, stride 1 and 2: every mix of the unrolled steps (8, 4) and the
    one-column rest over the inner columns, and the padded edges, bit for bit."""
    rng = np.random.default_rng([SEED, 8])
    for wd in range(1, 22):
        for st in (1, 2):
            c = int(rng.choice([5, 16, 37]))
            x = rng.standard_normal((1, 3, wd, c)).astype(np.float32)
            w = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
            want = _reference(x, w, (st, st), (1, 1), [1, 1, 1, 1], c)
            got = depthwise_nhwc.depthwise_conv2d_nhwc(x, w, (st, st), ((1, 1), (1, 1)),
                                                       (1, 1))
            assert np.array_equal(got, want), (wd, st, c)

EPILOGUES = [("bias", "relu6"), ("bias", "add", "relu"), ("bias", "hardswish"),
             ("swish", "bias")]  # (swish: a lane-by-lane epilogue)


@pytest.mark.parametrize("steps", EPILOGUES, ids="-".join)
def test_nhwc_depthwise_epilogues_match_the_fused_ops_eager(steps, compiled_kernels):
    rng = np.random.default_rng([SEED, len(steps), len(steps[-1])])
    done = 0
    while done < 3:
        c, k, st, dil, pads, shape, dtype = random_case(rng)
        x = rng.standard_normal(shape).astype(dtype)
        w = rng.standard_normal((c, 1, *k)).astype(dtype)
        try:
            y = _reference(x, w, st, dil, pads, c)
        except Exception:
            continue
        extras = [rng.standard_normal(c if s == "bias" else y.shape).astype(dtype)
                  for s in steps if s in ("bias", "add")]
        want = apply_epilogue(y, steps, extras, 3)
        kernel = depthwise_nhwc.DepthwiseNHWC(shape, w, st, ((pads[0], pads[1]),
                                                             (pads[2], pads[3])), dil,
                                              *epilogue_expr(steps, dtype))
        got = np.empty(kernel.shape, dtype)
        kernel.run(x, extras, got)
        kernel.run(x, extras, got)  # the prepared call again
        # a transposed view of an NCHW tensor (what a chain's first layer reads)
        kernel.run(np.ascontiguousarray(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1),
                   extras, got2 := np.empty_like(got))
        tol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        np.testing.assert_array_equal(got2, got)
        done += 1


@pytest.mark.parametrize("n_threads", [1, 2])
def test_nhwc_depthwise_split_by_rows_or_channel_blocks_matches_the_reference(
        n_threads, compiled_kernels, monkeypatch):
    """Few output rows (fewer than the parts a split makes): bands of channel blocks, the
    last one masked, with a bias and a residual read at each part's channels; many rows:
    bands of rows. Both agree with the numpy kernel and its epilogue."""
    from tostatic.codegen import threads
    monkeypatch.setattr(depthwise_nhwc, "MIN_PART_ELEMENTS", 1)
    monkeypatch.setitem(threads._STATE, "n", n_threads)
    rng = np.random.default_rng([SEED, 77, n_threads])
    steps = ("bias", "add", "relu6")
    by_channels = 0
    for case in range(8):
        c = int(rng.choice([17, 40, 64, 75, 130]))
        h = int(rng.integers(1, 5)) if case % 2 == 0 else int(rng.integers(12, 20))
        wd, dtype = int(rng.integers(1, 9)), str(rng.choice(["float32", "float64"]))
        k, st = int(rng.choice([1, 3, 5])), int(rng.integers(1, 3))
        x = rng.standard_normal((1, h, wd, c)).astype(dtype)
        w = rng.standard_normal((c, 1, k, k)).astype(dtype)
        pads = [k // 2] * 4
        y = _reference(x, w, (st, st), (1, 1), pads, c)
        extras = [rng.standard_normal(c).astype(dtype), rng.standard_normal(y.shape).astype(dtype)]
        want = apply_epilogue(y, steps, extras, 3)
        kernel = depthwise_nhwc.DepthwiseNHWC(x.shape, w, (st, st), ((k // 2,) * 2,) * 2,
                                              (1, 1), *epilogue_expr(steps, dtype))
        spans = kernel._spans()
        assert len(spans) == 1 if n_threads == 1 else len(spans) > 1
        channel_split = [s[11:] for s in spans] != [[0, c]] * len(spans)
        if channel_split:  # every row, contiguous channel bands from 0 to C
            by_channels += 1
            assert all(s[9:11] == [0, y.shape[1]] for s in spans)
            assert [s[11] for s in spans[1:]] == [s[12] for s in spans[:-1]]
            assert spans[0][11] == 0 and spans[-1][12] == c
        got = np.empty(kernel.shape, dtype)
        kernel.run(x, extras, got)
        tol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert (by_channels > 0) == (n_threads > 1)


# ------------------------------------------------------------------- the direct NHWC stem kernel

@pytest.mark.parametrize("steps", [(), ("bias", "relu6"), ("bias", "add", "hardswish")],
                         ids=lambda s: "-".join(s) or "none")
def test_direct_nhwc_conv_matches_the_numpy_kernel(steps, compiled_kernels):
    """Read in place from the transposed view of an NCHW image (or a contiguous NHWC one);
    few input channels, output channels that fill 1-4 vectors and a masked tail."""
    rng = np.random.default_rng([SEED, len(steps)])
    done = 0
    while done < 4:
        c, cout = int(rng.integers(1, 5)), int(rng.choice([1, 7, 16, 24, 32, 64]))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        st = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pads = [int(rng.integers(0, 3)) for _ in range(4)]
        n, h, w_ = int(rng.integers(1, 3)), int(rng.integers(1, 20)), int(rng.integers(1, 20))
        nchw = rng.standard_normal((n, c, h, w_)).astype(np.float32)
        x = nchw.transpose(0, 2, 3, 1) if done % 2 else np.ascontiguousarray(
            nchw.transpose(0, 2, 3, 1))
        w = rng.standard_normal((cout, c, *k)).astype(np.float32)
        try:
            y = conv.conv2d_kernel(np.ascontiguousarray(x), w, st, tuple(pads), "EXPLICIT",
                                   dil, 1, "NHWC")
        except Exception:
            continue  # an empty output
        extras = [rng.standard_normal(cout if s == "bias" else y.shape).astype(np.float32)
                  for s in steps if s in ("bias", "add")]
        want = apply_epilogue(y, steps, extras, 3)
        expr, kinds = epilogue_expr(steps, "float32") if steps else (None, ())
        kernel = direct_conv_nhwc.DirectConvNHWC(
            x.shape, w, st, ((pads[0], pads[1]), (pads[2], pads[3])), dil, expr, kinds)
        got = np.empty(kernel.shape, np.float32)
        kernel.run(x, extras, got)
        kernel.run(x, extras, got)  # the prepared call again
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
        done += 1


def test_a_warm_start_builds_no_ir_for_the_nhwc_kernels(tmp_path):
    """The direct stem, the NHWC depthwise and the 1x1s' packed GEMM go through the recipe
    index: a second start builds no kernel IR, and gives the first start's outputs."""
    from test_kernel_recipes import assert_warm_start_builds_no_ir

    prefix = str(tmp_path / "tiny")
    tostatic.jit.save(randomised(TinyMobileNet()), prefix,
                      input_spec=[InputSpec([None, 3, 40, 40], "float32", "x")])
    assert_warm_start_builds_no_ir(prefix, tmp_path)


class Mixed(nn.Layer):
    """A 1x1 between two full 3x3s (no depthwise layer in its chain), then a depthwise pair."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2D(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2D(8, 8, 1), nn.ReLU(),
            nn.Conv2D(8, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2D(8, 8, 3, padding=1, groups=8), nn.ReLU6(), nn.Conv2D(8, 4, 1))

    def forward(self, x):
        return self.body(x)


def test_only_chains_holding_a_depthwise_layer_change_layout(tmp_path, monkeypatch):
    prefix = _save(tmp_path, Mixed(), "mixed")
    model = _model(prefix, True, monkeypatch)
    layouts = [op.attr_values()["data_format"] for op in _ops(model)
               if op.name == "pd.fused_conv2d"]
    assert layouts == ["NCHW", "NCHW", "NCHW", "NHWC", "NHWC"], layouts
    x = np.random.default_rng(3).standard_normal((2, 3, 18, 18)).astype(np.float32)
    want = _run(_model(prefix, False, monkeypatch), x)[0]
    np.testing.assert_allclose(_run(model, x)[-1], want, rtol=1e-5,
                               atol=1e-5 * np.abs(want).max())
