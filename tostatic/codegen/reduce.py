"""Reductions (sum, mean, max, min) over any axes: x is viewed as [outer, n, inner] with the
reduced axes in the middle (when they are not adjacent, a transposed copy puts them last).
inner == 1 reduces contiguous rows (a vectorised reduction); otherwise each step of n
combines a whole contiguous [inner] slice into the output row (vectorised over inner).

Sum accumulates in the result dtype (int64 for bool / int32 sums, as Paddle's reduce_sum);
max / min are float32 / float64 / int32 / int64. Fast-math reductions ignore NaN order
(numpy's max propagates a NaN; here a row's NaN may be dropped).
"""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from llvmlite import ir

from tostatic.codegen import emit, threads
from tostatic.codegen.emit import FAST, I64, PTR, VALUE_TYPES
from tostatic.ir import scalar_expr as se

_FUNCS: dict[tuple[Any, ...], Any] = {}
KINDS = ("sum", "mean", "max", "min")


def _combine(b: ir.IRBuilder, kind: str, acc: Any, v: Any, dtype: str) -> Any:
    t = VALUE_TYPES[dtype]
    if kind in ("sum", "mean"):
        return b.fadd(acc, v, flags=FAST) if dtype in se.FLOATS else b.add(acc, v)
    if dtype in se.FLOATS:
        name = "llvm.maxnum" if kind == "max" else "llvm.minnum"
        fn = b.module.declare_intrinsic(name, [t], ir.FunctionType(t, [t, t]))
        return b.call(fn, [acc, v], fastmath=FAST)
    return b.select(b.icmp_signed(">" if kind == "max" else "<", acc, v), acc, v)


def _load_as(b: ir.IRBuilder, base: Any, j: Any, src: str, dst: str) -> Any:
    v = emit.load(b, base, j, src)
    return v if src == dst else emit._cast(b, v, src, dst)


def _module(kind: str, src: str, dst: str) -> emit.KernelModule:
    """void k(x, out, outer, n, inner): out[o, i] = reduce_j x[o, j, i]."""
    km = emit.KernelModule()
    fn, b = km.function("red", [PTR, PTR, I64, I64, I64], noalias=2)
    x, out, outer, n, inner = fn.args
    is_row = b.icmp_signed("==", inner, emit.i64(1))
    row_bb, col_bb, done = (fn.append_basic_block(s) for s in ("row", "col", "done"))
    b.cbranch(is_row, row_bb, col_bb)
    b.position_at_end(row_bb)  # inner == 1: one vectorised reduction a row
    with emit.loop(b, 0, outer) as o:
        xr = emit.element(b, x, b.mul(o, n), src)
        acc = emit.alloca(b, VALUE_TYPES[dst], _load_as(b, xr, emit.i64(0), src, dst))
        with emit.loop(b, 1, n) as j:
            b.store(_combine(b, kind, b.load(acc), _load_as(b, xr, j, src, dst), dst), acc)
        emit.store(b, _finish(b, kind, b.load(acc), n, dst), out, o, dst)
    b.branch(done)
    b.position_at_end(col_bb)  # whole [inner] slices at a time
    with emit.loop(b, 0, outer) as o:
        orow = emit.element(b, out, b.mul(o, inner), dst)
        xo = emit.element(b, x, b.mul(b.mul(o, n), inner), src)
        with emit.loop(b, 0, inner) as i:
            emit.store(b, _load_as(b, xo, i, src, dst), orow, i, dst)
        with emit.loop(b, 1, n) as j:
            xj = emit.element(b, xo, b.mul(j, inner), src)
            with emit.loop(b, 0, inner) as i:
                v = _combine(b, kind, emit.load(b, orow, i, dst), _load_as(b, xj, i, src, dst),
                             dst)
                emit.store(b, v, orow, i, dst)
        if kind == "mean":
            with emit.loop(b, 0, inner) as i:
                emit.store(b, _finish(b, kind, emit.load(b, orow, i, dst), n, dst), orow, i, dst)
    b.branch(done)
    b.position_at_end(done)
    b.ret_void()
    return km


def _finish(b: ir.IRBuilder, kind: str, v: Any, n: Any, dtype: str) -> Any:
    return b.fdiv(v, b.sitofp(n, VALUE_TYPES[dtype])) if kind == "mean" else v


def reduce(x: np.ndarray, kind: str, axes: tuple[int, ...], keepdim: bool,
           out_dtype: np.dtype) -> np.ndarray:
    """`kind` of x over the sorted, normalised `axes` (as ops.reduction.reduced_axes gives
    them), in `out_dtype`."""
    src, dst = x.dtype.name, np.dtype(out_dtype).name
    ok = (src in se.DTYPES and dst in se.DTYPES and x.ndim and axes
          and (kind != "mean" or dst in se.FLOATS)
          and (kind == "sum" or (src == dst and src != "bool")))
    if not ok or any(x.shape[a] == 0 for a in axes):
        raise se.NotScalar(f"reduce_{kind} of {src} to {dst} over {axes}")
    shape = x.shape
    if list(axes) == list(range(axes[0], axes[-1] + 1)):
        xs = np.ascontiguousarray(x)
        first, last = axes[0], axes[-1]
    else:  # the reduced axes last, in a copy
        rest = [a for a in range(x.ndim) if a not in axes]
        xs = np.ascontiguousarray(np.transpose(x, rest + list(axes)))
        first, last = len(rest), x.ndim - 1
        shape = xs.shape
    outer = int(np.prod(shape[:first]))
    n = int(np.prod(shape[first:last + 1]))
    inner = int(np.prod(shape[last + 1:]))
    out = np.empty(outer * inner, dtype=dst)
    if out.size:
        key = (kind, src, dst)
        f = _FUNCS.get(key)
        if f is None:
            address = emit.compile_recipe(("reduce", *key), lambda: _module(kind, src, dst),
                                          ["red"])["red"]
            f = _FUNCS[key] = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                                               ctypes.c_int64, ctypes.c_int64,
                                               ctypes.c_int64)(address)
        x_step, o_step = n * inner * xs.itemsize, inner * out.itemsize
        x_p, o_p = xs.ctypes.data, out.ctypes.data
        threads.parallel_for(outer, n * inner, lambda a, b: f(x_p + a * x_step, o_p + a * o_step,
                                                              b - a, n, inner))
    result = tuple(1 if a in axes else d for a, d in enumerate(x.shape)) if keepdim else \
        tuple(d for a, d in enumerate(x.shape) if a not in axes)
    return out.reshape(result)
