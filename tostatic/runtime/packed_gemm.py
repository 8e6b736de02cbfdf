"""Where the plan runs codegen's pre-packed GEMM (codegen/gemm.py) instead of numpy's matmul:
float32 products with a constant weight, packed once at bind, their epilogue fused.

The shape rule comes from a table measured here (one thread, OpenBLAS 0.3 SkylakeX kernel,
interleaved medians of thread CPU time, operands in cache, no epilogue; ms, OpenBLAS -> ours):

    x[128,256] @ W[256,768]    0.229 -> 0.190    W[96,16] @ X[16,12544]     0.235 -> 0.177
    x[128,256] @ W[256,256]    0.079 -> 0.063    W[24,144] @ X[144,3136]    0.115 -> 0.089
    x[128,256] @ W[256,1024]   0.307 -> 0.253    W[576,96] @ X[96,196]      0.092 -> 0.087
    x[128,1024] @ W[1024,256]  0.364 -> 0.252    W[1280,320] @ X[320,49]    0.206 -> 0.197
    x[8,512] @ W[512,512]      0.060 -> 0.017    W[64,256] @ X[256,3136]    0.465 -> 0.400
    x[1,512] @ W[512,512]      0.012 -> 0.009    W[512,2048] @ X[2048,49]   0.533 -> 0.495
    x[1,512] @ W[512,10]       0.0019 -> 0.0015  W[256,256] @ X[256,16]     0.0136 -> 0.0097
    x[1,2048] @ W[2048,1000]   0.090 -> 0.093    W[256,256] @ X[256,4]      0.0036 -> 0.0103

With the weight coming from memory, as in a model, the gap widens (x[1,1280] @ W[1280,1000]:
0.153 -> 0.057 ms; W[1280,320] @ X[320,49]: 0.283 -> 0.213 ms), and the fused epilogue saves
numpy's extra pass over the result (BERT's 16 encoder GEMMs with bias / gelu / residual:
4.09 -> 3.25 ms; MobileNetV2's 34 1x1 convolutions with bias / relu6 / residual: 2.93 ->
2.40 ms; ResNet-50's 32 stride-1 1x1s: 15.2 -> 14.0 ms).

Matmuls take it at every size (a GEMV is bound by reading the weight either way, and the call
costs 0.5 us against numpy's 0.9). A 1x1 convolution's columns are its pixels, along the
vectors: below MIN_PIXELS most lanes are masked off and numpy's matrix-vector kernels win.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic import codegen
from tostatic.codegen.threads import (CALL_ARGS, MIN_NATIVE_ELEMENTS, parallel_calls,
                                      parallel_for, parts_for)
from tostatic.codegen.calls import CallCache
from tostatic.ir.scalar_expr import NotScalar

MIN_PIXELS = 8
# a 1x1 convolution whose input or output is over this: its GEMMs are streamed (gemm's
# PackedGemm(streamed=True)); none at batch 1 (ResNet-50's largest, 256 x 56 x 56, 3.2 MB)
STREAM_BYTES = 4 << 20


def _gemm(mode: str, w: np.ndarray, epilogue: Sequence[str], streamed: bool = False) -> Any:
    """codegen's PackedGemm for the weight and epilogue, or None (numpy kernels asked for,
    no AVX-512, a step without code)."""
    if not codegen.enabled() or w.dtype != np.float32:
        return None
    from tostatic.codegen import epilogue as epi, gemm  # llvmlite loads on first use
    if not gemm.available():
        return None
    try:
        expr, kinds = epi.epilogue_expr(epilogue, "float32") if epilogue else (None, ())
        return gemm.PackedGemm(mode, w, expr, kinds, streamed)
    except (NotScalar, KeyError):
        return None


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]  # (ctypes.data costs 1.3 us, this 0.9)


def _checked(template: Any, kinds: Sequence[str], out_shape: tuple[int, ...], n: int,
             rows_in_place: int = 0) -> Any:
    """run(x, w, *extras, out) of template(x, extras, out) -> call(x address, out address,
    extras' addresses), made once per layout (shapes and strides).

    When the same array objects come back (the plan's own buffers), the call with their
    addresses is kept by their ids and costs nothing more; else (a reshape's view, or an
    op's fresh result, is a new object each run) the addresses are read each call, 1 us an
    array. Extras of another layout, or overlapping the output (partial sums are stored
    there before the last K block reads them), go through contiguous copies. rows_in_place
    (a matmul's K): a 2-D x whose rows are apart (BERT's pooler reads the first token of each
    sequence) is read where it lies, not copied (the copy's numpy calls cost 40-90 us after
    a model's kernels left Python's own data out of cache, for a 15 us GEMM)."""
    by_id = CallCache()
    by_layout: dict[tuple[Any, ...], Any] = {}
    last: list[tuple[int, ...]] = [()]

    def layout_call(x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> Any:
        key = tuple((a.shape, a.strides) for a in (x, out, *extras))
        f = by_layout.get(key)
        if f is None:
            if len(by_layout) >= 8:
                by_layout.clear()
            f = by_layout[key] = template(x, extras, out)
        return f

    def rows_apart(x: np.ndarray) -> bool:
        st = x.strides
        return bool(rows_in_place) and x.ndim == 2 and x.dtype == np.float32 \
            and st[1] == 4 and st[0] % 4 == 0 and st[0] >= 4 * rows_in_place

    def fits(x: np.ndarray, out: np.ndarray, extras: Sequence[np.ndarray]) -> bool:
        return ((x.flags.c_contiguous and x.dtype == np.float32 or rows_apart(x))
                and all(a.flags.c_contiguous and a.dtype == np.float32 for a in (out, *extras))
                and all(e.size == n if kind == "bias" else e.shape == out_shape
                        for e, kind in zip(extras, kinds))
                and not any(np.may_share_memory(out, e) for e in extras))

    def copied(x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float32)
        es = [np.ascontiguousarray(np.broadcast_to(e, out_shape) if kind == "add"
                                   else e.reshape(-1), dtype=np.float32)
              for e, kind in zip(extras, kinds)]
        tmp = np.empty(out_shape, np.float32)
        layout_call(x, es, tmp)(_address(x), _address(tmp), [_address(e) for e in es])
        np.copyto(out, tmp)

    def run(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray, out: np.ndarray) -> None:
        arrays = (x, out, *extras)
        ids = tuple(map(id, arrays))
        entry = by_id.entries.get(ids)
        if entry is not None:
            entry[1]()
            return
        if not fits(x, out, extras):
            copied(x, extras, out)
            return
        f = layout_call(x, extras, out)
        addresses = (_address(x), _address(out), [_address(e) for e in extras])
        if ids == last[0]:  # the same objects twice: their call kept from now on
            by_id.get(arrays, lambda: lambda: f(*addresses))()
            return
        last[0] = ids
        f(*addresses)
    return run


def conv1x1(x: np.ndarray, w: np.ndarray, out: np.ndarray,
            epilogue: Sequence[str]) -> Any:
    """run(x, w, *extras, out) of a 1x1, stride 1, unpadded NCHW convolution (w [Cout, Cin,
    1, 1]) as one packed GEMM per image, or None where the shape rule keeps numpy."""
    n, c, h, wd = x.shape
    cout = w.shape[0]
    if x.dtype != np.float32 or h * wd < MIN_PIXELS or c == 0 or n == 0:
        return None
    streamed = 4 * n * max(c, cout) * h * wd > STREAM_BYTES
    g = _gemm("conv", np.ascontiguousarray(w.reshape(cout, c)), epilogue, streamed)
    if g is None:
        return None
    kinds = g.kinds

    def template(x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> Any:
        xs = x.reshape(n, c, h * wd)
        os_ = out.reshape(n, cout, h * wd)
        es = [e.reshape(-1) if kind == "bias" else e.reshape(n, cout, h * wd)
              for e, kind in zip(extras, kinds)]
        first = (xs[0], os_[0], [e if kind == "bias" else e[0] for e, kind in zip(es, kinds)])
        if n == 1:
            return g.prepare(*first)
        # several images: each thread takes whole images (one hand-off a call, not one an
        # image), with a call of its own (a call holds its extras' addresses), by first image
        calls: dict[int, Any] = {}
        xstep, ostep = xs.strides[0], os_.strides[0]
        esteps = [0 if kind == "bias" else e.strides[0] for e, kind in zip(es, kinds)]

        work = 2 * cout * c * h * wd // 64
        rows: dict[tuple[int, ...], tuple[np.ndarray, Any]] = {}

        def images(xa: int, oa: int, ea: Sequence[int]) -> None:
            if parts_for(n, work, MIN_NATIVE_ELEMENTS) > 1:
                # machine code: an image a part, taken by whichever thread is free, with no
                # GIL switch (threads.parallel_calls)
                key = (xa, oa, *ea)
                if key not in rows:
                    if len(rows) > 8:
                        rows.clear()
                    one = calls.get(0) or calls.setdefault(0, g.prepare(*first, split=False))
                    made = [one.row(xa + i * xstep, oa + i * ostep,
                                    [a + i * s for a, s in zip(ea, esteps)]) for i in range(n)]
                    table = np.zeros((n, 1 + CALL_ARGS), np.int64)
                    for i, (call, _) in enumerate(made):
                        table[i, :len(call)] = call
                    rows[key] = (table, made)
                parallel_calls(rows[key][0])
                return

            def part(lo: int, hi: int) -> None:
                call = calls.get(lo)
                if call is None:
                    call = calls[lo] = g.prepare(*first, split=False)
                for i in range(lo, hi):
                    call(xa + i * xstep, oa + i * ostep,
                         [a + i * s for a, s in zip(ea, esteps)])
            parallel_for(n, work, part)
        return images
    return _checked(template, kinds, out.shape, cout)


def matmul(x: np.ndarray, y: np.ndarray, out: np.ndarray, attrs: dict[str, Any],
           epilogue: Sequence[str]) -> Any:
    """run(x, y, *extras, out) of x [..., K] @ a constant weight y [K, N] (or [N, K] with
    transpose_y), every leading dim of x one GEMM's rows; None where numpy stays."""
    if attrs["transpose_x"] or y.ndim != 2 or x.ndim < 2 or x.dtype != np.float32 \
            or y.dtype != np.float32 or out.ndim != x.ndim:
        return None
    w = np.ascontiguousarray(y.T if attrs["transpose_y"] else y)
    k, n = w.shape
    rows = int(np.prod(x.shape[:-1]))
    if x.shape[-1] != k or k == 0:  # (no K: the kernel would write nothing)
        return None
    g = _gemm("matmul", w, epilogue)
    if g is None:
        return None
    kinds = g.kinds

    def template(x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> Any:
        es = [e.reshape(-1) if kind == "bias" else e.reshape(rows, n)
              for e, kind in zip(extras, kinds)]
        return g.prepare(x.reshape(rows, k), out.reshape(rows, n), es)
    return _checked(template, kinds, out.shape, n, rows_in_place=k)
