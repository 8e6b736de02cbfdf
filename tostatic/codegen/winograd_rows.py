"""The Winograd transforms' passes as explicit 16-lane float32 vectors (codegen/winograd.py
builds the kernels from them): a tile row's windows from masked loads and shuffles, several
tile rows a vector on narrow planes (tile_rows_a_vector), the 1-D transforms with shared
sums and FMAs."""
from __future__ import annotations

from typing import Any, Sequence

from llvmlite import ir

from tostatic.codegen import emit
from tostatic.codegen.emit import I64


def tile_rows_a_vector(tw: int, m: int) -> int:
    """Tile rows a vector of the row passes takes for planes `tw` tiles wide: 16 // tw
    where a tile row's window span (m (tw - 1) + m + 2 floats) fits two vectors, else 1
    (one tile row, 16 tiles a step)."""
    return 16 // tw if tw <= 8 and m * (tw - 1) + m + 2 <= 32 else 1


# the 1-D transforms with shared sums and FMAs (RowVectors.linear); False: each output its
# own multiplies and adds, for A/B (a kernel key of its own: codegen/winograd.py)
SHARED = True


def _column_pairs(rows: Sequence[Sequence[Any]]) -> list[tuple[int, int]]:
    """Columns (k1, k2), each in one pair, whose coefficients are equal or opposite in
    every row and nonzero in some."""
    pairs, used = [], set()
    for k1 in range(len(rows[0])):
        for k2 in range(k1 + 1, len(rows[0])):
            if k1 in used or k2 in used or not any(r[k1] for r in rows):
                continue
            if all(r[k2] in (r[k1], -r[k1]) and (r[k1] != 0) == (r[k2] != 0) for r in rows):
                pairs.append((k1, k2))
                used |= {k1, k2}
    return pairs


def _row_pairs(rows: Sequence[Sequence[Any]]) -> list[tuple[int, int, int]]:
    """Rows (i, j, sign) with rows[j][k] = sign (-1)^k rows[i][k], both parts nonzero."""
    pairs, used = [], set()
    for i, ri in enumerate(rows):
        if not any(ri[0::2]) or not any(ri[1::2]):
            continue
        for j in range(i + 1, len(rows)):
            for sign in (1, -1):
                if i not in used and j not in used and all(
                        rows[j][k] == sign * (-1) ** k * c for k, c in enumerate(ri)):
                    pairs.append((i, j, sign))
                    used |= {i, j}
    return pairs


