"""The generated im2col convolution (runtime/conv_im2col.py) split over two threads: whole
images per thread (batch > 1) or output-row ranges (batch 1), against one thread (the same
floats up to the GEMMs' summation order) and the conv op's numpy
`eager` (im2col + matmul, float32); the packed GEMM's fused epilogue, and the unfused one
after it where an extra operand does not suit it, against numpy."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_runtime_kernels import bound_plan
from tostatic.codegen import gemm
from tostatic.codegen import threads as codegen_threads
from tostatic.codegen.im2col import im2col
from tostatic.codegen.pad import pad_planes
from tostatic.ops.fused import FusedConv2D, apply_epilogue
from tostatic.runtime import conv_im2col, conv_winograd, kernels, threads

pytestmark = pytest.mark.usefixtures("compiled_kernels")


def run(x, w, stride, pad, epilogue, rng):
    extras, mask = [], []
    attrs = dict(strides=(stride, stride), paddings=(pad, pad), dilations=(1, 1), groups=1,
                 epilogue=epilogue)
    plain = FusedConv2D.normalize_attrs({**attrs, "epilogue": ()})
    shape = FusedConv2D.run_eager([x, w], plain)[0].shape
    for step in epilogue:
        if step in ("bias", "add"):
            extras.append(rng.standard_normal(w.shape[0] if step == "bias" else shape
                                              ).astype(np.float32))
            mask.append(step == "bias")
    want = FusedConv2D.run_eager([x, w, *extras], FusedConv2D.normalize_attrs(attrs))[0]
    _, got, bound = bound_plan(FusedConv2D, [x, w, *extras], [False, True, *mask], attrs)
    return want, got, bound.labels[0][1]


@settings(max_examples=25, deadline=None)
@given(n=st.sampled_from([1, 3]), c=st.integers(1, 9), cout=st.sampled_from([8, 16, 5]),
       hw=st.integers(5, 23), k=st.sampled_from([1, 3, 7]), stride=st.sampled_from([1, 2]),
       pad=st.integers(0, 3), epilogue=st.sampled_from([(), ("bias", "relu"),
                                                        ("bias", "add", "relu"),
                                                        ("bias", "gelu"),
                                                        ("add", "hardswish", "swish")]),
       seed=st.integers(0, 2**16), unpadded=st.booleans())
def test_two_threads_match_one_and_the_numpy_convolution(n, c, cout, hw, k, stride, pad,
                                                         epilogue, seed, unpadded):
    """unpadded: a padded input read in place by the unpadded im2col kernel at batch 1, at
    any width."""
    if hw + 2 * pad < k or (k == 1 and stride == 1 and pad == 0):  # (1x1 s1: packed GEMM)
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((cout, c, k, k)).astype(np.float32)
    calls = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_winograd, "MIN_CHANNELS", 1 << 30)  # im2col, not Winograd
        mp.setattr(conv_im2col, "MIN_SPLIT_FLOPS", 0)
        mp.setattr(conv_im2col, "MIN_SPLIT_FLOPS_PYTHON", 0)
        mp.setattr(conv_im2col, "BAND_BYTES", 4 * k * k * c * hw)  # a few rows a band
        mp.setattr(conv_im2col, "UNPADDED_MIN_COLUMNS", 1 if unpadded else 1 << 30)
        mp.setattr(threads, "_requested", 1)
        want, one, kind = run(x, w, stride, pad, epilogue, np.random.default_rng(seed))
        mp.setattr(threads, "_requested", 2)
        mp.setitem(codegen_threads._STATE, "n", 2)
        mp.setattr("tostatic.runtime.kernels.PARALLEL_FLOPS", 0)
        parallel, parallel_calls = conv_im2col.threads.parallel, threads.parallel_calls
        mp.setattr(conv_im2col.threads, "parallel",
                   lambda fn, items, workers: (calls.append((items, workers)),
                                               parallel(fn, items, workers)))

        copies = {conv_im2col._address(pad_planes("float32")),
                  conv_im2col._address(im2col("float32", (k, k), (stride,) * 2, (1, 1))),
                  conv_im2col._address(im2col("float32", (k, k), (stride,) * 2, (1, 1), True))}

        def spy(rows, starts):  # machine code: parts of calls (one part alone: not split)
            if len(starts) > 2:  # (a phase of copies only: the pad's or the patches')
                calls.append(("planes" if set(rows[:, 0]) <= copies else "parts",
                              len(starts) - 1))
            parallel_calls(rows, starts)
        mp.setattr(conv_im2col.threads, "parallel_calls", spy)
        _, two, kind2 = run(x, w, stride, pad, epilogue, np.random.default_rng(seed))
    assert kind == kind2 == "im2col-gen"
    oh = (hw + 2 * pad - k) // stride + 1
    # at batch 1 the pad (and the patches, split by output channels) first, by bands of
    # input planes, PLANE_PARTS_PER_THREAD a thread: a phase of its own
    planes = {call for call in calls if call[0] == "planes"}
    calls = [call for call in calls if call[0] != "planes"]
    # x is read in place unpadded, unless a stride-2 row's vector loads would read its last
    # float past the row (then it is copied, as a pad)
    in_place = pad == 0 and (stride != 2 or (oh - 1) * 2 + k < hw) or unpadded and n == 1
    copied = n == 1 and c > 1 and (not in_place or cout > oh * oh)
    assert planes == ({("planes", min(c, 2 * conv_im2col.PLANE_PARTS_PER_THREAD))} if copied
                      else set())
    if n > 1:  # whole images a thread
        assert calls[0] in [(n, 2), ("parts", 2)]
    elif cout > oh * oh:  # output channels a thread (the patches written once), in whole
        # register blocks of the packed GEMM: one block is no split
        assert calls[0][0] in (calls[0][1], "parts") and calls[0][1] <= 2 if cout > gemm.MR \
            else not calls
    else:  # output row ranges, ROW_PARTS_PER_THREAD a thread
        ranges = min(oh, 2 * conv_im2col.ROW_PARTS_PER_THREAD)
        assert calls[0] in [(ranges, ranges), ("parts", ranges)]
    # (the same floats, but where the split changes which GEMM runs a band: BLAS's or
    # codegen's, each summing in its own order)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6 * float(np.abs(one).max()))
    np.testing.assert_allclose(two, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))


def direct(x, w, stride, pad, steps, extras):
    """im2col_factory's run on one thread, its scratch allocated here."""
    n, _, h, _ = x.shape
    oh = (h + 2 * pad - w.shape[2]) // stride + 1
    out = np.full((n, w.shape[0], oh, oh), np.nan, np.float32)
    scratch, bind, kind = conv_im2col.im2col_factory(
        x, w, out, ((pad, pad), (pad, pad)), (stride, stride), (1, 1),
        kernels.epilogue_runner(steps, 4, 1), 1, steps)
    run = bind([np.zeros(shape, dtype) for _, shape, dtype in scratch])
    run(x, w, *extras, out=out)
    want = apply_epilogue(FusedConv2D.run_eager([x, w], FusedConv2D.normalize_attrs(dict(
        strides=(stride, stride), paddings=(pad, pad), dilations=(1, 1), groups=1,
        epilogue=())))[0], steps, list(extras), 1)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


