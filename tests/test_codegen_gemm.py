"""codegen/gemm.py's pre-packed GEMM against numpy's matmul (float64 products, then the fused
op's reference epilogue, ops/fused.apply_epilogue: each step with the unfused op's eager) on
sizes that are and are not multiples of its blocks (MR rows, NR columns, KC, NC), both modes,
every epilogue step, one and two threads; and the plan's use of it (runtime/packed_gemm.py)
against the fused ops' eager, with TOSTATIC_KERNELS=numpy switching it off."""
import ctypes

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_runtime_kernels import bound_plan, close
from tostatic.codegen import engine, gemm
from tostatic.codegen import epilogue as epi
from tostatic.codegen import threads as codegen_threads
from tostatic.ops.fused import EPILOGUE_ACTIVATIONS, FusedConv2D, FusedMatmul, apply_epilogue
from tostatic.runtime import packed_gemm

pytestmark = [pytest.mark.skipif(not gemm.available(), reason="the packed GEMM needs AVX-512"),
              pytest.mark.usefixtures("compiled_kernels")]
SIZES = st.sampled_from([1, 2, 7, 12, 13, 24, 31, 32, 33, 47, 100])
# every step, in few epilogues (each compiles a module): vector arithmetic, applied in
# registers, and activations with exp / erf / tanh, applied over the finished tile
EPILOGUES = [(), ("bias", "add", "relu6"), ("add", "hardswish", "relu"),
             ("bias", "gelu", "add", "tanh"), ("bias", "sigmoid", "swish", "silu", "gelu_tanh")]
STEPS = st.sampled_from(EPILOGUES)


def test_the_epilogues_cover_every_step():
    assert {s for e in EPILOGUES for s in e} == {"bias", "add", *EPILOGUE_ACTIVATIONS}


def reference(mode, w, x, steps, extras):
    """The product in float64, rounded to float32, then the epilogue (bias along rows in
    conv mode, along columns in matmul mode)."""
    y = (w.astype(np.float64) @ x if mode == "conv" else x.astype(np.float64) @ w)
    return apply_epilogue(y.astype(np.float32), steps, extras, 0 if mode == "conv" else 1)


def run_case(mode, m, n, k, steps, seed, streamed=False):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, k) if mode == "conv" else (k, n)).astype(np.float32)
    x = rng.standard_normal((k, n) if mode == "conv" else (m, k)).astype(np.float32)
    extras = [rng.standard_normal((m if mode == "conv" else n) if s == "bias" else (m, n))
              .astype(np.float32) for s in steps if s in ("bias", "add")]
    expr, kinds = epi.epilogue_expr(steps, "float32") if steps else (None, ())
    out = np.full((m, n), np.nan, np.float32)
    gemm.PackedGemm(mode, w, expr, kinds, streamed)(x, out, extras)
    want = reference(mode, w, x, steps, extras)
    np.testing.assert_allclose(out, want, rtol=2e-5, atol=2e-5 * max(1.0, k ** 0.5))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["conv", "matmul"]), SIZES, SIZES, SIZES, STEPS, st.integers(0, 99))
def test_packed_gemm_matches_numpy(mode, m, n, k, steps, seed):
    run_case(mode, m, n, k, steps, seed)


@pytest.mark.parametrize("mode", ["conv", "matmul"])
@pytest.mark.parametrize("m,n,k", [(25, 1100, 300),    # K over KC, N over NC: both blocks
                                   (12, 40, 600),      # five K blocks, a masked edge
                                   (131, 70, 257),     # every row kernel (12, 8, 2, 1)
                                   # conv mode's column kernel for the last 1-4 columns
                                   (29, 49, 300),      # 32 + 16 + 1 (ResNet's 7x7 planes)
                                   (131, 196, 257),    # 6 x 32 + 4, 11 rows in the last panel
                                   (13, 34, 200),      # 32 + 2 (no whole vector before)
                                   (5, 3, 130)])       # 3 columns only
