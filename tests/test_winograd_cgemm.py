"""The Winograd tile GEMM with its vectors along the output channels (codegen/winograd_cgemm.py)
against np.matmul in float64, and the convolutions that take it (at most 16 tiles a group,
output channels in 32s) against the fused conv op's numpy eager: odd input channel counts,
tails of 1..7 tiles, residual epilogues, batch 1 and 3, two threads."""
import numpy as np
import pytest

from test_conv_winograd import assert_close, run_case
from tostatic.codegen import threads as codegen_threads
from tostatic.codegen import winograd_cgemm as cg
from tostatic.codegen import winograd_gemm as wg
from tostatic.runtime import conv_winograd, threads, winograd_split

pytestmark = pytest.mark.usefixtures("compiled_kernels")


@pytest.mark.parametrize("positions,first,cin,cout,cols,pad", [
    (3, 1, 37, 64, 16, 16), (2, 0, 5, 32, 8, 0), (4, 1, 64, 96, 13, 16), (2, 1, 1, 32, 1, 0),
    (3, 0, 130, 32, 7, 16), (2, 1, 19, 64, 9, 0), (16, 1, 48, 32, 16, 0)])
def test_channel_tile_gemm_matches_numpy(positions, first, cin, cout, cols, pad):
    """Positions [first, end) of M[p] = U[p] @ V[p] with V's and M's rows 16 floats long
    (the columns past `cols` never written) and `pad` floats between positions (untouched),
    one pass of 8 tiles, two, or a pass of fewer (masked stores)."""
    rng = np.random.default_rng(cin * cols)
    k = wg.LANES
    u = rng.standard_normal((positions, cout, cin)).astype(np.float32)
    v_flat = rng.standard_normal(positions * (cin * k + pad) + k).astype(np.float32)
    m_flat = np.full(positions * (cout * k + pad) + k, np.nan, np.float32)

    def view(flat, rows):
        item = flat.itemsize
        return np.lib.stride_tricks.as_strided(flat, (positions, rows, k),
                                               ((rows * k + pad) * item, k * item, item))
    v, m = view(v_flat, cin), view(m_flat, cout)
    packed = wg.pack(u, cg.CHANNELS)
    f = cg.kernel(cols, pad)
    dims = wg.dims(first, positions, cin, cout, cols, k, k)
    f(packed.ctypes.data, v_flat.ctypes.data, m_flat.ctypes.data, dims.ctypes.data)
    want = np.matmul(u.astype(np.float64), v[:, :, :cols].astype(np.float64))
    got = m[:, :, :cols]
    np.testing.assert_allclose(got[first:], want[first:], rtol=1e-5,
                               atol=1e-5 * np.abs(want).max())
    written = np.zeros(m_flat.shape, bool)
    view(written, cout)[first:, :, :cols] = True
    assert np.isnan(m_flat[~written]).all()


def test_fits_only_channels_in_32s_and_one_vector_of_tiles():
    assert cg.fits(64, 16) and cg.fits(32, 1) and cg.fits(512, 16)
    assert not cg.fits(48, 16) and not cg.fits(64, 17) and not cg.fits(16, 8)


@pytest.fixture
def counted(monkeypatch):
    """The cols of every channel tile GEMM the convolutions ask for."""
    made = []
    kernel = cg.kernel
    monkeypatch.setattr(cg, "kernel", lambda cols, pad=0: (made.append(cols),
                                                           kernel(cols, pad))[1])
    return made


@pytest.mark.parametrize("n,c,cout,size,m,group_bytes,epilogue,cols", [
    (1, 37, 64, 7, 2, 4 << 20, ("bias", "add", "relu"), [16]),
    (1, 64, 32, 14, 4, 4 << 20, ("bias", "add", "relu"), [16]),
    (1, 21, 96, 6, 2, 4 << 20, ("add",), [9]),
    (3, 40, 64, 5, 2, 1, ("bias", "relu6"), [9] * 3),  # an image a group: 9 tiles
    (3, 9, 32, 3, 2, 4 << 20, ("bias", "add", "relu"), [12]),  # 3 images, 4 tiles each
    (1, 33, 64, 5, 4, 4 << 20, (), [4])])
def test_convolutions_with_few_tiles_take_it_and_match_the_eager(
        monkeypatch, counted, n, c, cout, size, m, group_bytes, epilogue, cols):
    """And the same floats as winograd_gemm's one vector of tiles (CHANNEL_GEMM off: both
    sum each output over the input channels in order, one FMA a channel)."""
    monkeypatch.setattr(conv_winograd, "MIN_TILES", {4: 1, 2: 1})
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: m)
    monkeypatch.setattr(conv_winograd, "GROUP_BYTES", group_bytes)
    monkeypatch.setattr(conv_winograd, "MAX_PADDING", 100.0)  # (the tile GEMMs at any size)
    rng = np.random.default_rng(size * c)
    x = np.maximum(rng.standard_normal((n, c, size, size)), 0).astype(np.float32)
    w = (rng.standard_normal((cout, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(np.float32)
    want, exact, got, kind = run_case(x, w, (1, 1), epilogue, np.random.default_rng(0))
    assert kind == f"winograd-f{m}" and counted == cols
    assert_close(got, want)
    monkeypatch.setattr(conv_winograd, "CHANNEL_GEMM", False)
    _, _, old, _ = run_case(x, w, (1, 1), epilogue, np.random.default_rng(0))
    assert counted == cols  # (not asked again)
    assert_close(got, old)


def test_output_channels_not_in_32s_keep_the_tile_vector_gemm(monkeypatch, counted):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 16, 7, 7)).astype(np.float32)
    w = rng.standard_normal((48, 16, 3, 3)).astype(np.float32)
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: 2)
    want, _, got, kind = run_case(x, w, (1, 1), ("bias", "add"), rng)
    assert kind == "winograd-f2" and counted == []
    assert_close(got, want)


@pytest.mark.parametrize("cout,parts", [(64, [(0, 32), (32, 64)]), (96, [(0, 32), (32, 96)])])
def test_two_threads_split_the_channels_in_32s(monkeypatch, counted, cout, parts):
    """Batch 1 on two threads (winograd_split.split_run): each thread's output channels a
    run of whole 32-channel blocks of packed U: one thread's floats exactly."""
    monkeypatch.setattr(conv_winograd, "tile_size", lambda *_: 2)
    rng = np.random.default_rng(cout)
    x = rng.standard_normal((1, 24, 7, 7)).astype(np.float32)
    w = rng.standard_normal((cout, 24, 3, 3)).astype(np.float32)
    want, _, whole, _ = run_case(x, w, (1, 1), ("bias", "add", "relu"),
                                 np.random.default_rng(0))
    monkeypatch.setattr(threads, "current", lambda: 2)
    monkeypatch.setitem(codegen_threads._STATE, "n", 2)  # (the pool's: parallel_calls)
    monkeypatch.setattr(conv_winograd, "MIN_SPLIT_FLOPS", 0)
    seen = []
    split_run = conv_winograd._split_run
    monkeypatch.setattr(conv_winograd, "_split_run", lambda **kw: (
        seen.append(winograd_split.channel_parts(cout, kw["block"], kw["workers"])),
        split_run(**kw))[1])
    _, _, split, kind = run_case(x, w, (1, 1), ("bias", "add", "relu"),
                                 np.random.default_rng(0))
    assert kind == "winograd-f2" and seen == [parts] and counted == [16, 16]
    np.testing.assert_array_equal(split, whole)
    assert_close(whole, want)
