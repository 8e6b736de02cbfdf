"""The tile GEMM of a Winograd convolution with few tiles (at most 16: the deep layers at
batch 1, 512 x 7 x 7 at F(2x2) and 256 x 14 x 14 at F(4x4)), its vectors along the output
channels: M[p] = U[p] @ V[p] as codegen/winograd_gemm.py's, U packed [p, C_out / 32, C_in, 32].

With a single vector of tiles, winograd_gemm's register block (R = 16 output channels, one
vector of 16 tiles) takes 16 broadcasts of U and one vector of V for 16 FMAs: its loads,
not the FMAs, bound it (that mix at 236 GFLOP/s with everything in L1, this one at 265, the
FMAs alone ~270; the GEMM ran at 207-217 whether U came from DRAM or L2: 0.60 ms of
ResNet-18's 0.65 ms 512 x 7 x 7 layers, where a pure stream of U takes 0.50). Here a block
is 32 output channels (two vectors of U) by up to 8 tiles (broadcasts of V): 8 broadcasts
and 2 vectors for 16 FMAs. Tiles 9..16 take a second pass over the block's U (64 KiB at
C_in = 512: from L2); each block's registers are transposed (shuffles) into M's rows
[C_out, T] at its end.

U streams from DRAM at batch 1 (16.8 MB at 512 channels, the model's other weights in
between). Each pass prefetches its share of the next block's U (lines spread evenly over
the passes' k steps), so the memory keeps streaming through the second pass, which reads
the block already fetched (prefetching only ahead of the first pass would ask twice the
machine's bandwidth there and nothing in the other). Without it the 512-channel GEMM took
0.91 ms from DRAM, with it 0.55 (~240 GFLOP/s, the FMAs' peak ~270: the same whether U
comes from DRAM or L2, so bound by the core now); a nearer prefetch distance, or the lines
into L2 (locality 1-2) or non-temporal, measured the same or slower. On two threads each
streams the U of its output channels (runtime/winograd_split.py): there the layer is
bound by DRAM (both cores at ~41 GB/s), as before.
"""
from __future__ import annotations

from typing import Any

from llvmlite import ir

from tostatic.codegen import emit
from tostatic.codegen.emit import F32, I32, I64, PTR

LANES = 16
CHANNELS = 32  # output channels a block (two vectors)
TILES = 8  # tiles a pass (broadcasts of V): 2 x 8 accumulators
MAX_COLS = 2 * TILES
LOCALITY = 3  # llvm.prefetch's locality of the next block's lines (3: into L1)
PREFETCH = True  # False: no prefetch of the next block (A/B)


def fits(cout: int, cols: int) -> bool:
    """Whether this kernel serves C_out output channels over `cols` tiles."""
    return cout % CHANNELS == 0 and 0 < cols <= MAX_COLS


class _Builder:
    def __init__(self, km: emit.KernelModule) -> None:
        self.km = km
        m = km.module
        self.vec = vec = ir.VectorType(F32, LANES)
        self.vec8 = ir.VectorType(F32, TILES)
        self.fma = ir.Function(m, ir.FunctionType(vec, [vec] * 3), "llvm.fma.v16f32")
        self.prefetch = ir.Function(m, ir.FunctionType(ir.VoidType(), [PTR, I32, I32, I32]),
                                    "llvm.prefetch.p0")
        _, self.store8 = emit.masked_load_store(m, self.vec8)
        self.functions: dict[tuple[int, int], ir.Function] = {}

    def pass_function(self, width: int, lines: int) -> ir.Function:
        """void pass(u, v, m, pf, cin, ldv, ldm): M rows [32, width] at m (ldm apart) =
        sum over k < cin of u[k, 32] x v[k, width] (v's rows ldv apart), prefetching
        `lines` 64-byte lines a k step from pf on."""
        key = (width, lines)
        if key in self.functions:
            return self.functions[key]
        ft = ir.FunctionType(ir.VoidType(), [PTR] * 4 + [I64] * 3)
        fn = ir.Function(self.km.module, ft, f"__NAME__p{width}x{lines}")
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("noinline")
        for a in fn.args[:3]:
            a.add_attribute("noalias")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        up, vp, mp, pf, cin, ldv, ldm = fn.args
        i64, vec = emit.i64, self.vec
        zero = ir.Constant(vec, [0.0] * LANES)
        undef = ir.Constant(vec, ir.Undefined)
        splat = ir.Constant(ir.VectorType(I32, LANES), [0] * LANES)
        acc = [[emit.alloca(b, vec, zero) for _ in range(2)] for _ in range(width)]
        with emit.loop(b, 0, cin) as k:
            ucol = emit.element(b, up, b.mul(k, i64(CHANNELS)), "float32")
            us = [b.load(emit.element(b, ucol, i64(j * LANES), "float32"), typ=vec, align=4)
                  for j in range(2)]
            ahead = emit.element(b, pf, b.mul(k, i64(LANES * lines)), "float32")
            for q in range(lines if PREFETCH else 0):
                b.call(self.prefetch, [emit.element(b, ahead, i64(q * LANES), "float32"),
                                       I32(0), I32(LOCALITY), I32(1)])
            vrow = emit.element(b, vp, b.mul(k, ldv), "float32")
            for t in range(width):
                s = emit.load(b, vrow, i64(t), "float32")
                sv = b.shuffle_vector(b.insert_element(undef, s, I32(0)), undef, splat)
                for j in range(2):
                    b.store(b.call(self.fma, [sv, us[j], b.load(acc[t][j], typ=vec)]),
                            acc[t][j])
        for j in range(2):
            rows = _transpose(b, [b.load(acc[t][j], typ=vec) for t in range(width)]
                              + [zero] * (TILES - width))
            mask = ir.Constant(ir.VectorType(ir.IntType(1), TILES),
                               [int(t < width) for t in range(TILES)])
            for r, row in enumerate(rows):
                dst = emit.element(b, mp, b.mul(i64(j * LANES + r), ldm), "float32")
                if width == TILES:
                    b.store(row, dst, align=4)
                else:
                    b.call(self.store8, [row, dst, I32(4), mask])
        b.ret_void()
        self.functions[key] = fn
        return fn


