"""A direct convolution to an NHWC result for few input channels (a network's stem: 3 colour
channels, a 3x3 filter: 27 products a value), with its epilogue applied before the one store.

An NHWC im2col of 3 channels copies runs of 3-9 floats, and the NCHW route needs the whole
result transposed before an NHWC chain. Here each output pixel keeps its C_out values
(at most MAX_VECTORS vectors) in registers: every tap's input value, read where it lies
through the input's element strides (so the transposed view of an NCHW image is read in
place, not copied), is broadcast and multiply-added into them with the tap's row of the
packed filter [kh * kw * C_in, C_out rounded up to vectors]; UNROLL pixels at a time, so
their sums are independent chains. A tap outside the image reads a zero (its pointer and
channel stride are selected). Sums are fused multiply-adds: results agree with the numpy
reference (a GEMM) to rounding.
"""
from __future__ import annotations

import ctypes
from typing import Any, Sequence

import numpy as np
from llvmlite import ir

from tostatic.codegen import emit, threads
from tostatic.codegen.calls import CallCache
from tostatic.codegen.depthwise import lanes
from tostatic.codegen.emit import I32, I64, PTR, VALUE_TYPES
from tostatic.ir import scalar_expr as se

_FUNCS: dict[tuple[Any, ...], Any] = {}
MAX_INPUT_CHANNELS = 4
MAX_VECTORS = 4  # C_out up to 64 floats (AVX-512)
UNROLL = 4
# the row split as machine-code parts (threads.parallel_calls: no GIL switch, up to
# PARTS_PER_THREAD a thread, so a pool thread waking late after an idle costs the caller no
# wait); False: Python parts (threads.parallel_for), for A/B runs
NATIVE_SPLIT = True
# dims: [H, W, OH, OW, pad_top, pad_left, stride n, h, w, c of x (elements), first row,
# end row] (rows: N * OH)
_DIMS = 12


