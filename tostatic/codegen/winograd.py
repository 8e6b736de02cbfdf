"""Winograd F(m x m, 3 x 3) transforms for 3x3, stride-1 convolutions (Lavin & Gray, 2016):
the input and output tile transforms as generated kernels; the filter transform and the tile
GEMMs stay in numpy (runtime/conv_winograd.py).

An output tile of m x m needs an alpha x alpha input tile (alpha = m + 2); each of the
alpha^2 transformed positions is one GEMM [C_out, C_in] x [C_in, tiles], so a tile costs
alpha^2 multiply-adds per channel pair instead of 9 m^2 (F(4x4): 36 vs 144).

Both transforms are separable (B^T d B, A^T M A), each as two passes, one of them over all
of a plane's tiles at once (a unit-stride pass; per tile row the loops would be 14 long at
56x56, under one AVX-512 vector). In float32 every pass is explicit 16-lane vectors
(RowVectors): LLVM's own vectoriser left rows under 16 tiles, and the 16 tiles of a 14x14
plane at F(4x4), to scalar code (F(4x4) on 64 x 56 x 56: input 0.15 -> 0.06 ms, output 0.13
-> 0.09):
- input: per image plane, along the rows of each tile's window (stride-m windows, into
  D[alpha, alpha, tiles]; the zero border of the padding by masked loads), then down,
  writing V[alpha^2, C, tiles] rows;
- output: per output plane, down over all its tiles (A^T on the alpha^2 GEMM rows), then per
  tile row along (into one output row), then the epilogue (an expression of the value, bias
  and residual operands) writing the output row once.
Planes of at most 8 tiles a row (28x28 and smaller at F(4x4), 14x14 and 7x7 at F(2x2)) would
fill half a vector or less in the passes along the rows: there kernels made for that width
take 16 // TW tile rows a vector (codegen/winograd_rows.py tile_rows_a_vector; ResNet-18's
F(4x4) 28x28 and 14x14 layers 0.91x and 0.90x, its F(2x2) 7x7 0.93x, interleaved, the same
floats). The 1-D transforms share their sums (winograd_rows.RowVectors.linear), and V's and
M's positions may lie `pad` floats further apart than [C, T] (runtime/conv_winograd.py
POSITION_PAD).
"""
from __future__ import annotations

import math
from fractions import Fraction as Fr
from typing import Any, Callable, Sequence

import numpy as np
from llvmlite import ir


from tostatic.codegen import emit
from tostatic.codegen.emit import I64, PTR
from tostatic.codegen.prepared import prepared  # (plan cache: runtime/plan_cache.py)
from tostatic.codegen import winograd_rows
from tostatic.codegen.winograd_rows import RowVectors, tile_rows_a_vector
from tostatic.ir import scalar_expr as se

# the interpolation points per output tile size m (and infinity). F(4x4)'s 0, +-3/2, +-2/3
# came out best of the 5-point sets from 0, +-1/4 .. +-4 in a float32 model of the transforms
# and GEMM, and in the kernels: 1-3e-6 of the largest output against float64 where 0, +-1,
# +-1/2 made 5-11e-6 and Lavin's 0, +-1, +-2 ~4e-6 (64-256 channels, ResNet-like data).
# Not every coefficient is exact in binary then (2/3, -97/36): each is rounded once, as the
# filter transform's are.
POINTS: dict[int, tuple[Fr, ...]] = {2: (Fr(0), Fr(1), Fr(-1)),
                                     4: (Fr(0), Fr(3, 2), Fr(-3, 2), Fr(2, 3), Fr(-2, 3))}