@pytest.mark.parametrize("available", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "broadcast"])
def test_the_epilogue_fused_or_after_and_without_avx512(available, layout, monkeypatch):
    """A residual that is a strided view or broadcasts, or no AVX-512 (np.matmul on the
    patches), leaves the epilogue to the pass after the GEMM; the result is the same."""
    monkeypatch.setattr(gemm, "available", lambda: available and gemm.engine.has_feature(
        "avx512f"))
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 13, 13)).astype(np.float32)
    w = rng.standard_normal((14, 5, 3, 3)).astype(np.float32)
    bias = rng.standard_normal((1, 14, 1, 1)).astype(np.float32)
    res = {"contiguous": rng.standard_normal((2, 14, 7, 7)),
           "strided": rng.standard_normal((2, 14, 7, 14))[..., ::2],
           "broadcast": rng.standard_normal((1, 14, 1, 7))}[layout].astype(np.float32)
    direct(x, w, 2, 1, ("bias", "add", "gelu"), [bias, res])


@pytest.mark.parametrize("n,c,cout,hw,k,stride,pad", [
    (1, 16, 32, 20, 3, 2, 1),   # output rows a thread, the pad first (by input planes)
    (3, 16, 32, 20, 3, 2, 1),   # whole images a thread
    (1, 8, 64, 7, 3, 1, 1),     # output channels a thread, the patches first
    (2, 3, 16, 30, 7, 2, 3),    # a stem
    (1, 16, 32, 17, 1, 2, 0),   # a 1x1 stride-2 downsample reading x in place
    (1, 16, 64, 14, 1, 2, 0)])  # ... by output channels, its patches first (input planes)
