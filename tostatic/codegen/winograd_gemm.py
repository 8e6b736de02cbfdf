"""The tile GEMMs of a Winograd convolution: M[p] = U[p] @ V[p] for each
of the alpha^2 positions p, U [C_out, C_in] the transformed filters, V [C_in, T] the
transformed input tiles, T tiles (deep layers at batch 1: 16 tiles at 7x7, 49 at 14x14).

With few tiles BLAS's sgemm packs its 1 MB U panel on every call to use each element T times, and
runs at ~90 GFLOP/s (C=512, T=16). Here U is packed once at bind, [p, C_out / R, C_in, R]
(R output channels a block, contiguous per input channel), so each U element is read once
per call from a stream and each V row (one or a few 16-float vectors) sits in L1: per input
channel, R broadcasts of U times the V row's vectors into R x NVB accumulators held in
registers, written to M once. The U stream is prefetched 8 KiB ahead: at batch 1 the deep
layers' U (16 MB at C=512) comes from DRAM every run, and the hardware prefetcher alone kept
one core at ~14 GB/s (1.13 -> 0.69 ms). The callers' V and M rows are T rounded up to 16
long; the last vector's extra lanes are computed and not stored, or (tile_kernel) its
columns go one at a time when fewer than R. (The generated im2col's patch bands go through
codegen/gemm.py's packed GEMM.)
"""
from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir

from tostatic.codegen import emit
from tostatic.codegen.emit import F32, I32, I64, PTR
from tostatic.codegen.prepared import prepared  # (plan cache: runtime/plan_cache.py)

LANES = 16
PREFETCH = 2048  # floats ahead in the U stream (8 KiB): C=512 at 7x7 1.13 -> 0.69 ms from DRAM
TAIL_SUMS = 4  # partial sums a by-column tail column of up to 4 (_Builder._tail)
UNROLLED_STORES = 7  # tail widths up to this store their columns unrolled, wider by a loop
TAIL_CHUNK = 8  # tail columns past this go by chunks of this many (_Builder.block)


