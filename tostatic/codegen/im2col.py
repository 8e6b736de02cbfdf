"""im2col for a convolution the bound plan runs as patches x GEMM (runtime/kernels.py):
strided and stem convolutions (a 7x7, stride-2 stem; 3x3 and 1x1 stride-2 layers).

numpy's copy of the 6-D strided tap view moves ~2 floats a nanosecond (0.9 ms for ResNet's
7x7 stem, 60% of its GEMM); here each (channel, tap) row of the patch matrix is one loop
over an output row's columns reading the padded input at a fixed stride, which LLVM
vectorises (stride 2 as loads and shuffles). The kernel writes a band of output rows at a time,
so a caller can multiply each band while it is still in L2.
"""
from __future__ import annotations

import ctypes
from typing import Any

from llvmlite import ir

from tostatic.codegen import emit
from tostatic.codegen.emit import I64, PTR

_FUNCS: dict[tuple[Any, ...], Any] = {}
MASKED_TAIL = True  # stride 2's last ow % 16 outputs by masked vectors (False: one by one)


def _row(b: ir.IRBuilder, src: Any, out: Any, ow: Any, sw: int, dtype: str,
         masked: tuple[Any, Any] | None = None) -> None:
    """out[x] = src[x*sw] for x < ow. Stride 2 as two vector loads and one shuffle of the
    even lanes (LLVM's own code gathers, ~4x slower on this CPU); reads up to one vector
    past the last element used (the caller's buffer has that slack). `masked` (float32's
    masked load and store): the last ow % 16 of stride 2 the same way under masks, not
    one by one (rows of 28, 14 and 7 outputs: ResNet-50's stride-2 3x3 patches 0.145 ->
    0.097 ms for 28x28 outputs, 0.135 -> 0.046 for 14x14, 0.078 -> 0.037 for 7x7)."""
    lanes = 16 if dtype == "float32" else 8
    tail = emit.i64(0)
    if sw == 2:
        vec = ir.VectorType(emit.VALUE_TYPES[dtype], lanes)
        evens = ir.Constant(ir.VectorType(emit.I32, lanes), list(range(0, 2 * lanes, 2)))
        whole = b.mul(b.sdiv(ow, emit.i64(lanes)), emit.i64(lanes))
        with emit.loop(b, 0, whole, lanes) as x:
            at = b.mul(x, emit.i64(2))
            lo = b.load(emit.element(b, src, at, dtype), typ=vec, align=4)
            hi = b.load(emit.element(b, src, b.add(at, emit.i64(lanes)), dtype), typ=vec,
                        align=4)
            b.store(b.shuffle_vector(lo, hi, evens), emit.element(b, out, x, dtype), align=4)
        tail = whole
        if masked is not None:
            load, store = masked
            left = b.sub(ow, whole)  # (0 .. 15 outputs, 2 left - 1 floats read)
            with b.if_then(b.icmp_signed(">", left, emit.i64(0))):
                at = b.mul(whole, emit.i64(2))
                zero = ir.Constant(vec, [0.0] * lanes)
                lo = b.call(load, [emit.element(b, src, at, dtype), emit.I32(4),
                                   _lanes_below(b, b.sub(b.mul(left, emit.i64(2)),
                                                         emit.i64(1)), 0), zero])
                hi = b.call(load, [emit.element(b, src, b.add(at, emit.i64(lanes)), dtype),
                                   emit.I32(4), _lanes_below(b, b.sub(b.mul(
                                       left, emit.i64(2)), emit.i64(1)), lanes), zero])
                b.call(store, [b.shuffle_vector(lo, hi, evens), emit.element(b, out, whole,
                                                                             dtype),
                               emit.I32(4), _lanes_below(b, left, 0)])
            return
    with emit.loop(b, tail, ow) as x:
        emit.store(b, emit.load(b, src, b.mul(x, emit.i64(sw)), dtype), out, x, dtype)


def _lanes_below(b: ir.IRBuilder, limit: Any, first: int) -> Any:
    """The 16-lane mask first + lane < limit."""
    i64v = ir.VectorType(I64, 16)
    splat = b.shuffle_vector(b.insert_element(ir.Constant(i64v, ir.Undefined), limit,
                                              emit.I32(0)), ir.Constant(i64v, ir.Undefined),
                             ir.Constant(ir.VectorType(emit.I32, 16), [0] * 16))
    return b.icmp_signed("<", ir.Constant(i64v, list(range(first, first + 16))), splat)


def _module(dtype: str, kh: int, kw: int, sh: int, sw: int, dh: int,
            dw: int) -> emit.KernelModule:
    """void k(xp, cols, i64 *dims = [C, Hp, Wp, OW, first, end, ld]): output rows
    [first, end) of one image; cols[(c*kh + i)*kw + j, (y - first)*OW + x] =
    xp[c, y*sh + i*dh, x*sw + j*dw], the rows of cols `ld` elements apart."""
    km = emit.KernelModule()
    fn, b = km.function("im2col", [PTR] * 3, noalias=2)
    masked = emit.masked_load_store(km.module, ir.VectorType(emit.F32, 16)) \
        if dtype == "float32" and MASKED_TAIL else None
    xp, cols, dims_p = fn.args
    c, hp, wp, ow, first, end, ld = (b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64),
                                            typ=I64) for i in range(7))
    i64 = emit.i64
    with emit.loop(b, 0, c) as ci:  # (taps in loops too: the IR is built in every process)
        plane = emit.element(b, xp, b.mul(ci, b.mul(hp, wp)), dtype)
        with emit.loop(b, 0, kh) as i:
            with emit.loop(b, 0, kw) as j:
                tap = b.add(b.mul(b.add(b.mul(ci, i64(kh)), i), i64(kw)), j)
                dst = emit.element(b, cols, b.mul(tap, ld), dtype)
                with emit.loop(b, first, end) as y:
                    at = b.add(b.mul(b.add(b.mul(y, i64(sh)), b.mul(i, i64(dh))), wp),
                               b.mul(j, i64(dw)))
                    src = emit.element(b, plane, at, dtype)
                    out = emit.element(b, dst, b.mul(b.sub(y, first), ow), dtype)
                    _row(b, src, out, ow, sw, dtype, masked)
    b.ret_void()
    return km


def im2col(dtype: str, kernel: tuple[int, int], strides: tuple[int, int],
           dilations: tuple[int, int]) -> Any:
    """f(xp, cols, dims) with ctypes addresses (see _module)."""
    key = (dtype, *kernel, *strides, *dilations)
    tag = () if MASKED_TAIL else ("tail-by-element",)
    f = _FUNCS.get(key + tag)
    if f is None:
        address = emit.compile_recipe(("im2col", *key, *tag), lambda: _module(*key),
                                      ["im2col"])["im2col"]
        f = _FUNCS[key + tag] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 3)(address)
    return f