def _poly_mul(a: Sequence[Fr], b: Sequence[Fr]) -> list[Fr]:
    r = [Fr(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            r[i + j] += x * y
    return r


def cook_toom(m: int, points: Sequence[Fr], r: int = 3) -> tuple[list[list[Fr]], ...]:
    """(B^T, G, A^T) of F(m, r) from alpha - 1 points and infinity, exactly (Fractions); each
    B^T row scaled to integers (G's row divided by the same)."""
    alpha = m + r - 1
    at = [[p ** i for p in points] + [Fr(int(i == m - 1))] for i in range(m)]
    bt, g = [], []
    whole = [Fr(1)]
    for p in points:
        whole = _poly_mul(whole, [-p, Fr(1)])
    for p in points:
        row, norm = [Fr(1)], Fr(1)
        for q in points:
            if q != p:
                row, norm = _poly_mul(row, [-q, Fr(1)]), norm * (p - q)
        row += [Fr(0)] * (alpha - len(row))
        scale = math.lcm(*(x.denominator for x in row))
        bt.append([x * scale for x in row])
        g.append([p ** k / norm / scale for k in range(r)])
    bt.append(whole)
    g.append([Fr(0)] * (r - 1) + [Fr(1)])
    return bt, g, at


MATRICES = {m: cook_toom(m, pts) for m, pts in POINTS.items()}


FILTER_BLOCK = 4096  # filters transformed at a time: their float64 temporaries stay in cache


@prepared
def filter_transform(w: np.ndarray, m: int, rows: int | None = None) -> np.ndarray:
    """U [alpha^2, C_out, C_in] = G g G^T for each filter g [3, 3], computed in float64: one
    GEMM (G kron G) [alpha^2, 9] x [9, filters] per block of filters. By blocks, so that
    the float64 temporaries stay in cache: whole (75 MB for a 512 x 512 layer at F(4x4)),
    they took 44 ms of fresh pages for that layer, a fifth of ResNet-50's start. With `rows`,
    U comes packed for codegen/winograd_gemm.py, [alpha^2, C_out / rows, C_in, rows]: the
    filters are put in that order first (9 floats each), not U after (16: transposing
    ResNet-50's U took 0.13 s of its first run)."""
    g = np.array([[float(v) for v in row] for row in MATRICES[m][1]])
    k = np.kron(g, g)  # [(a, b), (i, j)] = G[a, i] G[b, j]
    cout, cin = w.shape[:2]
    flat = w.reshape(cout * cin, 9) if rows is None else np.ascontiguousarray(
        w.reshape(cout // rows, rows, cin, 9).transpose(0, 2, 1, 3)).reshape(cout * cin, 9)
    u = np.empty((k.shape[0], cout * cin), w.dtype)
    for lo in range(0, cout * cin, FILTER_BLOCK):
        part = flat[lo:lo + FILTER_BLOCK].astype(np.float64)
        u[:, lo:lo + FILTER_BLOCK] = k @ part.T
    return u.reshape(k.shape[0], cout, cin) if rows is None else \
        u.reshape(k.shape[0], cout // rows, cin, rows)


def _combine(b: Any, coeffs: Sequence[Any], values: Sequence[Any], dtype: str) -> Any:
    """sum(c * v) over the nonzero coefficients (+-1 as an add / subtract)."""
    t = emit.VALUE_TYPES[dtype]
    acc = None
    for c, v in zip(coeffs, values):
        if c == 0:
            continue
        if abs(c) != 1:
            term, neg = b.fmul(v, t(float(abs(c)))), c < 0
        else:
            term, neg = v, c < 0
        if acc is None:
            acc = b.fneg(term) if neg else term
        else:
            acc = b.fsub(acc, term) if neg else b.fadd(acc, term)
    return acc if acc is not None else t(0.0)


def _dims(b: Any, p: Any, n: int) -> list[Any]:
    return [b.load(b.gep(p, [emit.i64(i)], source_etype=I64), typ=I64) for i in range(n)]


def _prefetch_positions(km: emit.KernelModule, b: Any, base: Any, stride: Any, at: Any,
                        positions: int, write: int) -> None:
    """Prefetch the first line at `at` of each of V's or M's positions (stride apart)."""
    fn = km.module.globals.get("llvm.prefetch.p0") or ir.Function(
        km.module, ir.FunctionType(ir.VoidType(), [PTR, emit.I32, emit.I32, emit.I32]),
        "llvm.prefetch.p0")
    for q in range(positions):
        b.call(fn, [emit.element(b, base, b.add(b.mul(emit.i64(q), stride), at), "float32"),
                    emit.I32(write), emit.I32(3), emit.I32(1)])


def _input_module(m: int, dtype: str, packed: int = 0, pad: int = 0,
                  ahead: int = 0) -> emit.KernelModule:
    """void k(x, V, scratch, i64 *dims = [C, H, W, PT, PL, TH, TW, T, first, end]): the
    planes p = n*C + c in [first, end) of x, as padded by PT rows above and PL columns on the
    left and zeros below and right (masked loads: no padded copy), into V[alpha^2, C, T]
    (tile n*TH*TW + ty*TW + tx). scratch: D[alpha (j), alpha (r), TH*TW], row r of each
    tile's window along the row."""
    bt = MATRICES[m][0]
    alpha = m + 2
    km = emit.KernelModule()
    fn, b = km.function("win", [PTR] * 4, noalias=3)
    x, v, dd, dims_p = fn.args
    c, h, w, pt, pl, th, tw, t, first, end = _dims(b, dims_p, 10)
    i64 = emit.i64
    stride = b.add(b.mul(c, t), i64(pad))  # (between V's positions)
    per = b.mul(th, tw)
    vectors = RowVectors(km, b, bt, m) if dtype == "float32" else None
    zero = emit.constant(dtype, 0)
    with emit.loop(b, first, end) as p:
        n_i, c_i = b.sdiv(p, c), b.srem(p, c)
        if ahead:
            later = b.add(b.mul(b.add(c_i, i64(ahead)), t), b.mul(n_i, b.mul(th, tw)))
            _prefetch_positions(km, b, v, stride, later, alpha * alpha, 1)
        plane = emit.element(b, x, b.mul(p, b.mul(h, w)), dtype)
        if vectors is not None and packed:  # (TW == packed)
            _packed_input_rows(b, vectors, plane, dd, (h, w, pt, pl, th, tw), packed)
        else:
            with emit.loop(b, 0, th) as ty:  # along the rows (stride-m windows)
                rows = []
                for r in range(alpha):
                    y = b.sub(b.add(b.mul(ty, i64(m)), i64(r)), pt)
                    inside = b.and_(b.icmp_signed(">=", y, i64(0)), b.icmp_signed("<", y, h))
                    row = emit.element(b, plane, b.mul(b.select(inside, y, i64(0)), w), dtype)
                    rows.append((row, inside, [emit.element(b, dd, b.add(b.mul(
                        i64(j * alpha + r), per), b.mul(ty, tw)), dtype) for j in range(alpha)]))
                if vectors is not None:
                    vectors.rows(rows, tw, pl, w)
                for row, inside, dst in rows if vectors is None else ():
                    width = b.select(inside, w, i64(0))  # (a padding row: no column inside)
                    with emit.loop(b, 0, tw) as tx:
                        base = b.sub(b.mul(tx, i64(m)), pl)
                        d = []
                        for s_ in range(alpha):
                            col = b.add(base, i64(s_))
                            ok = b.and_(b.icmp_signed(">=", col, i64(0)),
                                        b.icmp_signed("<", col, width))
                            d.append(b.select(ok, emit.load(b, row, b.select(ok, col, i64(0)),
                                                            dtype), zero))
                        for j in range(alpha):
                            emit.store(b, _combine(b, bt[j], d, dtype), dst[j], tx, dtype)
        t0 = b.mul(n_i, per)
        for j in range(alpha):  # down the columns, over all the plane's tiles at once
            outs = [emit.element(b, v, b.add(b.add(b.mul(i64(i * alpha + j), stride),
                                                   b.mul(c_i, t)), t0), dtype)
                    for i in range(alpha)]
            srcs = [emit.element(b, dd, b.mul(i64(j * alpha + r), per), dtype)
                    for r in range(alpha)]
            if vectors is not None:
                vectors.columns(srcs, bt, outs, per)
                continue
            for i in range(alpha):
                with emit.loop(b, 0, per) as q:
                    vals = [emit.load(b, srcs[r], q, dtype) if bt[i][r] != 0 else None
                            for r in range(alpha)]
                    emit.store(b, _combine(b, bt[i], vals, dtype), outs[i], q, dtype)
    b.ret_void()
    return km


def _packed_input_rows(b: Any, vectors: RowVectors, plane: Any, dd: Any,
                       dims: Sequence[Any], tw_fixed: int) -> None:
    """The input's pass along the rows, tile_rows_a_vector(TW, m) tile rows a step
    (TW == tw_fixed)."""
    h, w, pt, pl, th, tw = dims
    i64, m = emit.i64, vectors.m
    alpha, k = m + 2, tile_rows_a_vector(tw_fixed, m)
    per = b.mul(th, tw)
    with emit.loop(b, 0, th, k) as ty:
        left = b.sub(th, ty)
        store_n = b.mul(b.select(b.icmp_signed("<", left, i64(k)), left, i64(k)), tw)
        rows = []
        for r in range(alpha):
            qs = []
            for q in range(k):
                y = b.sub(b.add(b.mul(b.add(ty, i64(q)), i64(m)), i64(r)), pt)
                inside = b.and_(b.icmp_signed(">=", y, i64(0)), b.icmp_signed("<", y, h))
                qs.append((emit.element(b, plane, b.mul(b.select(inside, y, i64(0)), w),
                                        "float32"), inside))
            rows.append((qs, [emit.element(b, dd, b.add(b.mul(i64(j * alpha + r), per),
                                                         b.mul(ty, tw)), "float32")
                              for j in range(alpha)]))
        vectors.packed_rows(rows, tw_fixed, pl, w, store_n)


def _output_module(m: int, dtype: str, expr: se.Expr, leaves: Sequence[str],
                   packed: int = 0, pad: int = 0, ahead: int = 0) -> emit.KernelModule:
    """void k(M, out, extras, scratch, i64 *dims = [Cout, OH, OW, TH, TW, T, first, end]):
    output planes p = n*Cout + co in [first, end) from M[alpha^2, Cout, T]; `expr` of arg 0
    (the convolution), then per leaf ("bias": extras[k][co], "add": extras[k][p, y, x]).
    scratch: P[m, alpha, TH*TW] then one output row [TW*m]."""
    at = MATRICES[m][2]
    alpha = m + 2
    km = emit.KernelModule()
    fn, b = km.function("wout", [PTR] * 5, noalias=2)
    mm, out, extras, scratch, dims_p = fn.args
    co_n, oh, ow, th, tw, t, first, end = _dims(b, dims_p, 8)
    i64 = emit.i64
    stride = b.add(b.mul(co_n, t), i64(pad))  # (between M's positions)
    per = b.mul(th, tw)
    ptrs = [b.inttoptr(v_, PTR) for v_ in _dims(b, extras, len(leaves))]
    part = emit.element(b, scratch, i64(0), dtype)
    vectors = RowVectors(km, b, at, m) if dtype == "float32" else None
    yrow = emit.element(b, scratch, b.mul(i64(m * alpha), per), dtype)
    with emit.loop(b, first, end) as p:
        n_i, co = b.sdiv(p, co_n), b.srem(p, co_n)
        if ahead:
            later = b.add(b.mul(b.add(co, i64(ahead)), t), b.mul(n_i, per))
            _prefetch_positions(km, b, mm, stride, later, alpha * alpha, 0)
        plane_bias = {k: emit.load(b, ptrs[k], co, dtype)
                      for k, leaf in enumerate(leaves) if leaf == "bias"}
        t0 = b.mul(n_i, per)
        for j in range(alpha):  # down: part[a, j, tile] = sum_i A^T[a, i] M[i*alpha+j, tile]
            srcs = [emit.element(b, mm, b.add(b.add(b.mul(i64(i * alpha + j), stride),
                                                    b.mul(co, t)), t0), dtype)
                    for i in range(alpha)]
            if vectors is not None:
                vectors.columns(srcs, at, [emit.element(b, part, b.mul(
                    i64(a * alpha + j), per), dtype) for a in range(m)], per)
                continue
            for a in range(m):
                dst = emit.element(b, part, b.mul(i64(a * alpha + j), per), dtype)
                with emit.loop(b, 0, per) as q:
                    vals = [emit.load(b, srcs[i], q, dtype) if at[a][i] != 0 else None
                            for i in range(alpha)]
                    emit.store(b, _combine(b, at[a], vals, dtype), dst, q, dtype)
        def epilogue_row(y: Any, src: Any) -> None:
            """Output row y from src (its ow floats), the epilogue applied."""
            row_at = b.mul(b.add(b.mul(p, oh), y), ow)
            orow = emit.element(b, out, row_at, dtype)
            rows = {k: emit.element(b, ptrs[k], row_at, dtype)
                    for k, leaf in enumerate(leaves) if leaf == "add"}
            with emit.loop(b, 0, ow) as x:
                def leaf(i: int, x: Any = x) -> Any:
                    if i == 0:
                        return emit.load(b, src, x, dtype)
                    k = i - 1
                    return plane_bias[k] if k in plane_bias else \
                        emit.load(b, rows[k], x, dtype)
                emit.store(b, emit.emit_expr(b, expr, leaf), orow, x, dtype)

        def put(y: Any, col: Any, value: Any) -> None:
            """16 floats of output row y from column col (those < OW), the epilogue
            applied as vectors."""
            row_at = b.add(b.mul(b.add(b.mul(p, oh), y), ow), col)
            mask = vectors._mask(b.sub(ow, col))

            def leaf(i: int) -> Any:
                if i == 0:
                    return value
                k = i - 1
                if k in plane_bias:
                    return emit.splat(b, plane_bias[k], 16)
                return b.call(vectors.masked_load, [emit.element(b, ptrs[k], row_at, dtype),
                                                    emit.I32(4), mask, vectors.zero])
            b.call(vectors.store, [emit.vector_expr(b, expr, leaf, 16),
                                   emit.element(b, out, row_at, dtype), emit.I32(4), mask])
        if vectors is not None and packed:  # (TW == packed: k tile rows a step)
            k = tile_rows_a_vector(packed, m)
            with emit.loop(b, 0, th, k) as ty:
                for a in range(m):
                    def put_q(q: int, col: Any, value: Any, a: int = a) -> None:
                        y = b.add(b.mul(b.add(ty, i64(q)), i64(m)), i64(a))
                        with b.if_then(b.and_(b.icmp_signed("<", b.add(ty, i64(q)), th),
                                              b.icmp_signed("<", y, oh))):
                            put(y, col, value)
                    vectors.packed_out(emit.element(b, part, b.add(b.mul(
                        i64(a * alpha), per), b.mul(ty, tw)), dtype), per, packed, put_q)
        else:
            with emit.loop(b, 0, th) as ty:
                for a in range(m):
                    y = b.add(b.mul(ty, i64(m)), i64(a))
                    with b.if_then(b.icmp_signed("<", y, oh)):
                        src = emit.element(b, part, b.add(b.mul(i64(a * alpha), per),
                                                          b.mul(ty, tw)), dtype)
                        if vectors is not None:
                            vectors.out_row(src, per, tw, lambda _q, col, v, y=y: put(y, col, v))
                        else:
                            with emit.loop(b, 0, tw) as tx:  # along: yrow[tx*m + c] (A^T again)
                                vals = [emit.load(b, src, b.add(b.mul(i64(j), per), tx), dtype)
                                        for j in range(alpha)]
                                for cc in range(m):
                                    emit.store(b, _combine(b, at[cc], vals, dtype), yrow,
                                               b.add(b.mul(tx, i64(m)), i64(cc)), dtype)
                            epilogue_row(y, yrow)
    b.ret_void()
    return km


def _compiled(key: tuple[Any, ...], build: Callable[[], emit.KernelModule], name: str,
              nargs: int) -> Any:
    key += () if winograd_rows.SHARED else ("unshared",)
    # (compiled meanwhile on a first-ever start: emit.function_later)
    return emit.function_later(("winograd", *key), lambda: build().text(), f"__NAME__{name}",
                               nargs)


def input_transform(m: int, dtype: str, packed: int = 0, pad: int = 0,
                    ahead: int = 0) -> Callable[..., None]:
    """f(x, V, scratch, dims) with ctypes addresses (see _input_module); packed: for planes
    of exactly that many tiles a row (row passes of tile_rows_a_vector(packed, m) tile rows
    a vector); pad: floats between V's positions [C, T] (position p at p (C T + pad));
    ahead: each plane first prefetches (for writing) V's alpha^2 lines of the plane that
    many further on (planes of at most 16 tiles: their V rows a line each)."""
    key = ("in", m, dtype) + ((packed,) if packed else ()) + (("pad", pad) if pad else ()) + \
        (("ahead", ahead) if ahead else ())
    return _compiled(key, lambda: _input_module(m, dtype, packed, pad, ahead), "win", 4)


def output_transform(m: int, dtype: str, expr: se.Expr, leaves: Sequence[str],
                     packed: int = 0, pad: int = 0, ahead: int = 0) -> Callable[..., None]:
    """f(M, out, extras, scratch, dims) with ctypes addresses (see _output_module); packed,
    pad and ahead as input_transform's (here M's lines, read)."""
    key = ("out", m, dtype, expr, tuple(leaves)) + ((packed,) if packed else ()) + \
        (("pad", pad) if pad else ()) + (("ahead", ahead) if ahead else ())
    return _compiled(key, lambda: _output_module(m, dtype, expr, leaves, packed, pad, ahead),
                     "wout", 5)
