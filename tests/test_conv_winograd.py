"""Winograd convolution (runtime/conv_winograd.py, codegen/winograd.py) against the fused
conv op's numpy `eager` (im2col, float32) and a float64 run of it: random shapes (odd sizes,
padding 0 / 1 / asymmetric), epilogues with bias, residual and activations, batch 1 and 3,
image groups, threads; the transform matrices against numpy's correlation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_runtime_kernels import bound_plan
from tostatic.codegen import threads as codegen_threads
from tostatic.codegen import winograd, winograd_rows
from tostatic.ops.fused import FusedConv2D
from tostatic.runtime import conv_winograd, threads, winograd_split

pytestmark = pytest.mark.usefixtures("compiled_kernels")


def run_case(x, w, pads, epilogue, rng, bias_shape=None):
    attrs = dict(strides=(1, 1), paddings=pads, dilations=(1, 1), groups=1, epilogue=epilogue)
    plain = FusedConv2D.normalize_attrs({k: v for k, v in attrs.items() if k != "epilogue"})
    shape = FusedConv2D.run_eager([x, w], {**plain, "epilogue": ()})[0].shape
    extras, mask = [], []
    for step in epilogue:
        if step == "bias":
            extras.append(rng.standard_normal(bias_shape or (w.shape[0],)).astype(x.dtype))
            mask.append(True)
        elif step == "add":
            extras.append(rng.standard_normal(shape).astype(x.dtype))
            mask.append(False)
    full = FusedConv2D.normalize_attrs(attrs)
    want = FusedConv2D.run_eager([x, w, *extras], full)[0]
    exact = FusedConv2D.run_eager([a.astype(np.float64) for a in (x, w, *extras)], full)[0]
    first, second, bound = bound_plan(FusedConv2D, [x, w, *extras], [False, True, *mask], attrs)
    return want, exact, second, bound.labels[0][1]


def assert_close(got, want):
    """The issue's bar: rtol 1e-4 plus 1e-5 of the largest magnitude."""
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))


@pytest.fixture
def any_size(monkeypatch):
    """Winograd on every size (the dispatch's tile thresholds off)."""
    monkeypatch.setattr(conv_winograd, "MIN_TILES", {4: 1, 2: 1})
    monkeypatch.setattr(conv_winograd, "MIN_CHANNELS", 1)


@settings(max_examples=40, deadline=None)
@given(n=st.sampled_from([1, 3]), c=st.integers(1, 9), cout=st.integers(1, 9),
       h=st.integers(3, 13), w=st.integers(3, 13),
       pads=st.sampled_from([(0, 0), (1, 1), (1, 0), (0, 1, 1, 0), (2, 1, 0, 1)]),
       epilogue=st.lists(st.sampled_from(["bias", "add", "relu", "relu6", "sigmoid", "gelu",
                                          "hardswish"]), max_size=3).map(tuple),
       m=st.sampled_from([2, 4]), seed=st.integers(0, 2**16))
def test_winograd_matches_the_numpy_convolution(n, c, cout, h, w, pads, epilogue, m, seed):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_winograd, "MIN_TILES", {4: 1, 2: 1})
        mp.setattr(conv_winograd, "MIN_CHANNELS", 1)
        mp.setattr(conv_winograd, "tile_size", lambda *_: m)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = rng.standard_normal((cout, c, 3, 3)).astype(np.float32)
        pt = pads[0] + (pads[1] if len(pads) == 4 else pads[0])
        pl = pads[-1] + (pads[-2] if len(pads) == 4 else pads[-1])
        if h + pt < 3 or w + pl < 3:
            return
        want, exact, got, kind = run_case(x, wt, pads, epilogue, rng,
                                          bias_shape=(1, cout, 1, 1) if seed % 2 else None)
    assert kind == f"winograd-f{m}"
    assert_close(got, want)