def test_machine_code_parts_match_one_thread(n, c, cout, hw, k, stride, pad):
    """Where every GEMM of the split is codegen's, its parts run as threads.parallel_calls
    (no GIL switch to hand a part over): one thread's floats up to the summation order."""
    rng = np.random.default_rng(n + c + hw)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((cout, c, k, k)).astype(np.float32)
    parts = []
    epilogue = ("bias", "add", "relu")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_winograd, "MIN_CHANNELS", 1 << 30)  # im2col, not Winograd
        mp.setattr(conv_im2col, "MIN_SPLIT_FLOPS", 0)
        mp.setattr(conv_im2col, "MIN_SPLIT_FLOPS_PYTHON", 0)
        mp.setattr(threads, "_requested", 1)
        want, one, _ = run(x, w, stride, pad, epilogue, np.random.default_rng(1))
        mp.setattr(threads, "_requested", 2)
        mp.setitem(codegen_threads._STATE, "n", 2)
        mp.setattr("tostatic.runtime.kernels.PARALLEL_FLOPS", 0)
        parallel_calls = threads.parallel_calls
        mp.setattr(conv_im2col.threads, "parallel_calls", lambda rows, starts: (
            parts.append(len(starts) - 1), parallel_calls(rows, starts)))
        _, two, kind = run(x, w, stride, pad, epilogue, np.random.default_rng(1))
    # (one image's output rows: ROW_PARTS_PER_THREAD ranges a thread), after, at batch 1,
    # the pad or the patches by bands of input planes (PLANE_PARTS_PER_THREAD a thread)
    assert kind == "im2col-gen" and parts[-1] == (
        2 * conv_im2col.ROW_PARTS_PER_THREAD if n == 1 and cout <= (hw // stride) ** 2 else 2)
    planes = min(c, 2 * conv_im2col.PLANE_PARTS_PER_THREAD)
    assert set(parts) - {parts[-1]} <= {planes} if n == 1 else set(parts) == {2}
    if n == 1 and (pad > 0 or cout > (hw // stride) ** 2):  # (else x may be read in place)
        assert planes in parts
    # (a thread's band of rows may end its columns in the packed GEMM's column kernel where
    # one thread's band had a whole vector: another summation order)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6 * float(np.abs(one).max()))
    np.testing.assert_allclose(two, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))


@pytest.mark.parametrize("hw,k,pad", [(33, 3, 1), (45, 7, 3), (66, 1, 0), (61, 3, 0),
                                      (38, 7, 2)])
def test_stride_two_rows_with_a_masked_tail(monkeypatch, hw, k, pad):
    """Stride-2 patch rows of 16 outputs and more: whole vectors, then the last ow % 16 by
    masked loads and stores (codegen/im2col.py MASKED_TAIL), against the rest one by one
    and the numpy convolution."""
    from tostatic.codegen import im2col

    rng = np.random.default_rng(hw)
    x = rng.standard_normal((1, 5, hw, hw)).astype(np.float32)
    w = rng.standard_normal((16, 5, k, k)).astype(np.float32)
    want, masked, kind = run(x, w, 2, pad, ("bias", "relu"), np.random.default_rng(0))
    monkeypatch.setattr(im2col, "MASKED_TAIL", False)
    _, by_element, _ = run(x, w, 2, pad, ("bias", "relu"), np.random.default_rng(0))
    assert kind == "im2col-gen" and ((hw + 2 * pad - k) // 2 + 1) % 16
    np.testing.assert_array_equal(masked, by_element)
    np.testing.assert_allclose(masked, want, rtol=1e-4, atol=1e-4)


@settings(max_examples=80, deadline=None)
@given(c=st.integers(1, 3), h=st.integers(1, 40), w=st.integers(1, 70),
       k=st.tuples(st.integers(1, 7), st.integers(1, 7)), sw=st.integers(1, 2),
       sh=st.integers(1, 3), dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(st.integers(0, 3), st.integers(0, 3)), seed=st.integers(0, 2**16))
def test_unpadded_patches_equal_the_padded_copys(c, h, w, k, sw, sh, dil, pads, seed):
    """codegen/im2col.py's unpadded kernel (x read in place, the padding as masked-off
    lanes, nothing read past x) writes the same patch matrix as the pad kernel's copy
    followed by the padded kernel, band by band (rows [first, end) of the output)."""
    (kh, kw), (dh, dw), (pt, pl) = k, dil, pads
    oh = (h + 2 * pt - (kh - 1) * dh - 1) // sh + 1
    ow = (w + 2 * pl - (kw - 1) * dw - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        return
    rng = np.random.default_rng(seed)
    # the padded buffer as conv_im2col sizes it (covering every tap read)
    hp, wp = max(pt + h, (oh - 1) * sh + (kh - 1) * dh + 1), \
        max(pl + w, (ow - 1) * sw + (kw - 1) * dw + 1)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    xp = np.zeros(c * hp * wp + 16, np.float32)
    pad_planes("float32")(x.ctypes.data, xp.ctypes.data,
                          np.array([c, h, w, hp, wp, pt, pl], np.int64).ctypes.data)
    first = int(rng.integers(0, oh))
    end = int(rng.integers(first + 1, oh + 1))
    ld = (end - first) * ow + 5
    rows = c * kh * kw
    got, want = (np.full(rows * ld + 16, 7.0, np.float32) for _ in range(2))
    im2col("float32", k, (sh, sw), dil)(
        xp.ctypes.data, want.ctypes.data,
        np.array([c, hp, wp, ow, first, end, ld], np.int64).ctypes.data)
    im2col("float32", k, (sh, sw), dil, True)(
        x.ctypes.data, got.ctypes.data,
        np.array([c, h, w, ow, first, end, ld, pt, pl], np.int64).ctypes.data)
    np.testing.assert_array_equal(got, want)  # (the gaps between rows untouched too)