def _module(dtype: str, cin: int, cout: int, ksize: tuple[int, int],
            strides: tuple[int, int], dilations: tuple[int, int], expr: se.Expr | None,
            kinds: tuple[str, ...]) -> emit.KernelModule:
    """void k(x, w packed, extras (pointers), out, i64 *dims, zero)."""
    t = VALUE_TYPES[dtype]
    n = lanes(dtype)
    nv = -(-cout // n)
    vt = ir.VectorType(t, n)
    mt = ir.VectorType(ir.IntType(1), n)
    (kh, kw), (sh, sw), (dh, dw) = ksize, strides, dilations
    km = emit.KernelModule()
    fn, b = km.function("conv", [PTR] * 6, noalias=4)
    x, w, extras_p, out, dims_p, zero = fn.args
    h, wd, oh, ow, pt, pl, s_n, s_h, s_w, s_c, first, end = (
        b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64), typ=I64) for i in range(_DIMS))
    extras = [b.load(b.gep(extras_p, [emit.i64(k)], source_etype=PTR), typ=PTR)
              for k in range(len(kinds))]
    suffix = f"v{n}{'f32' if dtype == 'float32' else 'f64'}"
    fma = ir.Function(km.module, ir.FunctionType(vt, [vt] * 3), f"llvm.fma.{suffix}")
    load_fn, store_fn = emit.masked_load_store(km.module, vt)
    size = np.dtype(dtype).itemsize
    tail = cout - (nv - 1) * n
    last_mask = None if tail == n else ir.Constant(mt, [lane < tail for lane in range(n)])
    zero_v = ir.Constant(vt, None)

    def inside(v: Any, limit: Any) -> Any:
        return b.and_(b.icmp_signed(">=", v, emit.i64(0)), b.icmp_signed("<", v, limit))

    def vload(p: Any, mask: Any) -> Any:
        if mask is None:
            return b.load(p, typ=vt, align=size)
        return b.call(load_fn, [p, I32(size), mask, zero_v])

    with emit.loop(b, first, end) as row:
        img, r = b.sdiv(row, oh), b.srem(row, oh)
        xi = b.mul(img, s_n)
        rows = []
        for i in range(kh):
            ih = b.add(b.sub(b.mul(r, emit.i64(sh)), pt), emit.i64(i * dh))
            rows.append((inside(ih, h), b.add(xi, b.mul(ih, s_h))))
        orow = emit.element(b, out, b.mul(row, b.mul(ow, emit.i64(cout))), dtype)

        def pixels(qs: list[Any]) -> None:
            accs = [[zero_v] * nv for _ in qs]
            for i, (rok, roff) in enumerate(rows):
                for j in range(kw):
                    for u, q in enumerate(qs):
                        iw = b.add(b.sub(b.mul(q, emit.i64(sw)), pl), emit.i64(j * dw))
                        ok = b.and_(rok, inside(iw, wd))
                        p = b.select(ok, emit.element(b, x, b.add(roff, b.mul(iw, s_w)), dtype),
                                     zero)
                        step = b.select(ok, s_c, emit.i64(0))
                        for ci in range(cin):
                            v = emit.load(b, p, b.mul(step, emit.i64(ci)), dtype)
                            s = emit.splat(b, v, n)
                            k = (i * kw + j) * cin + ci
                            for vi in range(nv):
                                wv = b.load(emit.element(b, w, emit.i64((k * nv + vi) * n),
                                                         dtype), typ=vt, align=size)
                                accs[u][vi] = b.call(fma, [s, wv, accs[u][vi]])
            for q, acc in zip(qs, accs):
                for vi in range(nv):
                    mask = last_mask if vi == nv - 1 else None
                    at = b.add(b.mul(q, emit.i64(cout)), emit.i64(vi * n))
                    value = acc[vi]
                    if expr is not None:
                        def leaf(e: int, value: Any = value, at: Any = at, mask: Any = mask,
                                 vi: int = vi) -> Any:
                            if e == 0:
                                return value
                            if kinds[e - 1] == "bias":
                                return vload(emit.element(b, extras[e - 1], emit.i64(vi * n),
                                                          dtype), mask)
                            return vload(emit.element(b, extras[e - 1], b.add(
                                b.mul(row, b.mul(ow, emit.i64(cout))), at), dtype), mask)
                        value = emit.vector_expr(b, expr, leaf, n)
                    p = emit.element(b, orow, at, dtype)
                    if mask is None:
                        b.store(value, p, align=size)
                    else:
                        b.call(store_fn, [value, p, I32(size), mask])

        full = b.mul(b.sdiv(ow, emit.i64(UNROLL)), emit.i64(UNROLL))
        with emit.loop(b, 0, full, UNROLL) as q:
            pixels([b.add(q, emit.i64(u)) for u in range(UNROLL)])
        with emit.loop(b, full, ow) as q:
            pixels([q])
    b.ret_void()
    return km


def _kernel(*key: Any) -> Any:
    f = _FUNCS.get(key)
    if f is None:
        address = emit.compile_recipe(("direct-conv-nhwc", *key), lambda: _module(*key),
                                      ["conv"])["conv"]
        f = _FUNCS[key] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 6)(address)
    return f


