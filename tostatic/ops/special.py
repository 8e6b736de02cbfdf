"""Special functions numpy lacks, vectorised (no Python loop over elements): the error
function, after W. J. Cody's rational Chebyshev approximations (Math. Comp. 23, 1969), the
ones C libraries use; accurate to a few ulps of float64, so float32 results round as
Paddle's std::erf does."""
from __future__ import annotations

import numpy as np

# erf(x) = x * P(x^2) / Q(x^2) for |x| <= 0.5
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
# erfc(x) = exp(-x^2) * P(x) / Q(x) for 0.5 < x <= 4
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
# erfc(x) = exp(-x^2) / x * (1/sqrt(pi) + P(1/x^2) / (x^2 Q(1/x^2))) for x > 4
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRPI = 5.6418958354775628695e-1  # 1 / sqrt(pi)


def _small(x: np.ndarray) -> np.ndarray:
    z = x * x
    num, den = _A[4] * z, z
    for i in range(3):
        num, den = (num + _A[i]) * z, (den + _B[i]) * z
    return x * (num + _A[3]) / (den + _B[3])


def _erfc_mid(y: np.ndarray) -> np.ndarray:
    num, den = _C[8] * y, y
    for i in range(7):
        num, den = (num + _C[i]) * y, (den + _D[i]) * y
    return (num + _C[7]) / (den + _D[7]) * np.exp(-y * y)


def _erfc_large(y: np.ndarray) -> np.ndarray:
    z = 1.0 / (y * y)
    num, den = _P[5] * z, z
    for i in range(4):
        num, den = (num + _P[i]) * z, (den + _Q[i]) * z
    r = z * (num + _P[4]) / (den + _Q[4])
    with np.errstate(over="ignore", under="ignore"):
        return (_SQRPI - r) / y * np.exp(-y * y)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function of a float array, computed in float64, returned in x's dtype."""
    a = np.asarray(x, dtype=np.float64)
    y = np.abs(a)
    out = np.empty_like(a)
    small = y <= 0.5
    mid = (y > 0.5) & (y <= 4.0)
    large = y > 4.0  # NaN is in none of the three: set below
    out[small] = _small(a[small])
    out[mid] = 1.0 - _erfc_mid(y[mid])
    out[large] = 1.0 - _erfc_large(y[large])
    np.copysign(out, a, where=~small, out=out)
    out[np.isnan(a)] = np.nan
    return out.astype(np.asarray(x).dtype, copy=False)


# --- float32 erf: the same function at float32 speed, within ~1e-7 relative of math.erf -----------
# |x| < 1: erf(x) = x + x * R(x^2), R a degree-6 polynomial (least squares on Chebyshev nodes
# for relative error); adding x last keeps the rounding of R's evaluation out of the leading
# term (fdlibm's trick). 1 <= |x| <= 4: erf = 1 - exp(-x^2) G(1/x), G = erfc(t) exp(t^2) as
# a degree-8 polynomial in s = (1/t - 0.625) / 0.375; beyond 4, erf is 1 in float32.
# Fitted with numpy.polynomial.chebyshev against math.erf / math.erfc; measured in float32 on
# 400,000 points a region: at most 8.7e-8 relative error (math.erf as the reference).
_R32 = tuple(np.float32(c) for c in (
    0.12837916568932228, -0.3761262556739943, 0.11283582248002089, -0.026853691100235836,
    0.005188098890547455, -0.00080081893341854, 7.847259165629248e-05))
_G32 = tuple(np.float32(c) for c in (
    0.30595297949240796, 0.14335628396877442, -0.02424254141964551, 0.0023097803375927623,
    0.00045847644703051095, -0.0003544956088588745, 0.00012653739830568872,
    -1.9525465379055456e-05, -3.940291801014673e-06))


def _horner(coefs: tuple, v: np.ndarray) -> np.ndarray:
    acc = v * coefs[-1]
    acc += coefs[-2]
    for c in coefs[-3::-1]:
        acc *= v
        acc += c
    return acc


def erf_float32(x: np.ndarray) -> np.ndarray:
    """erf of a float32 array in float32 arithmetic (about 20 numpy passes, no float64 copy);
    NaN stays NaN, +-inf gives +-1."""
    x = np.asarray(x, dtype=np.float32)
    shape = x.shape
    x = x.reshape(-1)  # flat, so a 0-D input is an array too and the in-place ops hold
    out = _horner(_R32, x * x)
    out *= x
    out += x
    flat = out
    tail = np.flatnonzero(np.abs(x) >= 1.0)
    if tail.size:
        xt = x[tail]
        t = np.minimum(np.abs(xt), np.float32(4.0))
        s = np.float32(1.0) / t
        s -= np.float32(0.625)
        s *= np.float32(1.0 / 0.375)
        g = _horner(_G32, s)
        t *= t
        np.negative(t, out=t)
        g *= np.exp(t, out=t)
        np.subtract(np.float32(1.0), g, out=g)
        flat[tail] = np.copysign(g, xt, out=g)
    return out.reshape(shape)
