"""pool2d, NCHW, max or average over 2-D windows (explicit / SAME / VALID padding, ceil_mode,
exclusive or not): the windows come from ops/pooling.py's own rules (`_dims`: Paddle's
kernel, quirks included), as per-output start / end arrays and the divisor of each output, so
the compiled loop only sums or maxes the clipped window. Global and adaptive pooling stay
with the numpy kernel (global pooling is a reduction: codegen/reduce.py)."""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from llvmlite import ir

from tostatic.codegen import emit, threads
from tostatic.codegen.emit import I64, PTR, VALUE_TYPES
from tostatic.ir import scalar_expr as se
from tostatic.ir.op_rules import FLT_MAX

_FUNCS: dict[tuple[Any, ...], Any] = {}
# the plane split as machine-code parts (threads.parallel_calls: no GIL switch; ResNet-50's
# 64x112x112 3x3/s2 max pool on two threads took 0.42 ms as Python parts, 0.22 on one);
# False: Python parts (threads.parallel_for), for A/B runs
NATIVE_SPLIT = True
# max pooling of stride 2 along rows by vectors (_rows_module), windows up to ROW_MAX_TAPS
# wide (its taps' columns within three vectors). ResNet's 3x3 / stride 2 pool over 64 x 112
# x 112, one thread, exclusive CPU: 0.216 -> 0.176 ms right after the stem wrote its input,
# 0.212 -> 0.140 run again. False: the tap-by-tap kernel (_module), for A/B runs
ROW_MAX = True
ROW_MAX_TAPS = 5


def _module(dtype: str, is_max: bool, kw: int, sw: int) -> emit.KernelModule:
    """void k(x, out, hs, he, ws, we, count, i64 *dims = [planes, H, W, OH, OW, pad_left]).

    Each output row starts at the fill value; every input row of its window is then combined
    into it: the columns whose window lies inside the row as `kw` unrolled taps (a loop LLVM
    vectorises), the few at the borders through their clipped windows."""
    t = VALUE_TYPES[dtype]
    km = emit.KernelModule()
    fn, b = km.function("pool", [PTR] * 8, noalias=2)
    x, out, hs_p, he_p, ws_p, we_p, count, dims_p = fn.args
    planes, h, wd, oh, ow, pl = (b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64),
                                        typ=I64) for i in range(6))
    start = t(-FLT_MAX if is_max else 0.0)

    def combine(a: Any, v: Any) -> Any:
        return b.select(b.fcmp_ordered(">", v, a), v, a) if is_max else b.fadd(a, v)

    # interior columns: q*sw - pl >= 0 and q*sw - pl + kw <= W
    lo = b.sdiv(b.add(pl, emit.i64(sw - 1)), emit.i64(sw))
    top = b.sub(b.add(wd, pl), emit.i64(kw))
    hi = b.add(b.sdiv(top, emit.i64(sw)), emit.i64(1))
    hi = b.select(b.icmp_signed("<", top, emit.i64(0)), lo, hi)
    hi = b.select(b.icmp_signed(">", hi, ow), ow, hi)
    lo = b.select(b.icmp_signed(">", lo, hi), hi, lo)
    with emit.loop(b, 0, planes) as p:
        xp = emit.element(b, x, b.mul(p, b.mul(h, wd)), dtype)
        op = emit.element(b, out, b.mul(p, b.mul(oh, ow)), dtype)
        with emit.loop(b, 0, oh) as r:
            orow = emit.element(b, op, b.mul(r, ow), dtype)
            with emit.loop(b, 0, ow) as q:
                emit.store(b, start, orow, q, dtype)
            hs, he = emit.load(b, hs_p, r, "int64"), emit.load(b, he_p, r, "int64")
            with emit.loop(b, hs, he) as i:
                xrow = emit.element(b, xp, b.mul(i, wd), dtype)
                with emit.loop(b, lo, hi) as q:
                    base = b.sub(b.mul(q, emit.i64(sw)), pl)
                    acc = emit.load(b, orow, q, dtype)
                    for j in range(kw):
                        acc = combine(acc, emit.load(b, xrow, b.add(base, emit.i64(j)), dtype))
                    emit.store(b, acc, orow, q, dtype)
                for q0, q1 in ((emit.i64(0), lo), (hi, ow)):  # the border columns
                    with emit.loop(b, q0, q1) as q:
                        ws, we = emit.load(b, ws_p, q, "int64"), emit.load(b, we_p, q, "int64")
                        slot = emit.alloca(b, t, emit.load(b, orow, q, dtype))
                        with emit.loop(b, ws, we) as j:
                            b.store(combine(b.load(slot), emit.load(b, xrow, j, dtype)), slot)
                        emit.store(b, b.load(slot), orow, q, dtype)
            if not is_max:
                with emit.loop(b, 0, ow) as q:
                    k = b.add(b.mul(r, ow), q)
                    emit.store(b, b.fdiv(emit.load(b, orow, q, dtype),
                                         emit.load(b, count, k, dtype)), orow, q, dtype)
    b.ret_void()
    return km