@pytest.mark.parametrize("n,c,size,m", [(1, 64, 56, 4), (1, 128, 28, 4), (3, 96, 15, 4),
                                         (1, 256, 14, 4), (1, 512, 7, 2), (3, 64, 9, 4),
                                         (1, 64, 5, None), (2, 256, 14, 4), (1, 40, 17, 4), (1, 512, 14, 2)])
def test_resnet_scale_layers_pick_their_tile_and_stay_accurate(n, c, size, m):
    """He-initialised filters over ReLU outputs, as in a ResNet; 5x5 (9 tiles) stays im2col,
    7x7 at batch 1 F(2x2) (tile_size); the error against float64 within 6e-6 of the largest
    output for F(4x4) (1-3e-6 measured up to 256 channels), 1e-6 for F(2x2); 512 channels
    take F(2x2) (conv_winograd.F4_MAX_CHANNELS)."""
    rng = np.random.default_rng(size)
    x = np.maximum(rng.standard_normal((n, c, size, size)), 0).astype(np.float32)
    w = (rng.standard_normal((c, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(np.float32)
    want, exact, got, kind = run_case(x, w, (1, 1), ("bias", "add", "relu"), rng)
    assert kind == (f"winograd-f{m}" if m else "im2col-gen")
    assert_close(got, want)
    err = np.abs(got - exact).max() / np.abs(exact).max()
    assert err < (6e-6 if m == 4 else 1e-6), err


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("h,w,pads", [(9, 30, (1, 1)), (21, 47, (2, 1, 0, 1)),
                                      (6, 70, (1, 1)), (17, 33, (0, 1, 1, 0)), (5, 37, (0, 0))])
def test_wide_rows_read_inside_and_at_the_padding(any_size, monkeypatch, m, h, w, pads):
    """Rows wide enough for whole 16-float loads inside the plane besides the masked ones at
    its border and the skipped ones past it (the input transform reads the unpadded planes;
    30 wide with 1 column of left padding, 47 with none: a vector ends on the row's last
    column), asymmetric padding, batch 2, 13 input and 24 output channels."""
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: m)
    rng = np.random.default_rng(h * w)
    x = rng.standard_normal((2, 13, h, w)).astype(np.float32)
    wt = rng.standard_normal((24, 13, 3, 3)).astype(np.float32)
    want, exact, got, kind = run_case(x, wt, pads, ("bias", "add", "relu"), rng)
    assert kind == f"winograd-f{m}"
    assert_close(got, want)


@pytest.mark.parametrize("n,c,cout,size,m", [
    (1, 64, 64, 56, 4), (1, 128, 128, 28, 4), (1, 256, 256, 14, 4), (1, 512, 512, 7, 2),
    (8, 256, 256, 7, 4), (8, 512, 512, 7, 2), (8, 64, 64, 56, 4), (1, 64, 64, 4, None),
    (4, 64, 64, 4, 2), (1, 8, 8, 8, 2)])
def test_tile_size_rule(n, c, cout, size, m):
    """Fewer GEMM multiplies with the tiles padded to 16-tile vectors (36 x 16 at 14x14
    against 16 x 64; 7x7 at batch 1: 36 x 16 against 16 x 16), F(2x2) above
    F4_MAX_CHANNELS, neither below 16 tiles (4x4 at batch 4: F(4x4) has only 4)."""
    assert conv_winograd.tile_size(n, c, cout, size, size) == m


# each group's two phases split over the threads (runtime/winograd_split.py): groups of one
# image (5 of them, or one), 5 in groups of 2, 2, 1 (F(4x4): 16848 bytes an image), or 3 in
# one (the output transform called per image of a channel part); 7 output channels: BLAS's
# GEMMs, split 3 / 4; 16: codegen's tile GEMM, a register block of 8 a thread
@pytest.mark.parametrize("batch,group_bytes,cout,m", [
    (5, 1, 7, 4), (1, 1, 7, 4), (5, 2 * 16848, 7, 4), (3, 4 << 20, 7, 4), (3, 4 << 20, 16, 2),
    (1, 1, 16, 2), (3, 4 << 20, 16, 4), (5, 1, 16, 4)])
def test_image_groups_and_threads_give_the_same_results(any_size, monkeypatch, batch,
                                                        group_bytes, cout, m):
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: m)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((batch, 6, 11, 9)).astype(np.float32)
    w = rng.standard_normal((cout, 6, 3, 3)).astype(np.float32)
    want, _, whole, _ = run_case(x, w, (1, 1), ("bias", "add", "relu"), np.random.default_rng(0))
    monkeypatch.setattr(conv_winograd, "GROUP_BYTES", group_bytes)  # 1: an image per group
    _split_over_two_threads(monkeypatch)
    monkeypatch.setattr(conv_winograd, "GROUP_SPLIT", False)  # (its own test below)
    parts = []
    split_run = conv_winograd._split_run
    monkeypatch.setattr(conv_winograd, "_split_run", lambda **kw: (
        parts.append(winograd_split.channel_parts(cout, kw["block"] or 1, kw["workers"])),
        split_run(**kw))[1])
    _, _, split, kind = run_case(x, w, (1, 1), ("bias", "add", "relu"), np.random.default_rng(0))
    assert kind == f"winograd-f{m}"
    assert parts == [[(0, 3), (3, 7)] if cout == 7 else [(0, 8), (8, 16)]]
    np.testing.assert_array_equal(split, whole)
    assert_close(whole, want)


# batch 1 on two threads, groups of at most SPLIT_PAD_TILES tiles: V's positions and each
# channel part's of M POSITION_PAD floats apart (codegen's channel-vector tile GEMM at 16 tiles
# in parts of 32 channels, and winograd_gemm's at 30); 7 x 7 planes at F(4x4) (4 tiles) with
# 33 input channels; none past it (75 tiles: 3 images)
@pytest.mark.parametrize("batch,c,cout,size,m,padded", [
    (1, 40, 64, 14, 4, True), (1, 33, 64, 7, 4, True), (1, 6, 16, 10, 2, True),
    (3, 6, 16, 10, 2, False)])
def test_split_phases_with_padded_positions_give_one_threads_results(
        any_size, monkeypatch, batch, c, cout, size, m, padded):
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: m)
    monkeypatch.setattr(conv_winograd, "GROUP_SPLIT", False)  # (the phases split at batch 3)
    monkeypatch.setattr(conv_winograd, "MAX_PADDING", 100.0)  # (the tile GEMMs: machine code)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((batch, c, size, size)).astype(np.float32)
    w = rng.standard_normal((cout, c, 3, 3)).astype(np.float32)
    epilogue = ("bias", "add", "relu")
    want, _, whole, _ = run_case(x, w, (1, 1), epilogue, np.random.default_rng(0))
    _split_over_two_threads(monkeypatch)
    seen = []
    split_run = conv_winograd._split_run
    monkeypatch.setattr(conv_winograd, "_split_run",
                        lambda **kw: (seen.append((kw["pad"], kw["block"])), split_run(**kw))[1])
    _, _, split, kind = run_case(x, w, (1, 1), epilogue, np.random.default_rng(0))
    assert kind == f"winograd-f{m}"
    assert seen and seen[0][0] == (conv_winograd.POSITION_PAD if padded else 0)
    assert (seen[0][1] == 32) == (cout == 64)  # (the channel-vector GEMM's blocks)
    np.testing.assert_array_equal(split, whole)
    monkeypatch.setattr(conv_winograd, "SPLIT_PAD_TILES", 0)  # unpadded: the same floats
    _, _, unpadded, _ = run_case(x, w, (1, 1), epilogue, np.random.default_rng(0))
    assert seen[-1][0] == 0
    np.testing.assert_array_equal(unpadded, whole)
    assert_close(whole, want)


