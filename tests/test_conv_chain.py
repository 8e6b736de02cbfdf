"""The expand 1x1 -> depthwise chain run band by band (runtime/conv_chain.py): against numpy
(x @ w1 with the fused op's eager epilogue, then ops/conv.py's NHWC depthwise kernel) and
against the two compiled kernels run one after the other, on random shapes (odd heights and
widths, stride 1 and 2, paddings, band heights of 1 row to the whole plane, batch 1 and 3,
1 and 2 threads, relu6 / residual epilogues); in a plan, fused and unfused give the same
outputs (rtol 1e-5), the profile shows the fused step, and a warm start rebuilds it."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.codegen import depthwise_nhwc, gemm, threads
from tostatic.ir.epilogue_rules import epilogue_expr
from tostatic.ops import conv
from tostatic.ops.fused import apply_epilogue
from tostatic.runtime import conv_chain
from tostatic.runtime.loaded_model import load_model
from test_choose_layout import Block, TinyMobileNet, _save

pytestmark = [pytest.mark.usefixtures("compiled_kernels"),
              pytest.mark.skipif(not gemm.available(), reason="the packed GEMM needs AVX-512")]
SEED = 20261207
STEPS1 = [("bias", "relu6"), ("bias",), ()]
STEPS2 = [("bias", "relu6"), ("bias", "add"), ("bias", "add", "relu6"), ()]
STEPS3 = [("bias",), ("bias", "add"), ("bias", "relu6"), ()]  # (None: no projection)


@pytest.fixture
def num_threads():
    before = threads.num_threads()
    yield threads.set_num_threads
    threads.set_num_threads(before)


def _case(rng, n):
    h, wd = int(rng.integers(1, 24)), int(rng.integers(1, 24))
    cin, cmid = int(rng.integers(1, 20)), int(rng.choice([3, 16, 21, 40]))
    k = int(rng.choice([3, 3, 5]))
    st = int(rng.integers(1, 3))
    pads = ((int(rng.integers(0, k)), int(rng.integers(0, k))),
            (int(rng.integers(0, k)), int(rng.integers(0, k))))
    steps1 = STEPS1[int(rng.integers(len(STEPS1)))]
    steps2 = STEPS2[int(rng.integers(len(STEPS2)))]
    x = rng.standard_normal((n, h, wd, cin)).astype(np.float32)
    w1 = (rng.standard_normal((cmid, cin, 1, 1)) / np.sqrt(cin)).astype(np.float32)
    w2 = rng.standard_normal((cmid, 1, k, k)).astype(np.float32)
    e1 = [rng.standard_normal(cmid).astype(np.float32) for s in steps1 if s == "bias"]
    return x, w1, steps1, e1, w2, (st, st), pads, steps2


def _numpy(x, w1, steps1, e1, w2, st, pads, steps2, e2, w3=None, steps3=(), e3=()):
    mid = x if w1 is None else apply_epilogue(x @ w1.reshape(w1.shape[0], -1).T, steps1, e1, 3)
    y = conv.conv2d_kernel(mid, w2, st, (*pads[0], *pads[1]), "EXPLICIT", (1, 1),
                           w2.shape[0], "NHWC")
    y = apply_epilogue(y, steps2, e2, 3)
    return y if w3 is None else apply_epilogue(y @ w3.reshape(w3.shape[0], -1).T, steps3, e3, 3)


def _gemm(w, x, steps, extras):
    cout, cin = w.shape[:2]
    expr, kinds = epilogue_expr(steps, "float32") if steps else (None, ())
    g = gemm.PackedGemm("matmul", np.ascontiguousarray(w.reshape(cout, cin).T), expr, kinds)
    out = np.empty((*x.shape[:3], cout), np.float32)
    g(x.reshape(-1, cin), out.reshape(-1, cout), [e.reshape(-1, cout) if e.ndim == 4 else e
                                                  for e in extras])
    return out


def _unfused(x, w1, steps1, e1, w2, st, pads, steps2, e2, w3=None, steps3=(), e3=()):
    """The compiled kernels one after the other (what the plan runs unfused)."""
    mid = x if w1 is None else _gemm(w1, x, steps1, e1)
    expr, kinds = epilogue_expr(steps2, "float32") if steps2 else (None, ())
    y = depthwise_nhwc.depthwise_conv2d_nhwc(mid, w2, st, pads, (1, 1), expr, kinds, e2)
    return y if w3 is None else _gemm(w3, y, steps3, e3)


@pytest.mark.parametrize("n, nthreads", [(1, 1), (3, 1), (1, 2), (3, 2)])
def test_the_chain_matches_numpy_and_the_unfused_kernels(n, nthreads, num_threads):
    num_threads(nthreads)
    rng = np.random.default_rng([SEED, n, nthreads])
    done = 0
    while done < 12:
        x, w1, steps1, e1, w2, st, pads, steps2 = _case(rng, n)
        project = done % 2 == 1  # (with the projection 1x1 every other case, and in every
        if done % 4 == 3:  # other such case no expand: the depthwise of x, projected)
            x = rng.standard_normal((*x.shape[:3], w2.shape[0])).astype(np.float32)
            w1, steps1, e1 = None, (), []
        try:
            shape = _numpy(x, w1, steps1, e1, w2, st, pads, (), []).shape
        except Exception:
            continue  # an empty output
        e2 = [rng.standard_normal(w2.shape[0] if s == "bias" else shape).astype(np.float32)
              for s in steps2 if s in ("bias", "add")]
        w3, steps3, e3 = None, (), []
        if project:
            cout = int(rng.integers(1, 40))
            w3 = (rng.standard_normal((cout, w2.shape[0], 1, 1)) / 4).astype(np.float32)
            steps3 = STEPS3[int(rng.integers(len(STEPS3)))]
            e3 = [rng.standard_normal(cout if s == "bias" else (*shape[:3], cout))
                  .astype(np.float32) for s in steps3 if s in ("bias", "add")]
        want = _numpy(x, w1, steps1, e1, w2, st, pads, steps2, e2, w3, steps3, e3)
        unfused = _unfused(x, w1, steps1, e1, w2, st, pads, steps2, e2, w3, steps3, e3)
        for band, parts in ((1, None), (2, 3), (3, nthreads), (8, 2), (64, None)):
            got = conv_chain.expand_depthwise(x, w1, steps1, e1, w2, st, pads, (1, 1), steps2,
                                              e2, band, parts, w3, steps3, e3)
            assert got.shape == want.shape
            tol = 1e-5 * max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=tol,
                                       err_msg=f"{x.shape} {w2.shape} {st} {pads} {band}")
            np.testing.assert_allclose(got, unfused, rtol=1e-5, atol=tol)
        done += 1


def test_bands_split_over_threads_move_their_overlap_rows_only_within_a_part(num_threads):
    """Two threads, three images of 15 rows at stride 1 in bands of 2: parts start inside
    images and cross into the next one; each part's first band computes all its rows."""
    num_threads(2)
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((3, 15, 13, 8)).astype(np.float32)
    w1 = rng.standard_normal((48, 8, 1, 1)).astype(np.float32)
    w2 = rng.standard_normal((48, 1, 3, 3)).astype(np.float32)
    b1, b2 = (rng.standard_normal(48).astype(np.float32) for _ in range(2))
    k = conv_chain.make(x.shape, w1, ("bias", "relu6"), w2, (1, 1), ((1, 1), (1, 1)), (1, 1),
                        ("bias", "relu6"), 2, 5)
    assert len(k.part_bounds) == 5 and any(
        k.bands[a][1] != 0 for a, _ in k.part_bounds[1:])  # a part starts inside an image
    assert any(k.bands[a][0] != k.bands[b - 1][0] for a, b in k.part_bounds)  # or crosses one
    got = conv_chain.expand_depthwise(x, w1, ("bias", "relu6"), [b1], w2, (1, 1),
                                      ((1, 1), (1, 1)), (1, 1), ("bias", "relu6"), [b2], 2, 5)
    want = _numpy(x, w1, ("bias", "relu6"), [b1], w2, (1, 1), ((1, 1), (1, 1)),
                  ("bias", "relu6"), [b2])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


