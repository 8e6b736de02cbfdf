"""float32 multi-head attention on AVX-512 with the packed GEMM's own microkernels (gemm.py's
12 x 32 register tiles), no BLAS call: OpenBLAS ran a unit's 128 x 64 @ 64 x 128 and
128 x 128 @ 128 x 64 products at 160-185 GFLOP/s (its small-matrix path packs both operands
every call), these tiles reach the GEMM's ~240.

    void heads(q, k, v, out, scratch, mask, i64 *dims)
    dims = [lo, hi, heads, sq, sk, d, q row, q batch, k row, k batch, v row, v batch,
            out row, out batch, mask step, scratch offset]   (strides in elements)

Unit u is head u % heads of image u / heads, as in attention.py. Per unit, k_u is transposed
once into the part's scratch (k^T [d, sk], 16 x 16 blocks transposed in registers), then the
query rows go by blocks of MR (flash-style): the block's scores s = q_blk k^T (MR x sk, in
L1), its mask row added and softmax taken in place (rows.add_masked_softmax), and
out_blk = s v_u, v read where it lies. The scratch of a part is d * sk + MR * sk floats at
its offset (each concurrently running part its own).
"""
from __future__ import annotations

from typing import Any

from llvmlite import ir

from tostatic.codegen import emit, gemm, rows
from tostatic.codegen.emit import I64, PTR

DIMS = 16
B = 16  # the transpose's block (one zmm of float32)
MASK = ir.VectorType(ir.IntType(32), B)


def scratch_floats(sk: int, d: int) -> int:
    """A part's scratch: k^T and one block of scores."""
    return d * sk + gemm.MR * sk


def _butterfly(b: ir.IRBuilder, vs: list[Any]) -> list[Any]:
    """The transpose of 16 rows of 16 floats: four stages, each interleaving blocks of s
    lanes of rows r and r + s (64 two-source shuffles)."""
    s = 1
    while s < B:
        new = list(vs)
        for r in range(B):
            if r & s:
                continue
            lo = [c if not c & s else B + c - s for c in range(B)]
            hi = [c + s if not c & s else B + c for c in range(B)]
            new[r] = b.shuffle_vector(vs[r], vs[r + s], ir.Constant(MASK, lo))
            new[r + s] = b.shuffle_vector(vs[r], vs[r + s], ir.Constant(MASK, hi))
        vs, s = new, 2 * s
    return vs


def _transpose(km: emit.KernelModule) -> ir.Function:
    """void t(src, lds, rows, cols, dst, ldd): dst[c * ldd + r] = src[r * lds + c]."""
    ft = ir.FunctionType(ir.VoidType(), [PTR, I64, I64, I64, PTR, I64])
    fn = ir.Function(km.module, ft, "__NAME__transpose")
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    src, lds, nrows, ncols, dst, ldd = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    r16 = b.and_(nrows, I64(-B))
    c16 = b.and_(ncols, I64(-B))
    rolled = km.rolled()

    def scalar(r: Any, c: Any) -> None:
        v = emit.load(b, src, b.add(b.mul(r, lds), c), "float32")
        emit.store(b, v, dst, b.add(b.mul(c, ldd), r), "float32")
    with emit.loop(b, I64(0), r16, I64(B)) as r0:
        with emit.loop(b, I64(0), c16, I64(B)) as c0:
            vs = [b.load(emit.element(b, src, b.add(b.mul(b.add(r0, I64(i)), lds), c0),
                                      "float32"), typ=gemm.VT, align=4) for i in range(B)]
            for i, t in enumerate(_butterfly(b, vs)):
                b.store(t, emit.element(b, dst, b.add(b.mul(b.add(c0, I64(i)), ldd), r0),
                                        "float32"), align=4)
        with emit.loop(b, c16, ncols, 1, rolled) as c:
            with emit.loop(b, r0, b.add(r0, I64(B)), 1, rolled) as r:
                scalar(r, c)
    with emit.loop(b, r16, nrows, 1, rolled) as r:
        with emit.loop(b, I64(0), ncols, 1, rolled) as c:
            scalar(r, c)
    b.ret_void()
    return fn


def _module() -> emit.KernelModule:
    tiles = gemm.RowTiles()
    km = tiles.km
    softmax = rows.add_masked_softmax(km, "float32")
    transpose = _transpose(km)
    fn, b = km.function("heads", [PTR] * 7)
    q, k, v, out, scratch, mask, dims = fn.args
    lo, hi, heads, sq, sk, d, qr, qb, kr, kb, vr, vb, orow, ob, mstep, offset = (
        b.load(emit.element(b, dims, emit.i64(i), "int64"), typ=I64) for i in range(DIMS))
    kt = emit.element(b, scratch, offset, "float32")
    block = emit.element(b, kt, b.mul(d, sk), "float32")
    mr = I64(gemm.MR)
    with emit.loop(b, lo, hi) as u:
        h, image = b.srem(u, heads), b.sdiv(u, heads)
        col = b.mul(h, d)

        def at(base: Any, step: Any) -> Any:  # the unit's first row and column
            return emit.element(b, base, b.add(b.mul(image, step), col), "float32")
        qu, ku, vu, ou = at(q, qb), at(k, kb), at(v, vb), at(out, ob)
        b.call(transpose, [ku, kr, sk, d, kt, sk])
        mrow = emit.element(b, mask, b.mul(image, mstep), "float32")
        with emit.loop(b, I64(0), sq, mr) as ip:
            mrem = emit.smaller(b, mr, b.sub(sq, ip))
            qrows = emit.element(b, qu, b.mul(ip, qr), "float32")
            tiles.block(b, mrem, qrows, qr, kt, sk, block, sk, d, sk)  # s = q_blk k^T
            b.call(softmax, [block, mrow, mrem, sk, mr, I64(1), I64(0)])
            orows = emit.element(b, ou, b.mul(ip, orow), "float32")
            tiles.block(b, mrem, block, sk, vu, vr, orows, orow, sk, d)  # out_blk = s v_u
    b.ret_void()
    return km


def available() -> bool:
    return gemm.available()


def heads_kernel() -> Any:
    """The ctypes function `heads` (above); on a first-ever start compiled meanwhile
    (emit.LaterFunction: LLVM takes 0.5 s over the microkernels) while the model binds on."""
    return emit.function_later(("attention-tiles", gemm.MR, gemm.NR),
                               lambda: _module().text(), "__NAME__heads", 7)
