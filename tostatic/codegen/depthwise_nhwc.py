"""Depthwise convolution, NHWC (one filter per channel), with strides, paddings, dilations
and an epilogue (bias, residual add, activation) applied to each output vector before its one
store: the kernel the `choose-layout` pass puts MobileNetV2's depthwise layers on.

In NHWC the channels are contiguous, so a vector holds V channels (16 floats with AVX-512) of
one output pixel: a 3x3 tap is one load and one multiply-add whatever the stride, and a 64-byte
vector is one cache line (the NCHW kernel, codegen/depthwise.py, vectorises along a row of
7-112 pixels, with shuffles for stride 2 and a padded copy of every plane). Padding needs no
copy either: a tap outside the image reads a zero vector instead (its pointer is a select), so
it adds 0 * w, as the numpy reference, which pads with zeros, does. Taps are summed in the
reference's order (ops/conv.py: tap (0, 0) first, no fused multiply-add), so results agree
with it to the last bit. Loops: output rows (the thread split), channel blocks (the kh * kw
weight vectors and the bias stay in registers; the split where rows are few), output
pixels. Channels beyond a multiple of V run as one masked block.
"""
from __future__ import annotations

import ctypes
from typing import Any, Sequence

import numpy as np
from llvmlite import ir

from tostatic.codegen import emit, threads
from tostatic.codegen.calls import CallCache, PreparedKernel
from tostatic.codegen.depthwise import MACS_PER_ELEMENT, lanes
from tostatic.codegen.emit import I32, I64, PTR, VALUE_TYPES
from tostatic.ir import scalar_expr as se

_FUNCS: dict[tuple[Any, ...], Any] = {}
# dims argument: [H, W, C, OH, OW, pad_top, pad_left, first and end output column with all
# taps inside, first row, end row, first channel, end channel] (rows: N * OH; the first
# channel a multiple of the vector's lanes)
_DIMS = 13
# a part of the row split: at least this many elements (MACs / MACS_PER_ELEMENT); below
# threads.MIN_NATIVE_ELEMENTS, as MobileNetV2's 14x14 and 7x7 layers (20-40 us on one thread)
MIN_PART_ELEMENTS = 1 << 12
# output pixels a step of the inner loop (independent sums hide the latency; the kh * kw
# weight vectors are loaded once for them), the larger first, then the rest one at a time.
# 8 then 4, against 4 alone: MobileNetV2's 17 layers 0.52 -> 0.43 ms (one thread; 16 then 8
# then 4: 0.48, as the sums spill; a 7x7 plane's 5 inner columns need the 4)
UNROLL = (8, 4)


