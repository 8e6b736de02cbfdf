"""exp, log, tanh and erf for float32 as straight-line LLVM IR (no libm call), so that loops
using them vectorise. Cephes' single-precision algorithms (exp, log, tanh) and Eigen's rational
erf; within a few float32 ulps of numpy. float64 calls libm (exact, not vectorised)."""
from __future__ import annotations

from typing import Any

from llvmlite import ir

F32 = ir.FloatType()
I32 = ir.IntType(32)
LN2_HI, LN2_LO = 0.693359375, -2.12194440e-4


def _poly(b: ir.IRBuilder, x: Any, coefficients: list[float]) -> Any:
    r = F32(coefficients[0])
    for c in coefficients[1:]:
        r = b.fadd(b.fmul(r, x), F32(c))
    return r


def _intrinsic(b: ir.IRBuilder, name: str, *args: Any) -> Any:
    t = args[0].type
    fn = b.module.declare_intrinsic(name, [t], ir.FunctionType(t, [t] * len(args)))
    return b.call(fn, list(args))


def _select_lt(b: ir.IRBuilder, x: Any, lo: float) -> Any:
    return b.select(b.fcmp_ordered("<", x, F32(lo)), F32(lo), x)


def _select_gt(b: ir.IRBuilder, x: Any, hi: float) -> Any:
    return b.select(b.fcmp_ordered(">", x, F32(hi)), F32(hi), x)


def _pow2(b: ir.IRBuilder, n: Any) -> Any:
    """2**n as a float, for n in [-126, 127]."""
    return b.bitcast(b.shl(b.add(n, I32(127)), I32(23)), F32)


def exp_f32(b: ir.IRBuilder, x: Any) -> Any:
    c = _select_gt(b, _select_lt(b, x, -104.0), 88.8)  # beyond: 0 and inf after scaling
    fx = _intrinsic(b, "llvm.floor", b.fadd(b.fmul(c, F32(1.44269504088896341)), F32(0.5)))
    r = b.fsub(b.fsub(c, b.fmul(fx, F32(LN2_HI))), b.fmul(fx, F32(LN2_LO)))
    p = _poly(b, r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                     1.6666665459e-1, 5.0000001201e-1])
    y = b.fadd(b.fadd(b.fmul(p, b.fmul(r, r)), r), F32(1.0))
    n = b.fptosi(fx, I32)
    half = b.ashr(n, I32(1))  # scale in two steps: 2**n itself may not be a normal float
    y = b.fmul(b.fmul(y, _pow2(b, half)), _pow2(b, b.sub(n, half)))
    return b.select(b.fcmp_unordered("uno", x, x), x, y)


def log_f32(b: ir.IRBuilder, x: Any) -> Any:
    small = b.fcmp_ordered("<", x, F32(1.17549435e-38))  # denormals: scaled up by 2**23
    xs = b.select(small, b.fmul(x, F32(8388608.0)), x)
    bits = b.bitcast(xs, I32)
    e = b.sub(b.sub(b.ashr(bits, I32(23)), I32(126)), b.select(small, I32(23), I32(0)))
    m = b.bitcast(b.or_(b.and_(bits, I32(-2139095041)), I32(0x3F000000)), F32)  # [0.5, 1)
    lt = b.fcmp_ordered("<", m, F32(0.707106781186547524))
    e = b.select(lt, b.sub(e, I32(1)), e)
    m = b.select(lt, b.fsub(b.fadd(m, m), F32(1.0)), b.fsub(m, F32(1.0)))
    z = b.fmul(m, m)
    y = b.fmul(b.fmul(_poly(b, m, [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1,
                                   -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                                   2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1]), m), z)
    fe = b.sitofp(e, F32)
    y = b.fadd(y, b.fmul(fe, F32(LN2_LO)))
    y = b.fadd(y, b.fmul(F32(-0.5), z))
    r = b.fadd(b.fadd(m, y), b.fmul(fe, F32(LN2_HI)))
    inf = F32(float("inf"))
    r = b.select(b.fcmp_ordered("==", x, inf), inf, r)
    r = b.select(b.fcmp_ordered("==", x, F32(0.0)), F32(float("-inf")), r)
    return b.select(b.fcmp_unordered("<", x, F32(0.0)), F32(float("nan")), r)  # < 0, nan


def tanh_f32(b: ir.IRBuilder, x: Any) -> Any:
    ax = _intrinsic(b, "llvm.fabs", x)
    z = b.fmul(x, x)
    small = b.fadd(b.fmul(b.fmul(_poly(b, z, [-5.70498872745e-3, 2.06390887954e-2,
                                             -5.37397155531e-2, 1.33314422036e-1,
                                             -3.33332819422e-1]), z), x), x)
    e = exp_f32(b, b.fadd(ax, ax))
    big = b.fsub(F32(1.0), b.fdiv(F32(2.0), b.fadd(e, F32(1.0))))
    big = _intrinsic(b, "llvm.copysign", big, x)
    r = b.select(b.fcmp_ordered("<", ax, F32(0.625)), small, big)
    return b.select(b.fcmp_unordered("uno", x, x), x, r)


def erf_f32(b: ir.IRBuilder, x: Any) -> Any:
    c = _select_gt(b, _select_lt(b, x, -4.0), 4.0)
    z = b.fmul(c, c)
    p = b.fmul(_poly(b, z, [-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                            -5.69250639462346e-05, -7.34990630326855e-04,
                            -2.95459980854025e-03, -1.60960333262415e-02]), c)
    q = _poly(b, z, [-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                     -7.37332916720468e-03, -1.42647390514189e-02])
    return b.select(b.fcmp_unordered("uno", x, x), x, b.fdiv(p, q))


F32_FNS = {"exp": exp_f32, "log": log_f32, "tanh": tanh_f32, "erf": erf_f32}


def libm_f64(b: ir.IRBuilder, kind: str, x: Any) -> Any:
    if kind in ("exp", "log"):
        return _intrinsic(b, f"llvm.{kind}", x)
    d = ir.DoubleType()
    fn = b.module.globals.get(kind) or ir.Function(b.module, ir.FunctionType(d, [d]), kind)
    return b.call(fn, [x])


def unary_float(b: ir.IRBuilder, kind: str, x: Any) -> Any:
    if x.type == F32:
        return F32_FNS[kind](b, x)
    return libm_f64(b, kind, x)