@pytest.mark.parametrize("steps", EPILOGUES[:4])
def test_blocks_over_k_and_n_keep_partial_sums_and_apply_the_epilogue_once(mode, m, n, k,
                                                                            steps, monkeypatch):
    monkeypatch.setattr(gemm, "KC", 128)  # blocks of K below these K (2048 by default)
    monkeypatch.setattr(gemm, "B_BLOCK_BYTES", 128 * 4 * 64)  # of N: 64 columns
    run_case(mode, m, n, k, steps, m + n + k)


@pytest.mark.parametrize("split", ["rows", "cols"])
def test_two_threads_split_the_panels_and_agree(split, monkeypatch):
    monkeypatch.setitem(codegen_threads._STATE, "n", 2)
    monkeypatch.setattr(gemm, "MIN_PART_WORK", 1)  # split however small
    spans = []
    parallel_calls = codegen_threads.parallel_calls

    def spy(calls, starts=None):  # each part's [row start, row end, column start, end]
        spans.append([tuple((ctypes.c_int64 * 9).from_address(int(a))[5:9])
                      for a in calls[:, 5]])
        parallel_calls(calls, starts)
    monkeypatch.setattr(codegen_threads, "parallel_calls", spy)
    m, n = (600, 40) if split == "rows" else (40, 1980)
    run_case("conv", m, n, 64, EPILOGUES[1], 3)
    run_case("matmul", m, n, 64, EPILOGUES[3], 4)
    # by the panels of the split dimension (12 rows, 32 columns a panel), in even runs of
    # whole panels, PARTS_PER_THREAD a thread (claimed by whichever thread is free)
    unit = gemm.MR if split == "rows" else gemm.NR
    size = m if split == "rows" else n
    panels = -(-size // unit)
    parts = min(panels, 2 * codegen_threads.PARTS_PER_THREAD)
    cuts = [min(size, i * panels // parts * unit) for i in range(parts)] + [size]
    want = [(a, b, 0, n) if split == "rows" else (0, m, a, b) for a, b in zip(cuts, cuts[1:])]
    assert spans and all(s == want for s in spans)


@pytest.mark.parametrize("mode", ["conv", "matmul"])
def test_two_threads_divide_a_big_weight_whatever_the_tiles(mode, monkeypatch):
    """A weight over SPLIT_WEIGHT_BYTES is split between the threads (conv mode: by rows,
    matmul: by columns) even where the other split has fewer tiles a thread (ResNet-50's
    7x7 planes: 49 columns, two panels); the result agrees with numpy."""
    monkeypatch.setitem(codegen_threads._STATE, "n", 2)
    monkeypatch.setattr(gemm, "MIN_PART_WORK", 1)
    spans = []
    parallel_calls = codegen_threads.parallel_calls

    def spy(calls, starts=None):
        spans.append([tuple((ctypes.c_int64 * 9).from_address(int(a))[5:9])
                      for a in calls[:, 5]])
        parallel_calls(calls, starts)
    monkeypatch.setattr(codegen_threads, "parallel_calls", spy)
    # conv: W [29 x 96] @ X [96 x 49] (3 row panels, 2 column panels: 3 tiles a thread by
    # columns, 4 by rows); matmul: X [200 x 64] @ W [64 x 96] (17 row panels, 3 column
    # panels: 27 tiles a thread by rows, 34 by columns)
    m, n, k = (29, 49, 96) if mode == "conv" else (200, 96, 64)
    by_rows = mode == "conv"
    for big in (True, False):
        monkeypatch.setattr(gemm, "SPLIT_WEIGHT_BYTES", 1000 if big else 1 << 30)
        spans.clear()
        run_case(mode, m, n, k, EPILOGUES[1], 5)
        assert spans and all(len(parts) > 1 for parts in spans)
        # (row begin, row end, column begin, column end): whole columns, or whole rows
        rows_split = all((p[2], p[3]) == (0, n) for p in spans[0])
        cols_split = all((p[0], p[1]) == (0, m) for p in spans[0])
        assert (rows_split, cols_split) == ((by_rows, not by_rows) if big
                                            else (not by_rows, by_rows))


def test_the_microkernel_is_avx512_fma():
    text = gemm.module_text("matmul").replace("__NAME__", "k_")
    asm = engine.assembly(text)
    fmas = [line for line in asm.splitlines() if "vfmadd231ps" in line]
    assert fmas and sum("zmm" in line for line in fmas) >= 24


def test_conv_mode_has_the_column_kernels_and_matmul_mode_none():
    """Column tails of 1-4 go to their kernels (their vfmadd231ps broadcast B's column)."""
    conv, matmul = gemm.module_text("conv", column_tail=4), gemm.module_text("matmul",
                                                                             column_tail=4)
    assert all(f'"__NAME__c{w}"(' in conv for w in range(1, 5))
    assert '"__NAME__c1"(' not in matmul


def test_prepared_rows_must_start_at_a_panel():
    g = gemm.PackedGemm("conv", np.ones((30, 8), np.float32))
    with pytest.raises(ValueError, match="multiple of 12"):
        g.prepare_strides((30, 5), 5, 5, [], span=(6, 30))
    x, out = np.ones((8, 5), np.float32), np.zeros((30, 5), np.float32)
    g.prepare_strides((30, 5), 5, 5, [], span=(12, 30))(x.ctypes.data, out.ctypes.data, [])
    assert (out[:12] == 0).all() and (out[12:] == 8).all()


def test_weights_are_packed_into_panels_once():
    w = np.arange(13 * 5, dtype=np.float32).reshape(13, 5)
    a = gemm.pack_rows(w, gemm.MR)  # [P, K, MR]: row r of panel p is w[p * MR + r]
    assert a.shape == (2, 5, gemm.MR) and a[1, 3, 0] == w[gemm.MR, 3] and a[1, 3, 1] == 0
    b = gemm.pack_cols(w.T.copy(), gemm.NR)  # [Q, K, NR]
    assert b.shape == (1, 5, gemm.NR) and b[0, 2, 12] == w[12, 2] and b[0, 2, 13] == 0


def test_row_tiles_match_numpy():
    """gemm.RowTiles (the tiles attention_tiles.py builds on): C[:rows, :n] = A B for every
    row count up to MR, n across whole, masked and partial tiles, operands in strided rows."""
    from tostatic.codegen import emit

    tiles = gemm.RowTiles()
    fn, b = tiles.km.function("t", [emit.PTR] * 4)
    a, bm, c, dims = fn.args
    rows, lda, ldb, ldc, k, n = (emit.load(b, dims, emit.i64(i), "int64") for i in range(6))
    tiles.block(b, rows, a, lda, bm, ldb, c, ldc, k, n)
    b.ret_void()
    call = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 4)(
        emit.compile_functions(tiles.km, ["t"])["t"])
    rng = np.random.default_rng(0)
    for rows, k, n in [(gemm.MR, 37, 70), (1, 1, 1), (5, 64, 16), (11, 9, 33), (7, 128, 64)]:
        x = rng.standard_normal((rows, k + 3)).astype(np.float32)
        w = rng.standard_normal((k, n + 5)).astype(np.float32)
        out = np.full((rows, n + 2), np.nan, np.float32)
        d = np.array([rows, k + 3, n + 5, n + 2, k, n], np.int64)
        call(x.ctypes.data, w.ctypes.data, out.ctypes.data, d.ctypes.data)
        want = x[:, :k].astype(np.float64) @ w[:, :n]
        np.testing.assert_allclose(out[:, :n], want, rtol=2e-5, atol=2e-5 * k ** 0.5)
        assert np.isnan(out[:, n:]).all()  # (nothing past the n columns written)


def test_attention_uses_only_gemms_public_names():
    """attention_tiles.py builds on gemm's public API (RowTiles, MR, NR, VT), not its
    internals, which change with the GEMM."""
    import ast
    import inspect

    from tostatic.codegen import attention_tiles

    tree = ast.parse(inspect.getsource(attention_tiles))
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "gemm"}
    assert used and not [name for name in used if name.startswith("_")]


# ------------------------------------------------------------------------------ in the plan

def conv1x1_case(steps, seed, n=2, c=24, cout=40, hw=(6, 7)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *hw)).astype(np.float32)
    w = rng.standard_normal((cout, c, 1, 1)).astype(np.float32)
    extras, mask = [], []
    for s in steps:
        if s == "bias":
            extras.append(rng.standard_normal((1, cout, 1, 1)).astype(np.float32))
            mask.append(True)
        elif s == "add":
            extras.append(rng.standard_normal((n, cout, *hw)).astype(np.float32))
            mask.append(False)
    return [x, w, *extras], [False, True, *mask], dict(epilogue=tuple(steps))