def _module(dtype: str, ksize: tuple[int, int], strides: tuple[int, int],
            dilations: tuple[int, int], expr: se.Expr | None,
            kinds: tuple[str, ...]) -> emit.KernelModule:
    """void k(x, w [kh*kw, C], extras (pointers), out, i64 *dims, zeros [W*C + V])."""
    t = VALUE_TYPES[dtype]
    n = lanes(dtype)
    vt = ir.VectorType(t, n)
    (kh, kw), (sh, sw), (dh, dw) = ksize, strides, dilations
    km = emit.KernelModule()
    fn, b = km.function("dwn", [PTR] * 6, noalias=4)
    x, w, extras_p, out, dims_p, zeros = fn.args
    h, wd, c, oh, ow, pt, pl, lo, hi, first, end, c0, c1 = (
        b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64), typ=I64) for i in range(_DIMS))
    extras = [b.load(b.gep(extras_p, [emit.i64(k)], source_etype=PTR), typ=PTR)
              for k in range(len(kinds))]
    load_fn, store_fn = emit.masked_load_store(km.module, vt)
    size = np.dtype(dtype).itemsize
    zero_v = ir.Constant(vt, None)
    lane_ids = ir.Constant(ir.VectorType(I64, n), list(range(n)))

    def vload(p: Any, mask: Any) -> Any:
        if mask is None:
            return b.load(p, typ=vt, align=size)
        return b.call(load_fn, [p, I32(size), mask, zero_v])

    def vstore(v: Any, p: Any, mask: Any) -> None:
        if mask is None:
            b.store(v, p, align=size)
        else:
            b.call(store_fn, [v, p, I32(size), mask])

    def inside(v: Any, limit: Any) -> Any:
        return b.and_(b.icmp_signed(">=", v, emit.i64(0)), b.icmp_signed("<", v, limit))

    wc = b.mul(wd, c)
    with emit.loop(b, first, end) as row:  # (image, output row)
        img, r = b.sdiv(row, oh), b.srem(row, oh)
        xi = emit.element(b, x, b.mul(img, b.mul(h, wc)), dtype)
        rows = []
        for i in range(kh):  # a row outside the image: the zero row
            ih = b.add(b.sub(b.mul(r, emit.i64(sh)), pt), emit.i64(i * dh))
            rows.append(b.select(inside(ih, h), emit.element(b, xi, b.mul(ih, wc), dtype),
                                 zeros))
        orow = emit.element(b, out, b.mul(row, b.mul(ow, c)), dtype)
        zrow = emit.element(b, zeros, emit.i64(0), dtype)

        def pixels(qs: list[Any], checked: bool) -> None:
            """Output pixels qs, all their channels: vector blocks, then a masked one.
            `checked`: a column outside the image reads the zero row."""
            offs = []  # per pixel, per kernel column: (inside, element offset of the pixel)
            for q in qs:
                base = b.sub(b.mul(q, emit.i64(sw)), pl)
                offs.append([(inside(iw, wd) if checked else None, b.mul(iw, c))
                             for iw in (b.add(base, emit.i64(j * dw)) for j in range(kw))])
            taps = []  # per pixel, per tap: the pointer to its channel 0
            for cols in offs:
                ptrs = []
                for rp in rows:
                    for ok, off in cols:
                        p = emit.element(b, rp, off, dtype)
                        ptrs.append(p if ok is None else b.select(ok, p, zrow))
                taps.append(ptrs)

            def channels(cb: Any, mask: Any) -> None:
                weights = [vload(emit.element(b, w, b.add(b.mul(emit.i64(k), c), cb), dtype),
                                 mask) for k in range(kh * kw)]
                accs: list[Any] = [None] * len(qs)
                for k in range(kh * kw):  # the pixels' sums interleaved (independent chains)
                    for u, ptrs in enumerate(taps):
                        v = vload(emit.element(b, ptrs[k], cb, dtype), mask)
                        prod = b.fmul(v, weights[k])
                        accs[u] = prod if accs[u] is None else b.fadd(accs[u], prod)
                for q, acc in zip(qs, accs):
                    at = b.add(b.mul(q, c), cb)
                    if expr is not None:
                        def leaf(e: int, acc: Any = acc, at: Any = at) -> Any:
                            if e == 0:
                                return acc
                            if kinds[e - 1] == "bias":
                                return vload(emit.element(b, extras[e - 1], cb, dtype), mask)
                            return vload(emit.element(
                                b, extras[e - 1], b.add(b.mul(row, b.mul(ow, c)), at), dtype),
                                mask)
                        acc = emit.vector_expr(b, expr, leaf, n)
                    vstore(acc, emit.element(b, orow, at, dtype), mask)

            with emit.loop(b, c0, b.sub(c1, emit.i64(n - 1)), n) as cb:
                channels(cb, None)
            cb = b.add(c0, b.mul(b.sdiv(b.sub(c1, c0), emit.i64(n)), emit.i64(n)))
            with b.if_then(b.icmp_signed("<", cb, c1)):
                channels(cb, b.icmp_signed("<", lane_ids, emit.splat(b, b.sub(c1, cb), n)))

        # columns [lo, hi) have every tap inside the image: no selects, UNROLL at a time
        with emit.loop(b, 0, lo) as q:
            pixels([q], True)
        start = lo
        for unroll in UNROLL:
            steps = b.sdiv(b.sub(hi, start), emit.i64(unroll))
            mid = b.add(start, b.mul(steps, emit.i64(unroll)))
            with emit.loop(b, start, mid, unroll) as q:
                pixels([b.add(q, emit.i64(u)) for u in range(unroll)], False)
            start = mid
        with emit.loop(b, start, hi) as q:
            pixels([q], False)
        with emit.loop(b, hi, ow) as q:
            pixels([q], True)
    b.ret_void()
    return km


def _kernel(dtype: str, ksize: tuple[int, int], strides: tuple[int, int],
            dilations: tuple[int, int], expr: se.Expr | None, kinds: tuple[str, ...]) -> Any:
    key = (dtype, ksize, strides, dilations, expr, kinds)
    f = _FUNCS.get(key)
    if f is None:
        address = emit.compile_recipe(
            ("depthwise-nhwc", *key),
            lambda: _module(dtype, ksize, strides, dilations, expr, kinds), ["dwn"])["dwn"]
        f = _FUNCS[key] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 6)(address)
    return f