def _bound_residual_conv(rng, images: int, channels: int):
    """A 3x3 convolution of 6 channels on 11x9 planes with a residual add and relu, bound:
    its arrays, attributes and plan (a Winograd one)."""
    x = rng.standard_normal((images, 6, 11, 9)).astype(np.float32)
    w = rng.standard_normal((channels, 6, 3, 3)).astype(np.float32)
    res = rng.standard_normal((images, channels, 11, 9)).astype(np.float32)
    attrs = dict(strides=(1, 1), paddings=(1, 1), dilations=(1, 1), groups=1,
                 epilogue=("add", "relu"))
    _, _, bound = bound_plan(FusedConv2D, [x, w, res], [False, True, False], attrs)
    assert bound.labels[0][1].startswith("winograd")
    return x, w, res, FusedConv2D.normalize_attrs(attrs), bound


def _split_over_two_threads(monkeypatch) -> None:
    """Two threads (ours and the pool's parallel_calls), every layer split however small."""
    monkeypatch.setattr(threads, "current", lambda: 2)
    monkeypatch.setitem(codegen_threads._STATE, "n", 2)
    monkeypatch.setattr(conv_winograd, "MIN_SPLIT_FLOPS", 0)


def test_the_split_kept_for_the_same_arrays_reads_them_afresh(any_size, monkeypatch):
    """Two threads, one image: the call over the same arrays twice is kept (their
    addresses); it reads what they hold at each run, and other arrays get calls of their
    own. Against the eager convolution every time."""
    _split_over_two_threads(monkeypatch)
    monkeypatch.setattr(conv_winograd, "MAX_PADDING", 100.0)  # (the tile GEMM: machine code)
    rng = np.random.default_rng(9)
    x, w, res, full, bound = _bound_residual_conv(rng, images=1, channels=16)
    for step in range(5):
        if step == 3:
            x = x.copy()  # another array: a call of its own
        got = bound.run([x, res])[0]
        assert_close(got, FusedConv2D.run_eager([x, w, res], full)[0])
        x[...] = rng.standard_normal(x.shape)  # (the same array, new values)
        res *= -1


