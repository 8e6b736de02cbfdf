"""Planes copied into zero-bordered buffers (the convolutions' padded inputs): one pass that
writes every element of the buffer once, border and inside, where numpy's four border fills
and a strided copy cost 15-25 us per ResNet layer (most of it per-row overhead at 7x7)."""
from __future__ import annotations

import ctypes
from typing import Any

from tostatic.codegen import emit
from tostatic.codegen.emit import I64, PTR

_FUNCS: dict[str, Any] = {}


def _module(dtype: str) -> emit.KernelModule:
    """void k(x, xp, i64 *dims = [planes, H, W, Hp, Wp, top, left]): xp[p] (Hp x Wp) = x[p]
    (H x W) at (top, left), zeros elsewhere (top + H <= Hp, left + W <= Wp)."""
    km = emit.KernelModule()
    fn, b = km.function("pad", [PTR] * 3, noalias=2)
    x, xp, dims_p = fn.args
    planes, h, w, hp, wp, top, left = (b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64),
                                              typ=I64) for i in range(7))
    zero = emit.constant(dtype, 0)
    right = b.add(left, w)
    with emit.loop(b, 0, planes) as p:
        src = emit.element(b, x, b.mul(p, b.mul(h, w)), dtype)
        dst = emit.element(b, xp, b.mul(p, b.mul(hp, wp)), dtype)
        with emit.loop(b, 0, hp) as r:
            row = emit.element(b, dst, b.mul(r, wp), dtype)
            inside = b.and_(b.icmp_signed(">=", r, top),
                            b.icmp_signed("<", r, b.add(top, h)))
            with b.if_else(inside) as (then, otherwise):
                with then:
                    srow = emit.element(b, src, b.mul(b.sub(r, top), w), dtype)
                    with emit.loop(b, 0, left) as q:
                        emit.store(b, zero, row, q, dtype)
                    with emit.loop(b, 0, w) as q:
                        emit.store(b, emit.load(b, srow, q, dtype), row, b.add(q, left), dtype)
                    with emit.loop(b, right, wp) as q:
                        emit.store(b, zero, row, q, dtype)
                with otherwise:
                    with emit.loop(b, 0, wp) as q:
                        emit.store(b, zero, row, q, dtype)
    b.ret_void()
    return km


def pad_planes(dtype: str) -> Any:
    """f(x, xp, dims) with ctypes addresses (see _module)."""
    f = _FUNCS.get(dtype)
    if f is None:
        address = emit.compile_recipe(("pad", dtype), lambda: _module(dtype), ["pad"])["pad"]
        f = _FUNCS[dtype] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 3)(address)
    return f
