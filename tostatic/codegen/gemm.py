"""A float32 GEMM for inference whose constant operand is packed once, at bind time.

OpenBLAS packs both operands of every call, although an inference weight never changes. Here
the weight is laid out once for the microkernel, and the other operand is either read where it
lies, unpacked (a 1x1 convolution's input rows, a matmul's rows):

- mode "conv":   out[M, N] = W[M, K] @ X[K, N], W packed into MR-row panels [P][K][MR];
                 X read in place (rows of stride ldb, the NCHW image's channels).
- mode "matmul": out[M, N] = X[M, K] @ W[K, N], W packed into NR-column panels [Q][K][NR];
                 X's rows read in place (broadcasts from MR row pointers: packing them per
                 call took 14-17% of BERT's GEMMs).

The microkernel keeps MR x NR accumulators in zmm registers (12 rows x 2 vectors of 16, 24
registers) and, for each k, loads two vectors of the B panel and broadcasts MR values of A
into 24 FMAs (vbroadcastss + vfmadd231ps on zmm; 250-275 GFLOP/s on one Zen 5 core, where
OpenBLAS's sgemm reaches 228); with 1-2 rows, 2-4 sets of accumulators over alternate k hide
the FMA latency. Edges: fewer rows run kernels of 8, 4, 2, 1 rows; fewer columns a masked
variant (loads and stores under an AVX-512 mask), except in conv mode the last 1-4 columns
past whole vectors: a column kernel holds the panel's rows along one vector and broadcasts
each column of X (1 FMA a column and k, not 12: a 7x7 plane is 32 + 16 + 1 columns, not
32 + 32). Each k step prefetches the packed weight PREFETCH floats ahead (in a model it
comes from DRAM). Cache blocking: N in blocks of NC (a K x NC
block of B stays in L2 while every row panel of A passes over it) and K in blocks of KC
(partial sums stored in the output and read back by the next block), KC = 2048: see KC. The
fused epilogue (bias, residual add, activation; epilogue.epilogue_expr) is applied to the
accumulators before the one store of the last K block when its expression is vector
arithmetic (relu, relu6, hardswish); other activations (gelu, swish: libm-free but long) run
over the finished tile while it is in L1. AVX-512 only: without avx512f the constructor raises
NotScalar and callers keep numpy's matmul (an AVX2 variant, 6 x 16 in ymm, is not written).
A streamed GEMM (operands from DRAM: PackedGemm's `streamed`) prefetches its residual a tile
ahead and, with K > M, walks the columns a tile at a time.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Sequence

import numpy as np
from llvmlite import ir

from tostatic.codegen import emit, engine, gemm_column, threads
from tostatic.codegen.emit import F32, I1, I32, I64, PTR
from tostatic.codegen.gemm_pack import pack_cols, pack_rows  # (the weight's layouts)
from tostatic.ir import scalar_expr as se

MR, NV, LANES = 12, 2, 16
NR = NV * LANES
# K blocks: none up to 2048. Blocks of 256 (an A panel and a B micro-panel in L1) measured
# no faster with the operands in cache, and up to 3x slower with the weight coming from
# memory, as in a model: the constant operand is then read in short runs, not one stream
# ([1,1280] @ [1280,1000]: 0.139 -> 0.048 ms; W[1280,320] @ X[320,49]: 0.378 -> 0.201 ms)
KC = 2048
# floats ahead in the packed weight's stream that each k step prefetches (0: none), and in
# conv mode x's row k in the next column panel: in a model the weight comes from DRAM and x
# from L3, where the hardware prefetcher alone left the deep 1x1s at 120-170 GFLOP/s
# (ResNet-50's 33 1x1s, isolated, weights evicted: 20.7 -> 17.1 ms; 2048 ahead: the same)
PREFETCH = 1024
# columns past whole vectors that the column kernel takes (conv mode), not a masked vector
COLUMN_TAIL = 4
# a streamed GEMM (PackedGemm(streamed=True): operands too big for the caches, as ResNet-50's
# 1x1s at batch 8) prefetches, at a tile's start, the residual of the tile this many columns
# on (a DRAM latency a tile, else: 64->256 + residual at 56x56, batch 8: 5.40 -> 4.53 ms)
EXTRAS_AHEAD = NR
# whole tiles of this many rows and more through the masked microkernels too (a mask of all
# lanes): each (rows, vectors) one kernel, not two, half the module's IR, LLVM's time and
# machine code. (With 1-2 rows the B loads are half the work, and a masked one is not folded
# into its FMA: [1,256] @ [256,512] 6.6 -> 7.6 us. In conv mode B is x's rows in place,
# unaligned: masked loads of a 49-float row cost 3%, so conv mode keeps both kernels.)
MASK_ALL = 4
MASK_ALL_MODES = ("matmul",)
# (MobileNetV2's 25-35 us 1x1s then split; ResNet-50's 4 MB 7x7 weights are not read twice)
MIN_PART_WORK = 1 << 14  # a split's part: flops / 64 (a pool thread starts one in ~2 us)
SPLIT_WEIGHT_BYTES = 512 << 10  # a weight over this (half an L2): a split divides it
B_BLOCK_BYTES = 512 << 10  # a KC x NC block of B in L2 (1 MiB)
VT = ir.VectorType(F32, LANES)
MT = ir.VectorType(I1, LANES)
# dims of `gemm`: M, N, K, ldb, ldc, row begin, row end, col begin, col end, KC, NC, lda,
# then the row stride of each extra operand
_DIMS = 12
_min = emit.smaller


def available() -> bool:
    return engine.has_feature("avx512f")


class _Emitter:
    """The module of one (mode, epilogue) pair."""

    def __init__(self, mode: str, expr: se.Expr | None, kinds: tuple[str, ...],
                 prefetch: int = 0, column_tail: int = 0, extras_ahead: int = -1):
        self.mode, self.expr, self.kinds, self.prefetch = mode, expr, kinds, prefetch
        self.column_tail = column_tail
        self.extras_ahead = extras_ahead
        self.in_registers = expr is not None and all(
            e.kind in emit.VECTOR_KINDS for e in expr.nodes())
        self.km = emit.KernelModule()
        m = self.km.module
        self.fma = ir.Function(m, ir.FunctionType(VT, [VT] * 3), "llvm.fma.v16f32")
        self.mload, self.mstore = emit.masked_load_store(m, VT)
        self.pf = ir.Function(m, ir.FunctionType(ir.VoidType(), [PTR, I32, I32, I32]),
                              "llvm.prefetch.p0")
        self.micros: dict[tuple[int, int, bool], ir.Function] = {}
        # the K loop stays as written: unrolled, LLVM hoisted the broadcasts of two steps
        # and spilled accumulators (x's rows in place: 181 instead of 250 GFLOP/s)
        self.no_unroll = self.km.no_unroll()
        # the epilogue over a finished tile: for activations not in registers, and for the
        # column kernel's tiles
        self.tile = None if expr is None or (self.in_registers and (
            mode != "conv" or not column_tail)) else self._tile_epilogue()
        self.columns: dict[int, ir.Function] = {}

    # --- microkernel ------------------------------------------------------------------------
    def _vload(self, b: ir.IRBuilder, p: Any, mask: Any) -> Any:
        if mask is None:
            return b.load(p, typ=VT, align=4)
        return b.call(self.mload, [p, I32(4), mask, ir.Constant(VT, None)])

    def _vstore(self, b: ir.IRBuilder, v: Any, p: Any, mask: Any) -> None:
        if mask is None:
            b.store(v, p, align=4)
        else:
            b.call(self.mstore, [v, p, I32(4), mask])

    def micro(self, m: int, nv: int, masked: bool) -> ir.Function:
        """void u(a, b, ldb, c, ldc, kc, flags, mask, extras, lde, row, col): C[m, nv*16]
        (+)= A[m, kc] B[kc, nv*16]; flags bit 0: add to C, bit 1: last K block (epilogue)."""
        key = (m, nv, masked)
        if key in self.micros:
            return self.micros[key]
        ft = ir.FunctionType(ir.VoidType(), [PTR, I64, PTR, I64, PTR, I64, I64, I64, I64, PTR,
                                             PTR, I64, I64])
        fn = ir.Function(self.km.module, ft, f"__NAME__u{m}x{nv}{'m' if masked else ''}")
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("noinline")  # one call site each: inlining 15 of them into the
        # loop nest only made LLVM take 2.5x longer (1.5 s a module)
        a, lda, bp, ldb, c, ldc, kc, flags, mask_bits, extras_p, lde_p, row, col = fn.args
        for p in (a, bp, c):
            p.add_attribute("noalias")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        mask = b.bitcast(b.trunc(mask_bits, ir.IntType(16)), MT) if masked else None

        def vmask(v: int) -> Any:
            return mask if v == nv - 1 else None

        def cptr(r: int, v: int) -> Any:
            return b.gep(c, [b.add(b.mul(I64(r), ldc), I64(v * LANES))], source_etype=F32)
        # few rows: more accumulator sets (k, k+1, ... alternate), as 8 chains of FMAs
        # hide the FMA's latency; summed after the loop
        sets = max(1, 4 // m)
        # A's rows: a packed panel (conv: element (r, k) at k * MR + r) or x's rows in place
        arows = [a if self.mode == "conv" else b.gep(a, [b.mul(I64(r), lda)], source_etype=F32)
                 for r in range(m)]
        zero = ir.Constant(VT, None)
        acc_sets = [[[emit.alloca(b, VT, zero) for _ in range(nv)] for _ in range(m)]
                     for _ in range(sets)]
        accs = acc_sets[0]
        self._fetch_extras(b, m, nv, flags, extras_p, lde_p, row, col)
        add_c = b.trunc(b.and_(flags, I64(1)), I1)
        with b.if_then(add_c):
            for r in range(m):
                for v in range(nv):
                    b.store(self._vload(b, cptr(r, v), vmask(v)), accs[r][v])

        def step(k: Any, acc: Any, fetch: bool = False) -> None:
            bk = b.gep(bp, [b.mul(k, ldb)], source_etype=F32)
            if fetch and self.prefetch:  # the packed weight's stream, `prefetch` floats on
                ahead = [b.gep(a, [b.add(b.mul(k, I64(MR)), I64(self.prefetch))],
                               source_etype=F32)] if self.mode == "conv" else \
                    [b.gep(bk, [I64(self.prefetch + v * LANES)], source_etype=F32)
                     for v in range(nv)]
                if self.mode == "conv":  # and x's row k in the next column panel
                    ahead += [b.gep(bk, [I64(NR + v * LANES)], source_etype=F32)
                              for v in range(NV)]
                for p in ahead:
                    b.call(self.pf, [p, I32(0), I32(3), I32(1)])
            bv = [self._vload(b, b.gep(bk, [I64(v * LANES)], source_etype=F32), vmask(v))
                  for v in range(nv)]
            for r in range(m):
                at = b.add(b.mul(k, I64(MR)), I64(r)) if self.mode == "conv" else k
                a_rk = b.load(b.gep(arows[r], [at], source_etype=F32), typ=F32)
                s = emit.splat(b, a_rk, LANES)
                for v in range(nv):
                    b.store(b.call(self.fma, [s, bv[v], b.load(acc[r][v], typ=VT)]), acc[r][v])
        whole = b.mul(b.sdiv(kc, I64(sets)), I64(sets)) if sets > 1 else kc
        with emit.loop(b, I64(0), whole, I64(sets), self.no_unroll) as k:
            for i, acc in enumerate(acc_sets):
                step(b.add(k, I64(i)) if i else k, acc, fetch=True)
        if sets > 1:  # (the k left over)
            with emit.loop(b, whole, kc, I64(1)) as k:
                step(k, accs)
        for acc in acc_sets[1:]:
            for r in range(m):
                for v in range(nv):
                    b.store(b.fadd(b.load(accs[r][v], typ=VT), b.load(acc[r][v], typ=VT)),
                            accs[r][v])
        last = b.trunc(b.lshr(flags, I64(1)), I1)
        if self.in_registers:
            with b.if_else(last) as (then, otherwise):
                with then:
                    self._store_epilogue(b, m, nv, accs, cptr, vmask, extras_p, lde_p, row,
                                         col)
                with otherwise:
                    self._store_plain(b, m, nv, accs, cptr, vmask)
        else:
            self._store_plain(b, m, nv, accs, cptr, vmask)
        b.ret_void()
        self.micros[key] = fn
        return fn

    def _fetch_extras(self, b: ir.IRBuilder, m: int, nv: int, flags: Any, extras_p: Any,
                      lde_p: Any, row: Any, col: Any) -> None:
        """In the last K block, prefetch the residual tile extras_ahead columns on."""
        if self.extras_ahead < 0 or self.mode != "conv" or not self.in_registers \
                or "add" not in self.kinds:
            return
        with b.if_then(b.trunc(b.lshr(flags, I64(1)), I1)):
            for (ptr, ld), kind in zip(self._extras(b, extras_p, lde_p), self.kinds):
                if kind != "add":
                    continue
                for r in range(m):
                    base = b.add(b.mul(b.add(row, I64(r)), ld),
                                 b.add(col, I64(self.extras_ahead)))
                    for v in range(nv):
                        b.call(self.pf, [b.gep(ptr, [b.add(base, I64(v * LANES))],
                                               source_etype=F32), I32(0), I32(3), I32(1)])

    def _store_plain(self, b: ir.IRBuilder, m: int, nv: int, accs: Any, cptr: Any,
                     vmask: Any) -> None:
        for r in range(m):
            for v in range(nv):
                self._vstore(b, b.load(accs[r][v], typ=VT), cptr(r, v), vmask(v))

    def _extras(self, b: ir.IRBuilder, extras_p: Any, lde_p: Any) -> list[tuple[Any, Any]]:
        return [(b.load(b.gep(extras_p, [I64(e)], source_etype=PTR), typ=PTR),
                 b.load(b.gep(lde_p, [I64(e)], source_etype=I64), typ=I64))
                for e in range(len(self.kinds))]

    def _store_epilogue(self, b: ir.IRBuilder, m: int, nv: int, accs: Any, cptr: Any,
                        vmask: Any, extras_p: Any, lde_p: Any, row: Any, col: Any) -> None:
        extras = self._extras(b, extras_p, lde_p)
        for r in range(m):
            grow = b.add(row, I64(r))
            for v in range(nv):
                gcol = b.add(col, I64(v * LANES))
                acc = b.load(accs[r][v], typ=VT)

                def leaf(i: int, r: int = r, v: int = v, acc: Any = acc,
                         grow: Any = grow, gcol: Any = gcol) -> Any:
                    if i == 0:
                        return acc
                    ptr, ld = extras[i - 1]
                    if self.kinds[i - 1] == "bias" and self.mode == "conv":
                        return emit.splat(b, emit.load(b, ptr, grow, "float32"), LANES)
                    at = gcol if self.kinds[i - 1] == "bias" else b.add(b.mul(grow, ld), gcol)
                    return self._vload(b, b.gep(ptr, [at], source_etype=F32), vmask(v))
                value = emit.vector_expr(b, self.expr, leaf, LANES)
                self._vstore(b, value, cptr(r, v), vmask(v))

    def _tile_epilogue(self) -> ir.Function:
        """void t(c, ldc, m, n, extras, lde, row, col): the epilogue over a finished tile,
        element by element (LLVM vectorises the inner loop)."""
        ft = ir.FunctionType(ir.VoidType(), [PTR, I64, I64, I64, PTR, PTR, I64, I64])
        fn = ir.Function(self.km.module, ft, "__NAME__tile")
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        c, ldc, m, n, extras_p, lde_p, row, col = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        extras = self._extras(b, extras_p, lde_p)
        with emit.loop(b, 0, m) as r:
            grow = b.add(row, r)
            crow = b.gep(c, [b.mul(r, ldc)], source_etype=F32)
            rows = [b.gep(p, [b.add(b.mul(grow, ld), col)], source_etype=F32)
                    if kind == "add" else p for (p, ld), kind in zip(extras, self.kinds)]
            bias_row = {i: emit.load(b, p, grow, "float32")
                        for i, ((p, _), kind) in enumerate(zip(extras, self.kinds))
                        if kind == "bias" and self.mode == "conv"}
            with emit.loop(b, 0, n) as q:
                def leaf(i: int) -> Any:
                    if i == 0:
                        return emit.load(b, crow, q, "float32")
                    if i - 1 in bias_row:
                        return bias_row[i - 1]
                    at = b.add(col, q) if self.kinds[i - 1] == "bias" else q
                    return emit.load(b, rows[i - 1], at, "float32")
                emit.store(b, emit.emit_expr(b, self.expr, leaf), crow, q, "float32")
        b.ret_void()
        return fn

    def text(self) -> str:
        return self.km.text()

    # --- the loop nest ----------------------------------------------------------------------
    def driver(self) -> None:
        """void gemm(a, b, c, extras, dims): rows [row begin, row end) (a multiple of MR
        first) by columns [col begin, col end) (a multiple of NR first) of C."""
        fn, b = self.km.function("gemm", [PTR] * 5)
        a, bm, c, extras_p, dims_p = fn.args
        (_, _, k_all, ldb, ldc, r0, r1, c0, c1, kc_max, nc, lda), lde_p = (
            [b.load(b.gep(dims_p, [I64(i)], source_etype=I64), typ=I64) for i in range(_DIMS)],
            b.gep(dims_p, [I64(_DIMS)], source_etype=I64))
        with emit.loop(b, c0, c1, nc) as jc:
            jend = _min(b, b.add(jc, nc), c1)
            with emit.loop(b, I64(0), k_all, kc_max) as pc:
                kc = _min(b, kc_max, b.sub(k_all, pc))
                end_k = b.icmp_signed("==", b.add(pc, kc), k_all)
                flags = b.or_(b.zext(b.icmp_signed(">", pc, I64(0)), I64),
                              b.shl(b.zext(end_k, I64), I64(1)))
                with emit.loop(b, r0, r1, I64(MR)) as ip:
                    mrem = _min(b, I64(MR), b.sub(r1, ip))
                    if self.mode == "conv":
                        at = b.add(b.mul(b.sdiv(ip, I64(MR)), b.mul(k_all, I64(MR))),
                                   b.mul(pc, I64(MR)))
                    else:
                        at = b.add(b.mul(ip, lda), pc)
                    apanel = b.gep(a, [at], source_etype=F32)
                    with emit.loop(b, jc, jend, I64(NR)) as jr:
                        ncols = _min(b, I64(NR), b.sub(jend, jr))
                        if self.mode == "conv":
                            bptr = b.gep(bm, [b.add(b.mul(pc, ldb), jr)], source_etype=F32)
                            bld = ldb
                        else:
                            off = b.add(b.mul(b.sdiv(jr, I64(NR)), b.mul(k_all, I64(NR))),
                                        b.mul(pc, I64(NR)))
                            bptr, bld = b.gep(bm, [off], source_etype=F32), I64(NR)
                        call = (apanel, lda, bptr, bld, c, ldc, kc, flags, extras_p, lde_p, ip,
                                jr)
                        self._rows_and_tail(b, mrem, ncols, call)
                        if self.tile is not None and not self.in_registers:
                            with b.if_then(end_k):
                                b.call(self.tile, [b.gep(c, [b.add(b.mul(ip, ldc), jr)],
                                                         source_etype=F32), ldc, mrem, ncols,
                                                   extras_p, lde_p, ip, jr])
        b.ret_void()

    def _rows_and_tail(self, b: ir.IRBuilder, mrem: Any, ncols: Any,
                       call: tuple[Any, ...]) -> None:
        """The tile; in conv mode its last 1..COLUMN_TAIL columns past whole vectors by the
        column kernel (HW = 49: 32 + 16 + 1 columns, not 32 + 32)."""
        if self.mode != "conv" or not self.column_tail:
            self._rows(b, mrem, ncols, call)
            return
        rest = b.and_(ncols, I64(LANES - 1))
        tail = b.and_(b.icmp_signed("!=", ncols, I64(NR)),
                      b.icmp_unsigned("<=", b.sub(rest, I64(1)), I64(self.column_tail - 1)))
        main = b.select(tail, b.sub(ncols, rest), ncols)
        with b.if_then(b.icmp_signed(">", main, I64(0))):
            self._rows(b, mrem, main, call)
        a, lda, bptr, bld, c, ldc, kc, flags, extras_p, lde_p, ip, jr = call
        col = b.add(jr, main)
        args = [a, lda, b.gep(bptr, [main], source_etype=F32), bld,
                b.gep(c, [b.add(b.mul(ip, ldc), col)], source_etype=F32), ldc, kc, flags, mrem,
                extras_p, lde_p, ip, col]
        with b.if_then(tail):
            for width in range(1, self.column_tail + 1):
                with b.if_then(b.icmp_signed("==", rest, I64(width))):
                    b.call(self.column(width), args)

    def column(self, width: int) -> ir.Function:
        """The conv mode's column kernel of `width` columns (gemm_column.column_kernel)."""
        if width not in self.columns:
            self.columns[width] = gemm_column.column_kernel(self, width, MR)
        return self.columns[width]

    def mask_all(self, m: int) -> bool:
        return m >= MASK_ALL and self.mode in MASK_ALL_MODES

    def _rows(self, b: ir.IRBuilder, mrem: Any, ncols: Any, call: tuple[Any, ...]) -> None:
        with b.if_else(b.icmp_signed("==", mrem, I64(MR))) as (full, part):
            with full:
                self._cols(b, MR, I64(0), ncols, call)
            with part:
                bit = 1 << (MR - 1).bit_length() - 1
                while bit:
                    with b.if_then(b.icmp_signed("!=", b.and_(mrem, I64(bit)), I64(0))):
                        self._cols(b, bit, b.and_(mrem, I64(~(2 * bit - 1))), ncols, call)
                    bit >>= 1

    def _cols(self, b: ir.IRBuilder, m: int, r: Any, ncols: Any, call: tuple[Any, ...]) -> None:
        a, lda, bptr, bld, c, ldc, kc, flags, extras_p, lde_p, ip, jr = call
        a = b.gep(a, [r if self.mode == "conv" else b.mul(r, lda)], source_etype=F32)
        c = b.gep(c, [b.add(b.mul(b.add(ip, r), ldc), jr)], source_etype=F32)
        row = b.add(ip, r)

        def go(nv: int, masked: bool, bits: Any) -> None:
            b.call(self.micro(m, nv, masked), [a, lda, bptr, bld, c, ldc, kc, flags, bits,
                                               extras_p, lde_p, row, jr])
        with b.if_else(b.icmp_signed("==", ncols, I64(NR))) as (full, part):
            with full:
                go(NV, self.mask_all(m), I64(-1))
            with part:
                self._masked(b, m, ncols, go)

    def _masked(self, b: ir.IRBuilder, m: int, ncols: Any,
                go: Callable[[int, bool, Any], None]) -> None:
        with b.if_else(b.icmp_signed("==", ncols, I64(LANES))) as (whole, part):
            with whole:  # (the whole vector before a column tail)
                go(1, self.mask_all(m), I64(-1))
            with part:
                for nv in range(1, NV + 1):
                    lo, hi = (nv - 1) * LANES, nv * LANES
                    inside = b.and_(b.icmp_signed(">", ncols, I64(lo)),
                                    b.icmp_signed("<=", ncols, I64(hi)))
                    with b.if_then(inside):
                        left = b.sub(ncols, I64(lo))
                        go(nv, True, b.sub(b.shl(I64(1), left), I64(1)))