@pytest.mark.parametrize("group_bytes", [4 << 20, 1])
def test_one_thread_calls_kept_for_the_same_arrays_read_them_afresh(any_size, monkeypatch,
                                                                    group_bytes):
    """One thread (conv_winograd._one_thread): the calls over the same arrays twice in a row
    are kept; each run reads what the arrays hold then; other arrays (a copy, a strided
    view) get calls of their own. Two images, one group or one each."""
    monkeypatch.setattr(conv_winograd, "GROUP_BYTES", group_bytes)
    rng = np.random.default_rng(11)
    x, w, res, full, bound = _bound_residual_conv(rng, images=2, channels=32)
    for step in range(6):
        if step == 3:
            x = x.copy()  # another array: a call of its own
        feed = x if step != 4 else np.asfortranarray(x)  # (not contiguous: a copy read)
        got = bound.run([feed, res])[0]
        assert_close(got, FusedConv2D.run_eager([x, w, res], full)[0])
        x[...] = rng.standard_normal(x.shape)  # (the same array, new values)
        res *= -1


@pytest.mark.parametrize("batch,group_bytes,epilogue,m", [
    (4, 1, ("bias", "add", "relu"), 4), (6, 1, (), 2), (8, 2 * 16848, ("add",), 4),
    (2, 1, ("bias", "relu6"), 2)])
def test_whole_image_groups_a_thread_give_one_threads_results(any_size, monkeypatch, batch,
                                                              group_bytes, epilogue, m):
    """Several image groups: each thread runs the one-thread pipeline over its groups in
    scratch of its own (winograd_split.group_run): one thread's floats exactly."""
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: m)
    monkeypatch.setattr(conv_winograd, "GROUP_BYTES", group_bytes)  # 1: an image a group
    monkeypatch.setattr(conv_winograd, "MAX_PADDING", 100.0)  # the tile GEMM at every size
    rng = np.random.default_rng(5)
    x = rng.standard_normal((batch, 6, 11, 9)).astype(np.float32)
    w = rng.standard_normal((16, 6, 3, 3)).astype(np.float32)
    want, _, whole, _ = run_case(x, w, (1, 1), epilogue, np.random.default_rng(0))
    _split_over_two_threads(monkeypatch)
    used = []
    group_run = conv_winograd.group_run
    monkeypatch.setattr(conv_winograd, "group_run", lambda **kw: (
        used.append(len(kw["groups"])), group_run(**kw))[1])
    for _ in range(2):  # (the second: the same call table again)
        _, _, split, kind = run_case(x, w, (1, 1), epilogue, np.random.default_rng(0))
        np.testing.assert_array_equal(split, whole)
    assert kind == f"winograd-f{m}" and used and used[0] % 2 == 0 and used[0] > 1
    assert_close(whole, want)


