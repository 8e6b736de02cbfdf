"""BERT's non-GEMM kernels against numpy references written here: pd.fused_attention (its
eager, and runtime's bound kernel: BLAS on the heads' strided rows + codegen's masked softmax),
the masked softmax row kernel, layer_norm's and lookup_table_v2's bound kernels, and the
bound plan's folding of shape-only ops at bind."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tostatic
from tostatic.codegen import attention_tiles, gemm, rows
from tostatic.ir.errors import OutOfRangeError
from tostatic.ops.embedding import LookupTableV2
from tostatic.ops.fused_attention import FusedAttention
from tostatic.ops.layer_norm import LayerNorm, LayerNormPlain, LayerNormScaleOnly
from tostatic.codegen import threads as codegen_threads
from tostatic.runtime import attention, embedding_kernel, layer_norm_kernel, threads
from tostatic.runtime.attention import attention_factory
from tostatic.runtime.embedding_kernel import embedding_factory
from tostatic.runtime.layer_norm_kernel import layer_norm_factory
from tostatic.static import InputSpec


pytestmark = pytest.mark.usefixtures("compiled_kernels")


def attention_reference(q, k, v, mask, heads):
    """Head by head, in float64: softmax(q_h k_h^T + mask) v_h, heads side by side. The mask
    is added in the inputs' dtype, as every kernel does: scores behind a -1e4 padding mask
    keep only float32's ulp of 1e4 (~1e-3), so a row whose keys are all masked differs from
    a float64 softmax by ~1e-4 whatever the kernel (a case hypothesis found)."""
    b, sq, hd = q.shape
    d = hd // heads
    out = np.zeros((b, sq, hd))
    for i in range(b):
        for h in range(heads):
            cols = slice(h * d, (h + 1) * d)
            s = q[i, :, cols].astype(np.float64) @ k[i, :, cols].T.astype(np.float64)
            if mask is not None:
                s = (s.astype(q.dtype) + np.broadcast_to(mask, (b, heads, sq, s.shape[1]))[i, h]
                     ).astype(np.float64)
            e = np.exp(s - s.max(axis=1, keepdims=True))
            out[i, :, cols] = (e / e.sum(axis=1, keepdims=True)) @ v[i, :, cols]
    return out


def run_bound(bound, ins, out):
    scratch, bind, _ = bound
    run = bind([np.empty(shape, dtype) for _, shape, dtype in scratch])
    run(*ins, out=out)
    run(*ins, out=out)  # the prepared call, a second time
    return out


def qkv_case(rng, b, sq, sk, heads, d, dtype, mask_kind):
    """q, k, v as slices of one projection (strided rows, as fuse-qkv leaves them)."""
    hd = heads * d
    qx = rng.standard_normal((b, sq, 2 * hd)).astype(dtype)
    kv = rng.standard_normal((b, sk, 3 * hd)).astype(dtype)
    q, k, v = qx[:, :, hd:], kv[:, :, :hd], kv[:, :, 2 * hd:]
    mask = {"none": None,
            # (a padding mask keeps an image's first token: with every key at -1e4 the
            # float32 scores lose 1e-3 of their precision to the mask, in any engine)
            "padding": np.where(rng.random((b, 1, 1, sk)) < 0.3, -1e4, 0.0) * (
                np.arange(sk) > 0),
            "shared": rng.standard_normal((1, 1, 1, sk)) * 3,
            "full": rng.standard_normal((b, heads, sq, sk))}[mask_kind]
    return q, k, v, None if mask is None else mask.astype(dtype)


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 3), sq=st.integers(1, 19), sk=st.integers(1, 19),
       heads=st.integers(1, 4), d=st.integers(1, 9), dtype=st.sampled_from(["float32",
                                                                             "float64"]),
       mask_kind=st.sampled_from(["none", "padding", "shared", "full"]),
       workers=st.sampled_from([1, 2]))
def test_fused_attention_kernel_and_eager_match_the_reference(b, sq, sk, heads, d, dtype,
                                                               mask_kind, workers):
    rng = np.random.default_rng(b * 1000 + sq * 31 + sk)
    q, k, v, mask = qkv_case(rng, b, sq, sk, heads, d, dtype, mask_kind)
    want = attention_reference(q, k, v, mask, heads)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    masks = [] if mask is None else [mask]
    np.testing.assert_allclose(FusedAttention.eager(q, k, v, masks, heads), want, **tol)
    out = np.empty((b, sq, heads * d), dtype)
    old = threads._requested
    threads._requested = workers
    try:
        bound = attention_factory({"num_heads": heads}, [q, k, v, *masks], out)
    finally:
        threads._requested = old
    if mask_kind == "full" and mask.shape[1:] != (1, 1, sk):  # per head / query: eager
        assert bound is None
        return
    assert bound is not None and bound[2] == "attention"
    np.testing.assert_allclose(run_bound(bound, [q, k, v, *masks], out), want, **tol)


def test_fused_attention_splits_heads_over_threads(monkeypatch):
    """Enough work for two threads: machine-code parts of (head, image) units, run by
    threads.parallel_calls (each part's scores rows its own); equal to one thread's result."""
    rng = np.random.default_rng(7)
    q, k, v, mask = qkv_case(rng, 2, 64, 64, 4, 32, "float32", "padding")
    results = {}
    real = threads.parallel_calls
    for workers in (1, 2):
        monkeypatch.setattr(threads, "_requested", workers)
        monkeypatch.setattr(codegen_threads, "_STATE", {"n": workers})
        out = np.empty((2, 64, 128), np.float32)
        calls = []
        monkeypatch.setattr(threads, "parallel_calls",
                            lambda rows, starts=None: (calls.append(len(rows)), real(rows)))
        results[workers] = run_bound(attention_factory({"num_heads": 4}, [q, k, v, mask], out),
                                     [q, k, v, mask], out)
        assert calls == [] if workers == 1 else (len(calls) == 2 and min(calls) > 1)
    np.testing.assert_array_equal(results[2], results[1])
    np.testing.assert_allclose(results[2], attention_reference(q, k, v, mask, 4), rtol=2e-5,
                               atol=2e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_attention_odd_units_split_like_one_thread(monkeypatch, dtype):
    """Odd sizes cut into as many parts as there are units (heads x images), unequal
    strides for q, k, v and out (a wider output buffer's columns), a shared mask row."""
    rng = np.random.default_rng(8)
    q, k, v, mask = qkv_case(rng, 3, 13, 11, 3, 5, dtype, "shared")
    monkeypatch.setattr(attention, "MIN_NATIVE_ELEMENTS", 1)
    results = {}
    for workers in (1, 2):
        monkeypatch.setattr(threads, "_requested", workers)
        monkeypatch.setattr(codegen_threads, "_STATE", {"n": workers})
        wide = np.full((3, 13, 20), np.nan, dtype)
        out = wide[:, :, 2:17]
        results[workers] = run_bound(attention_factory({"num_heads": 3}, [q, k, v, mask], out),
                                     [q, k, v, mask], out).copy()
        assert np.isnan(wide[:, :, :2]).all() and np.isnan(wide[:, :, 17:]).all()
    np.testing.assert_array_equal(results[2], results[1])
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results[2], attention_reference(q, k, v, mask, 3), **tol)


@pytest.mark.parametrize("b,sq,sk,heads,d,workers", [
    (2, 128, 128, 4, 64, 1), (2, 128, 128, 4, 64, 2), (1, 37, 45, 3, 20, 1),
    (3, 13, 33, 2, 48, 2), (1, 12, 16, 1, 16, 1), (2, 30, 70, 2, 33, 2)])
def test_fused_attention_tiles_match_the_reference(monkeypatch, b, sq, sk, heads, d, workers):
    """float32 on AVX-512: codegen/attention_tiles.py's register tiles (k^T by 16 x 16 blocks
    in registers and scalar edges, query rows by blocks of 12 and their tails, masked column
    tails), not BLAS: a BLAS gemm that fails if called proves it."""
    if not attention_tiles.available():
        pytest.skip("no AVX-512")
    monkeypatch.setattr(attention, "_GEMM", {"float32": (1, 64)})  # (address 1: a crash)
    monkeypatch.setattr(threads, "_requested", workers)
    monkeypatch.setattr(codegen_threads, "_STATE", {"n": workers})
    monkeypatch.setattr(attention, "MIN_NATIVE_ELEMENTS", 1)
    rng = np.random.default_rng(sq * 7 + d)
    q, k, v, mask = qkv_case(rng, b, sq, sk, heads, d, "float32", "padding")
    q *= np.float32(d ** -0.5)  # BERT's scale, folded into q (scores of unit variance)
    out = np.empty((b, sq, heads * d), np.float32)
    got = run_bound(attention_factory({"num_heads": heads}, [q, k, v, mask], out),
                    [q, k, v, mask], out)
    np.testing.assert_allclose(got, attention_reference(q, k, v, mask, heads), rtol=2e-5,
                               atol=2e-6)


def test_fused_attention_few_queries_keep_blas(monkeypatch):
    """Under TILES_MIN_QUERIES query rows k^T's transpose costs more than the tiles save:
    BLAS's products (the tiles' kernel is never asked for)."""
    monkeypatch.setattr(attention_tiles, "heads_kernel", lambda: 1 / 0)
    rng = np.random.default_rng(4)
    q, k, v, mask = qkv_case(rng, 2, attention.TILES_MIN_QUERIES - 1, 40, 2, 32, "float32",
                             "padding")
    q *= np.float32(32 ** -0.5)
    out = np.empty(q.shape, np.float32)
    got = run_bound(attention_factory({"num_heads": 2}, [q, k, v, mask], out),
                    [q, k, v, mask], out)
    np.testing.assert_allclose(got, attention_reference(q, k, v, mask, 2), rtol=2e-5,
                               atol=2e-6)


def test_fused_attention_tiles_leave_rows_they_cannot_read_to_numpy():
    """Query rows a broadcast (stride 0, closer than a head's width): no tiles, numpy's
    matmul on scores of its own (the tiles' scratch is smaller than all heads' scores)."""
    rng = np.random.default_rng(3)
    _, k, v, mask = qkv_case(rng, 2, 13, 7, 2, 16, "float32", "padding")
    q = np.broadcast_to(rng.standard_normal((2, 1, 32)).astype(np.float32) / 4, (2, 13, 32))
    out = np.empty((2, 13, 32), np.float32)
    bound = attention_factory({"num_heads": 2}, [q, k, v, mask], out)
    if attention_tiles.available():  # (the tiles' scratch: less than the scores)
        assert bound[0][0][1] == (attention_tiles.scratch_floats(7, 16),)
    got = run_bound(bound, [q, k, v, mask], out)
    np.testing.assert_allclose(got, attention_reference(q, k, v, mask, 2), rtol=2e-5,
                               atol=2e-6)


def test_fused_attention_python_parts_without_blas_gemm(monkeypatch):
    """No CBLAS gemm found (another BLAS) and no AVX-512 tiles: numpy's matmul, heads split
    by Python parts."""
    monkeypatch.setattr(threads, "_requested", 2)
    monkeypatch.setattr(attention, "_GEMM", {"float32": None})
    monkeypatch.setattr(attention_tiles, "available", lambda: False)
    rng = np.random.default_rng(7)
    q, k, v, mask = qkv_case(rng, 2, 64, 64, 4, 32, "float32", "padding")
    out = np.empty((2, 64, 128), np.float32)
    calls = []
    real = threads.parallel
    monkeypatch.setattr(threads, "parallel",
                        lambda fn, items, workers: (calls.append(workers),
                                                    real(fn, items, workers)))
    got = run_bound(attention_factory({"num_heads": 4}, [q, k, v, mask], out),
                    [q, k, v, mask], out)
    assert calls == [2, 2]
    np.testing.assert_allclose(got, attention_reference(q, k, v, mask, 4), rtol=2e-5,
                               atol=2e-6)


def test_numpy_kernels_switch_keeps_the_reference(monkeypatch):
    monkeypatch.setenv("TOSTATIC_KERNELS", "numpy")
    q = np.zeros((1, 4, 8), np.float32)
    assert attention_factory({"num_heads": 2}, [q, q, q], q.copy()) is None
    assert layer_norm_factory(("scale", "bias"), {"epsilon": 1e-5, "begin_norm_axis": 2},
                              [q, np.ones(8, np.float32), np.zeros(8, np.float32)], q) is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masked_softmax_rows(dtype):
    """Rows of scores plus the mask row of their group, as the kernel indexes them:
    (row / group) % period, mstride apart; large negatives, -inf and NaN as numpy has them."""
    rng = np.random.default_rng(3)
    rows_, n, group, period = 12, 37, 3, 2
    x = (rng.standard_normal((rows_, n)) * 30).astype(dtype)
    x[0, :5] = -np.inf
    x[1, 3] = np.nan
    mask = np.where(rng.random((period, n)) < 0.3, -1e4, 0.0).astype(dtype)
    mask[1, 7] = -200.0  # far below the float32 exp's underflow bound
    got = x.copy()
    f = rows.masked_softmax_kernel(dtype)
    f(got.ctypes.data, mask.ctypes.data, rows_, n, group, period, n)
    s = x.astype(np.float64) + mask[(np.arange(rows_) // group) % period]
    with np.errstate(invalid="ignore"):
        e = np.exp(s - s.max(axis=1, keepdims=True))
        want = e / e.sum(axis=1, keepdims=True)
    tol = 3e-7 if dtype == "float32" else 1e-15
    np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol)
    assert np.isnan(got[1]).all()


@pytest.mark.parametrize("cls", [LayerNorm, LayerNormScaleOnly, LayerNormPlain])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_bound_kernel(cls, dtype):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 5, 33)) * 4 + 2).astype(dtype)
    weights = [rng.standard_normal(33).astype(dtype) for _ in cls.WEIGHTS]
    attrs = {"epsilon": 1e-5, "begin_norm_axis": 2}
    mean = x.mean(axis=2, keepdims=True, dtype=np.float64)
    want = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=2, keepdims=True) + 1e-5)
    for name, w in zip(cls.WEIGHTS, weights):
        want = want * w if name == "scale" else want + w
    out = np.empty_like(x)
    got = run_bound(layer_norm_factory(cls.WEIGHTS, attrs, [x, *weights], out),
                    [x, *weights], out)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(got, cls.run_eager([x, *weights], attrs)[0], rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_split_rows_equal_one_thread(monkeypatch, dtype):
    """Two threads: row ranges run as machine-code parts (rows.layer_norm_split through
    threads.parallel_calls), each row as one thread computes it; the generic kernel too."""
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((4, 77, 35)) * 3 + 1).astype(dtype)
    scale, bias = (rng.standard_normal(35).astype(dtype) for _ in range(2))
    attrs = {"epsilon": 1e-5, "begin_norm_axis": 2}
    monkeypatch.setattr(layer_norm_kernel, "MIN_NATIVE_ELEMENTS", 64)
    monkeypatch.setattr(codegen_threads, "MIN_NATIVE_ELEMENTS", 64)
    got, generic = {}, {}
    real = codegen_threads.parallel_calls
    for workers in (1, 2):
        monkeypatch.setattr(codegen_threads, "_STATE", {"n": workers})
        calls = []
        monkeypatch.setattr(codegen_threads, "parallel_calls",
                            lambda rows_, starts=None: (calls.append(len(rows_)), real(rows_)))
        out = np.empty_like(x)
        got[workers] = run_bound(layer_norm_factory(("scale", "bias"), attrs, [x, scale, bias],
                                                    out), [x, scale, bias], out)
        generic[workers] = rows.layer_norm(x, scale, bias, 1e-5, 2)
        assert calls == [] if workers == 1 else calls == [8, 8, 8]
    np.testing.assert_array_equal(got[2], got[1])
    for a, b_ in zip(generic[2], generic[1]):
        np.testing.assert_array_equal(a, b_)
    np.testing.assert_array_equal(generic[2][0], got[1])
    np.testing.assert_allclose(got[2], LayerNorm.run_eager([x, scale, bias], attrs)[0],
                               rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)