class DirectConvNHWC:
    """A convolution (groups 1, filter [C_out, C_in, kh, kw], C_in <= MAX_INPUT_CHANNELS,
    C_out <= MAX_VECTORS vectors) of an input of logical shape [N, H, W, C_in] (any
    strides) to a contiguous NHWC result, with its epilogue: `run(x, extras, out)`."""

    def __init__(self, x_shape: Sequence[int], w: np.ndarray, strides: tuple[int, int],
                 pads: tuple[tuple[int, int], tuple[int, int]], dilations: tuple[int, int],
                 expr: se.Expr | None = None, kinds: tuple[str, ...] = ()):
        dtype = w.dtype.name
        n, h, wd, c = x_shape
        cout, cg, kh, kw = w.shape
        v = lanes(dtype)
        (sh, sw), (dh, dw), ((pt, pb), (pl, pr)) = strides, dilations, pads
        if (dtype not in se.FLOATS or cg != c or c > MAX_INPUT_CHANNELS or cout == 0
                or -(-cout // v) > MAX_VECTORS or min(pt, pb, pl, pr) < 0):
            raise se.NotScalar(f"direct NHWC conv of {dtype} {list(w.shape)}")
        oh = (h + pt + pb - (dh * (kh - 1) + 1)) // sh + 1
        ow = (wd + pl + pr - (dw * (kw - 1) + 1)) // sw + 1
        if oh <= 0 or ow <= 0:
            raise se.NotScalar("direct NHWC conv with an empty output")
        self.shape = (n, oh, ow, cout)
        nv = -(-cout // v)
        packed = np.zeros((kh, kw, c, nv * v), w.dtype)
        packed[..., :cout] = w.transpose(2, 3, 1, 0)
        self.w = packed
        self.zero = np.zeros(1, w.dtype)
        self.f = _kernel(dtype, c, cout, (kh, kw), (sh, sw), (dh, dw), expr, kinds)
        self.dims = [h, wd, oh, ow, pt, pl]
        self.rows, self.cost = n * oh, ow * cout * kh * kw * c
        self.dtype = w.dtype
        self.calls = CallCache()

    def run(self, x: np.ndarray, extras: Sequence[np.ndarray], out: np.ndarray) -> None:
        if x.dtype != self.dtype or not out.flags.c_contiguous or any(
                st % x.itemsize for st in x.strides):
            raise ValueError("direct NHWC conv: input of the filter's dtype, contiguous result")
        es = [e if e.flags.c_contiguous else np.ascontiguousarray(e) for e in extras]
        # x is often a new view each run (a transpose's): its address is read per call
        self.calls.get((out, *es), lambda: self._prepare(es, out))(
            x.__array_interface__["data"][0], x.strides, x)

    def _prepare(self, extras: Sequence[np.ndarray], out: np.ndarray) -> Any:
        ptrs = (ctypes.c_void_p * max(1, len(extras)))(*[e.ctypes.data for e in extras])
        rest = (self.w.ctypes.data, ctypes.addressof(ptrs), out.ctypes.data)
        zero = self.zero.ctypes.data
        chunks: dict[tuple[Any, ...], tuple[np.ndarray, int]] = {}
        itemsize = self.dtype.itemsize

        def call(xa: int, strides: tuple[int, ...], x: np.ndarray) -> None:
            if NATIVE_SPLIT and threads.num_threads() > 1:
                parts = threads.parts_for(self.rows, self.cost // 8, threads.MIN_NATIVE_ELEMENTS)
                if parts > 1:  # output rows a part, taken with no GIL switch (parallel_calls)
                    key = (strides, parts)
                    table = chunks.get(key)
                    if table is None:
                        if len(chunks) > 16:
                            chunks.clear()
                        dims = np.array([self.dims + [s // itemsize for s in strides] + [a, b]
                                         for a, b in threads.bounds(self.rows, parts)], np.int64)
                        calls = threads.part_calls(self.f, [0, *rest], dims, [zero] * parts)
                        table = chunks[key] = (calls, dims)
                    _keep = (ptrs, extras, out, table)  # noqa: F841 (alive while it runs)
                    table[0][:, 1] = xa  # (one call at a time uses the table)
                    threads.parallel_calls(table[0])
                    return

            def chunk(a: int, b: int) -> None:
                dims = chunks.get((strides, a, b))
                if dims is None:
                    if len(chunks) > 16:
                        chunks.clear()
                    arr = np.array(self.dims + [s // itemsize for s in strides] + [a, b],
                                   dtype=np.int64)
                    dims = chunks[(strides, a, b)] = (arr, arr.ctypes.data)
                self.f(xa, *rest, dims[1], zero)
            _keep = (ptrs, extras, out)  # noqa: F841 (alive while the call may run)
            threads.parallel_for(self.rows, self.cost // 8, chunk)
        return call