@pytest.mark.parametrize("steps", EPILOGUES)
def test_plan_runs_1x1_convolutions_on_the_packed_gemm(steps):
    arrays, mask, attrs = conv1x1_case(steps, len(steps))
    want = FusedConv2D.run_eager(arrays, FusedConv2D.normalize_attrs(attrs))[0]
    first, second, bound = bound_plan(FusedConv2D, arrays, mask, attrs)
    close(second, want, np.float32)
    assert bound.labels[0][1] == "gemm-1x1-packed"


@pytest.mark.parametrize("x_shape,ty,steps", [((128, 256), False, EPILOGUES[3]),
                                              ((2, 9, 33), True, EPILOGUES[1]),
                                              ((8, 64), False, EPILOGUES[0])])
def test_plan_runs_matmuls_by_a_constant_weight_on_the_packed_gemm(x_shape, ty, steps):
    rng = np.random.default_rng(len(x_shape))
    k, n = x_shape[-1], 40
    x = rng.standard_normal(x_shape).astype(np.float32)
    y = rng.standard_normal((n, k) if ty else (k, n)).astype(np.float32)
    extras = [rng.standard_normal(n if s == "bias" else (*x_shape[:-1], n)).astype(np.float32)
              for s in steps if s in ("bias", "add")]
    attrs = dict(transpose_x=False, transpose_y=ty, epilogue=steps)
    want = FusedMatmul.run_eager([x, y, *extras], FusedMatmul.normalize_attrs(attrs))[0]
    mask = [False, True, *(e.ndim == 1 for e in extras)]
    _, second, bound = bound_plan(FusedMatmul, [x, y, *extras], mask, attrs)
    close(second, want, np.float32)
    assert bound.labels[0][1] == "gemm-packed"