def test_softmax_split_rows_equal_one_thread(monkeypatch):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((5, 61, 29)) * 5).astype(np.float32)
    monkeypatch.setattr(codegen_threads, "MIN_NATIVE_ELEMENTS", 64)
    got = {}
    for workers in (1, 2):
        monkeypatch.setattr(codegen_threads, "_STATE", {"n": workers})
        got[workers] = (rows.softmax(x, axis=1), rows.softmax(x, axis=-1, log=True))
    for a, b_ in zip(got[2], got[1]):
        np.testing.assert_array_equal(a, b_)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got[2][0], e / e.sum(axis=1, keepdims=True), rtol=2e-6,
                               atol=1e-7)


def test_embedding_bound_kernel_padding_and_errors():
    rng = np.random.default_rng(9)
    w = rng.standard_normal((10, 6)).astype(np.float32)
    ids = rng.integers(0, 10, (2, 7))
    ids[0, :3] = 4
    for pad in (4, -1):
        out = np.empty((2, 7, 6), np.float32)
        bound = embedding_factory(LookupTableV2, {"padding_idx": pad}, [ids, w], out,
                                  [False, True])
        want = w[ids] * (ids != pad)[..., None]  # Paddle: padding rows are zeros
        np.testing.assert_array_equal(run_bound(bound, [ids, w], out), want)
    # an id -1 with padding_idx -1 is a zero row (the eager's rule); out of range raises
    neg = ids.copy()
    neg[1, 1] = -1
    out = np.empty((2, 7, 6), np.float32)
    got = run_bound(embedding_factory(LookupTableV2, {"padding_idx": -1}, [neg, w], out,
                                      [False, True]), [neg, w], out)
    np.testing.assert_array_equal(got[1, 1], 0)
    np.testing.assert_array_equal(got[0], w[neg[0]])
    bad = ids.copy()
    bad[0, 0] = 10
    with pytest.raises(OutOfRangeError, match="lookup_table_v2"):
        run_bound(embedding_factory(LookupTableV2, {"padding_idx": -1}, [ids, w], out,
                                    [False, True]), [bad, w], out)


