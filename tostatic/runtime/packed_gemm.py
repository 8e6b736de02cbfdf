"""Where the plan runs codegen's pre-packed GEMM (codegen/gemm.py) instead of numpy's matmul:
float32 products with a constant weight, packed once at bind, their epilogue fused.

The shape rule comes from a table measured here (one thread, OpenBLAS 0.3 SkylakeX kernel,
interleaved medians, epilogue excluded; ms of OpenBLAS -> ours):

    matmul x[128,256] @ W[256,768]   0.226 -> 0.204      1x1 conv W[96,16]  @ X[16,12544]  0.241 -> 0.194
    matmul x[128,256] @ W[256,256]   0.078 -> 0.075      1x1 conv W[24,144] @ X[144,3136]  0.116 -> 0.086
    matmul x[128,256] @ W[256,1024]  0.304 -> 0.270      1x1 conv W[576,96] @ X[96,196]    0.094 -> 0.091
    matmul x[128,1024] @ W[1024,256] 0.309 -> 0.300      1x1 conv W[1280,320] @ X[320,49]  0.215 -> 0.207
    matmul x[8,512] @ W[512,512]     0.067 -> 0.021      1x1 conv W[64,256] @ X[256,3136]  0.477 -> 0.419
    matmul x[1,256] @ W[256,512]     0.0056 -> 0.0034    1x1 conv W[512,2048] @ X[2048,49] 0.563 -> 0.533
    matmul x[1,512] @ W[512,512]     0.0112 -> 0.0112
    matmul x[1,512] @ W[512,10]      0.0020 -> 0.0023    matmul x[8,512] @ W[512,10] 0.0018 -> 0.0029

so ours everywhere except products with few columns (N < MIN_COLS: one masked vector does
little work per call, OpenBLAS's small-matrix kernel wins) and tiny products (below MIN_FLOPS,
where both are call overhead). The fused epilogue adds to the margin: bias + relu6 over a 1x1
convolution's output is one more pass over memory for numpy.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic import codegen
from tostatic.codegen.calls import CallCache
from tostatic.ir.scalar_expr import NotScalar

MIN_COLS = 32
MIN_FLOPS = 20_000


def _gemm(mode: str, w: np.ndarray, epilogue: Sequence[str]) -> Any:
    """codegen's PackedGemm for the weight and epilogue, or None (numpy kernels asked for,
    no AVX-512, a step without code)."""
    if not codegen.enabled() or w.dtype != np.float32:
        return None
    from tostatic.codegen import epilogue as epi, gemm  # llvmlite loads on first use
    if not gemm.available():
        return None
    try:
        expr, kinds = epi.epilogue_expr(epilogue, "float32") if epilogue else (None, ())
        return gemm.PackedGemm(mode, w, expr, kinds)
    except (NotScalar, KeyError):
        return None


def _worth_it(rows: int, cols: int, k: int) -> bool:
    return rows >= 2 and cols >= MIN_COLS and 2 * rows * cols * k >= MIN_FLOPS


def _checked(prepare: Any, kinds: Sequence[str], out_shape: tuple[int, ...], n: int) -> Any:
    """run(x, w, *extras, out) calling prepare(x, extras, out) once per set of arrays; extras
    of another layout, or overlapping the output (partial sums are stored there before the
    last K block reads them), go through contiguous copies."""
    calls = CallCache()

    def fits(x: np.ndarray, out: np.ndarray, extras: Sequence[np.ndarray]) -> bool:
        return (all(a.flags.c_contiguous and a.dtype == np.float32 for a in (x, out, *extras))
                and all(e.size == n if kind == "bias" else e.shape == out_shape
                        for e, kind in zip(extras, kinds))
                and not any(np.may_share_memory(out, e) for e in extras))

    def safe(x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> Any:
        if fits(x, out, extras):
            return prepare(x, extras, out)
        fixed = [np.ascontiguousarray(np.broadcast_to(e, out_shape) if kind == "add"
                                      else e.reshape(-1), dtype=np.float32)
                 for e, kind in zip(extras, kinds)]
        tmp = np.empty(out_shape, np.float32)
        call = prepare(np.ascontiguousarray(x, dtype=np.float32), fixed, tmp)

        def copied() -> None:
            call()
            np.copyto(out, tmp)
        return copied

    def run(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray, out: np.ndarray) -> None:
        calls.get((x, out, *extras), lambda: safe(x, extras, out))()
    return run


def conv1x1(x: np.ndarray, w: np.ndarray, out: np.ndarray,
            epilogue: Sequence[str]) -> Any:
    """run(x, w, *extras, out) of a 1x1, stride 1, unpadded NCHW convolution (w [Cout, Cin,
    1, 1]) as one packed GEMM per image, or None where the shape rule keeps numpy."""
    n, c, h, wd = x.shape
    cout = w.shape[0]
    if x.dtype != np.float32 or not _worth_it(cout, h * wd, c):
        return None
    g = _gemm("conv", np.ascontiguousarray(w.reshape(cout, c)), epilogue)
    if g is None:
        return None
    kinds = g.kinds

    def prepare(x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> Any:
        xs = x.reshape(n, c, h * wd)
        os_ = out.reshape(n, cout, h * wd)
        es = [e.reshape(-1) if kind == "bias" else e.reshape(n, cout, h * wd)
              for e, kind in zip(extras, kinds)]
        per_image = [g.prepare(xs[i], os_[i], [e if kind == "bias" else e[i]
                                               for e, kind in zip(es, kinds)])
                     for i in range(n)]
        if n == 1:
            return per_image[0]

        def run_all() -> None:
            for f in per_image:
                f()
        return run_all
    return _checked(prepare, kinds, out.shape, cout)


def matmul(x: np.ndarray, y: np.ndarray, out: np.ndarray, attrs: dict[str, Any],
           epilogue: Sequence[str]) -> Any:
    """(scratch requests, bind) of x [..., K] @ a constant weight y [K, N] (or [N, K] with
    transpose_y), every leading dim of x one GEMM's rows; None where numpy stays."""
    if attrs["transpose_x"] or y.ndim != 2 or x.ndim < 2 or x.dtype != np.float32 \
            or y.dtype != np.float32 or out.ndim != x.ndim:
        return None
    w = np.ascontiguousarray(y.T if attrs["transpose_y"] else y)
    k, n = w.shape
    rows = int(np.prod(x.shape[:-1]))
    if not _worth_it(rows, n, k) or x.shape[-1] != k:
        return None
    g = _gemm("matmul", w, epilogue)
    if g is None:
        return None
    kinds = g.kinds

    def bind(arrays: list[np.ndarray]) -> Any:
        scratch = arrays[0]

        def prepare(x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> Any:
            es = [e.reshape(-1) if kind == "bias" else e.reshape(rows, n)
                  for e, kind in zip(extras, kinds)]
            return g.prepare(x.reshape(rows, k), out.reshape(rows, n), es, scratch)
        return _checked(prepare, kinds, out.shape, n)
    return [("gemm-packed-rows", (g.packed_rows_size(rows),), np.float32)], bind