def _rows_module(dtype: str, kw: int) -> emit.KernelModule:
    """_module's kernel for max pooling of stride 2 along rows, `lanes` outputs q.. of a row
    at a time: the window's input rows maxed column by column in three vectors (columns
    c0 .. c0 + 3 lanes, c0 = 2q - pad_left), then each tap j = 2s + e is one shuffle: the
    even (e = 0) or odd columns of the first two vectors, shifted by s lanes into the third
    (LLVM's own strided code gathers: _module's 3x3 / stride 2 runs ~55 ns an output row of
    56, this ~20). Loads are masked to the row (0 <= column < W), a masked lane reading the
    fill value, so a border window is the clipped one with no scalar code (the columns of
    a regular window: ops/pooling.py's rule). Every output is the max of the same values
    as _module's (a NaN never replaces the max): equal results."""
    t = VALUE_TYPES[dtype]
    n = 16 if dtype == "float32" else 8
    vec = ir.VectorType(t, n)
    i32v = ir.VectorType(emit.I32, n)
    km = emit.KernelModule()
    fn, b = km.function("pool", [PTR] * 8, noalias=2)
    x, out, hs_p, he_p, _ws, _we, _count, dims_p = fn.args
    planes, h, wd, oh, ow, pl = (b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64),
                                        typ=I64) for i in range(6))
    i64 = emit.i64
    fill = ir.Constant(vec, [-FLT_MAX] * n)
    mload, mstore = emit.masked_load_store(km.module, vec)
    lanes = ir.Constant(i32v, list(range(n)))

    def splat(v: Any) -> Any:
        """The i32 vector of v's (an i64: columns and widths < 2**31, Pool2d's check)."""
        one = b.insert_element(ir.Constant(i32v, ir.Undefined), b.trunc(v, emit.I32),
                               emit.I32(0))
        return b.shuffle_vector(one, ir.Constant(i32v, ir.Undefined),
                                ir.Constant(i32v, [0] * n))

    def combine(a: Any, v: Any) -> Any:  # (as _module's: a NaN never replaces the max)
        return b.select(b.fcmp_ordered(">", v, a), v, a)

    width, ends = splat(wd), splat(ow)
    with emit.loop(b, 0, planes) as p:
        xp = emit.element(b, x, b.mul(p, b.mul(h, wd)), dtype)
        op = emit.element(b, out, b.mul(p, b.mul(oh, ow)), dtype)
        with emit.loop(b, 0, oh) as r:
            orow = emit.element(b, op, b.mul(r, ow), dtype)
            hs, he = emit.load(b, hs_p, r, "int64"), emit.load(b, he_p, r, "int64")
            with emit.loop(b, 0, ow, n) as q:
                # columns c0 + [0, 3n) of the window's rows (c0 = 2q - pad_left), three loads
                # a row, masked to 0 <= column < W, maxed down the rows
                c0 = b.sub(b.mul(q, i64(2)), pl)
                masks = [b.icmp_unsigned("<", b.add(splat(b.add(c0, i64(k * n))), lanes), width)
                         for k in range(3)]
                # (a vector inside the row: a plain load, emit.plain_or_masked_load)
                plain = [b.and_(b.icmp_signed(">=", b.add(c0, i64(k * n)), i64(0)),
                                b.icmp_signed("<=", b.add(c0, i64((k + 1) * n)), wd))
                         for k in range(3)]
                accs = [emit.alloca(b, vec, fill) for _ in range(3)]
                with emit.loop(b, hs, he) as i:
                    xrow = emit.element(b, xp, b.add(b.mul(i, wd), c0), dtype)
                    for k, (mask, inside, slot) in enumerate(zip(masks, plain, accs)):
                        at = emit.element(b, xrow, i64(k * n), dtype)
                        v = emit.plain_or_masked_load(b, at, vec, inside, mload, mask, fill)
                        b.store(combine(b.load(slot), v), slot)
                va, vb, vc = (b.load(slot) for slot in accs)
                # tap 2s + e (e = 0, 1), lane l: column c0 + 2(l + s) + e, the (l + s)-th of
                # the even / odd columns of va, vb, then of vc
                halves = [b.shuffle_vector(va, vb, ir.Constant(ir.VectorType(emit.I32, n),
                                                               list(range(e, 2 * n, 2))))
                          for e in (0, 1)]
                acc = fill
                for j in range(kw):
                    s_, e = divmod(j, 2)
                    v = halves[e] if s_ == 0 else b.shuffle_vector(halves[e], vc, ir.Constant(
                        ir.VectorType(emit.I32, n),
                        [l + s_ if l + s_ < n else n + 2 * (l + s_ - n) + e for l in range(n)]))
                    acc = combine(acc, v)
                b.call(mstore, [acc, emit.element(b, orow, q, dtype), emit.I32(4),
                                b.icmp_signed("<", b.add(splat(q), lanes), ends)])
    b.ret_void()
    return km