@pytest.mark.parametrize("id_dtype,dtype", [("int64", "float32"), ("int32", "float64")])
def test_embedding_gather_split_over_threads(monkeypatch, id_dtype, dtype):
    """Two threads: parts of the ids gathered as machine code (codegen/gather.py through
    threads.parallel_calls), the same rows as numpy's indexing; a bad id in any part falls
    back to the eager (the op's error)."""
    rng = np.random.default_rng(10)
    w = rng.standard_normal((50, 7)).astype(dtype)
    ids = rng.integers(0, 50, (3, 41)).astype(id_dtype)
    monkeypatch.setattr(embedding_kernel, "MIN_NATIVE_ELEMENTS", 16)
    monkeypatch.setattr(codegen_threads, "_STATE", {"n": 2})
    calls = []
    real = embedding_kernel.parallel_calls
    monkeypatch.setattr(embedding_kernel, "parallel_calls",
                        lambda rows_: (calls.append(len(rows_)), real(rows_)))
    out = np.empty((3, 41, 7), dtype)
    bound = embedding_factory(LookupTableV2, {"padding_idx": 3}, [ids, w], out, [False, True])
    want = w[ids] * (ids != 3)[..., None]
    np.testing.assert_array_equal(run_bound(bound, [ids, w], out), want)
    assert calls == [8, 8]
    bad = ids.copy()
    bad[2, 40] = 50  # the last part's last id
    with pytest.raises(OutOfRangeError, match="lookup_table_v2"):
        run_bound(bound, [bad, w], out)