def test_numpy_switch_float64_and_few_pixels_keep_numpy(monkeypatch):
    arrays, mask, attrs = conv1x1_case(EPILOGUES[1], 1)
    x64 = [a.astype(np.float64) for a in arrays]
    assert bound_plan(FusedConv2D, x64, mask, attrs)[2].labels[0][1] == "gemm-1x1"
    few, fmask, fattrs = conv1x1_case((), 1, hw=(2, 3))  # 6 pixels: most lanes masked off
    assert bound_plan(FusedConv2D, few, fmask, fattrs)[2].labels[0][1] == "gemm-1x1"
    monkeypatch.setenv("TOSTATIC_KERNELS", "numpy")
    want = FusedConv2D.run_eager(arrays, FusedConv2D.normalize_attrs(attrs))[0]
    _, second, bound = bound_plan(FusedConv2D, arrays, mask, attrs)
    close(second, want, np.float32)
    assert bound.labels[0][1] == "gemm-1x1"


def test_a_residual_sharing_the_output_buffer_is_read_before_it_is_overwritten(monkeypatch):
    monkeypatch.setattr(gemm, "KC", 128)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 300)).astype(np.float32)
    w = rng.standard_normal((300, 48)).astype(np.float32)
    out = rng.standard_normal((2, 48)).astype(np.float32)
    steps = EPILOGUES[2]  # add first; K over KC: partial sums are stored in `out` first
    want = apply_epilogue((x.astype(np.float64) @ w).astype(np.float32), steps, [out], 1)
    run = packed_gemm.matmul(x, w, out, dict(transpose_x=False, transpose_y=False), steps)
    run(x, w, out, out=out)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_without_avx512_the_gemm_refuses_and_the_plan_keeps_numpy(monkeypatch):
    monkeypatch.setattr(gemm, "available", lambda: False)
    with pytest.raises(TypeError, match="AVX-512"):  # NotScalar
        gemm.PackedGemm("conv", np.ones((4, 4), np.float32))
    arrays, mask, attrs = conv1x1_case(EPILOGUES[1], 2)
    want = FusedConv2D.run_eager(arrays, FusedConv2D.normalize_attrs(attrs))[0]
    _, second, bound = bound_plan(FusedConv2D, arrays, mask, attrs)
    close(second, want, np.float32)
    assert bound.labels[0][1] == "gemm-1x1"


