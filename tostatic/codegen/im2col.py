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


def _unpadded_module(dtype: str, kh: int, kw: int, sh: int, sw: int, dh: int,
                     dw: int) -> emit.KernelModule:
    """_module reading the unpadded input (float32, stride 1 or 2 along rows): void k(x,
    cols, i64 *dims = [C, H, W, OW, first, end, ld, pad_top, pad_left]). A row of a tap is
    vectors of outputs, each from sw masked loads of the input row whose lanes outside it
    (0 <= column < W) read zeros, so the padding is never written: no padded copy of the
    input is made and read back (ResNet's stride-2 3x3 layers: 1.6 MB at 56x56x128), and
    nothing is read past the input. A tap's rows outside the input are zeros."""
    lanes = 16
    km = emit.KernelModule()
    fn, b = km.function("im2col", [PTR] * 3, noalias=2)
    vec = ir.VectorType(emit.F32, lanes)
    i32v = ir.VectorType(emit.I32, lanes)
    load, store = emit.masked_load_store(km.module, vec)
    x, cols, dims_p = fn.args
    c, h, wd, ow, first, end, ld, pt, pl = (
        b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64), typ=I64) for i in range(9))
    i64 = emit.i64
    zero = ir.Constant(vec, [0.0] * lanes)
    index = ir.Constant(i32v, list(range(lanes)))
    evens = ir.Constant(i32v, list(range(0, 2 * lanes, 2)))

    def splat(v: Any) -> Any:  # (an i64 as i32 lanes: Python checks the sizes fit)
        one = b.insert_element(ir.Constant(i32v, ir.Undefined), b.trunc(v, emit.I32),
                               emit.I32(0))
        return b.shuffle_vector(one, ir.Constant(i32v, ir.Undefined),
                                ir.Constant(i32v, [0] * lanes))

    width, count = splat(wd), splat(ow)
    with emit.loop(b, 0, c) as ci:
        plane = emit.element(b, x, b.mul(ci, b.mul(h, wd)), dtype)
        with emit.loop(b, 0, kh) as i:
            with emit.loop(b, 0, kw) as j:
                tap = b.add(b.mul(b.add(b.mul(ci, i64(kh)), i), i64(kw)), j)
                dst = emit.element(b, cols, b.mul(tap, ld), dtype)
                col0 = b.sub(b.mul(j, i64(dw)), pl)  # (output column 0's input column)
                with emit.loop(b, first, end) as y:
                    out = emit.element(b, dst, b.mul(b.sub(y, first), ow), dtype)
                    iy = b.sub(b.add(b.mul(y, i64(sh)), b.mul(i, i64(dh))), pt)
                    inside = b.and_(b.icmp_signed(">=", iy, i64(0)),
                                    b.icmp_signed("<", iy, h))
                    # (a row outside: every lane masked off, zeros)
                    rows = b.select(inside, width, splat(i64(0)))
                    src = emit.element(b, plane, b.mul(b.select(inside, iy, i64(0)), wd),
                                       dtype)
                    with emit.loop(b, 0, ow, lanes) as q:
                        at = b.add(b.mul(q, i64(sw)), col0)
                        whole = b.and_(b.and_(inside, b.icmp_signed(">=", at, i64(0))), b.and_(
                            b.icmp_signed("<=", b.add(at, i64(sw * lanes)), wd),
                            b.icmp_signed("<=", b.add(q, i64(lanes)), ow)))
                        dst_q = emit.element(b, out, q, dtype)
                        with b.if_else(whole) as (then, otherwise):
                            with then:  # (inside the row: plain loads and store)
                                parts = [b.load(emit.element(b, src, b.add(at, i64(k * lanes)),
                                                             dtype), typ=vec, align=4)
                                         for k in range(sw)]
                                b.store(parts[0] if sw == 1 else
                                        b.shuffle_vector(*parts, evens), dst_q, align=4)
                            with otherwise:  # (each load plain where inside the row)
                                parts = []
                                for k in range(sw):
                                    start = b.add(at, i64(k * lanes))
                                    cols_k = b.add(splat(start), index)
                                    parts.append(emit.plain_or_masked_load(
                                        b, emit.element(b, src, start, dtype), vec, b.and_(
                                            inside, b.and_(
                                                b.icmp_signed(">=", start, i64(0)),
                                                b.icmp_signed("<=", b.add(start, i64(lanes)),
                                                              wd))),
                                        load, b.icmp_unsigned("<", cols_k, rows), zero))
                                v = parts[0] if sw == 1 else b.shuffle_vector(*parts, evens)
                                b.call(store, [v, dst_q, emit.I32(4), b.icmp_signed(
                                    "<", b.add(splat(q), index), count)])
    b.ret_void()
    return km


def im2col(dtype: str, kernel: tuple[int, int], strides: tuple[int, int],
           dilations: tuple[int, int], unpadded: bool = False) -> Any:
    """f(xp, cols, dims) with ctypes addresses (see _module; unpadded: _unpadded_module's
    f(x, cols, dims))."""
    key = (dtype, *kernel, *strides, *dilations)
    tag = (() if MASKED_TAIL else ("tail-by-element",)) + (("unpadded",) if unpadded else ())
    f = _FUNCS.get(key + tag)
    if f is None:
        build = _unpadded_module if unpadded else _module
        address = emit.compile_recipe(("im2col", *key, *tag), lambda: build(*key),
                                      ["im2col"])["im2col"]
        f = _FUNCS[key + tag] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 3)(address)
    return f