class Pool2d:
    """The kernel prepared for one input shape: window arrays built and the code compiled
    once, so a bound plan step (runtime/kernels.py) allocates nothing per run."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, windows: Any, is_max: bool,
                 exclusive: bool) -> None:
        dtype = np.dtype(dtype)
        dh, dw = windows
        if dtype.name not in se.FLOATS or dh.adaptive or dw.adaptive:
            raise se.NotScalar(f"pool2d of {dtype.name}")
        (hs, he, hsz), (ws, we, wsz) = dh.windows(), dw.windows()
        n, c, h, wd = shape
        self.out_shape = (n, c, dh.out, dw.out)
        if is_max:
            self.count = np.ones(1, dtype=dtype)
        else:
            sizes = [he - hs, we - ws] if exclusive else [hsz, wsz]
            self.count = np.ascontiguousarray((sizes[0][:, None] * sizes[1][None, :])
                                              .astype(dtype))
        rows = ROW_MAX and is_max and dw.stride == 2 and dw.k <= ROW_MAX_TAPS and \
            2 * (wd + dw.out + dw.pad) + 64 < 2**31  # (its columns: i32 lanes)
        key = (dtype.name, is_max, dw.k, dw.stride, *(("rows",) if rows else ()))
        f = _FUNCS.get(key)
        if f is None:
            address = emit.compile_recipe(
                ("pool", *key), (lambda: _rows_module(dtype.name, dw.k)) if rows else
                (lambda: _module(*key)), ["pool"])["pool"]
            f = _FUNCS[key] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 8)(address)
        self._f = f
        self._idx = [np.ascontiguousarray(a, dtype=np.int64) for a in (hs, he, ws, we)]
        self._steps = h * wd * dtype.itemsize, dh.out * dw.out * dtype.itemsize
        self._planes, self._plane_size = n * c, h * wd
        self._row = [h, wd, dh.out, dw.out, dw.pad]
        self._dims: dict[int, np.ndarray] = {}
        self._native: dict[int, tuple[np.ndarray, ...]] = {}  # parallel_calls rows by parts

    def run(self, x: np.ndarray, out: np.ndarray) -> None:
        """x and out C-contiguous, of the prepared shapes."""
        if not out.size:
            return
        x_at, out_at = x.ctypes.data, out.ctypes.data
        x_step, o_step = self._steps
        idx = [i.ctypes.data for i in self._idx]

        if NATIVE_SPLIT and threads.num_threads() > 1:
            parts = threads.parts_for(self._planes, self._plane_size, threads.MIN_NATIVE_ELEMENTS)
            if parts > 1:  # planes a part, taken with no GIL switch (threads.parallel_calls)
                calls = self._native.get(parts)
                if calls is None:
                    spans = threads.bounds(self._planes, parts)
                    dims = np.array([[b - a, *self._row] for a, b in spans], np.int64)
                    calls = threads.part_calls(self._f, [0, 0, *idx, self.count.ctypes.data],
                                               dims)
                    calls[:, 1:3] = [[a * x_step, a * o_step] for a, _ in spans]
                    self._native[parts] = calls = (calls, calls[:, 1:3].copy(), dims)
                table, offsets, _ = calls
                np.add(offsets, (x_at, out_at), out=table[:, 1:3])
                threads.parallel_calls(table)
                return

        def part(a: int, b: int) -> None:
            dims = self._dims.get(b - a)
            if dims is None:
                dims = self._dims[b - a] = np.array([b - a, *self._row], dtype=np.int64)
            self._f(x_at + a * x_step, out_at + a * o_step, *idx, self.count.ctypes.data,
                    dims.ctypes.data)
        threads.parallel_for(self._planes, self._plane_size, part)


def pool2d(x: np.ndarray, windows: Any, is_max: bool, exclusive: bool) -> np.ndarray:
    """x [N, C, H, W]; `windows` the two ops.pooling._Dim of height and width."""
    k = Pool2d(x.shape, x.dtype, windows, is_max, exclusive)
    out = np.empty(k.out_shape, dtype=x.dtype)
    k.run(np.ascontiguousarray(x), out)
    return out