class RowTiles(_Emitter):
    """The matmul mode's tiles without an epilogue, for another kernel's loop nest
    (attention_tiles.py): their functions go into `km`."""

    def __init__(self) -> None:
        super().__init__("matmul", None, ())

    def block(self, b: ir.IRBuilder, rows: Any, a: Any, lda: Any, bp: Any, ldb: Any, c: Any,
              ldc: Any, k: Any, n: Any) -> None:
        """C[:rows, :n] = A[:rows, :k] B[:k, :n] (IR values; rows <= MR; row strides in
        floats), A and B read where they lie, by tiles of NR columns as the GEMM's driver."""
        null = ir.Constant(PTR, None)
        with emit.loop(b, I64(0), n, I64(NR)) as col:
            self._rows(b, rows, _min(b, I64(NR), b.sub(n, col)),
                       (a, lda, emit.element(b, bp, col, "float32"), ldb, c, ldc, k, I64(2),
                        null, null, I64(0), col))


def module_text(mode: str, expr: se.Expr | None = None, kinds: tuple[str, ...] = (),
                prefetch: int = 0, column_tail: int = 0, extras_ahead: int = -1) -> str:
    """The LLVM IR of a mode's kernels (tests read its assembly)."""
    em = _Emitter(mode, expr, kinds, prefetch, column_tail, extras_ahead)
    em.driver()
    return em.text()


