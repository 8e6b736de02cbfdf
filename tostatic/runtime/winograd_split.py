"""A Winograd convolution (runtime/conv_winograd.py) on several threads: two hand-offs an image
group, where one call per phase (input transform, GEMMs, output transform) made three.

1. Input planes split over the threads: each thread transforms its planes into V.
2. Output channels split over the threads, in whole register blocks of the tile GEMM: each
   thread multiplies its channels' filters (packed once per part, U[:, lo:hi]) by all of V
   into its own part of the M scratch, [alpha^2, hi - lo, T], and transforms them back
   while they are in its cache, epilogue applied. The output transform reads that part as a
   convolution of hi - lo channels; the output and residual addresses are offset so that its
   planes land on channels lo..hi of each image (one call per image of the group).

Splitting the GEMMs by output channel, every thread reads all of V (in L2 a position at a
time, as the one-thread kernel does for every channel block) and half of U: no thread waits
for another between the GEMM and the output transform.

With `pad`, V's positions and each part's of M lie pad floats further apart than [C, T]
(conv_winograd.SPLIT_PAD_TILES), as one thread's do: unpadded, a part of 128 channels x 16
tiles put the output transform's 36 streams of a plane in one L1 set.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Sequence

import numpy as np

from tostatic.codegen.calls import CallCache
from tostatic.runtime import threads


def channel_parts(cout: int, unit: int, workers: int) -> list[tuple[int, int]]:
    """Up to `workers` ranges of output channels, each a multiple of `unit` long."""
    units = cout // unit
    parts = min(workers, units)
    bounds = [i * units // parts * unit for i in range(parts)] + [cout]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def split_run(*, n: int, c: int, cout: int, h: int, wd: int, pt: int, pl: int, oh: int,
              ow: int, th: int, tw: int, alpha: int, u: np.ndarray, block: int | None,
              groups: Sequence[tuple[Any, ...]], rows: np.ndarray, leaves: Sequence[str],
              f_in: Any, f_out: Any, workers: int, m_flat: np.ndarray | None = None,
              pad: int = 0) -> Callable[..., None]:
    """run(x, w, *epilogue operands, out) over `workers` threads (see the module's doc);
    pad: floats between the positions of V and of each channel part of M (from m_flat,
    the M scratch: part after part, each [alpha^2, part, T] positions T part + pad apart)."""
    from tostatic.codegen import winograd_gemm  # noqa: PLC0415 (llvmlite loads on first use)

    p2 = alpha * alpha
    parts = channel_parts(cout, block or 1, workers)
    # u: U [alpha^2, C_out, C_in], or with `block` already packed [alpha^2, C_out / block,
    # C_in, block], whose channel parts are then runs of whole blocks
    u_parts = [np.ascontiguousarray(u[:, lo // block:hi // block] if block else u[:, lo:hi])
               for lo, hi in parts]
    plane_x, plane_o = h * wd * 4, oh * ow * 4
    bias = np.array([leaf == "bias" for leaf in leaves], bool)
    phases = []
    for g0, count, v, mm, kern in groups:
        k = v.shape[2]
        m_base = mm.reshape(-1) if m_flat is None else m_flat
        ins = [np.array([c, h, wd, pt, pl, th, tw, k, a, b], np.int64)  # transform dims
               for a, b in _even(count * c, workers)]
        outs = []  # per channel part: (U, M part, GEMM dims, per image (offset, dims, extras))
        for (lo, hi), up in zip(parts, u_parts):
            cw = hi - lo
            m_part = _part(m_base, p2 * (lo * k + len(outs) * pad), p2, cw, k, pad)
            images = []
            for i in range(count):
                shift = ((g0 + i) * cout + lo - i * cw) * plane_o  # plane i*cw+co -> lo+co
                images.append((shift, np.array([cw, oh, ow, th, tw, k, i * cw, (i + 1) * cw],
                                               np.int64),
                               np.where(bias, lo * 4, shift).astype(np.int64),
                               np.zeros(max(1, len(leaves)), np.int64)))
            outs.append((lo, hi, up, m_part,
                         winograd_gemm.dims(0, p2, c, cw, count * th * tw, k, k) if kern
                         else None, images))
        phases.append((g0, count, v, kern, ins, outs))

    native: dict[tuple[int, ...], list[tuple[np.ndarray, ...]]] = {}

    def machine_calls(x_at: int, out_at: int, addresses: np.ndarray) -> list[Any]:
        """Per group, its two phases as threads.parallel_calls rows (a part: the calls of
        one part above, in order), made once for these addresses."""
        key = (x_at, out_at, *addresses.tolist())
        if key not in native:
            if len(native) > 8:
                native.clear()
            made = []
            for g0, count, v, kern, ins, outs in phases:
                rows_in: list[list[int]] = []
                for p, in_dims in enumerate(ins):  # (a part: one call over its planes)
                    rows_in.append([_at(f_in), x_at + g0 * c * plane_x, v.ctypes.data,
                                    rows[p].ctypes.data, in_dims.ctypes.data])
                rows_out: list[list[int]] = []
                starts_out, extras_kept = [0], []
                for p, (c0, c1, up, m_part, gemm_dims, images) in enumerate(outs):
                    rows_out.append([_at(kern), up.ctypes.data, v.ctypes.data,
                                     m_part.ctypes.data, gemm_dims.ctypes.data])
                    for shift, out_dims, offsets, _ in images:
                        extras = addresses[:len(offsets)] + offsets
                        extras_kept.append(extras)
                        rows_out.append([_at(f_out), m_part.ctypes.data, out_at + shift,
                                         extras.ctypes.data, rows[p].ctypes.data,
                                         out_dims.ctypes.data])
                    starts_out.append(len(rows_out))
                made.append((_rows(rows_in), np.arange(len(rows_in) + 1, dtype=np.int64),
                             _rows(rows_out), np.array(starts_out, np.int64), extras_kept))
            native[key] = made
        return native[key]

    machine_only = all(kern is not None for _, _, _, kern, _, _ in phases)
    by_ids = CallCache()
    last: list[tuple[int, ...]] = [()]

    def run(x: np.ndarray, _w: np.ndarray, *ops: np.ndarray, out: np.ndarray,
            _keep: Any = u_parts) -> None:
        arrays = (x, out, *ops)
        ids = tuple(map(id, arrays))
        entry = by_ids.entries.get(ids)
        if entry is not None:  # the same arrays as before (a bound plan's buffers)
            entry[1]()
            return
        x = np.ascontiguousarray(x)
        ops = [np.ascontiguousarray(a) for a in ops]  # (kept alive for the call)
        addresses = np.array([a.ctypes.data for a in ops] or [0], np.int64)
        x_at, out_at = x.ctypes.data, out.ctypes.data
        if machine_only:
            # machine code only: the pool's threads take their parts with no GIL switch
            made = machine_calls(x_at, out_at, addresses)

            def call() -> None:
                for calls_in, starts_in, calls_out, starts_out, _ in made:
                    threads.parallel_calls(calls_in, starts_in)
                    threads.parallel_calls(calls_out, starts_out)
            if ids == last[0] and all(a is b for a, b in zip((x, *ops), arrays[:1] + arrays[2:])):
                # the same contiguous arrays twice: their call kept from now on (the
                # addresses worked out in Python cost ~10 us a convolution)
                by_ids.get(arrays, lambda: call)
            last[0] = ids
            call()
            return
        for g0, count, v, kern, ins, outs in phases:
            v_at = v.ctypes.data
            group_x = x_at + g0 * c * plane_x

            def transform_in(lo: int, hi: int, part: int) -> None:
                for p in range(lo, hi):
                    f_in(group_x, v_at, rows[p].ctypes.data, ins[p].ctypes.data)

            def gemm_out(lo: int, hi: int, part: int) -> None:
                for p in range(lo, hi):
                    c0, c1, up, m_part, gemm_dims, images = outs[p]
                    if kern is None:
                        np.matmul(up, v, out=m_part)
                    else:
                        kern(up.ctypes.data, v_at, m_part.ctypes.data, gemm_dims.ctypes.data)
                    for shift, out_dims, offsets, extras in images:
                        np.add(addresses[:len(offsets)], offsets, out=extras[:len(offsets)])
                        f_out(m_part.ctypes.data, out_at + shift, extras.ctypes.data,
                              rows[p].ctypes.data, out_dims.ctypes.data)
            threads.parallel(transform_in, len(ins), len(ins))
            threads.parallel(gemm_out, len(outs), len(outs))
    return run


def group_run(*, groups: Sequence[tuple[Any, ...]], slots: int, v_size: int, m_size: int,
              u_packed: np.ndarray, rows: np.ndarray, leaves: Sequence[str], f_in: Any,
              f_out: Any, dims_in: tuple[int, ...], dims_out: tuple[int, ...],
              tiles: tuple[int, ...], planes: tuple[int, int]) -> Callable[..., None]:
    """run(x, w, *epilogue operands, out) with `slots` parts of whole image groups, part p
    the one-thread pipeline (input transform, tile GEMM, output transform: three calls a
    group) over its groups in V, M and rows of its own (slot p of each scratch): one
    hand-off a convolution, and no thread reads what another wrote (the phase split above
    has each read all of V, half of it written by the other core)."""
    from tostatic.codegen import winograd_gemm  # noqa: PLC0415 (llvmlite loads on first use)

    th, tw, per_image, alpha = tiles
    plane_in, plane_out = planes
    c, cout = dims_in[0], dims_out[0]
    kept = []  # per part, per group: (first image, kernel, dims in, dims GEMM, dims out)
    for lo, hi in _even(len(groups), slots):
        part = []
        for g0, count, v, _mm, kern in groups[lo:hi]:
            k = v.shape[2]
            part.append((g0, kern,
                         np.array([*dims_in, th, tw, k, 0, count * c], np.int64),
                         winograd_gemm.dims(0, alpha * alpha, c, cout, count * per_image, k, k),
                         np.array([*dims_out, th, tw, k, 0, count * cout], np.int64)))
        kept.append(part)
    bias = np.array([leaf == "bias" for leaf in leaves], bool)
    native: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, list[Any]]] = {}
    v_at, m_at, u_at = (a.ctypes.data for a in (groups[0][2], groups[0][3], u_packed))

    def table(x_at: int, out_at: int, addresses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = (x_at, out_at, *addresses.tolist())
        if key not in native:
            if len(native) > 8:
                native.clear()
            calls: list[list[int]] = []
            starts, extras_kept = [0], []
            for p, part in enumerate(kept):
                v, mm, r = v_at + p * v_size * 4, m_at + p * m_size * 4, rows[p].ctypes.data
                for g0, kern, d_in, d_gemm, d_out in part:
                    extras = np.zeros(max(1, len(leaves)), np.int64)
                    extras[:len(leaves)] = addresses[:len(leaves)] + np.where(bias, 0,
                                                                               g0 * plane_out)
                    extras_kept.append(extras)
                    calls += [[_at(f_in), x_at + g0 * plane_in, v, r, d_in.ctypes.data],
                              [_at(kern), u_at, v, mm, d_gemm.ctypes.data],
                              [_at(f_out), mm, out_at + g0 * plane_out,
                               extras.ctypes.data, r, d_out.ctypes.data]]
                starts.append(len(calls))
            native[key] = (_rows(calls), np.array(starts, np.int64), extras_kept)
        return native[key][:2]

    def run(x: np.ndarray, _w: np.ndarray, *ops: np.ndarray, out: np.ndarray,
            _keep: Any = (kept, rows, u_packed, groups)) -> None:
        x = np.ascontiguousarray(x)
        ops = [np.ascontiguousarray(a) for a in ops]  # (kept alive for the call)
        addresses = np.array([a.ctypes.data for a in ops] or [0], np.int64)
        threads.parallel_calls(*table(x.ctypes.data, out.ctypes.data, addresses))
    return run


def _part(flat: np.ndarray, start: int, p2: int, rows: int, k: int, pad: int) -> np.ndarray:
    """The view [p2, rows, k] of `flat` from `start`, positions rows k + pad floats apart."""
    if not pad:
        return flat[start:start + p2 * rows * k].reshape(p2, rows, k)
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat[start:], (p2, rows, k),
                                           ((rows * k + pad) * item, k * item, item))


def _at(f: Any) -> int:
    """A compiled kernel's address (a ctypes function)."""
    return ctypes.cast(f, ctypes.c_void_p).value


def _rows(calls: list[list[int]]) -> np.ndarray:
    """Calls as threads.parallel_calls rows [fn, a0, ..., a7] (unused arguments 0)."""
    out = np.zeros((len(calls), 1 + threads.CALL_ARGS), np.int64)
    for i, call in enumerate(calls):
        out[i, :len(call)] = call
    return out


def _even(items: int, workers: int) -> list[tuple[int, int]]:
    parts = max(1, min(items, workers))
    return [(i * items // parts, (i + 1) * items // parts) for i in range(parts)]