# ------------------------------------------------------------------- in a plan


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("chain"), TinyMobileNet(), "tiny")


def _outputs(prefix, x, fuse, monkeypatch):
    monkeypatch.setenv(conv_chain.ENV, "1" if fuse else "0")
    model = load_model(prefix + ".pdmodel", prefix + ".pdiparams")
    outs = [model.run([x])[0] for _ in range(3)]  # generic, then bound runs
    profile = model.plan.enable_profile()
    model.run([x])
    return outs, profile.table()


@pytest.mark.parametrize("batch, nthreads, project", [(1, 1, True), (3, 2, True),
                                                      (1, 1, False), (3, 2, False)])
def test_fused_and_unfused_plans_give_the_same_outputs(tiny, batch, nthreads, project,
                                                        monkeypatch, num_threads):
    num_threads(nthreads)
    monkeypatch.setattr(conv_chain, "PROJECT", project)
    kind = "expand-dw-project" if project else "expand-depthwise"
    x = np.random.default_rng(batch).standard_normal((batch, 3, 18, 18)).astype(np.float32)
    (want, *_), table_off = _outputs(tiny, x, False, monkeypatch)
    got, table_on = _outputs(tiny, x, True, monkeypatch)
    for g in got:
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # the three blocks' expand + depthwise + project: one step each
    assert kind in table_on and "depthwise-nhwc" not in table_on, table_on
    assert "expand-d" not in table_off and "depthwise-nhwc" in table_off