def _function(mode: str, expr: se.Expr | None, kinds: tuple[str, ...],
              streamed: bool = False) -> Any:
    """The module's gemm; on a first-ever start compiled meanwhile (emit.LaterFunction):
    the model binds (and compiles) its next kernels while LLVM works on this one."""
    key = (mode, expr, kinds, PREFETCH, COLUMN_TAIL) + (
        (EXTRAS_AHEAD,) if streamed and mode == "conv" and "add" in kinds else ())
    return emit.function_later(("gemm", *key), lambda: module_text(*key), "__NAME__gemm", 5)


class PackedGemm:
    """out = W @ X (mode "conv", W [M, K]) or X @ W (mode "matmul", W [K, N]) with the
    epilogue `expr` (epilogue.epilogue_expr) of extra operands `kinds`, W packed here.
    `prepare(x, out, extras)` returns the call (arguments read once); x and out 2-D float32
    with unit stride along rows; a bias extra is [M] (conv) or [N] (matmul), an add extra
    has out's shape. streamed: x and the extras come from DRAM (too big for the caches):
    residual tiles prefetched a tile ahead (EXTRAS_AHEAD), and with K > M (few row panels
    over a tall x) the columns walked one tile at a time, every row panel over it before the
    next, whose x rows the tiles prefetch meanwhile (the default, NC columns a block, read
    a block from DRAM within the first row panel's tiles: 256->64 at 56x56, batch 8: 5.11
    -> 4.49 ms)."""

    def __init__(self, mode: str, w: np.ndarray, expr: se.Expr | None = None,
                 kinds: tuple[str, ...] = (), streamed: bool = False):
        if not available():
            raise se.NotScalar("the packed GEMM needs AVX-512 (avx512f)")
        if w.dtype != np.float32 or w.ndim != 2 or mode not in ("conv", "matmul"):
            raise se.NotScalar(f"packed GEMM of {w.dtype} {list(w.shape)}")
        self.mode, self.kinds = mode, kinds
        if mode == "conv":
            self.m, self.k = w.shape
            self.packed = pack_rows(w, MR)
        else:
            self.k, self.n = w.shape
            self.packed = pack_cols(w, NR)
        self.column_walk = streamed and mode == "conv" and self.k > self.m
        self._gemm = _function(mode, expr, kinds, streamed)

    @property
    def gemm(self) -> Any:
        """The compiled gemm (waited for on first use: emit.LaterFunction)."""
        g = self._gemm
        return g.resolve() if isinstance(g, emit.LaterFunction) else g

    def prepare(self, x: np.ndarray, out: np.ndarray, extras: Sequence[np.ndarray],
                split: bool = True) -> Callable[[int, int, Sequence[int]], None]:
        """call(x address, out address, extras' addresses) for arrays of the shapes and
        strides of these (the caller keeps the memory alive while it runs); split=False:
        on the calling thread, whatever the thread count (the caller splits)."""
        rows, cols = out.shape
        if self.mode == "conv":
            if x.shape != (self.k, cols) or rows != self.m:
                raise ValueError(f"packed GEMM: W {self.m}x{self.k} @ X {list(x.shape)}")
        elif x.shape != (rows, self.k) or cols != self.n:
            raise ValueError(f"packed GEMM: X {list(x.shape)} @ W {self.k}x{self.n}")
        lde = [e.strides[0] // 4 if kind == "add" else 0 for e, kind in zip(extras, self.kinds)]
        return self.prepare_strides((rows, cols), x.strides[0] // 4, out.strides[0] // 4, lde,
                                    split)

    def prepare_strides(self, shape: tuple[int, int], ldx: int, ldc: int, lde: Sequence[int],
                        split: bool = True, span: tuple[int, int] | None = None
                        ) -> Callable[[int, int, Sequence[int]], None]:
        """`prepare` from the output's shape and the row strides (in floats) of x, out and
        each extra (0 for a bias): for operands whose memory is not there yet. span: only
        the output rows [lo, hi), lo a multiple of MR, on the calling thread (the caller
        splits)."""
        rows, cols = shape
        ldb = ldx if self.mode == "conv" else NR
        ptrs = (ctypes.c_void_p * max(1, len(lde)))()  # (one call at a time uses them)
        ptrs_address = ctypes.addressof(ptrs)
        keep = self.packed  # (the closures below hold it: the call reads it by address)
        packed = keep.ctypes.data
        conv = self.mode == "conv"
        nc = NR if self.column_walk else max(
            NR, min(-(-cols // NR) * NR, B_BLOCK_BYTES // (4 * min(KC, self.k)) // NR * NR))
        head = [rows, cols, self.k, ldb, ldc]
        tail = [KC, nc, ldx, *lde]
        row_panels, col_panels = -(-rows // MR), -(-cols // NR)
        # the split whose busiest thread has the fewer tiles (a 1x1 convolution on 14x14
        # planes: 7 column panels split 4 / 3, its 22 row panels 11 / 11)
        t = threads.num_threads()
        # (even: by the dimension with more panels)
        by_cols = not conv if self.packed.nbytes > SPLIT_WEIGHT_BYTES else (  # (streamed)
            -(-col_panels // t) * row_panels, row_panels) <= (-(-row_panels // t) * col_panels,
                                                               col_panels)
        panels = col_panels if by_cols else row_panels
        work = 2 * self.k * NR * MR * (row_panels if by_cols else col_panels) // 64
        gemm = self.gemm

        def operands(xa: int, oa: int, ea: Sequence[int]) -> tuple[int, int, int, int]:
            for i, e in enumerate(ea):
                ptrs[i] = e
            return (packed, xa, oa, ptrs_address) if conv else (xa, packed, oa, ptrs_address)
        parts = threads.parts_for(panels, work, MIN_PART_WORK)
        if span is not None or not split or parts < 2:
            lo, hi = span or (0, rows)
            if lo % MR:
                raise ValueError(f"packed GEMM: rows from {lo}, not a multiple of {MR}")
            whole = np.array(head + [lo, hi, 0, cols] + tail, dtype=np.int64)
            dims = whole.ctypes.data

            def single(xa: int, oa: int, ea: Sequence[int]) -> None:
                _keep = ptrs, whole, keep  # noqa: F841 (alive while the call may run)
                gemm(*operands(xa, oa, ea), dims)

            def row(xa: int, oa: int, ea: Sequence[int]) -> tuple[list[int], Any]:
                """This call as a threads.parallel_calls row, and what it reads (keep)."""
                own = np.array(list(ea) or [0], np.int64)  # (its own extras' addresses)
                at = own.ctypes.data
                return [ctypes.cast(gemm, ctypes.c_void_p).value,
                        *((packed, xa, oa, at) if conv else (xa, packed, oa, at)), dims], (
                    own, whole, keep)
            single.row = row  # type: ignore[attr-defined]
            return single
        # each part's call as a row of integers: the pool runs them in machine code, a pool
        # thread taking its part with no GIL switch (threads.parallel_calls)
        dims = np.array([head + ([0, rows, lo * NR, min(cols, hi * NR)] if by_cols else
                                 [lo * MR, min(rows, hi * MR), 0, cols]) + tail
                         for lo, hi in threads.bounds(panels, parts)],
                        dtype=np.int64)
        calls = threads.part_calls(gemm, [0] * 4, dims)  # (operands set per call)

        last: list[Any] = [None]

        def split(xa: int, oa: int, ea: Sequence[int]) -> None:
            _keep = ptrs, dims, keep  # noqa: F841 (alive while the call may run)
            now = (xa, oa, *ea)
            if now != last[0]:  # (a bound plan's buffers: the same each run; 1.4 us saved)
                calls[:, 1:5] = operands(xa, oa, ea)  # (one call at a time uses them)
                last[0] = now
            threads.parallel_calls(calls)
        return split

    def __call__(self, x: np.ndarray, out: np.ndarray,
                 extras: Sequence[np.ndarray] = ()) -> np.ndarray:
        self.prepare(x, out, extras)(x.ctypes.data, out.ctypes.data,
                                     [e.ctypes.data for e in extras])
        return out
