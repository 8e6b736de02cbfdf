"""Depthwise convolution, NCHW (one input channel per group, `m` filters per channel), with
strides, explicit paddings and dilations, and an optional bias + activation epilogue applied
to each output row while it is in cache.

A kernel is specialised on the filter size, strides, dilations and the epilogue; for each
output row it adds the k*k taps one after another (the order ops/conv.py's numpy kernel adds
them in, so results agree to the last bit without a bias), each over the range of output
columns whose input lies inside the image (padding is never materialised). With stride 1 that
innermost loop is unit-stride, and LLVM vectorises it.
"""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from tostatic.codegen import emit, threads
from tostatic.codegen.emit import I64, PTR, VALUE_TYPES
from tostatic.ir import scalar_expr as se

_FUNCS: dict[tuple[Any, ...], Any] = {}


def _max(b: Any, a: Any, c: Any) -> Any:
    return b.select(b.icmp_signed(">", a, c), a, c)


def _min(b: Any, a: Any, c: Any) -> Any:
    return b.select(b.icmp_signed("<", a, c), a, c)


def _module(dtype: str, ksize: tuple[int, int], strides: tuple[int, int],
            dilations: tuple[int, int], has_bias: bool,
            act: se.Expr | None) -> emit.KernelModule:
    """void k(x, w, bias, out, i64 *dims = [N, C, H, W, M, OH, OW, pad_top, pad_left,
    first plane, end plane]): the output planes (n, c_out) in [first, end)."""
    t = VALUE_TYPES[dtype]
    (kh, kw), (sh, sw), (dh, dw) = ksize, strides, dilations
    km = emit.KernelModule()
    fn, b = km.function("dw", [PTR] * 5, noalias=4)
    x, w, bias, out, dims_p = fn.args
    _, c, h, wd, m, oh, ow, pt, pl, first, end = (
        b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64), typ=I64) for i in range(11))
    zero = emit.i64(0)
    with emit.loop(b, first, end) as plane:  # (n, c_out) planes
        co = b.srem(plane, b.mul(c, m))
        n_i = b.sdiv(plane, b.mul(c, m))
        ci = b.sdiv(co, m)
        xp = emit.element(b, x, b.mul(b.add(b.mul(n_i, c), ci), b.mul(h, wd)), dtype)
        op = emit.element(b, out, b.mul(plane, b.mul(oh, ow)), dtype)
        wp = emit.element(b, w, b.mul(co, emit.i64(kh * kw)), dtype)
        init = emit.load(b, bias, co, dtype) if has_bias else t(0.0)
        with emit.loop(b, 0, oh) as r:
            orow = emit.element(b, op, b.mul(r, ow), dtype)
            with emit.loop(b, 0, ow) as q:
                emit.store(b, init, orow, q, dtype)
            for i in range(kh):
                ih = b.add(b.sub(b.mul(r, emit.i64(sh)), pt), emit.i64(i * dh))
                inside = b.and_(b.icmp_signed(">=", ih, zero), b.icmp_signed("<", ih, h))
                with b.if_then(inside):
                    xrow = emit.element(b, xp, b.mul(ih, wd), dtype)
                    for j in range(kw):
                        wv = emit.load(b, wp, emit.i64(i * kw + j), dtype)
                        a = b.sub(pl, emit.i64(j * dw))  # q*sw - a is the input column
                        lo = _max(b, zero, b.sdiv(b.add(a, emit.i64(sw - 1)), emit.i64(sw)))
                        lo = b.select(b.icmp_signed("<=", a, zero), zero, lo)
                        top = b.add(b.sub(wd, emit.i64(1)), a)
                        hi = _min(b, ow, b.add(b.sdiv(top, emit.i64(sw)), emit.i64(1)))
                        hi = b.select(b.icmp_signed("<", top, zero), zero, hi)
                        with emit.loop(b, lo, hi) as q:
                            v = emit.load(b, xrow, b.sub(b.mul(q, emit.i64(sw)), a), dtype)
                            acc = b.fadd(emit.load(b, orow, q, dtype), b.fmul(v, wv))
                            emit.store(b, acc, orow, q, dtype)
            if act is not None:
                with emit.loop(b, 0, ow) as q:
                    v = emit.emit_expr(b, act, lambda _: emit.load(b, orow, q, dtype))
                    emit.store(b, v, orow, q, dtype)
    b.ret_void()
    return km


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, strides: tuple[int, int],
                     pads: tuple[tuple[int, int], tuple[int, int]],
                     dilations: tuple[int, int], bias: np.ndarray | None = None,
                     act: se.Expr | None = None) -> np.ndarray:
    """NCHW depthwise convolution: x [N, C, H, W], w [C*m, 1, kh, kw], pads ((top, bottom),
    (left, right)); then `act` (an expression of arg 0, the value) of out + bias[c_out]."""
    dtype = x.dtype.name
    n, c, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    if dtype not in se.FLOATS or w.dtype != x.dtype or cg != 1 or cout % max(c, 1):
        raise se.NotScalar(f"depthwise conv of {dtype} x {w.dtype} {list(w.shape)}")
    (sh, sw), (dh, dw), ((pt, pb), (pl, pr)) = strides, dilations, pads
    oh = (h + pt + pb - (dh * (kh - 1) + 1)) // sh + 1
    ow = (wd + pl + pr - (dw * (kw - 1) + 1)) // sw + 1
    if oh <= 0 or ow <= 0:
        raise se.NotScalar("depthwise conv with an empty output")
    out = np.empty((n, cout, oh, ow), dtype=x.dtype)
    if not out.size:
        return out
    key = (dtype, (kh, kw), (sh, sw), (dh, dw), bias is not None, act)
    f = _FUNCS.get(key)
    if f is None:
        km = _module(dtype, (kh, kw), (sh, sw), (dh, dw), bias is not None, act)
        address = emit.compile_functions(km, ["dw"])["dw"]
        f = _FUNCS[key] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 5)(address)
    xs, ws = np.ascontiguousarray(x), np.ascontiguousarray(w)
    bs = np.ascontiguousarray(bias, dtype=x.dtype).reshape(-1) if bias is not None else None
    def run(a: int, b: int) -> None:
        dims = np.array([n, c, h, wd, cout // c, oh, ow, pt, pl, a, b], dtype=np.int64)
        f(xs.ctypes.data, ws.ctypes.data, bs.ctypes.data if bs is not None else None,
          out.ctypes.data, dims.ctypes.data)
    threads.parallel_for(n * cout, oh * ow * kh * kw, run)
    return out
