"""Row kernels: softmax, log_softmax and layer_norm over the contiguous trailing elements of
each row (an axis that is not the last is moved there first), float32 and float64.

Each row is read a few times while it is in cache (max, then exp and sum, then scale), the
reductions vectorised with reassociating fast-math (so sums group differently from numpy's
pairwise ones, within float rounding); the elementwise steps round as numpy's do.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Sequence

import numpy as np
from llvmlite import ir

from tostatic.codegen import emit, mathfns, threads
from tostatic.codegen.emit import FAST, I64, PTR, VALUE_TYPES
from tostatic.ir import scalar_expr as se

_FUNCS: dict[tuple[Any, ...], Any] = {}
P, N = ctypes.c_void_p, ctypes.c_int64


def _row_loop(b: Any, n: Any, body: Callable[[Any], None]) -> None:
    with emit.loop(b, 0, n) as j:
        body(j)


def _exp(b: Any, x: Any, dtype: str) -> Any:
    return mathfns.unary_float(b, "exp", x) if dtype == "float32" else \
        mathfns.libm_f64(b, "exp", x)


def _max_of_row(b: Any, base: Any, n: Any, dtype: str, t: Any) -> Any:
    acc = emit.alloca(b, t, t(float("-inf")))
    maxnum = b.module.declare_intrinsic("llvm.maxnum", [t], ir.FunctionType(t, [t, t]))
    _row_loop(b, n, lambda j: b.store(
        b.call(maxnum, [b.load(acc), emit.load(b, base, j, dtype)], fastmath=FAST), acc))
    return b.load(acc)


def _softmax_module(dtype: str, log: bool) -> emit.KernelModule:
    """void k(x, out, rows, n)."""
    t = VALUE_TYPES[dtype]
    km = emit.KernelModule()
    fn, b = km.function("rows", [PTR, PTR, I64, I64], noalias=2)
    x, out, rows, n = fn.args
    with emit.loop(b, 0, rows) as r:
        off = b.mul(r, n)
        xr, orow = emit.element(b, x, off, dtype), emit.element(b, out, off, dtype)
        m = _max_of_row(b, xr, n, dtype, t)
        total = emit.alloca(b, t, t(0.0))

        def exp_sum(j: Any) -> None:
            e = _exp(b, b.fsub(emit.load(b, xr, j, dtype), m), dtype)
            if not log:
                emit.store(b, e, orow, j, dtype)
            b.store(b.fadd(b.load(total), e, flags=FAST), total)
        _row_loop(b, n, exp_sum)
        s = b.load(total)
        if log:
            ls = mathfns.unary_float(b, "log", s)
            _row_loop(b, n, lambda j: emit.store(
                b, b.fsub(b.fsub(emit.load(b, xr, j, dtype), m), ls), orow, j, dtype))
        else:
            _row_loop(b, n, lambda j: emit.store(
                b, b.fdiv(emit.load(b, orow, j, dtype), s), orow, j, dtype))
    b.ret_void()
    return km


def _layer_norm_module(dtype: str, has_scale: bool, has_bias: bool) -> emit.KernelModule:
    """void rows(x, scale, bias, y, mean, var, rows, n, eps as double), and
    void part(x, scale, bias, y, mean, var, i64 *dims = [lo, hi, n, eps's float64 bits]):
    rows lo .. hi, integer and pointer arguments only (a threads.parallel_calls part)."""
    t = VALUE_TYPES[dtype]
    km = emit.KernelModule()
    fn, b = km.function("rows", [PTR] * 6 + [I64, I64, emit.F64], noalias=6)
    x, scale, bias, y, mean_p, var_p, rows, n, eps64 = fn.args
    eps = eps64 if dtype == "float64" else b.fptrunc(eps64, t)
    nf = b.sitofp(n, t)
    with emit.loop(b, 0, rows) as r:
        off = b.mul(r, n)
        xr, yr = emit.element(b, x, off, dtype), emit.element(b, y, off, dtype)
        acc = emit.alloca(b, t, t(0.0))
        _row_loop(b, n, lambda j: b.store(
            b.fadd(b.load(acc), emit.load(b, xr, j, dtype), flags=FAST), acc))
        mean = b.fdiv(b.load(acc), nf)
        sq = emit.alloca(b, t, t(0.0))

        def centred(j: Any) -> None:
            d = b.fsub(emit.load(b, xr, j, dtype), mean)
            emit.store(b, d, yr, j, dtype)
            b.store(b.fadd(b.load(sq), b.fmul(d, d), flags=FAST), sq)
        _row_loop(b, n, centred)
        var = b.fdiv(b.load(sq), nf)
        sqrt = b.module.declare_intrinsic("llvm.sqrt", [t])
        inv = b.fdiv(t(1.0), b.call(sqrt, [b.fadd(var, eps)]))

        def normalise(j: Any) -> None:
            v = b.fmul(emit.load(b, yr, j, dtype), inv)
            if has_scale:
                v = b.fmul(v, emit.load(b, scale, j, dtype))
            if has_bias:
                v = b.fadd(v, emit.load(b, bias, j, dtype))
            emit.store(b, v, yr, j, dtype)
        _row_loop(b, n, normalise)
        emit.store(b, mean, mean_p, r, dtype)
        emit.store(b, var, var_p, r, dtype)
    b.ret_void()
    _rows_part(km, fn, dtype)
    return km


def _rows_part(km: emit.KernelModule, rows_fn: ir.Function, dtype: str) -> None:
    """part(x, scale, bias, y, mean, var, dims): rows_fn on rows dims[0] .. dims[1]."""
    part, b = km.function("part", [PTR] * 7)
    x, scale, bias, y, mean, var, dims = part.args
    lo, hi, n, eps = (b.load(emit.element(b, dims, emit.i64(i), "int64"), typ=I64)
                      for i in range(4))
    off = b.mul(lo, n)
    b.call(rows_fn, [emit.element(b, x, off, dtype), scale, bias, emit.element(b, y, off, dtype),
                     emit.element(b, mean, lo, dtype), emit.element(b, var, lo, dtype),
                     b.sub(hi, lo), n, b.bitcast(eps, emit.F64)])
    b.ret_void()


CONTRACT = ("contract",)  # fmul + fadd may become one FMA (rounds once: no less exact)


def _exp_shifted(b: Any, z: Any, dtype: str) -> Any:
    """exp(z) for softmax's z = x - max(x) <= 0: mathfns.exp_f32's Cephes polynomial with its
    products contracted into FMAs and one 2**n scaling (n >= -126 above the underflow
    bound, so 2**n is a normal float), 0 below the bound; NaN stays NaN. float64: libm."""
    if dtype != "float32":
        return mathfns.libm_f64(b, "exp", z)
    f = emit.F32
    low = b.fcmp_ordered("<", z, f(-87.3))
    zc = b.select(low, f(-87.3), z)
    fx = mathfns._intrinsic(b, "llvm.floor", b.fadd(b.fmul(zc, f(1.44269504088896341),
                                                           flags=CONTRACT), f(0.5),
                                                    flags=CONTRACT))
    r = b.fsub(zc, b.fmul(fx, f(mathfns.LN2_HI), flags=CONTRACT), flags=CONTRACT)
    r = b.fsub(r, b.fmul(fx, f(mathfns.LN2_LO), flags=CONTRACT), flags=CONTRACT)
    p = f(1.9875691500e-4)
    for c in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
              5.0000001201e-1):
        p = b.fadd(b.fmul(p, r, flags=CONTRACT), f(c), flags=CONTRACT)
    y = b.fadd(b.fadd(b.fmul(p, b.fmul(r, r), flags=CONTRACT), r, flags=CONTRACT), f(1.0))
    y = b.fmul(y, mathfns._pow2(b, b.fptosi(fx, emit.I32)))
    y = b.select(low, f(0.0), y)
    return b.select(b.fcmp_unordered("uno", z, z), z, y)


def _masked_softmax_module(dtype: str) -> emit.KernelModule:
    km = emit.KernelModule()
    add_masked_softmax(km, dtype)
    return km


def add_masked_softmax(km: emit.KernelModule, dtype: str) -> ir.Function:
    """void rows(x, mask, rows, n, group, period, mstride) into km: row r of x becomes
    softmax(x[r] + mask row (r / group) % period, mstride elements apart), in place; the
    exponentials by _exp_shifted, the sum's reciprocal multiplied (within an ulp or two of
    numpy's exp and division)."""
    t = VALUE_TYPES[dtype]
    fn, b = km.function("rows", [PTR, PTR] + [I64] * 5)
    x, mask, rows, n, group, period, mstride = fn.args
    with emit.loop(b, 0, rows) as r:
        xr = emit.element(b, x, b.mul(r, n), dtype)
        mr = emit.element(b, mask, b.mul(b.srem(b.sdiv(r, group), period), mstride), dtype)
        acc = emit.alloca(b, t, t(float("-inf")))
        maxnum = b.module.declare_intrinsic("llvm.maxnum", [t], ir.FunctionType(t, [t, t]))

        def masked(j: Any) -> Any:
            return b.fadd(emit.load(b, xr, j, dtype), emit.load(b, mr, j, dtype))
        _row_loop(b, n, lambda j: b.store(b.call(maxnum, [b.load(acc), masked(j)],
                                                 fastmath=FAST), acc))
        m = b.load(acc)
        total = emit.alloca(b, t, t(0.0))

        def exp_sum(j: Any) -> None:
            e = _exp_shifted(b, b.fsub(masked(j), m), dtype)
            emit.store(b, e, xr, j, dtype)
            b.store(b.fadd(b.load(total), e, flags=FAST), total)
        _row_loop(b, n, exp_sum)
        inv = b.fdiv(t(1.0), b.load(total))  # one division a row, a product an element
        _row_loop(b, n, lambda j: emit.store(
            b, b.fmul(emit.load(b, xr, j, dtype), inv), xr, j, dtype))
    b.ret_void()
    return fn


def masked_softmax_kernel(dtype: str) -> Any:
    """The ctypes function of _masked_softmax_module for float32 / float64: attention's
    scores plus their mask, softmaxed where they lie (one pass fewer than an add, then a
    softmax, and one call)."""
    if dtype not in se.FLOATS:
        raise se.NotScalar(f"softmax of {dtype}")
    return _func(("masked_softmax", dtype), lambda: _masked_softmax_module(dtype),
                 [P, P] + [N] * 5)


def layer_norm_kernel(dtype: str, has_scale: bool, has_bias: bool) -> Any:
    """The ctypes function of _layer_norm_module (x, scale, bias, y, mean, var, rows, n,
    eps), for callers that prepare its arguments once (runtime's bound layer_norm)."""
    if dtype not in se.FLOATS:
        raise se.NotScalar(f"layer_norm of {dtype}")
    return _func(("layer_norm", dtype, has_scale, has_bias),
                 lambda: _layer_norm_module(dtype, has_scale, has_bias),
                 [P] * 6 + [N, N, ctypes.c_double])


def layer_norm_part(dtype: str, has_scale: bool, has_bias: bool) -> Any:
    """The ctypes function `part` of _layer_norm_module (x, scale, bias, y, mean, var, dims =
    [lo, hi, n, eps's float64 bits]): rows lo .. hi, as a threads.parallel_calls part."""
    if dtype not in se.FLOATS:
        raise se.NotScalar(f"layer_norm of {dtype}")
    return _func(("layer_norm", dtype, has_scale, has_bias),
                 lambda: _layer_norm_module(dtype, has_scale, has_bias), [P] * 7, "part")


def layer_norm_split(dtype: str, has_scale: bool, has_bias: bool, addresses: Sequence[int],
                     rows: int, n: int, eps: float, parts: int) -> Callable[[], None]:
    """call(): layer_norm of `rows` rows of n over the addresses (x, scale, bias, y, mean,
    var; 0 for no scale / bias) in `parts` row ranges, run by threads.parallel_calls (machine
    code parts, no GIL switch: a pool thread takes one within a microsecond or two)."""
    f = layer_norm_part(dtype, has_scale, has_bias)
    bits = int(np.array([eps], np.float64).view(np.int64)[0])
    dims = np.array([[lo, hi, n, bits] for lo, hi in threads.bounds(rows, parts)], np.int64)
    calls = threads.part_calls(f, addresses, dims)
    if parts <= 1:
        return lambda: f(*addresses, dims.ctypes.data)
    return lambda: threads.parallel_calls(calls) if dims is not None else None


def _func(key: tuple[Any, ...], build: Callable[[], emit.KernelModule], argtypes: list[Any],
          name: str = "rows") -> Any:
    f = _FUNCS.get((*key, name))
    if f is None:
        names = ["rows", "part"] if key[0] == "layer_norm" else ["rows"]
        address = emit.compile_recipe(("rows", *key), build, names)[name]
        f = _FUNCS[(*key, name)] = ctypes.CFUNCTYPE(None, *argtypes)(address)
    return f


def _to_last(x: np.ndarray, axis: int) -> tuple[np.ndarray, bool]:
    axis = axis % x.ndim
    if axis == x.ndim - 1:
        return np.ascontiguousarray(x), False
    return np.ascontiguousarray(np.moveaxis(x, axis, -1)), True


def softmax(x: np.ndarray, axis: int = -1, log: bool = False) -> np.ndarray:
    """softmax (log_softmax) of float32 / float64 `x` along `axis`."""
    dtype = x.dtype.name
    if dtype not in se.FLOATS:
        raise se.NotScalar(f"softmax of {dtype}")
    if x.ndim == 0:
        return np.zeros_like(x) if log else np.ones_like(x)
    xs, moved = _to_last(x, axis)
    out = np.empty_like(xs)
    if out.size:
        f = _func(("softmax", dtype, log), lambda: _softmax_module(dtype, log), [P, P, N, N])
        n, step = xs.shape[-1], xs.shape[-1] * xs.itemsize
        x_p, o_p, total = xs.ctypes.data, out.ctypes.data, out.size // n
        parts = threads.parts_for(total, n, threads.MIN_NATIVE_ELEMENTS)
        if parts <= 1:
            f(x_p, o_p, total, n)
        else:  # machine-code parts (threads.parallel_calls): rows lo .. hi each
            calls = np.zeros((parts, 1 + threads.CALL_ARGS), np.int64)
            calls[:, 0] = ctypes.cast(f, ctypes.c_void_p).value
            for p, (lo, hi) in enumerate(threads.bounds(total, parts)):
                calls[p, 1:5] = x_p + lo * step, o_p + lo * step, hi - lo, n
            threads.parallel_calls(calls)
    return np.moveaxis(out, -1, axis % x.ndim) if moved else out


def layer_norm(x: np.ndarray, scale: np.ndarray | None, bias: np.ndarray | None,
               epsilon: float, begin_norm_axis: int) -> list[np.ndarray]:
    """[Y, Mean, Variance] as ops.layer_norm.layer_norm gives them."""
    dtype = x.dtype.name
    if dtype not in se.FLOATS:
        raise se.NotScalar(f"layer_norm of {dtype}")
    rows_shape = x.shape[:begin_norm_axis]
    rows = int(np.prod(rows_shape))
    n = int(np.prod(x.shape[begin_norm_axis:]))
    xs = np.ascontiguousarray(x)
    y = np.empty_like(xs)
    mean = np.empty(rows_shape, dtype=x.dtype)
    var = np.empty(rows_shape, dtype=x.dtype)
    if not n:
        raise se.NotScalar("layer_norm of empty rows")  # numpy's nan means
    if rows:
        sc = np.ascontiguousarray(scale, dtype=x.dtype) if scale is not None else None
        bi = np.ascontiguousarray(bias, dtype=x.dtype) if bias is not None else None
        addresses = [0 if a is None else a.ctypes.data for a in (xs, sc, bi, y, mean, var)]
        parts = threads.parts_for(rows, n, threads.MIN_NATIVE_ELEMENTS)
        layer_norm_split(dtype, sc is not None, bi is not None, addresses, rows, n,
                         float(epsilon), parts)()
    return [y, mean, var]
