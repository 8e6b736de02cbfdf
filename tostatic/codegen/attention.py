"""Multi-head attention's parts as machine code, so that threads.parallel_calls can run them on
the pool without the GIL: a part is a range of (head, batch) units, each q_u k_u^T by the
process's BLAS gemm (called through its address, given at run time: the compiled code names
no library), the mask row added and the softmax taken in place (rows.add_masked_softmax, in
the same module), then p_u v_u by the gemm straight into the unit's columns of the result.

    void heads(q, k, v, out, scores, mask, i64 *dims)
    dims = [lo, hi, heads, sq, sk, d, q row, q batch, k row, k batch, v row, v batch,
            out row, out batch, mask step, gemm address]   (strides in elements)

Unit u is head u % heads of image u / heads (image-major: a part's units are whole images'
rows where every head reads and writes, the rows a GEMM split by rows gives the same thread);
its scores are the [sq, sk] block u of `scores` ([batch, heads, sq, sk]), its mask row
mask + (u / heads) * mask step. The gemm is CBLAS's ?gemm (row-major), with 64-bit integers
(OpenBLAS's ILP64 builds, as numpy's wheels ship) or 32-bit ones (`index_bits`).
"""
from __future__ import annotations

import ctypes
from typing import Any

from llvmlite import ir

from tostatic.codegen import emit, rows
from tostatic.codegen.emit import I32, I64, PTR, VALUE_TYPES
from tostatic.codegen.spin import _Indirect

DIMS = 16
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_FUNCS: dict[tuple[str, int], Any] = {}


def _module(dtype: str, index_bits: int) -> emit.KernelModule:
    km = emit.KernelModule()
    softmax = rows.add_masked_softmax(km, dtype)
    t, it = VALUE_TYPES[dtype], ir.IntType(index_bits)
    gemm_type = ir.FunctionType(ir.VoidType(), [I32, I32, I32, it, it, it, t, PTR, it, PTR,
                                                it, t, PTR, it])
    fn, b = km.function("heads", [PTR] * 7)
    q, k, v, out, scores, mask, dims = fn.args
    lo, hi, heads, sq, sk, d, qr, qb, kr, kb, vr, vb, orow, ob, mstep, address = (
        b.load(emit.element(b, dims, emit.i64(i), "int64"), typ=I64) for i in range(DIMS))
    gemm = _Indirect(b.inttoptr(address, PTR), gemm_type)

    def n(x: Any) -> Any:  # a BLAS integer
        return x if index_bits == 64 else b.trunc(x, it)
    with emit.loop(b, lo, hi) as u:
        h, image = b.srem(u, heads), b.sdiv(u, heads)
        col = b.mul(h, d)

        def at(base: Any, step: Any) -> Any:  # the unit's first row and column
            return emit.element(b, base, b.add(b.mul(image, step), col), dtype)
        s = emit.element(b, scores, b.mul(u, b.mul(sq, sk)), dtype)
        b.call(gemm, [I32(ROW_MAJOR), I32(NO_TRANS), I32(TRANS), n(sq), n(sk), n(d), t(1.0),
                      at(q, qb), n(qr), at(k, kb), n(kr), t(0.0), s, n(sk)])
        b.call(softmax, [s, emit.element(b, mask, b.mul(image, mstep), dtype), sq, sk, sq,
                         emit.i64(1), emit.i64(0)])
        b.call(gemm, [I32(ROW_MAJOR), I32(NO_TRANS), I32(NO_TRANS), n(sq), n(d), n(sk),
                      t(1.0), s, n(sk), at(v, vb), n(vr), t(0.0), at(out, ob),
                      n(orow)])
    b.ret_void()
    return km


def heads_kernel(dtype: str, index_bits: int) -> Any:
    """The ctypes function `heads` (above) for float32 / float64 and the BLAS's integers."""
    key = (dtype, index_bits)
    f = _FUNCS.get(key)
    if f is None:
        address = emit.compile_recipe(("attention-heads", dtype, index_bits),
                                      lambda: _module(dtype, index_bits), ["heads"])["heads"]
        f = _FUNCS[key] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 7)(address)
    return f