class DepthwiseNHWC(PreparedKernel):
    """An NHWC depthwise convolution (filter [C, 1, kh, kw], one output channel per input
    channel) bound to its input shape, strides, paddings, dilations and epilogue (`expr` and
    the extras' `kinds`, see epilogue.epilogue_expr): `run(x, extras, out)`; a bias extra is
    [C], a residual the result's shape."""

    def __init__(self, x_shape: Sequence[int], w: np.ndarray, strides: tuple[int, int],
                 pads: tuple[tuple[int, int], tuple[int, int]], dilations: tuple[int, int],
                 expr: se.Expr | None = None, kinds: tuple[str, ...] = ()):
        dtype = w.dtype.name
        n, h, wd, c = x_shape
        cout, cg, kh, kw = w.shape
        (sh, sw), (dh, dw), ((pt, pb), (pl, pr)) = strides, dilations, pads
        if dtype not in se.FLOATS or cg != 1 or cout != c or min(pt, pb, pl, pr) < 0:
            raise se.NotScalar(f"NHWC depthwise conv of {dtype} {list(w.shape)}, {c} channels")
        oh = (h + pt + pb - (dh * (kh - 1) + 1)) // sh + 1
        ow = (wd + pl + pr - (dw * (kw - 1) + 1)) // sw + 1
        if oh <= 0 or ow <= 0 or c == 0:
            raise se.NotScalar("NHWC depthwise conv with an empty output")
        self.shape = (n, oh, ow, c)
        self.w = np.ascontiguousarray(w.reshape(c, kh * kw).T)  # [tap, C]
        self.zeros = np.zeros(wd * c + lanes(dtype), dtype=w.dtype)  # a zero row
        self.f = _kernel(dtype, (kh, kw), (sh, sw), (dh, dw), expr, kinds)
        lo = min(ow, -(-pl // sw))
        hi = max(lo, min(ow, (wd - 1 - (kw - 1) * dw + pl) // sw + 1))
        self.dims = [h, wd, c, oh, ow, pt, pl, lo, hi, 0, n * oh, 0, c]
        self.rows, self.cost = n * oh, ow * c * kh * kw
        self.dtype = w.dtype
        self.calls = CallCache()

    def _spans(self) -> list[list[int]]:
        """Each part's dims: a band of output rows, or, where the rows are fewer than the
        parts a split makes (MobileNetV2's 7x7 planes at batch 1: 7 rows), a band of
        channel blocks over all rows: 7 rows split 4 / 3, 960 channels 30 / 30 blocks, and
        the 1x1 convolutions around it split such planes by output channels too
        (codegen/gemm.py), so each core reads the channels it wrote (2 threads: 20.5 ->
        16.5 us a layer). On more rows, bands of channels measured slower (14x14x384:
        19 -> 21 us; 112x112x32: 80 -> 250): each part computes every pixel's taps."""
        c = self.dims[2]
        blocks = -(-c // lanes(self.dtype.name))
        work = self.cost // MACS_PER_ELEMENT
        head = self.dims[:9]
        if self.rows < threads.num_threads() * threads.PARTS_PER_THREAD and blocks > self.rows:
            parts = threads.parts_for(blocks, work * self.rows // blocks, MIN_PART_ELEMENTS)
            step = lanes(self.dtype.name)
            return [head + [0, self.rows, a * step, min(c, b * step)]
                    for a, b in threads.bounds(blocks, parts)]
        parts = threads.parts_for(self.rows, work, MIN_PART_ELEMENTS)
        return [head + [a, b, 0, c] for a, b in threads.bounds(self.rows, parts)]

    def _prepare(self, x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> Any:
        if not out.flags.c_contiguous:
            raise ValueError("NHWC depthwise conv: the result must be contiguous")
        ptrs = (ctypes.c_void_p * max(1, len(extras)))(*[e.ctypes.data for e in extras])
        base = (x.ctypes.data, self.w.ctypes.data, ctypes.addressof(ptrs), out.ctypes.data)
        zeros = self.zeros.ctypes.data
        spans = self._spans()
        if len(spans) > 1:  # a part each, machine code only: no GIL switch to hand it over
            dims = np.array(spans, np.int64)
            parts = len(spans)
            calls = threads.part_calls(self.f, base, dims, [zeros] * parts)

            def split() -> None:
                _keep = (ptrs, x, extras, out, dims)  # noqa: F841 (as below)
                threads.parallel_calls(calls)
            return split

        whole = np.array(self.dims, np.int64)
        dims_at = whole.ctypes.data

        def call() -> None:
            _keep = (ptrs, x, extras, out, whole)  # noqa: F841 (alive while the call may run)
            self.f(*base, dims_at, zeros)
        return call


def depthwise_conv2d_nhwc(x: np.ndarray, w: np.ndarray, strides: tuple[int, int],
                          pads: tuple[tuple[int, int], tuple[int, int]],
                          dilations: tuple[int, int], expr: se.Expr | None = None,
                          kinds: tuple[str, ...] = (),
                          extras: Sequence[np.ndarray] = ()) -> np.ndarray:
    """x [N, H, W, C], w [C, 1, kh, kw], pads ((top, bottom), (left, right)), then the
    epilogue `expr` of the extras `kinds` (epilogue.epilogue_expr)."""
    if x.dtype.name not in se.FLOATS or w.dtype != x.dtype:
        raise se.NotScalar(f"NHWC depthwise conv of {x.dtype} x {w.dtype}")
    k = DepthwiseNHWC(x.shape, w, strides, pads, dilations, expr, kinds)
    out = np.empty(k.shape, dtype=x.dtype)
    if out.size:
        k.run(x, [np.asarray(e, dtype=x.dtype).reshape(-1) if kind == "bias" else e
                  for e, kind in zip(extras, kinds)], out)
    return out