def tail_sums(width: int) -> int:
    """Partial sums a column of a `width`-column tail: up to TAIL_SUMS while width x sums
    accumulators fit in registers (R = 8: 5 columns x 2 sums cost 3% against 4 sums),
    else one (8 chains of FMAs, latency 4 x 2 pipes, are enough): 15 columns x 4 sums were
    60 accumulators of 16 lanes, spilled, and most of the R = 16 module's code generation
    (9 columns at C=512: 0.59 -> 0.45 ms with 1 sum)."""
    return min(TAIL_SUMS, -(-16 // width)) if width < TAIL_CHUNK else 1


def rows_for(cout: int, vectors: int) -> int | None:
    """R, the output channels of a register block (16 for one vector of tiles, else 8), or
    None where C_out does not divide."""
    rows = 16 if vectors == 1 else 8
    return None if cout % rows else rows


def rows_within(cout: int, width: int, max_padding: float) -> int | None:
    """rows_for `width` columns, or None where rounding them up to whole vectors would add
    more than the factor `max_padding` of work (then BLAS's GEMM is the faster)."""
    vectors = -(-width // LANES)
    return rows_for(cout, vectors) if vectors * LANES <= max_padding * width else None


def vectors_for(rows: int, vectors: int) -> int:
    """NVB, the tile vectors of a register block: R x NVB accumulators, at most 24."""
    return 1 if rows == 16 else (2 if vectors == 4 else min(vectors, 3))


@prepared
def pack(u: np.ndarray, rows: int) -> np.ndarray:
    """U [P, C_out, C_in] -> [P, C_out / R, C_in, R]."""
    p, cout, cin = u.shape
    return np.ascontiguousarray(u.reshape(p, cout // rows, rows, cin).transpose(0, 1, 3, 2))


class _Builder:
    """The intrinsics and constants the GEMM kernels share, and the register-blocked
    product of one block of R output channels (`block`)."""

    def __init__(self, km: emit.KernelModule, b: ir.IRBuilder) -> None:
        self.km, self.b = km, b
        self.outlined: dict[str, ir.Function] = {}
        self.vec = vec = ir.VectorType(F32, LANES)
        self.fma = ir.Function(km.module, ir.FunctionType(vec, [vec] * 3), "llvm.fma.v16f32")
        vec8 = ir.VectorType(F32, 8)
        self.fma8 = ir.Function(km.module, ir.FunctionType(vec8, [vec8] * 3), "llvm.fma.v8f32")
        self.mask_t = ir.VectorType(ir.IntType(1), LANES)
        _, self.masked_store = emit.masked_load_store(km.module, vec)
        self.zero = ir.Constant(vec, [0.0] * LANES)
        self.undef = ir.Constant(vec, ir.Undefined)
        self.splat = ir.Constant(ir.VectorType(I32, LANES), [0] * LANES)
        self.prefetch = ir.Function(km.module, ir.FunctionType(
            ir.VoidType(), [PTR, I32, I32, I32]), "llvm.prefetch.p0")

    def block(self, up: Any, vb: Any, mrow: Any, cin: Any, cols: Any, rows: int, nvb: int,
              ldv: Any, ldm: Any, by_column: bool = False) -> None:
        """mrow[r, :cols] = sum_k up[k, r] * vb[k, :cols] for r < R (rows ldm apart): full
        blocks of NVB vectors in a loop, then the rest; the last `cols % 16` columns, when
        fewer than R and `by_column`, one R-lane vector each (_tail: 1 FMA a column, where a
        vector of tiles makes R whatever its lanes used), else a vector with its extra lanes
        masked off. Sizes are run-time values: one small module per (R, NVB) serves every layer
        (the IR is built, and hashed for the disk cache, in every process)."""
        b, i64 = self.b, emit.i64
        tail = b.srem(cols, i64(LANES))
        columns = b.and_(b.icmp_signed(">", tail, i64(0)), b.icmp_signed("<", tail, i64(rows)))
        vcols = b.select(columns, b.sub(cols, tail), cols) if by_column else cols
        nv = b.sdiv(b.add(vcols, i64(LANES - 1)), i64(LANES))
        full, rest = b.sdiv(nv, i64(nvb)), b.srem(nv, i64(nvb))
        with emit.loop(b, 0, full) as blk:  # (the hot loop: inline)
            self._columns(up, vb, mrow, cin, vcols, ldv, ldm, b.mul(blk, i64(nvb * LANES)),
                          rows, nvb)
        for width in range(1, nvb):
            with b.if_then(b.icmp_signed("==", rest, i64(width))):
                self._call(f"c{width}", lambda *a, w=width: self._columns(*a, rows, w),
                           up, vb, mrow, cin, vcols, ldv, ldm, b.mul(full, i64(nvb * LANES)))
        if not by_column:
            return
        # the tail's columns TAIL_CHUNK at a time, then the 1..TAIL_CHUNK-1 left: a kernel
        # for each of 15 widths was 3/4 of the R = 16 module's machine code
        chunks = b.select(columns, b.sdiv(tail, i64(TAIL_CHUNK)), i64(0))
        with emit.loop(b, 0, chunks) as q:
            self._call(f"t{TAIL_CHUNK}", lambda *a: self._tail(*a, rows, TAIL_CHUNK),
                       up, vb, mrow, cin, vcols, ldv, ldm,
                       b.add(vcols, b.mul(q, i64(TAIL_CHUNK))))
        left = b.srem(tail, i64(TAIL_CHUNK))
        for width in range(1, min(rows, TAIL_CHUNK)):
            with b.if_then(b.and_(columns, b.icmp_signed("==", left, i64(width)))):
                self._call(f"t{width}", lambda *a, w=width: self._tail(*a, rows, w),
                           up, vb, mrow, cin, vcols, ldv, ldm,
                           b.add(vcols, b.mul(chunks, i64(TAIL_CHUNK))))

    def _call(self, name: str, body: Any, *args: Any) -> None:
        """Call the internal function `name`, made by body(its arguments) on first use:
        each column count its own function, as LLVM's per-function passes (dead store
        elimination, SLP, loop strength reduction) grow faster than the function (all in
        one, the R = 16 module spent 0.8 s in LLVM's optimiser)."""
        fn = self.outlined.get(name)
        if fn is None:
            ft = ir.FunctionType(ir.VoidType(), [a.type for a in args])
            fn = ir.Function(self.km.module, ft, f"__NAME__{name}")
            fn.linkage = "internal"
            fn.attributes.add("nounwind")
            fn.attributes.add("noinline")
            for a in fn.args[:3]:  # (U, V and M)
                a.add_attribute("noalias")
            outer, self.b = self.b, ir.IRBuilder(fn.append_basic_block("entry"))
            body(*fn.args)
            self.b.ret_void()
            self.b = outer
            self.outlined[name] = fn
        self.b.call(fn, list(args))

    def _tail(self, up: Any, vb: Any, mrow: Any, cin: Any, _cols: Any, ldv: Any, ldm: Any,
              c0: Any, rows: int, width: int) -> None:
        """Columns [c0, c0 + width) of the block's R rows: per column R-lane accumulators,
        += the R packed U values of an input channel (one load) times the V value; partial
        sums (tail_sums) a column, input channels taken in turn (one chain of FMAs waited on
        each one's latency: 7% off 28x28's tile GEMMs at F(4x4), not the 23% its columns
        save). Past UNROLLED_STORES columns, each column's R sums go out by a loop over the
        rows (unrolled, R x 15 widths of extracts and stores made the R = 16 module 1.4 MB
        of IR, and LLVM's dead store elimination and SLP vectoriser quadratic in them)."""
        b, i64 = self.b, emit.i64
        rvec = ir.VectorType(F32, rows)
        fma = self.fma if rows == LANES else self.fma8
        undef = ir.Constant(rvec, ir.Undefined)
        splat = ir.Constant(ir.VectorType(I32, rows), [0] * rows)
        sums = tail_sums(width)
        acc = [[emit.alloca(b, rvec, ir.Constant(rvec, [0.0] * rows)) for _ in range(sums)]
               for _ in range(width)]

        def step(k: Any, q: int) -> None:
            uv = b.load(emit.element(b, up, b.mul(k, i64(rows)), "float32"), typ=rvec, align=4)
            vrow = emit.element(b, vb, b.add(b.mul(k, ldv), c0), "float32")
            for j in range(width):
                s = emit.load(b, vrow, i64(j), "float32")
                sv = b.shuffle_vector(b.insert_element(undef, s, I32(0)), undef, splat)
                b.store(b.call(fma, [uv, sv, b.load(acc[j][q], typ=rvec)]), acc[j][q])
        whole = b.mul(b.sdiv(cin, i64(sums)), i64(sums)) if sums > 1 else cin
        with emit.loop(b, 0, whole, sums) as k:
            for q in range(sums):
                step(b.add(k, i64(q)) if q else k, q)
        if sums > 1:
            with emit.loop(b, whole, cin) as k:
                step(k, 0)
        for j in range(width):
            value = b.load(acc[j][0], typ=rvec)
            for q in range(1, sums):
                value = b.fadd(value, b.load(acc[j][q], typ=rvec))
            if width <= UNROLLED_STORES:
                for r in range(rows):
                    emit.store(b, b.extract_element(value, I32(r)), mrow,
                               b.add(b.add(c0, i64(j)), b.mul(i64(r), ldm)), "float32")
                continue
            b.store(value, acc[j][0])
            with emit.loop(b, 0, rows, latch_md=self.km.no_unroll()) as r:
                emit.store(b, b.extract_element(b.load(acc[j][0], typ=rvec), r), mrow,
                           b.add(b.add(c0, i64(j)), b.mul(r, ldm)), "float32")

    def _columns(self, up: Any, vb: Any, mrow: Any, cin: Any, cols: Any, ldv: Any, ldm: Any,
                 c0: Any, rows: int, width: int) -> None:
        """Columns [c0, c0 + 16 * width) of the block's rows, in R x width registers."""
        b, vec, i64 = self.b, self.vec, emit.i64
        acc = [[emit.alloca(b, vec, self.zero) for _ in range(width)] for _ in range(rows)]
        with emit.loop(b, 0, cin) as k:
            vrow = emit.element(b, vb, b.add(b.mul(k, ldv), c0), "float32")
            vs = [b.load(emit.element(b, vrow, i64(j * LANES), "float32"), typ=vec, align=4)
                  for j in range(width)]
            ucol = emit.element(b, up, b.mul(k, i64(rows)), "float32")
            if PREFETCH:
                b.call(self.prefetch, [emit.element(b, ucol, i64(PREFETCH), "float32"),
                                       I32(0), I32(3), I32(1)])
            for r in range(rows):
                s = emit.load(b, ucol, i64(r), "float32")
                sv = b.shuffle_vector(b.insert_element(self.undef, s, I32(0)), self.undef,
                                      self.splat)
                for j in range(width):
                    b.store(b.call(self.fma, [sv, vs[j], b.load(acc[r][j], typ=vec)]),
                            acc[r][j])
        for j in range(width):
            at = b.add(c0, i64(j * LANES))
            mask = self._mask(b.sub(cols, at))
            for r in range(rows):
                dst = emit.element(b, mrow, b.add(at, b.mul(i64(r), ldm)), "float32")
                b.call(self.masked_store, [b.load(acc[r][j], typ=vec), dst, I32(4), mask])

    def _mask(self, left: Any) -> Any:
        """Lanes k < left."""
        b = self.b
        lanes = ir.Constant(ir.VectorType(I64, LANES), list(range(LANES)))
        undef = ir.Constant(ir.VectorType(I64, LANES), ir.Undefined)
        splat = b.shuffle_vector(b.insert_element(undef, left, I32(0)), undef, self.splat)
        return b.icmp_signed("<", lanes, splat)


def _module(rows: int, nvb: int, by_column: bool, pad: int = 0) -> emit.KernelModule:
    """void k(U, V, M, i64 *dims = [first, end, C_in, C_out, cols, ldv, ldm]): positions
    [first, end) of M[p] = U[p] @ V[p], `cols` columns (the last vector's extra lanes read
    from V, not stored), the rows of V and M ldv and ldm elements apart."""
    km = emit.KernelModule()
    fn, b = km.function("wgemm", [PTR] * 4, noalias=3)
    g = _Builder(km, b)
    u, v, m, dims_p = fn.args
    first, end, cin, cout, cols, ldv, ldm = (
        b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64), typ=I64) for i in range(7))
    i64 = emit.i64
    with emit.loop(b, first, end) as p:
        ub = emit.element(b, u, b.mul(p, b.mul(cout, cin)), "float32")
        vb = emit.element(b, v, b.mul(p, b.add(b.mul(cin, ldv), i64(pad))), "float32")
        mb = emit.element(b, m, b.mul(p, b.add(b.mul(cout, ldm), i64(pad))), "float32")
        with emit.loop(b, 0, b.sdiv(cout, i64(rows))) as blk:
            g.block(emit.element(b, ub, b.mul(blk, b.mul(cin, i64(rows))), "float32"), vb,
                    emit.element(b, mb, b.mul(blk, b.mul(i64(rows), ldm)), "float32"),
                    cin, cols, rows, nvb, ldv, ldm, by_column)
    b.ret_void()
    return km


def _compiled(key: tuple[Any, ...], build: Any, name: str, nargs: int) -> Any:
    # (compiled meanwhile on a first-ever start: emit.function_later)
    return emit.function_later(("winograd_gemm", *key), lambda: build().text(),
                               f"__NAME__{name}", nargs)


def kernel(rows: int, nvb: int, by_column: bool = False, pad: int = 0) -> Any:
    """f(U_packed, V, M, dims) with ctypes addresses (see _module; `dims`); pad: floats
    between the positions of V and of M (position p at p (rows x ld + pad))."""
    key = ((rows, nvb, "by-column") if by_column else (rows, nvb)) + \
        (("pad", pad) if pad else ())
    return _compiled(key, lambda: _module(rows, nvb, by_column, pad), "wgemm", 4)


def tile_kernel(rows: int, cols: int, pad: int = 0) -> Any:
    """The Winograd tile GEMM for `cols` tiles: the last cols % 16 by column where fewer
    than R (28x28 at F(4x4): 49 tiles, 3 vectors and one column, not 4 vectors), NVB for
    the whole vectors left."""
    tail = cols % LANES
    vectors = cols // LANES if 0 < tail < rows else -(-cols // LANES)
    return kernel(rows, vectors_for(rows, max(1, vectors)), True, pad)


def dims(first: int, end: int, cin: int, cout: int, cols: int, ldv: int | None = None,
         ldm: int | None = None) -> np.ndarray:
    """The kernel's dims array (V and M rows `cols` long unless given)."""
    return np.array([first, end, cin, cout, cols, ldv or cols, ldm or cols], np.int64)