@pytest.mark.parametrize("m", [2, 4])
def test_one_thread_image_groups_with_the_tile_gemm_kernel(any_size, monkeypatch, m):
    """Codegen's tile GEMM (16 output channels), one image a group, one thread (the
    bound-once path), against the whole batch at once and the eager."""
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: m)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 8, 11, 9)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    want, _, whole, kind = run_case(x, w, (1, 1), ("bias", "add", "relu"),
                                    np.random.default_rng(0))
    monkeypatch.setattr(conv_winograd, "GROUP_BYTES", 1)
    _, _, split, _ = run_case(x, w, (1, 1), ("bias", "add", "relu"), np.random.default_rng(0))
    assert kind == f"winograd-f{m}"
    assert_close(whole, want)
    assert_close(split, want)


def test_numpy_kernels_switch_keeps_the_reference_path(any_size, monkeypatch):
    monkeypatch.setenv("TOSTATIC_KERNELS", "numpy")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8, 16, 16)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    assert run_case(x, w, (1, 1), ("bias",), rng)[3] == "im2col-gemm"


@pytest.mark.parametrize("m", sorted(winograd.MATRICES))
def test_transforms_are_exact_correlations(m):
    """A^T [(G g) * (B^T d)] is the 1-D correlation of an alpha-long d with g, in exact
    arithmetic (Fractions) and in float64."""
    bt, g, at = winograd.MATRICES[m]
    rng = np.random.default_rng(m)
    d, k = rng.integers(-9, 9, m + 2), rng.integers(-9, 9, 3)
    gk = [sum(row[j] * int(k[j]) for j in range(3)) for row in g]
    bd = [sum(row[j] * int(d[j]) for j in range(m + 2)) for row in bt]
    y = [sum(row[j] * gk[j] * bd[j] for j in range(m + 2)) for row in at]
    assert y == list(np.correlate(d, k, "valid"))


@pytest.mark.parametrize("by_column", [False, True])
@pytest.mark.parametrize("positions,cin,cout,tiles", [(16, 64, 32, 16), (16, 40, 24, 48),
                                                       (3, 7, 16, 80), (16, 33, 8, 208),
                                                       (2, 19, 24, 196), (3, 5, 16, 9),
                                                       (36, 37, 16, 49), (4, 30, 8, 55),
                                                       # tails of 8 columns and more: a
                                                       # chunk of TAIL_CHUNK, then the rest
                                                       (3, 21, 16, 15), (2, 10, 32, 12)])