class DepthwiseFirst(tostatic.nn.Layer):
    """MobileNetV2's first block (no expand: depthwise, then the projection), then one with."""

    def __init__(self):
        super().__init__()
        nn = tostatic.nn
        self.body = nn.Sequential(
            nn.Conv2D(3, 8, 3, stride=2, padding=1), nn.BatchNorm2D(8), nn.ReLU6(),
            nn.Conv2D(8, 8, 3, padding=1, groups=8), nn.BatchNorm2D(8), nn.ReLU6(),
            nn.Conv2D(8, 16, 1), nn.BatchNorm2D(16), Block(16, 16, 1))

    def forward(self, x):
        return self.body(x)


def test_a_depthwise_and_its_projection_without_an_expand_are_one_step(tmp_path, monkeypatch,
                                                                       num_threads):
    prefix = _save(tmp_path, DepthwiseFirst(), "dwfirst")
    x = np.random.default_rng(5).standard_normal((2, 3, 18, 18)).astype(np.float32)
    for nthreads in (1, 2):
        num_threads(nthreads)
        (want, *_), table_off = _outputs(prefix, x, False, monkeypatch)
        got, table_on = _outputs(prefix, x, True, monkeypatch)
        for g in got:
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
        kinds_on, kinds_off = ({line.split()[1] for line in t.splitlines()[1:-1]}
                               for t in (table_on, table_off))
        assert {"dw-project", "expand-dw-project"} <= kinds_on, table_on
        assert "depthwise-nhwc" not in kinds_on and "dw-project" not in kinds_off


def test_a_warm_start_rebuilds_the_fused_step(tiny, tmp_path, monkeypatch):
    import shutil

    from tostatic.runtime.warm_start import WarmModel
    monkeypatch.setenv("TOSTATIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TOSTATIC_PLAN_CACHE", raising=False)
    monkeypatch.delenv(conv_chain.ENV, raising=False)
    for suffix in (".pdmodel", ".pdiparams"):
        shutil.copy(tiny + suffix, str(tmp_path / "m") + suffix)
    prefix = str(tmp_path / "m")
    x = np.random.default_rng(3).standard_normal((1, 3, 18, 18)).astype(np.float32)

    def predictor():
        config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
        return tostatic.inference.create_predictor(config)
    cold = predictor()
    want = cold.run([x])
    warm = predictor()
    assert isinstance(warm._model, WarmModel)
    got = warm.run([x])
    assert warm._model._full is None  # the record's plan ran
    bound = next(iter(warm._model.plan.bound.values()))
    assert ("pd.fused_conv2d", "expand-dw-project") in bound.labels
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
