"""3x3, stride-1 convolutions as Winograd F(m x m, 3 x 3): a quarter of im2col's multiplies
at m = 4, 1/2.25 at m = 2 (the rule per layer: tile_size), which is how ResNets get past the
bound a GEMM-rate im2col convolution sets (benchmarks/results.md).

Bound once per input shape: the filters transformed once (U [alpha^2, C_out, C_in], float64
then rounded); per run the input is transformed by a generated kernel (codegen/winograd.py;
the zero border by masked loads, no padded copy) into V [alpha^2, C_in, tiles] (all images'
tiles side by side, so batch 8 makes wider GEMMs), multiplied as one batched matmul
M = U @ V [alpha^2, C_out, tiles], and transformed back by a kernel that applies the fused
conv's epilogue (bias, residual add, activation) while writing each output row. On several
threads (runtime/winograd_split.py) each group takes two hand-offs: the input transform by
input planes, then the GEMMs + output transform by output channels; below MIN_SPLIT_FLOPS
one thread. With several images (GROUP_SPLIT), the image groups are made a multiple of the
threads in number and each thread runs the one-thread pipeline over whole groups, in scratch
of its own: one hand-off a convolution, and no thread reads V the other core wrote
(ResNet-50 batch 8 on two threads: its F(4x4) layers 28.7 -> 21.3 ms, the model 0.94x,
interleaved; measured slower, 635 against 493 ms, while the pool's threads could still
share the caller's core).

`winograd_factory` returns None where it does not apply (not 3x3 / stride 1 / dilation 1 /
groups 1 / float32, an epilogue activation without a scalar rule, TOSTATIC_KERNELS=numpy)
or does not pay (too few tiles: small planes at batch 1 leave the GEMMs too narrow).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic import codegen
from tostatic.codegen.calls import CallCache
from tostatic.ir import scalar_expr as se
from tostatic.ir.epilogue_rules import epilogue_expr
from tostatic.runtime import threads
from tostatic.runtime.winograd_split import group_run
from tostatic.runtime.winograd_split import split_run as _split_run

# F(4x4) or F(2x2) per layer (tile_size): the fewer GEMM multiplies, counting the tile GEMM's
# padding of the tiles to whole 16-float vectors; F(2x2) on a tie (it is the more accurate)
# and above F4_MAX_CHANNELS input channels: there F(4x4)'s U (36 C^2 floats: 38 MB at 512)
# costs more to make at bind and to hold than its GEMMs save (512 x 7 x 7 at batch 8: 0.97x
# F(2x2)'s time), and its float32 error, which grows with the sum's length, is the largest
# (3-5e-6 of the largest output at 512 channels, 1-2e-6 at 64, with the points of
# codegen/winograd.py; F(2x2)'s 3-9e-7). Both need MIN_TILES[m] tiles (all images): fewer
# leave the GEMMs too narrow to pay for the transforms (then im2col).
F4_MAX_CHANNELS = 256
MIN_TILES = {4: 16, 2: 16}
MIN_CHANNELS = 8  # on either side; below, not measured (at 8 on 56x56: 0.080 -> 0.063 ms)
GROUP_BYTES = 4 << 20
NARROW_GEMM = True  # codegen's tile GEMMs (codegen/winograd_gemm.py)
# a group of at most 16 tiles (the deep layers at batch 1) over output channels in 32s: the
# tile GEMM with its vectors along the channels (codegen/winograd_cgemm.py: 512 x 7 x 7 at
# F(2x2) 0.65 -> 0.59 ms); False: winograd_gemm's one vector of tiles, for A/B
CHANNEL_GEMM = True
# ... where padding the tiles to whole vectors adds at most 35% (14x14 planes at batch 1: 49
# tiles -> 64, still 0.7x BLAS's time)
MAX_PADDING = 1.35
# below this many GEMM flops a convolution runs on one thread (a hand-off costs 20-40 us)
MIN_SPLIT_FLOPS = 32_000_000
# several image groups (batch 8): whole groups a thread (winograd_split.group_run); each
# layer's phases split over the threads took 0.89x one thread's time there (ResNet-50 b8:
# the F(4x4) layers 42.4 -> 37.6 ms), whole groups ~0.5x. False: the phases split, for A/B
GROUP_SPLIT = True
# planes of 8 tiles a row or fewer (28x28 and smaller at F(4x4)): the transforms' passes
# along the rows take several tile rows a vector (codegen/winograd_rows.py
# tile_rows_a_vector), not a tile row of 16 lanes; False: a tile row a vector, for A/B
PACKED_ROWS = True
# groups of at most 16 tiles (the deep layers at batch 1): each plane of the transforms first
# prefetches V's (M's) alpha^2 lines of the plane this many further on; their lines, a
# position's row apart, come from L3 or DRAM after the tile GEMM's filter stream (512 x 7 x 7
# at F(2x2) 0.66 -> 0.63 ms, 256 x 14 x 14 at F(4x4) 0.49 -> 0.45; at 56x56 batch 8 it
# cost 10%: not there). 0: none, for A/B
PLANES_AHEAD = 4
# one thread: a layer's calls kept for the arrays seen twice in a row (_one_thread); False:
# their arguments worked out every call, for A/B
KEEP_CALLS = True
# floats between V's (and M's) positions past their [C, T]: with C T a multiple of 1024
# (256 channels x 16 tiles) the transforms' 36 streams of a plane all fell in one L1 set
# (the input transform of 256 x 14 x 14: 0.063 -> 0.029 ms with one more channel's room)
POSITION_PAD = 16
# ... also with the phases split over threads (winograd_split.split_run: batch 1) for groups
# of at most this many tiles: ResNet-50 batch 1 on two threads, interleaved in the model,
# 256 x 14 x 14 at F(4x4) 0.31 -> 0.29 ms, 128 x 28 x 28 0.22 -> 0.19, 512 x 7 x 7 at F(2x2)
# 0.99x; at 64 x 56 x 56 (196 tiles) 1.00-1.07x slower: not there. 0: unpadded, for A/B
SPLIT_PAD_TILES = 64


def _epilogue(steps: Sequence[str], dtype: str) -> tuple[se.Expr, tuple[str, ...]] | None:
    """The epilogue's expression and operand kinds (ir/epilogue_rules.py epilogue_expr);
    None for a step without a scalar rule: no Winograd kernel then."""
    try:
        return epilogue_expr(steps, dtype)
    except (KeyError, TypeError, se.NotScalar):
        return None


def image_group(n: int, c: int, cout: int, per_image: int, alpha: int) -> int:
    """Images per group: a group's V and M stay within GROUP_BYTES (in cache for the GEMMs)."""
    return max(1, min(n, GROUP_BYTES // (alpha * alpha * (c + cout) * per_image * 4)))


def tile_size(n: int, c: int, cout: int, oh: int, ow: int) -> int | None:
    """The output tile size m of F(m x m, 3 x 3) for this layer, or None (im2col pays): the
    one rule. A tile costs alpha^2 multiplies a channel pair (36 at m = 4, 16 at m = 2) and
    the tile GEMMs pad each image group's tiles to 16-tile vectors: at batch 1, 56x56 to
    14x14 maps take F(4x4) (14x14: 16 tiles, one vector, against F(2x2)'s 49 in 64 columns),
    7x7 F(2x2) (F(4x4)'s 4 tiles would fill a quarter of a vector)."""
    cost = {}
    for m in (2, 4):
        per_image = -(-oh // m) * -(-ow // m)
        if n * per_image >= MIN_TILES[m] and (m == 2 or c <= F4_MAX_CHANNELS):
            group = image_group(n, c, cout, per_image, m + 2)
            sizes = [min(group, n - g0) * per_image for g0 in range(0, n, group)]
            cost[m] = (m + 2) ** 2 * sum(-(-k // 16) * 16 for k in sizes)
    return min(cost, key=lambda m: (cost[m], m)) if cost else None


def winograd_factory(attrs: dict[str, Any], ins: Sequence[np.ndarray], out: np.ndarray,
                     pads: Any, strides: Any, dilations: Any) -> tuple[Any, ...] | None:
    """(scratch, binder, kind) for runtime.kernels.Bound, or None."""
    x, w = ins[0], ins[1]
    if (not codegen.enabled() or x.dtype != np.float32 or w.shape[2:] != (3, 3)
            or tuple(strides) != (1, 1) or tuple(dilations) != (1, 1)
            or attrs.get("groups", 1) != 1 or w.shape[1] != x.shape[1]
            or min(w.shape[:2]) < MIN_CHANNELS):
        return None
    n, c, h, wd = x.shape
    cout = w.shape[0]
    _, _, oh, ow = out.shape
    m = tile_size(n, c, cout, oh, ow)
    epi = _epilogue(attrs.get("epilogue", ()), "float32")
    if m is None or epi is None:
        return None
    expr, leaves = epi
    for leaf, a in zip(leaves, ins[2:]):
        if a.dtype != x.dtype or (a.size != w.shape[0] if leaf == "bias" else
                                  a.shape != out.shape):
            return None
    from tostatic.codegen import (  # noqa: PLC0415 (llvmlite loads on first use)
        winograd, winograd_cgemm, winograd_gemm)
    alpha = m + 2
    (pt, _), (pl, _) = pads
    th, tw = -(-oh // m), -(-ow // m)
    per_image = th * tw
    group = image_group(n, c, cout, per_image, alpha)
    if GROUP_SPLIT and n > 1 and threads.current() > 1:
        # (whole groups a thread: their number a multiple of the threads', none larger)
        count = -(-(-(-n // group)) // threads.current()) * threads.current()
        group = -(-n // count)
    tiles = group * per_image
    # codegen's tile GEMMs (codegen/winograd_gemm.py) over U packed once (BLAS repacks its
    # panels every call); V and M rows are then padded to whole 16-float vectors
    block = winograd_gemm.rows_within(cout, tiles, MAX_PADDING) if NARROW_GEMM else None
    if block and CHANNEL_GEMM and winograd_cgemm.fits(cout, tiles):
        block = winograd_cgemm.CHANNELS  # (U packed in 32s, the channel split's unit)
    narrow = block is not None
    u_packed = winograd.filter_transform(w, m, block) if block else None
    u = None if block else winograd.filter_transform(w, m)
    stride_of = (lambda k: -(-k // winograd_gemm.LANES) * winograd_gemm.LANES) if narrow \
        else (lambda k: k)
    packed = tw if PACKED_ROWS and winograd.tile_rows_a_vector(tw, m) > 1 else 0
    workers = min(threads.current(), group * c)
    if 2 * alpha * alpha * c * cout * n * per_image < MIN_SPLIT_FLOPS:
        workers = 1  # (two parts would not pay for the hand-offs)
    # several image groups a thread, where each thread gets as many (and codegen's tile
    # GEMM): its own V, M and rows, the one-thread pipeline over its groups, one hand-off
    groups_each = GROUP_SPLIT and narrow and workers > 1 and -(-n // group) % workers == 0
    slots = workers if groups_each else 1
    # V's and M's positions POSITION_PAD floats apart past their [C, T] (with the phases
    # split, each channel part of M is [alpha^2, part, T] with its positions that far apart:
    # SPLIT_PAD_TILES)
    pad = POSITION_PAD if narrow and (workers == 1 or groups_each
                                      or stride_of(tiles) <= SPLIT_PAD_TILES) else 0
    m_pads = workers if workers > 1 and not groups_each else 1  # (M's parts, each padded)
    ahead = PLANES_AHEAD if narrow and tiles <= winograd_gemm.LANES else 0
    f_in = winograd.input_transform(m, "float32", packed, pad, ahead)
    f_out = winograd.output_transform(m, "float32", expr, leaves, packed, pad, ahead)
    scratch = [("wino-v", (slots * alpha * alpha * (c * stride_of(tiles) + pad),), x.dtype),
               ("wino-m", (slots * alpha * alpha * (cout * stride_of(tiles) + m_pads * pad),),
                x.dtype),
               ("wino-rows", (workers, max(alpha * alpha, m * alpha + 1) * th * tw + 16 * m
                              + 32), x.dtype)]
    plane_in, plane_out = c * h * wd * 4, cout * oh * ow * 4  # bytes per image

    def bind(arrays: list[np.ndarray]) -> Any:
        v_flat, m_flat, rows = arrays
        groups = []  # (first image, images, V, M, narrow kernel)
        for g0 in range(0, n, group):
            k = stride_of(min(group, n - g0) * per_image)
            kern = None
            if narrow:
                kern = _tile_gemm(block, min(group, n - g0) * per_image, pad)
            groups.append((g0, min(group, n - g0), _positions(v_flat, alpha * alpha, c, k, pad),
                           _positions(m_flat, alpha * alpha, cout, k, pad),
                           kern))
        if groups_each:
            return group_run(groups=groups, slots=slots, v_size=v_flat.size // slots,
                             m_size=m_flat.size // slots, u_packed=u_packed, rows=rows,
                             leaves=leaves, f_in=f_in, f_out=f_out, dims_in=(c, h, wd, pt, pl),
                             dims_out=(cout, oh, ow), tiles=(th, tw, per_image, alpha),
                             planes=(plane_in, plane_out))
        if workers > 1:
            return _split_run(
                n=n, c=c, cout=cout, h=h, wd=wd, pt=pt, pl=pl, oh=oh, ow=ow,
                th=th, tw=tw, alpha=alpha, u=u_packed if narrow else u,
                block=block if narrow else None,
                groups=groups, rows=rows, leaves=leaves, f_in=f_in,
                f_out=f_out, workers=workers, m_flat=m_flat, pad=pad)
        # one thread: every address and dims array fixed at bind, three calls a group
        fixed = []
        for g0, count, v, mm, kern in groups:
            k = v.shape[2]
            fixed.append((
                g0, v, mm, kern, g0 * plane_in, v.ctypes.data, mm.ctypes.data,
                np.array([c, h, wd, pt, pl, th, tw, k, 0, count * c], np.int64),
                np.array([cout, oh, ow, th, tw, k, 0, count * cout], np.int64),
                winograd_gemm.dims(0, alpha * alpha, c, cout, count * per_image, k, k)))
        return _one_thread(fixed, leaves, plane_out, f_in, f_out, rows, u, u_packed)
    return scratch, bind, f"winograd-f{m}"


def _one_thread(fixed: Sequence[tuple[Any, ...]], leaves: Sequence[str], plane_out: int,
                f_in: Any, f_out: Any, rows: np.ndarray, u: np.ndarray | None,
                u_packed: np.ndarray | None) -> Any:
    """run(x, w, *epilogue operands, out) on one thread: three calls a group, their
    arguments worked out once for a set of arrays seen twice in a row (a bound plan's
    buffers) and kept with them: an array's address from numpy costs ~1 us, and a layer
    took seven (10 us of Python a layer, against 0.4-0.6 ms of kernels at 7x7 and 14x14)."""
    rows_at = rows[0].ctypes.data
    u_at = u_packed.ctypes.data if u_packed is not None else 0
    dims = [(d_in.ctypes.data, d_gemm.ctypes.data, d_out.ctypes.data)
            for *_, d_in, d_out, d_gemm in fixed]
    kept = CallCache()
    last: list[tuple[int, ...]] = [()]

    def prepare(x: np.ndarray, ops: Sequence[np.ndarray], out: np.ndarray) -> Any:
        x_base, out_base = _address(x), _address(out)
        op_at = [_address(a) for a in ops]
        steps, extras_kept = [], []
        for (g0, v, mm, kern, x_at, v_at, m_at, *_), (d_in, d_gemm, d_out) in zip(fixed, dims):
            extras = np.array([at + (g0 * plane_out if leaf == "add" else 0)
                               for leaf, at in zip(leaves, op_at)] or [0], np.int64)
            extras_kept.append(extras)
            steps.append((x_base + x_at, v_at, m_at, out_base + g0 * plane_out,
                          extras.ctypes.data, d_in, d_gemm, d_out, kern, v, mm))

        def call(_keep: Any = (extras_kept, x, ops, out)) -> None:
            for x_at, v_at, m_at, out_at, extras_at, d_in, d_gemm, d_out, kern, v, mm in steps:
                f_in(x_at, v_at, rows_at, d_in)
                if kern is None:
                    np.matmul(u, v, out=mm)
                else:
                    kern(u_at, v_at, m_at, d_gemm)
                f_out(m_at, out_at, extras_at, rows_at, d_out)
        return call

    def run_one(x: np.ndarray, _w: np.ndarray, *ops: np.ndarray, out: np.ndarray,
                _keep: Any = (rows, u_packed, fixed)) -> None:
        arrays = (x, out, *ops)
        ids = tuple(map(id, arrays))
        entry = kept.entries.get(ids)
        if entry is not None:  # (its arrays kept alive: these very arrays)
            entry[1]()
            return
        call = prepare(np.ascontiguousarray(x), [np.ascontiguousarray(a) for a in ops], out)
        if KEEP_CALLS and ids == last[0] and all(a.flags.c_contiguous for a in arrays):
            kept.get(arrays, lambda: call)
        last[0] = ids
        call()
    return run_one


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]  # (ctypes.data costs 1.3 us, this 0.9)


def _tile_gemm(block: int, cols: int, pad: int) -> Any:
    """The tile GEMM kernel for U packed in `block`s of output channels, `cols` tiles."""
    from tostatic.codegen import winograd_cgemm, winograd_gemm  # noqa: PLC0415

    if block == winograd_cgemm.CHANNELS:
        return winograd_cgemm.kernel(cols, pad)
    return winograd_gemm.tile_kernel(block, cols, pad)


def _positions(flat: np.ndarray, p2: int, rows: int, k: int, pad: int) -> np.ndarray:
    """The view [alpha^2, rows, k] of V or M at the start of `flat`, positions
    rows k + pad floats apart."""
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat, (p2, rows, k),
                                           ((rows * k + pad) * item, k * item, item))
