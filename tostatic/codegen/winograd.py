"""Winograd F(m x m, 3 x 3) transforms for 3x3, stride-1 convolutions (Lavin & Gray, 2016):
the input and output tile transforms as generated kernels; the filter transform and the tile
GEMMs stay in numpy (runtime/conv_winograd.py).

An output tile of m x m needs an alpha x alpha input tile (alpha = m + 2); each of the
alpha^2 transformed positions is one GEMM [C_out, C_in] x [C_in, tiles], so a tile costs
alpha^2 multiply-adds per channel pair instead of 9 m^2 (F(4x4): 36 vs 144).

Both transforms are separable (B^T d B, A^T M A), each as two passes, one of them over all
of a plane's tiles at once (a unit-stride pass; per tile row the loops would be 14 long at
56x56, under one AVX-512 vector). In float32 every pass is explicit 16-lane vectors
(_RowVectors): LLVM's own vectoriser left rows under 16 tiles, and the 16 tiles of a 14x14
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
take 16 // TW tile rows a vector (pack; ResNet-18's F(4x4) 28x28 and 14x14 layers 0.91x and
0.90x, its F(2x2) 7x7 0.93x, interleaved, the same floats).
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
_FUNCS: dict[tuple[Any, ...], Any] = {}


def pack(tw: int, m: int) -> int:
    """Tile rows a vector of the row passes takes for planes `tw` tiles wide: 16 // tw
    where a tile row's window span (m (tw - 1) + m + 2 floats) fits two vectors, else 1
    (one tile row, 16 tiles a step)."""
    return 16 // tw if tw <= 8 and m * (tw - 1) + m + 2 <= 32 else 1


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


class _RowVectors:
    """The passes along a row as explicit 16-lane vectors (`bt` the matrix applied, m the
    output tile size, 2 or 4): LLVM's own loop vectorises only rows of 16 tiles or more
    (scalar below: every row at 56x56 and smaller for F(4x4), 28x28 for F(2x2)). The input's:
    tile tx reads row[m tx .. m tx + m + 1], i.e. every m-th lane of m (+1) loads, and the
    first two of those shifted by one lane; the last block's extra lanes masked off."""

    def __init__(self, km: emit.KernelModule, b: Any, bt: Any, m: int) -> None:
        self.b, self.bt, self.m = b, bt, m
        self.vec = vec = ir.VectorType(emit.F32, 16)
        self.mask_t = ir.VectorType(emit.I1, 16)
        self.masked_load, self.store = emit.masked_load_store(km.module, vec)
        self.lanes = ir.Constant(ir.VectorType(I64, 16), list(range(16)))

    def columns(self, srcs: Sequence[Any], coeffs: Sequence[Sequence[Any]],
                dsts: Sequence[Any], n: Any) -> None:
        """dsts[r][q] = sum_i coeffs[r][i] srcs[i][q] for q < n (srcs[i] None where no
        coefficient uses it), 16 q a step, the tail masked: LLVM's own vectorised loop (16 x 4
        a step) left the 16 tiles of a 14x14 plane, and the tails of others, to scalar code."""
        b, vec = self.b, self.vec
        zero = ir.Constant(vec, [0.0] * 16)
        with emit.loop(b, 0, n, 16) as q:
            mask = self._mask(b.sub(n, q))
            vals = [None if src is None else b.call(self.masked_load, [
                emit.element(b, src, q, "float32"), emit.I32(4), mask, zero]) for src in srcs]
            for row, dst in zip(coeffs, dsts):
                b.call(self.store, [_combine_vec(b, row, vals, vec),
                                    emit.element(b, dst, q, "float32"), emit.I32(4), mask])

    def _shuffle(self, x: Any, y: Any, idx: Sequence[int]) -> Any:
        return self.b.shuffle_vector(x, y, ir.Constant(ir.VectorType(emit.I32, 16), list(idx)))

    def _strided(self, xs: Sequence[Any], s: int) -> Any:
        """Lanes s, s + m, ... of the m vectors xs (16 values)."""
        if self.m == 2:
            return self._shuffle(xs[0], xs[1], range(s, 32, 2))
        lo = self._shuffle(xs[0], xs[1], [*range(s, 32, 4), *range(8)])
        hi = self._shuffle(xs[2], xs[3], [*range(s, 32, 4), *range(8)])
        return self._shuffle(lo, hi, [*range(8), *range(16, 24)])

    def rows(self, rows: Sequence[tuple[Any, Any, Sequence[Any]]], tw: Any, pl: Any,
             width: Any) -> None:
        """The alpha rows (pointer, inside the plane (i1), destinations) of a tile row, as
        the padded rows' tile windows (pl zeros on the left, zeros outside the plane's
        `width` columns and rows): masked loads, their column masks made once for all
        rows."""
        b, vec, i64, m = self.b, self.vec, emit.i64, self.m
        zero = ir.Constant(vec, [0.0] * 16)
        i32v = ir.VectorType(emit.I32, 16)
        lanes = ir.Constant(i32v, list(range(16)))
        limit = self._splat(b.trunc(width, emit.I32), i32v)
        with emit.loop(b, 0, tw, 16) as tx:
            col = b.sub(b.mul(tx, i64(m)), pl)
            at = [b.add(col, i64(16 * k)) for k in range(m + 1)]
            cols = [b.add(self._splat(b.trunc(a, emit.I32), i32v), lanes) for a in at]
            masks = [b.and_(b.icmp_signed(">=", cv, ir.Constant(i32v, [0] * 16)),
                            b.icmp_signed("<", cv, limit)) for cv in cols]
            # (the last load's lanes 0 and 1 only)
            masks[m] = b.and_(masks[m], ir.Constant(self.mask_t, [1, 1] + [0] * 14))
            store_mask = self._mask(b.sub(tw, tx))
            whole = [b.and_(b.icmp_signed(">=", a, i64(0)),
                            b.icmp_signed("<=", a, b.sub(width, i64(16)))) for a in at[:m]]
            some = [b.and_(b.icmp_signed("<", a, width), b.icmp_signed(">", a, i64(-16)))
                    for a in at]
            for row, inside, dst in rows:
                keep = self._splat(inside, self.mask_t)
                xs = [self._load(emit.element(b, row, a, "float32"), b.and_(mk, keep),
                                 b.and_(inside, wh) if wh is not None else None,
                                 b.and_(inside, sm))
                      for a, mk, wh, sm in zip(at, masks, whole + [None], some)]
                d = [self._strided(xs, s) for s in range(m)]
                d += [self._shuffle(d[k], xs[m], [*range(1, 16), 16 + k]) for k in range(2)]
                for j, out in enumerate(dst):
                    value = _combine_vec(b, self.bt[j], d, vec)
                    b.call(self.store, [value, emit.element(b, out, tx, "float32"),
                                        emit.I32(4), store_mask])

    def packed_rows(self, rows: Sequence[tuple[Sequence[tuple[Any, Any]], Sequence[Any]]],
                    tw: int, pl: Any, width: Any, store_n: Any) -> None:
        """`rows` as above for PACK(tw) tile rows at once, `tw` (fixed) tiles each: lane
        q tw + tx is tile tx of tile row q, so that small planes fill the vectors (14x14 at
        F(4x4): 4 tile rows, not 4 of 16 lanes). Each row's window span (m (tw - 1) +
        alpha <= 32 floats) comes in 1-2 masked loads; every tap a pick from them. rows:
        per window row r, ((pointer, inside) per tile row q, destinations); store_n: the
        lanes stored."""
        b, vec, i64, m = self.b, self.vec, emit.i64, self.m
        alpha, k = m + 2, pack(tw, m)
        span = m * (tw - 1) + alpha
        nv = -(-span // 16)
        i32v = ir.VectorType(emit.I32, 16)
        lanes = ir.Constant(i32v, list(range(16)))
        limit = self._splat(b.trunc(width, emit.I32), i32v)
        at = [b.sub(i64(16 * v), pl) for v in range(nv)]
        masks = []
        for v, a in enumerate(at):
            cv = b.add(self._splat(b.trunc(a, emit.I32), i32v), lanes)
            need = ir.Constant(self.mask_t, [int(16 * v + i < span) for i in range(16)])
            masks.append(b.and_(b.and_(b.icmp_signed(">=", cv, ir.Constant(i32v, [0] * 16)),
                                       b.icmp_signed("<", cv, limit)), need))
        whole = [b.and_(b.icmp_signed(">=", a, i64(0)),
                        b.icmp_signed("<=", a, b.sub(width, i64(16)))) for a in at]
        some = [b.and_(b.icmp_signed("<", a, width), b.icmp_signed(">", a, i64(-16)))
                for a in at]
        store_mask = self._mask(store_n)
        for qs, dst in rows:
            xs = []
            for row, inside in qs:
                keep = self._splat(inside, self.mask_t)
                xs += [self._load(emit.element(b, row, a, "float32"), b.and_(mk, keep),
                                  b.and_(inside, wh), b.and_(inside, sm))
                       for a, mk, wh, sm in zip(at, masks, whole, some)]
            d = [self._pick(xs, [divmod(nv * 16 * (ln // tw) + m * (ln % tw) + s, 16)
                                 if ln < k * tw else None for ln in range(16)])
                 for s in range(alpha)]
            for j, out in enumerate(dst):
                b.call(self.store, [_combine_vec(b, self.bt[j], d, vec), out, emit.I32(4),
                                    store_mask])

    def packed_out(self, src: Any, per: Any, yrow: Any, tw: int) -> None:
        """out_row for PACK(tw) tile rows at once (lane q tw + tx: tile tx of tile row q):
        their m tw floats each into yrow, row q at q m tw."""
        b, vec, i64, m = self.b, self.vec, emit.i64, self.m
        vals = [b.load(emit.element(b, src, b.mul(i64(j), per), "float32"), typ=vec, align=4)
                for j in range(m + 2)]
        ys = [_combine_vec(b, self.bt[c], vals, vec) for c in range(m)]
        width = m * tw
        for q in range(pack(tw, m)):
            for o in range(-(-width // 16)):
                picks = [(f % m, q * tw + f // m) if f < width else None
                         for f in range(16 * o, 16 * o + 16)]
                b.call(self.store, [self._pick(ys, picks), emit.element(
                    b, yrow, i64(q * width + 16 * o), "float32"), emit.I32(4),
                    ir.Constant(self.mask_t, [int(p is not None) for p in picks])])

    def _pick(self, srcs: Sequence[Any], picks: Sequence[tuple[int, int] | None]) -> Any:
        """Lane i: srcs[picks[i][0]] lane picks[i][1] (None: any), by one two-source
        shuffle per pair of sources used, joined by selects."""
        result = None
        for pair in sorted({p[0] // 2 for p in picks if p is not None}):
            idx = [16 * (p[0] % 2) + p[1] if p is not None and p[0] // 2 == pair else 0
                   for p in picks]
            lo = srcs[2 * pair]
            hi = srcs[2 * pair + 1] if 2 * pair + 1 < len(srcs) else lo
            value = self._shuffle(lo, hi, idx)
            if result is None:
                result = value
            else:
                mask = [int(p is not None and p[0] // 2 == pair) for p in picks]
                result = self.b.select(ir.Constant(self.mask_t, mask), value, result)
        return result

    def _load(self, at: Any, mask: Any, whole: Any, some: Any) -> Any:
        """16 floats at `at`, the lanes off `mask` zero: a plain load where `whole` (all
        lanes inside; None: never), none where not `some` (no lane inside), else a masked
        one (masked loads that missed the cache waited: batch 8 of 64 x 56 x 56 took 6 us
        a plane against the padded copy's 2.4)."""
        b, vec = self.b, self.vec
        zero = ir.Constant(vec, [0.0] * 16)
        start = b.block
        with b.if_then(some):
            if whole is None:
                v1, b1 = b.call(self.masked_load, [at, emit.I32(4), mask, zero]), b.block
            else:
                with b.if_else(whole) as (plain, edge):
                    with plain:
                        p1, pb1 = b.load(at, typ=vec, align=4), b.block
                    with edge:
                        p2, pb2 = b.call(self.masked_load, [at, emit.I32(4), mask, zero]), \
                            b.block
                v1 = b.phi(vec)
                v1.add_incoming(p1, pb1)
                v1.add_incoming(p2, pb2)
                b1 = b.block
        value = b.phi(vec)
        value.add_incoming(v1, b1)
        value.add_incoming(zero, start)
        return value

    def _splat(self, value: Any, vtype: Any) -> Any:
        b = self.b
        undef = ir.Constant(vtype, ir.Undefined)
        return b.shuffle_vector(b.insert_element(undef, value, emit.I32(0)), undef,
                                ir.Constant(ir.VectorType(emit.I32, 16), [0] * 16))

    def _mask(self, left: Any) -> Any:
        """Lanes k < left."""
        b = self.b
        undef = ir.Constant(ir.VectorType(I64, 16), ir.Undefined)
        splat = b.shuffle_vector(b.insert_element(undef, left, emit.I32(0)), undef,
                                 ir.Constant(ir.VectorType(emit.I32, 16), [0] * 16))
        return b.icmp_signed("<", self.lanes, splat)

    def _interleave(self, ys: Sequence[Any]) -> list[Any]:
        """The m vectors ys (result c of tiles 0..15) as 16m floats, tile after tile."""
        if self.m == 2:
            return [self._shuffle(ys[0], ys[1], [k // 2 + 16 * (k % 2) + 8 * half
                                                 for k in range(16)]) for half in range(2)]
        pairs = [self._interleave2(ys[0], ys[1]), self._interleave2(ys[2], ys[3])]
        # pairs[q][h]: results 2q, 2q + 1 of tiles 8h .. 8h + 7, as (tile, result) pairs
        return [self._shuffle(pairs[0][h], pairs[1][h],
                              [2 * (k // 4 + 4 * part) + k % 2 + 16 * (k % 4 // 2)
                               for k in range(16)])
                for h in range(2) for part in range(2)]

    def _interleave2(self, y0: Any, y1: Any) -> list[Any]:
        return [self._shuffle(y0, y1, [k // 2 + 16 * (k % 2) + 8 * half for k in range(16)])
                for half in range(2)]

    def out_row(self, src: Any, per: Any, yrow: Any, tw: Any) -> None:
        """The output transform's pass along a tile row: yrow[m tx + c] = sum_j A^T[c, j]
        src[j*per + tx], the m results of 16 tiles interleaved into 16m floats. Reads up to
        16 floats past the row's tiles."""
        b, vec, i64, m = self.b, self.vec, emit.i64, self.m
        with emit.loop(b, 0, tw, 16) as tx:
            vals = [b.load(emit.element(b, src, b.add(b.mul(i64(j), per), tx), "float32"),
                           typ=vec, align=4) for j in range(m + 2)]
            ys = [_combine_vec(b, self.bt[c], vals, vec) for c in range(m)]
            left = b.mul(b.sub(tw, tx), i64(m))  # floats of the row still to write
            at = emit.element(b, yrow, b.mul(tx, i64(m)), "float32")
            for k, value in enumerate(self._interleave(ys)):
                b.call(self.store, [value, emit.element(b, at, i64(16 * k), "float32"),
                                    emit.I32(4), self._mask(b.sub(left, i64(16 * k)))])


def _combine_vec(b: Any, coeffs: Sequence[Any], values: Sequence[Any], vec: Any) -> Any:
    acc = None
    for c, v in zip(coeffs, values):
        if c == 0:
            continue
        term = v if abs(c) == 1 else b.fmul(v, ir.Constant(vec, [float(abs(c))] * 16))
        if acc is None:
            acc = b.fneg(term) if c < 0 else term
        else:
            acc = b.fsub(acc, term) if c < 0 else b.fadd(acc, term)
    return acc if acc is not None else ir.Constant(vec, [0.0] * 16)


def _input_module(m: int, dtype: str, packed: int = 0) -> emit.KernelModule:
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
    per = b.mul(th, tw)
    vectors = _RowVectors(km, b, bt, m) if dtype == "float32" else None
    zero = emit.constant(dtype, 0)
    with emit.loop(b, first, end) as p:
        n_i, c_i = b.sdiv(p, c), b.srem(p, c)
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
            outs = [emit.element(b, v, b.add(b.mul(b.add(b.mul(i64(i * alpha + j), c), c_i),
                                                   t), t0), dtype) for i in range(alpha)]
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


def _packed_input_rows(b: Any, vectors: _RowVectors, plane: Any, dd: Any,
                       dims: Sequence[Any], tw_fixed: int) -> None:
    """The input's pass along the rows, pack(TW, m) tile rows a step (TW == tw_fixed)."""
    h, w, pt, pl, th, tw = dims
    i64, m = emit.i64, vectors.m
    alpha, k = m + 2, pack(tw_fixed, m)
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
                   packed: int = 0) -> emit.KernelModule:
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
    per = b.mul(th, tw)
    ptrs = [b.inttoptr(v_, PTR) for v_ in _dims(b, extras, len(leaves))]
    part = emit.element(b, scratch, i64(0), dtype)
    vectors = _RowVectors(km, b, at, m) if dtype == "float32" else None
    yrow = emit.element(b, scratch, b.mul(i64(m * alpha), per), dtype)
    with emit.loop(b, first, end) as p:
        n_i, co = b.sdiv(p, co_n), b.srem(p, co_n)
        plane_bias = {k: emit.load(b, ptrs[k], co, dtype)
                      for k, leaf in enumerate(leaves) if leaf == "bias"}
        t0 = b.mul(n_i, per)
        for j in range(alpha):  # down: part[a, j, tile] = sum_i A^T[a, i] M[i*alpha+j, tile]
            srcs = [emit.element(b, mm, b.add(b.mul(b.add(b.mul(i64(i * alpha + j), co_n), co),
                                                  t), t0), dtype) for i in range(alpha)]
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
        if vectors is not None and packed:  # (TW == packed: pack(packed, m) tile rows a step)
            k = pack(packed, m)
            with emit.loop(b, 0, th, k) as ty:
                left = b.sub(th, ty)
                for a in range(m):
                    vectors.packed_out(emit.element(b, part, b.add(b.mul(
                        i64(a * alpha), per), b.mul(ty, tw)), dtype), per, yrow, packed)
                    with emit.loop(b, 0, b.select(b.icmp_signed("<", left, i64(k)), left,
                                                  i64(k))) as q:
                        y = b.add(b.mul(b.add(ty, q), i64(m)), i64(a))
                        with b.if_then(b.icmp_signed("<", y, oh)):
                            epilogue_row(y, emit.element(b, yrow, b.mul(q, i64(m * packed)),
                                                         dtype))
        else:
            with emit.loop(b, 0, th) as ty:
                for a in range(m):
                    y = b.add(b.mul(ty, i64(m)), i64(a))
                    with b.if_then(b.icmp_signed("<", y, oh)):
                        src = emit.element(b, part, b.add(b.mul(i64(a * alpha), per),
                                                          b.mul(ty, tw)), dtype)
                        if vectors is not None:
                            vectors.out_row(src, per, yrow, tw)
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
    f = _FUNCS.get(key)
    if f is None:  # (compiled meanwhile on a first-ever start: emit.function_later)
        f = _FUNCS[key] = emit.function_later(("winograd", *key), lambda: build().text(),
                                              f"__NAME__{name}", nargs)
    return f


def input_transform(m: int, dtype: str, packed: int = 0) -> Callable[..., None]:
    """f(x, V, scratch, dims) with ctypes addresses (see _input_module); packed: for planes
    of exactly that many tiles a row (row passes of pack(packed, m) tile rows a vector)."""
    key = ("in", m, dtype) + ((packed,) if packed else ())
    return _compiled(key, lambda: _input_module(m, dtype, packed), "win", 4)


def output_transform(m: int, dtype: str, expr: se.Expr, leaves: Sequence[str],
                     packed: int = 0) -> Callable[..., None]:
    """f(M, out, extras, scratch, dims) with ctypes addresses (see _output_module); packed:
    as input_transform's."""
    key = ("out", m, dtype, expr, tuple(leaves)) + ((packed,) if packed else ())
    return _compiled(key, lambda: _output_module(m, dtype, expr, leaves, packed), "wout", 5)