class RowVectors:
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
        self.zero = ir.Constant(vec, [0.0] * 16)
        self.lanes = ir.Constant(ir.VectorType(I64, 16), list(range(16)))
        self.fma = km.module.globals.get("llvm.fma.v16f32") or ir.Function(
            km.module, ir.FunctionType(vec, [vec] * 3), "llvm.fma.v16f32")

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
            for value, dst in zip(self.linear(coeffs[:len(dsts)], vals), dsts):
                b.call(self.store, [value, emit.element(b, dst, q, "float32"), emit.I32(4),
                                    mask])

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
                for out, value in zip(dst, self.linear(self.bt, d)):
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
        alpha, k = m + 2, tile_rows_a_vector(tw, m)
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
            for out, value in zip(dst, self.linear(self.bt, d)):
                b.call(self.store, [value, out, emit.I32(4), store_mask])

    def packed_out(self, src: Any, per: Any, tw: int, put: Any) -> None:
        """out_row for PACK(tw) tile rows at once (lane q tw + tx: tile tx of tile row q):
        their m tw floats each to put(q, column, vector)."""
        b, vec, i64, m = self.b, self.vec, emit.i64, self.m
        vals = [b.load(emit.element(b, src, b.mul(i64(j), per), "float32"), typ=vec, align=4)
                for j in range(m + 2)]
        ys = self.linear(self.bt[:m], vals)
        width = m * tw
        for q in range(tile_rows_a_vector(tw, m)):
            for o in range(-(-width // 16)):
                picks = [(f % m, q * tw + f // m) if f < width else None
                         for f in range(16 * o, 16 * o + 16)]
                put(q, i64(16 * o), self._pick(ys, picks))

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

    def linear(self, rows: Sequence[Sequence[Any]], xs: Sequence[Any]) -> list[Any]:
        """sum_k rows[i][k] xs[k] for each row i (xs[k] None where no row uses it), sharing
        work: columns k1, k2 whose coefficients are equal or opposite in every row as one
        sum or difference (A^T's +-p points), rows i, j with rows[j][k] = +-(-1)^k
        rows[i][k] from one even and one odd part (B^T's), non-unit coefficients by FMA
        (F(4x4)'s 1-D transforms 36 -> 17 operations in, 26 -> 13 out)."""
        b = self.b
        xs, terms = list(xs), [[(c, k) for k, c in enumerate(row) if c != 0] for row in rows]
        if not SHARED:
            return [self._sum(t, xs, fused=False) for t in terms]
        for k1, k2 in _column_pairs(rows):
            plus, minus = b.fadd(xs[k1], xs[k2]), b.fsub(xs[k1], xs[k2])
            xs += [plus, minus]
            for i, row in enumerate(rows):
                if row[k1] != 0:
                    extra = len(xs) - (2 if row[k2] == row[k1] else 1)
                    terms[i] = [t for t in terms[i] if t[1] not in (k1, k2)] + [(row[k1], extra)]
        outs: list[Any] = [None] * len(rows)
        for i, j, sign in _row_pairs(rows) if not xs[len(rows[0]):] else ():
            even = self._sum([t for t in terms[i] if t[1] % 2 == 0], xs)
            odd = self._sum([t for t in terms[i] if t[1] % 2 == 1], xs)
            outs[i] = b.fadd(even, odd)
            outs[j] = b.fsub(even, odd) if sign > 0 else b.fsub(odd, even)
        return [o if o is not None else self._sum(terms[i], xs) for i, o in enumerate(outs)]

    def _sum(self, terms: Sequence[tuple[Any, int]], xs: Sequence[Any],
             fused: bool = True) -> Any:
        """sum c xs[k] over terms (c, k): a unit term first, then adds / FMAs."""
        b, vec = self.b, self.vec
        if not terms:
            return ir.Constant(vec, [0.0] * 16)
        terms = sorted(terms, key=lambda t: abs(t[0]) != 1)
        c, k = terms[0]
        acc = xs[k] if abs(c) == 1 else b.fmul(xs[k], self._const(abs(c)))
        acc = b.fneg(acc) if c < 0 else acc
        for c, k in terms[1:]:
            if abs(c) == 1:
                acc = b.fadd(acc, xs[k]) if c > 0 else b.fsub(acc, xs[k])
            elif fused:
                acc = b.call(self.fma, [xs[k], self._const(float(c)), acc])
            else:
                term = b.fmul(xs[k], self._const(abs(c)))
                acc = b.fadd(acc, term) if c > 0 else b.fsub(acc, term)
        return acc

    def _const(self, c: Any) -> Any:
        return ir.Constant(self.vec, [float(c)] * 16)

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

    def out_row(self, src: Any, per: Any, tw: Any, put: Any) -> None:
        """The output transform's pass along a tile row: row[m tx + c] = sum_j A^T[c, j]
        src[j*per + tx], the m results of 16 tiles interleaved into 16m floats, each vector
        given to put(q = 0, column, vector). Reads up to 16 floats past the row's tiles."""
        b, vec, i64, m = self.b, self.vec, emit.i64, self.m
        with emit.loop(b, 0, tw, 16) as tx:
            vals = [b.load(emit.element(b, src, b.add(b.mul(i64(j), per), tx), "float32"),
                           typ=vec, align=4) for j in range(m + 2)]
            ys = self.linear(self.bt[:m], vals)
            for k, value in enumerate(self._interleave(ys)):
                put(0, b.add(b.mul(tx, i64(m)), i64(16 * k)), value)
