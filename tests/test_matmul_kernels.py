"""The matmul paths of a bound plan added for transformers and MLPs: the compiled epilogue
(runtime/epilogue_kernels.py) against the fused op's numpy reference (ops/fused.apply_epilogue:
each step with the unfused op's eager kernel), and GEMMs of few rows by column blocks
(runtime/matmul_blocks.py) against the op's eager, on one and two threads."""
import numpy as np
import pytest

from test_runtime_kernels import bound_plan, close
from tostatic.ops.fused import FusedMatmul, apply_epilogue
from tostatic.runtime import packed_gemm, threads
from tostatic.runtime.epilogue_kernels import compiled_epilogue
from tostatic.runtime.matmul_blocks import column_blocks

pytestmark = pytest.mark.usefixtures("compiled_kernels")


@pytest.mark.parametrize("epilogue", [("bias", "gelu"), ("bias", "gelu_tanh"), ("bias",),
                                      ("bias", "relu", "add"), ("add", "silu"),
                                      ("bias", "tanh"), ("bias", "sigmoid", "add"),
                                      ("swish",), ("bias", "hardswish"), ("bias", "relu6")])
@pytest.mark.parametrize("shape", [(4, 37, 129), (200, 131)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_epilogue_matches_the_reference(epilogue, shape, dtype):
    rng = np.random.default_rng(len(epilogue) + shape[0])
    y = (rng.standard_normal(shape) * 3).astype(dtype)
    extras = [(rng.standard_normal(shape[-1]) if s == "bias" else
               rng.standard_normal(shape)).astype(dtype)
              for s in epilogue if s in ("bias", "add")]
    want = apply_epilogue(y.copy(), epilogue, extras, y.ndim - 1)
    run = compiled_epilogue(epilogue, y, extras)
    assert run is not None  # all these outputs are large enough, or their steps heavy
    got = y.copy()
    run(got, [e.reshape(1, -1) if e.ndim == 1 else e for e in extras])  # any bias shape
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_small_cheap_epilogues_stay_numpy_and_the_switch_turns_codegen_off(monkeypatch):
    y = np.ones((1, 512), np.float32)
    assert compiled_epilogue(("bias", "relu"), y, [np.ones(512, np.float32)]) is None
    assert compiled_epilogue(("bias", "gelu"), y, [np.ones(512, np.float32)]) is not None
    monkeypatch.setenv("TOSTATIC_KERNELS", "numpy")
    assert compiled_epilogue(("bias", "gelu"), y, [np.ones(512, np.float32)]) is None


@pytest.mark.parametrize("x_shape,k,n,ty,blocked", [
    ((1, 256), 256, 512, False, False),    # m * n * k small already: one GEMM
    ((8, 256), 256, 512, False, True),
    ((2, 4, 300), 300, 777, True, True),   # leading dims, a transposed weight, odd sizes
    ((16, 1024), 1024, 1024, False, True),
    ((128, 256), 256, 256, False, False),  # many rows: the packed GEMM
])
@pytest.mark.parametrize("workers", [1, 2])
def test_gemms_by_column_blocks_match_the_eager_op(x_shape, k, n, ty, blocked, workers,
                                                   monkeypatch):
    monkeypatch.setattr(threads, "_requested", workers)
    # numpy's paths, as without AVX-512 (codegen/gemm.py's are tested in test_codegen_gemm)
    monkeypatch.setattr(packed_gemm, "_gemm", lambda *a: None)
    rng = np.random.default_rng(k + n)
    x = rng.standard_normal(x_shape).astype(np.float32)
    y = rng.standard_normal((n, k) if ty else (k, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    attrs = dict(transpose_x=False, transpose_y=ty, epilogue=("bias", "relu"))
    want = FusedMatmul.run_eager([x, y, b], FusedMatmul.normalize_attrs(attrs))[0]
    first, second, bound = bound_plan(FusedMatmul, [x, y, b], [False, True, True], attrs)
    close(second, want, np.float32)
    assert bound.labels[0][1] == ("gemm-blocks" if blocked else "gemm")


def test_column_blocks_cover_the_weight_in_small_pieces():
    w = np.arange(300 * 777, dtype=np.float32).reshape(300, 777)
    blocks = column_blocks(w, 8)
    assert blocks[0][0] == 0 and blocks[-1][1] == 777
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert all(8 * 300 * (hi - lo) <= 1_000_000 and blk.flags.c_contiguous
               for lo, hi, blk in blocks)
    np.testing.assert_array_equal(np.concatenate([blk for _, _, blk in blocks], axis=1), w)
    assert column_blocks(w, 64) is None  # many rows: one packed GEMM
    # a weight over 4 MiB is not copied into blocks (a 1 GiB model would double its memory)
    assert column_blocks(np.zeros((1024, 1025), np.float32), 1) is None
    assert column_blocks(np.zeros((1024, 1024), np.float32), 1) is not None


@pytest.mark.parametrize("tx,ty", [(False, True), (False, False), (True, False)])
def test_batched_products_split_by_heads_over_threads_match_the_eager_op(tx, ty, monkeypatch):
    monkeypatch.setattr(threads, "_requested", 2)
    rng = np.random.default_rng(3)
    m, k, n = 128, 64, 96  # above the flops a kernel splits at
    x = rng.standard_normal((1, 3, k, m) if tx else (1, 3, m, k)).astype(np.float32)
    y = rng.standard_normal((1, 3, n, k) if ty else (1, 3, k, n)).astype(np.float32)
    y = np.swapaxes(np.swapaxes(y, 1, 2).copy(), 1, 2)  # strided, as heads sliced from QKV
    attrs = dict(transpose_x=tx, transpose_y=ty, epilogue=())
    want = FusedMatmul.run_eager([x, y], FusedMatmul.normalize_attrs(attrs))[0]
    _, second, bound = bound_plan(FusedMatmul, [x, y], [False, False], attrs)
    close(second, want, np.float32)
    assert bound.steps[0][0].func.__name__ == "run_batches_parallel"


@pytest.mark.parametrize("epilogue", [("bias", "add", "relu"), ("bias", "gelu"), ("add",)])
def test_rows_split_over_threads_apply_the_epilogue_in_blocks(epilogue, monkeypatch):
    monkeypatch.setattr(threads, "_requested", 2)
    monkeypatch.setattr(packed_gemm, "_gemm", lambda *a: None)  # numpy's path
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 100, 64)).astype(np.float32)  # 300 rows: parts of 150,
    w = rng.standard_normal((64, 512)).astype(np.float32)     # blocks of 128 + 22 rows
    extras = [rng.standard_normal(512 if s == "bias" else (3, 100, 512)).astype(np.float32)
              for s in epilogue if s in ("bias", "add")]
    attrs = dict(transpose_x=False, transpose_y=False, epilogue=epilogue)
    want = FusedMatmul.run_eager([x, w, *extras], FusedMatmul.normalize_attrs(attrs))[0]
    mask = [False, True, *(e.ndim == 1 for e in extras)]
    _, second, bound = bound_plan(FusedMatmul, [x, w, *extras], mask, attrs)
    close(second, want, np.float32)
    assert bound.steps[0][0].func.__name__ == "run_parallel"