class PositionIds(tostatic.nn.Layer):
    """BERT's position ids from the input's shape (full_like, cumsum, subtract) and their
    embedding, added to the input's."""

    def __init__(self):
        super().__init__()
        self.table = tostatic.nn.Embedding(40, 4)

    def forward(self, ids):
        ones = tostatic.ones_like(ids)
        return self.table(ids) + self.table(tostatic.cumsum(ones, axis=-1) - ones)


def test_shape_only_ops_fold_at_bind(tmp_path):
    model = PositionIds()
    model.eval()
    prefix = str(tmp_path / "pos")
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, None], "int64", "ids")])
    predictor = tostatic.inference.create_predictor(
        tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams"))
    table = model.table.weight.numpy()
    for shape in [(2, 5), (2, 5), (3, 9), (3, 9)]:  # each shape: first run, then bound
        ids = np.random.default_rng(sum(shape)).integers(0, 40, shape)
        got = predictor.run([ids])[0]
        np.testing.assert_allclose(got, table[ids] + table[np.arange(shape[1])], rtol=1e-6)
    for bound in predictor._model.plan.bound.values():
        folded = {op for op, how in bound.at_bind if how == "folded"}
        assert {"pd.full_like", "pd.cumsum", "pd.subtract", "pd.lookup_table_v2"} <= folded
        assert [op for op, _ in bound.labels].count("pd.lookup_table_v2") == 1


@pytest.mark.parametrize("contiguous_mask", [True, False])
def test_attention_prepared_call_reads_each_runs_values(contiguous_mask):
    """A plan calls the kernel with the same arrays every run, new values in them: the
    prepared call (addresses, views) must read them, the mask too (a strided mask: a copy
    a run)."""
    rng = np.random.default_rng(11)
    q, k, v, _ = qkv_case(rng, 2, 6, 8, 2, 3, "float32", "none")
    wide = np.zeros((2, 1, 1, 16), np.float32)
    mask = wide[:, :, :, :8] if contiguous_mask else wide[:, :, :, ::2]
    mask = np.ascontiguousarray(mask) if contiguous_mask else mask
    out = np.empty((2, 6, 6), np.float32)
    scratch, bind, _ = attention_factory({"num_heads": 2}, [q, k, v, mask], out)
    run = bind([np.empty(shape, dtype) for _, shape, dtype in scratch])
    for step in range(3):
        q[...] = rng.standard_normal(q.shape)
        v[...] = rng.standard_normal(v.shape)
        mask[...] = np.where(rng.random(mask.shape) < 0.4, -1e4, 0.0)
        run(q, k, v, mask, out=out)
        np.testing.assert_allclose(out, attention_reference(q, k, v, mask, 2), rtol=2e-5,
                                   atol=2e-6)


def test_layer_norm_prepared_call_reads_each_runs_values():
    rng = np.random.default_rng(12)
    base = rng.standard_normal((4, 2, 20)).astype(np.float32)
    x = base[:, 0]  # strided rows: a contiguous copy a run
    scale = np.empty(40, np.float32)[::2]  # a strided weight computed each run
    attrs = {"epsilon": 1e-5, "begin_norm_axis": 1}
    out = np.empty((4, 20), np.float32)
    scratch, bind, _ = layer_norm_factory(("scale",), attrs, [x, scale], out)
    run = bind([np.empty(shape, dtype) for _, shape, dtype in scratch])
    for step in range(3):
        base[...] = rng.standard_normal(base.shape) * (step + 1)
        scale[...] = rng.standard_normal(20)
        run(x, scale, out=out)
        np.testing.assert_allclose(out, LayerNormScaleOnly.run_eager([x, scale], attrs)[0],
                                   rtol=1e-5, atol=1e-5)