def test_new_arrays_each_call_and_strided_ones_get_their_own_addresses():
    """A reshape's view or an op's fresh result is a new object each run: the prepared
    call must read its address again (and copy what is not contiguous)."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((40, 72)).astype(np.float32)
    out = np.empty((2, 5, 72), np.float32)
    run = packed_gemm.matmul(np.empty((2, 5, 40), np.float32), w, out,
                             dict(transpose_x=False, transpose_y=False), EPILOGUES[1])
    for i in range(4):
        x = rng.standard_normal((2, 5, 40)).astype(np.float32)
        if i == 3:
            x = np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)  # strided
        bias = rng.standard_normal((1, 72)).astype(np.float32)
        res = rng.standard_normal((2, 5, 72)).astype(np.float32)
        got = np.empty_like(out) if i % 2 else out
        run(x, w, bias, res, out=got)
        want = apply_epilogue((x.astype(np.float64) @ w).astype(np.float32), EPILOGUES[1],
                              [bias.reshape(-1), res], 2)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-4)


@pytest.mark.parametrize("workers", [1, 2])
def test_rows_apart_are_read_in_place(workers, monkeypatch):
    """BERT's pooler: x [batch, hidden] the first token of each sequence, rows a sequence
    apart: read where they lie (no copy: the GEMM sees x's own address), each run's values."""
    monkeypatch.setitem(codegen_threads._STATE, "n", workers)
    monkeypatch.setattr(codegen_threads, "MIN_NATIVE_ELEMENTS", 1)
    rng = np.random.default_rng(5)
    seq = rng.standard_normal((30, 7, 40)).astype(np.float32)
    w = rng.standard_normal((40, 72)).astype(np.float32)
    bias = rng.standard_normal(72).astype(np.float32)
    out = np.empty((30, 72), np.float32)
    x = seq[:, 0]
    run = packed_gemm.matmul(x, w, out, dict(transpose_x=False, transpose_y=False),
                             ("bias", "tanh"))
    seen = []
    real = np.ascontiguousarray
    monkeypatch.setattr(np, "ascontiguousarray", lambda a, *args, **kw: (
        seen.append(a.shape), real(a, *args, **kw))[1])
    for _ in range(2):
        seq[...] = rng.standard_normal(seq.shape)
        run(seq[:, 0], w, bias, out=out)
        want = apply_epilogue((seq[:, 0].astype(np.float64) @ w).astype(np.float32),
                              ("bias", "tanh"), [bias], 1)
        np.testing.assert_allclose(out, want, rtol=2e-5, atol=2e-5)
    assert seen == []
    run(seq[:, 0, ::-1].copy()[:, ::-1], w, bias, out=out)  # negative stride: copied
    assert seen[0] == (30, 40)
    np.testing.assert_allclose(out, want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("n", [3, 8])
@pytest.mark.parametrize("native", [True, False])  # an image a part (parallel_calls) or not
def test_images_shared_out_among_threads(n, native, monkeypatch):
    monkeypatch.setitem(codegen_threads._STATE, "n", 2)
    monkeypatch.setattr(codegen_threads, "MIN_ELEMENTS_PER_THREAD", 1)  # split however small
    monkeypatch.setattr(packed_gemm, "MIN_NATIVE_ELEMENTS", 1 if native else 1 << 60)
    parts = []
    parallel_calls = packed_gemm.parallel_calls
    monkeypatch.setattr(packed_gemm, "parallel_calls", lambda rows: (
        parts.append(len(rows)), parallel_calls(rows)))
    arrays, mask, attrs = conv1x1_case(EPILOGUES[1], n, n=n, hw=(40, 41))
    want = FusedConv2D.run_eager(arrays, FusedConv2D.normalize_attrs(attrs))[0]
    for _ in range(2):  # the second run: the calls made for the first
        _, second, bound = bound_plan(FusedConv2D, arrays, mask, attrs)
        close(second, want, np.float32)
    assert bound.labels[0][1] == "gemm-1x1-packed"
    assert set(parts) == ({n} if native else set())


@pytest.mark.parametrize("m,n,k", [(13, 100, 47),     # K > M: columns a tile at a time
                                   (29, 49, 300),     # ... and the column kernel's tail
                                   (131, 70, 57)])    # K < M: NC blocks as ever
@pytest.mark.parametrize("steps", EPILOGUES[1:4])  # in registers (residual prefetched), not
def test_streamed_gemm_matches_numpy(m, n, k, steps):
    run_case("conv", m, n, k, steps, m + k, streamed=True)
    assert gemm.PackedGemm("conv", np.ones((m, k), np.float32), streamed=True).column_walk \
        == (k > m)


def test_only_a_streamed_conv_residual_is_prefetched_a_tile_ahead():
    expr, kinds = epi.epilogue_expr(("bias", "add", "relu"), "float32")
    plain = gemm.module_text("conv", expr, kinds, gemm.PREFETCH, gemm.COLUMN_TAIL)
    ahead = gemm.module_text("conv", expr, kinds, gemm.PREFETCH, gemm.COLUMN_TAIL, gemm.NR)
    assert ahead.count("llvm.prefetch") > plain.count("llvm.prefetch")
    bias, bias_kinds = epi.epilogue_expr(("bias", "relu"), "float32")
    for mode, e, k in (("matmul", expr, kinds), ("conv", bias, bias_kinds)):  # unchanged
        assert gemm.module_text(mode, e, k, gemm.PREFETCH, 0, gemm.NR) == \
            gemm.module_text(mode, e, k, gemm.PREFETCH, 0)


@pytest.mark.parametrize("workers,c", [(1, 50), (2, 50), (2, 24)])  # K > M, K < M
def test_plan_streams_big_1x1_convolutions(workers, c, monkeypatch):
    """Over STREAM_BYTES (here: any) a 1x1 convolution's GEMMs are streamed; batch 3, odd
    plane, residual; against the fused op's eager."""
    monkeypatch.setitem(codegen_threads._STATE, "n", workers)
    monkeypatch.setattr(codegen_threads, "MIN_ELEMENTS_PER_THREAD", 1)
    monkeypatch.setattr(packed_gemm, "STREAM_BYTES", 0)
    made = []
    packed = gemm.PackedGemm
    monkeypatch.setattr(gemm, "PackedGemm", lambda *a: made.append(a[-1]) or packed(*a))
    arrays, mask, attrs = conv1x1_case(EPILOGUES[1], 2, n=3, c=c, hw=(13, 11))
    want = FusedConv2D.run_eager(arrays, FusedConv2D.normalize_attrs(attrs))[0]
    _, second, bound = bound_plan(FusedConv2D, arrays, mask, attrs)
    close(second, want, np.float32)
    assert bound.labels[0][1] == "gemm-1x1-packed" and made == [True]