def _shuffle(b: ir.IRBuilder, x: Any, y: Any, lanes: list[int]) -> Any:
    return b.shuffle_vector(x, y, ir.Constant(ir.VectorType(I32, len(lanes)), lanes))


def _transpose(b: ir.IRBuilder, a: list[Any]) -> list[Any]:
    """Eight 16-lane vectors a[t][l] -> sixteen 8-lane rows [a[0][l], ..., a[7][l]]:
    interleaves of floats, then of pairs within 128-bit lanes (unpck*ps / unpck*pd),
    then 128-bit lanes of two vectors."""
    lo = [q + off for q in range(0, 16, 4) for off in (0, 16, 1, 17)]
    hi = [q + off for q in range(0, 16, 4) for off in (2, 18, 3, 19)]
    p = [(_shuffle(b, a[t], a[t + 1], lo), _shuffle(b, a[t], a[t + 1], hi))
         for t in range(0, 8, 2)]
    # pairs: (x0 x1) of the first, (x0 x1) of the second, in each 128-bit lane
    plo = [q + off for q in range(0, 16, 4) for off in (0, 1, 16, 17)]
    phi = [q + off for q in range(0, 16, 4) for off in (2, 3, 18, 19)]
    quads = []  # quads[g][r]: 128-bit lane i holds tiles 4g..4g+3 of channel r + 4 i
    for g in range(2):
        (l0, h0), (l1, h1) = p[2 * g], p[2 * g + 1]
        quads.append([_shuffle(b, l0, l1, plo), _shuffle(b, l0, l1, phi),
                      _shuffle(b, h0, h1, plo), _shuffle(b, h0, h1, phi)])
    rows: list[Any] = [None] * 16
    for r in range(4):
        for i in range(4):
            lane = list(range(4 * i, 4 * i + 4))
            rows[r + 4 * i] = _shuffle(b, quads[0][r], quads[1][r],
                                       lane + [16 + x for x in lane])
    return rows


def _module(cols: int, pad: int) -> emit.KernelModule:
    """void k(U, V, M, i64 *dims = [first, end, C_in, C_out, cols, ldv, ldm]) as
    winograd_gemm._module's, for exactly `cols` tiles (at most MAX_COLS)."""
    km = emit.KernelModule()
    fn, b = km.function("wgemmc", [PTR] * 4, noalias=3)
    g = _Builder(km)
    u, v, m, dims_p = fn.args
    first, end, cin, cout, _, ldv, ldm = (
        b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64), typ=I64) for i in range(7))
    i64 = emit.i64
    widths = [TILES] * (cols // TILES) + ([cols % TILES] if cols % TILES else [])
    lines = 2 // len(widths)  # of the next block's 2 C_in lines, this share a k step
    block = b.mul(cin, i64(CHANNELS))  # floats of U a block
    with emit.loop(b, first, end) as p:
        ub = emit.element(b, u, b.mul(p, b.mul(cout, cin)), "float32")
        vb = emit.element(b, v, b.mul(p, b.add(b.mul(cin, ldv), i64(pad))), "float32")
        mb = emit.element(b, m, b.mul(p, b.add(b.mul(cout, ldm), i64(pad))), "float32")
        with emit.loop(b, 0, b.sdiv(cout, i64(CHANNELS))) as blk:
            up = emit.element(b, ub, b.mul(blk, block), "float32")
            mrow = emit.element(b, mb, b.mul(blk, b.mul(i64(CHANNELS), ldm)), "float32")
            for i, width in enumerate(widths):
                pf = emit.element(b, up, b.add(block, b.mul(cin, i64(i * LANES * lines))),
                                  "float32")
                b.call(g.pass_function(width, lines),
                       [up, emit.element(b, vb, i64(i * TILES), "float32"),
                        emit.element(b, mrow, i64(i * TILES), "float32"), pf, cin, ldv, ldm])
    b.ret_void()
    return km


def kernel(cols: int, pad: int = 0) -> Any:
    """f(U_packed [p, C_out / 32, C_in, 32], V, M, dims) with ctypes addresses, for `cols`
    tiles (see _module; dims as winograd_gemm.dims)."""
    key = ("winograd_cgemm", cols, LOCALITY, PREFETCH) + (("pad", pad) if pad else ())
    return emit.function_later(key, lambda: _module(cols, pad).text(), "__NAME__wgemmc", 4)