def test_narrow_tile_gemm_matches_numpy(positions, cin, cout, tiles, by_column):
    """codegen's tile GEMM over packed U against np.matmul in float64 (register blocks of
    one tile vector, two, three and a tail; a last vector partly stored, or with
    `by_column` (tile_kernel) its columns one R-lane vector each where fewer than R, input
    channels not a multiple of TAIL_SUMS; nothing written past the columns)."""
    from tostatic.codegen import winograd_gemm as wg

    rng = np.random.default_rng(tiles)
    u = rng.standard_normal((positions, cout, cin)).astype(np.float32)
    v_flat = rng.standard_normal(positions * cin * tiles + wg.LANES).astype(np.float32)
    v = v_flat[:-wg.LANES].reshape(positions, cin, tiles)
    m_flat = np.full(positions * cout * tiles + wg.LANES, np.nan, np.float32)
    m = m_flat[:-wg.LANES].reshape(positions, cout, tiles)
    vectors = -(-tiles // wg.LANES)
    rows = wg.rows_for(cout, vectors)
    f = wg.tile_kernel(rows, tiles) if by_column else wg.kernel(rows, wg.vectors_for(rows,
                                                                                   vectors))
    packed = wg.pack(u, rows)
    dims = wg.dims(1, positions, cin, cout, tiles)  # position 0 left alone
    f(packed.ctypes.data, v.ctypes.data, m.ctypes.data, dims.ctypes.data)
    assert np.isnan(m[0]).all() and np.isnan(m_flat[-wg.LANES:]).all()
    want = np.matmul(u[1:].astype(np.float64), v[1:].astype(np.float64))
    np.testing.assert_allclose(m[1:], want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("h,w,pads", [(5, 3, (1, 1)), (9, 6, (0, 0)), (13, 10, (1, 1)),
                                      (7, 14, (2, 1, 0, 1)), (11, 17, (0, 1, 1, 0)),
                                      (6, 28, (1, 1)), (17, 31, (1, 1)), (4, 30, (1, 0))])
def test_packed_tile_rows_match_a_tile_row_a_vector(any_size, monkeypatch, m, h, w, pads):
    """Planes 1-8 tiles wide: the transforms' row passes take 16 // TW tile rows a vector
    (codegen/winograd_rows.py tile_rows_a_vector; the last group partial, rows past the
    plane and the padding zero): the same floats as a tile row a vector, and the eager's values."""
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: m)
    rng = np.random.default_rng(h * w + m)
    x = rng.standard_normal((2, 5, h, w)).astype(np.float32)
    wt = rng.standard_normal((16, 5, 3, 3)).astype(np.float32)
    want, _, packed, kind = run_case(x, wt, pads, ("bias", "add", "relu"),
                                     np.random.default_rng(0))
    monkeypatch.setattr(conv_winograd, "PACKED_ROWS", False)
    _, _, plain, _ = run_case(x, wt, pads, ("bias", "add", "relu"), np.random.default_rng(0))
    monkeypatch.setattr(conv_winograd, "POSITION_PAD", 0)  # V and M positions back to back
    _, _, unpadded, _ = run_case(x, wt, pads, ("bias", "add", "relu"), np.random.default_rng(0))
    assert kind == f"winograd-f{m}"
    np.testing.assert_array_equal(packed, plain)
    np.testing.assert_array_equal(unpadded, plain)
    assert_close(packed, want)


@pytest.mark.parametrize("m", [2, 4])
def test_shared_sums_keep_the_accuracy_of_separate_ones(any_size, monkeypatch, m):
    """The 1-D transforms with shared sums and FMAs (winograd_rows.linear) against each
    output's own products and sums, and both against float64."""
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: m)
    rng = np.random.default_rng(7)
    x = np.maximum(rng.standard_normal((1, 64, 20, 20)), 0).astype(np.float32)
    wt = (rng.standard_normal((64, 64, 3, 3)) * np.sqrt(2 / 576)).astype(np.float32)
    _, exact, shared, _ = run_case(x, wt, (1, 1), ("bias", "relu"), np.random.default_rng(0))
    monkeypatch.setattr(winograd_rows, "SHARED", False)
    _, _, separate, _ = run_case(x, wt, (1, 1), ("bias", "relu"), np.random.default_rng(0))
    errors = [np.abs(got - exact).max() / np.abs(exact).max() for got in (shared, separate)]
    assert not np.array_equal(shared, separate)  # (another kernel ran)
    assert errors[0] < (3e-6 if m == 4 else 1e-6) and errors[0] < 2 * errors[1], errors


@pytest.mark.parametrize("tw,m,k", [(1, 4, 16), (4, 4, 4), (7, 4, 2), (8, 4, 1), (14, 4, 1),
                                    (4, 2, 4), (7, 2, 2), (8, 2, 2), (9, 2, 1)])
def test_a_vector_takes_tile_rows_whose_windows_fit_two_vectors(tw, m, k):
    assert winograd.tile_rows_a_vector(tw, m) == k
