"""The packed GEMM's column kernel (codegen/gemm.py, conv mode): a tile's last 1-4 columns
past whole vectors, the panel's rows along one vector (a 7x7 plane is 32 + 16 + 1 columns,
not 32 + 32)."""
from __future__ import annotations

from typing import Any

from llvmlite import ir

from tostatic.codegen import emit
from tostatic.codegen.emit import F32, I1, I32, I64, PTR

LANES = 16
VT = ir.VectorType(F32, LANES)


def column_kernel(em: Any, width: int, mr: int) -> ir.Function:
    """void t(a, lda, b, ldb, c, ldc, kc, flags, m, extras, lde, row, col): C[m, width]
    (+)= A[m, kc] B[kc, width] of a conv-mode panel, its m rows along one vector (a
    masked load of the panel's k-th mr floats) times a broadcast of each column's B;
    flags as for `micro`. `width` FMAs a k where a masked vector of columns spends mr (the
    panel's rows)."""
    ft = ir.FunctionType(ir.VoidType(), [PTR, I64, PTR, I64, PTR, I64, I64, I64, I64, PTR,
                                         PTR, I64, I64])
    fn = ir.Function(em.km.module, ft, f"__NAME__c{width}")
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")
    a, _, bp, ldb, c, ldc, kc, flags, m, extras_p, lde_p, row, col = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    lanes = ir.Constant(ir.VectorType(I64, LANES), list(range(LANES)))
    m_splat = b.insert_element(ir.Constant(ir.VectorType(I64, LANES), None), m, I32(0))
    m_splat = b.shuffle_vector(m_splat, ir.Constant(ir.VectorType(I64, LANES), None),
                               ir.Constant(ir.VectorType(I32, LANES), [0] * LANES))
    rows = b.icmp_signed("<", lanes, m_splat)
    zero = ir.Constant(VT, None)
    sets = max(1, 4 // width)
    acc_sets = [[emit.alloca(b, VT, zero) for _ in range(width)] for _ in range(sets)]
    accs = acc_sets[0]
    with b.if_then(b.trunc(b.and_(flags, I64(1)), I1)):  # (C's column into lanes)
        for j in range(width):
            with emit.loop(b, 0, m, latch_md=em.km.rolled()) as r:
                v = emit.load(b, c, b.add(b.mul(r, ldc), I64(j)), "float32")
                b.store(b.insert_element(b.load(accs[j], typ=VT), v, b.trunc(r, I32)),
                        accs[j])

    def step(k: Any, acc: Any) -> None:
        av = b.call(em.mload, [b.gep(a, [b.mul(k, I64(mr))], source_etype=F32), I32(4),
                                 rows, ir.Constant(VT, None)])
        bk = b.gep(bp, [b.mul(k, ldb)], source_etype=F32)
        for j in range(width):
            s = emit.splat(b, emit.load(b, bk, I64(j), "float32"), LANES)
            b.store(b.call(em.fma, [av, s, b.load(acc[j], typ=VT)]), acc[j])
    whole = b.mul(b.sdiv(kc, I64(sets)), I64(sets)) if sets > 1 else kc
    with emit.loop(b, I64(0), whole, I64(sets), em.no_unroll) as k:
        for i, acc in enumerate(acc_sets):
            step(b.add(k, I64(i)) if i else k, acc)
    if sets > 1:
        with emit.loop(b, whole, kc, I64(1)) as k:
            step(k, accs)
    for j in range(width):
        total = b.load(accs[j], typ=VT)
        for acc in acc_sets[1:]:
            total = b.fadd(total, b.load(acc[j], typ=VT))
        b.store(total, accs[j])
        with emit.loop(b, 0, m, latch_md=em.km.rolled()) as r:
            emit.store(b, b.extract_element(b.load(accs[j], typ=VT), b.trunc(r, I32)), c,
                       b.add(b.mul(r, ldc), I64(j)), "float32")
    if em.in_registers:  # (else the driver runs the tile epilogue over the tile)
        with b.if_then(b.trunc(b.lshr(flags, I64(1)), I1)):
            b.call(em.tile, [c, ldc, m, I64(width), extras_p, lde_p, row, col])
    b.ret_void()
    return fn
