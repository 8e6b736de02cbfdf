"""Convolutions as im2col + GEMM with codegen's im2col kernel (codegen/im2col.py): the
strided and stem convolutions Winograd does not take (ResNets' 7x7 stride-2 stem, 3x3 and
1x1 stride-2 layers).

Per image the input is copied into a zero-bordered buffer (unless unpadded: a 1x1 stride-2
downsample reads it in place), then the patch matrix is written a band of output rows at a
time and each band multiplied at once, while it is in L2 (BAND_BYTES), when the packed
weights are small enough for BLAS to repack them per band (the stem's 64 x 147); otherwise
the whole patch matrix is one GEMM. The conv's epilogue runs after, as for runtime.kernels'
im2col path.

On several threads (one hand-off a convolution): with several images each thread takes
whole images, into its own pad and patch buffers; with one, the pad runs first and each
thread takes a range of output rows, in bands of its own, into its own patch buffer, the
packed weights shared.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic import codegen
from tostatic.runtime import threads

BAND_BYTES = 1 << 20  # the patch rows of a band (L2 is 1 MiB a core here; 16 rows of the stem)
BAND_WEIGHT_BYTES = 256 << 10  # weights repacked by BLAS per band: at most this
BAND_GEMM = True  # codegen's GEMM over weights packed once, where the band allows it
MAX_PADDING = 1.35  # ... computing at most 35% more columns (49 -> 64: 0.7-0.9x BLAS's time)
# below this many flops one thread (a part of 8 MFLOP runs ~50 us; a hand-off costs 20-40)
MIN_SPLIT_FLOPS = 16_000_000


def im2col_factory(x: np.ndarray, w: np.ndarray, out: np.ndarray, pads: Any, strides: Any,
                   dilations: Any, epi: Callable[[np.ndarray, Sequence[np.ndarray]], None],
                   workers: int = 1) -> tuple[list[Any], Callable[[list[np.ndarray]], Any], str] | None:
    """(scratch, binder, kind) for runtime.kernels.Bound, or None (numpy kernels asked for,
    an unsupported dtype)."""
    if not codegen.enabled() or x.dtype not in (np.float32, np.float64):
        return None
    from tostatic.codegen.im2col import im2col  # noqa: PLC0415 (llvmlite loads on first use)
    from tostatic.codegen.pad import pad_planes  # noqa: PLC0415
    n, c, h, wd = x.shape
    cout, _, kh, kw = w.shape
    oh, ow = out.shape[2:]
    (pt, _), (pl, _) = pads
    (sh, sw), (dh, dw) = strides, dilations
    # the buffer covers every tap read (a stride may leave the last rows / columns unread)
    hp = max(pt + h, (oh - 1) * sh + (kh - 1) * dh + 1)
    wp = max(pl + wd, (ow - 1) * sw + (kw - 1) * dw + 1)
    # no padding, and the stride-2 loads' extra float still inside each row: read x itself
    direct = (pt, pl, hp, wp) == (0, 0, h, wd) and \
        (sw != 2 or (ow - 1) * 2 + (kw - 1) * dw + 1 < wd)
    k = c * kh * kw
    packed = np.ascontiguousarray(w.reshape(cout, k))
    item = x.dtype.itemsize
    if 2 * n * cout * k * oh * ow < MIN_SPLIT_FLOPS:
        workers = 1
    # several images: each thread takes whole ones (its own pad and patch buffers); one
    # image: each thread a range of output rows (its own patch buffer), the pad first
    slots = max(1, min(workers, n))
    # ... unless the weights outnumber the patches (the last ResNet stage at batch 1: 9.4 MB
    # of weights, 49 pixels): split by rows, both threads streamed all of them (1.43 ms on
    # one thread, 1.46 on two); then the patches are written once and each thread multiplies
    # its output channels
    by_channels = n == 1 and workers > 1 and cout > oh * ow
    ranges = _even(oh, workers) if n == 1 and workers > 1 and not by_channels else [(0, oh)]
    rows = max(y1 - y0 for y0, y1 in ranges)
    # bands where BLAS repacks small weights per band, or codegen's GEMM takes every band
    # and reads weights that stay in L2 (bigger ones, streamed once a band, lose)
    band = rows if by_channels else max(1, min(rows, BAND_BYTES // (k * ow * item)))
    bands = [b for y0, y1 in ranges for b in range_bands(y0, y1, band)]
    # (by channels: their own GEMMs, _channel_gemms)
    gemms = [None] * len(bands) if by_channels else \
        _band_gemms(packed, [(y1 - y0) * ow for y0, y1 in bands], band * ow, oh * ow)
    weights = cout * k * item
    if not by_channels and weights > BAND_WEIGHT_BYTES and (None in gemms or
                                                            weights > BAND_BYTES):
        band = rows
        bands = [b for y0, y1 in ranges for b in range_bands(y0, y1, band)]
        gemms = _band_gemms(packed, [(y1 - y0) * ow for y0, y1 in bands], band * ow, oh * ow)
    f = im2col(x.dtype.name, (kh, kw), (sh, sw), (dh, dw))
    f_pad = pad_planes(x.dtype.name)
    # (a vector of slack after each buffer: the stride-2 loads of the im2col kernel and the
    # GEMM's last vector of columns read past the end)
    pad_size, cols_size = c * hp * wp, k * band * ow
    scratch = [("pad", (0 if direct else (1 if n == 1 else slots) * pad_size + 16,), x.dtype),
               ("cols", (slots * len(ranges) * (cols_size + 16),), x.dtype)]
    # per part (thread): its bands, each (y0, y1, dims, GEMM or None)
    parts = []
    for y0, y1 in ranges:
        parts.append([(b0, b1, np.array([c, hp, wp, ow, b0, b1, band * ow], np.int64), g)
                      for (b0, b1), g in zip(bands, gemms) if y0 <= b0 < y1])

    channel_gemms = _channel_gemms(packed, oh * ow, workers) if by_channels else []

    def bind(arrays: list[np.ndarray]) -> Any:
        xp_flat, cols_flat = arrays
        pad_dims = np.array([c, h, wd, hp, wp, pt, pl], np.int64)
        cols = [cols_flat[i * (cols_size + 16):i * (cols_size + 16) + cols_size]
                .reshape(k, band * ow) for i in range(slots * len(ranges))]
        pads = [xp_flat[i * pad_size:(i + 1) * pad_size] for i in range(slots)] \
            if not direct else []

        def image(x_at: int, i: int, out3: np.ndarray, slot: int, part: int) -> None:
            """Output rows of part `part` of image i, into patch buffer `slot`."""
            src = x_at if direct else pads[0 if n == 1 else slot].ctypes.data
            m_all = cols[slot if n > 1 else part]
            for b0, b1, d, g in parts[part]:
                f(src, m_all.ctypes.data, d.ctypes.data)
                if g is None:
                    np.matmul(packed, m_all[:, :(b1 - b0) * ow], out=out3[i, :, b0 * ow:b1 * ow])
                else:
                    g(m_all.ctypes.data, out3[i, :, b0 * ow:].ctypes.data)

        native: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

        def machine_calls(x_at: int, out3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """The split as threads.parallel_calls rows (a part: its calls above, in order),
            made once for these addresses: the pool takes parts with no GIL switch."""
            key = (x_at, out3.ctypes.data)
            if key not in native:
                if len(native) > 8:
                    native.clear()
                f_at, pad_at, step = _address(f), _address(f_pad), c * h * wd * item
                calls: list[list[int]] = []
                starts = [0]

                def bands_of(src: int, i: int, m_at: int, part: int) -> None:
                    for b0, b1, d, g in parts[part]:
                        calls.append([f_at, src, m_at, d.ctypes.data])
                        calls.append([g.native[0], g.native[1], m_at,
                                      out3[i, :, b0 * ow:].ctypes.data, g.native[2]])
                if by_channels:
                    src = x_at if direct else pads[0].ctypes.data
                    if not direct:
                        calls.append([pad_at, x_at, pads[0].ctypes.data, pad_dims.ctypes.data])
                    calls.append([f_at, src, cols[0].ctypes.data, parts[0][0][2].ctypes.data])
                    starts.append(len(calls))  # (part 0: the patches, alone)
                    for g in channel_gemms:
                        fa, ua, da, row0, _ = g.native
                        calls.append([fa, ua, cols[0].ctypes.data,
                                      out3[0].ctypes.data + row0 * out3.strides[1], da])
                        starts.append(len(calls))
                elif n > 1:
                    for slot, (lo, hi) in enumerate(_even(n, slots)):
                        for i in range(lo, hi):
                            src = x_at + i * step
                            if not direct:
                                calls.append([pad_at, src, pads[slot].ctypes.data,
                                              pad_dims.ctypes.data])
                                src = pads[slot].ctypes.data
                            bands_of(src, i, cols[slot].ctypes.data, 0)
                        starts.append(len(calls))
                else:
                    if not direct:
                        calls.append([pad_at, x_at, pads[0].ctypes.data, pad_dims.ctypes.data])
                        starts.append(len(calls))  # (part 0: the pad, alone)
                    for p in range(len(parts)):
                        bands_of(x_at if direct else pads[0].ctypes.data, 0,
                                 cols[p].ctypes.data, p)
                        starts.append(len(calls))
                rows = np.zeros((len(calls), 1 + threads.CALL_ARGS), np.int64)
                for r, call in enumerate(calls):
                    rows[r, :len(call)] = call
                native[key] = (rows, np.array(starts, np.int64))
            return native[key]
        # split, and machine code only (codegen's GEMMs, not np.matmul): parallel_calls
        machine = all(hasattr(g, "native") for g in channel_gemms) if by_channels else \
            slots * len(ranges) > 1 and all(hasattr(g, "native") for p in parts for *_, g in p)

        def run(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray, out: np.ndarray,
                _keep: Any = (pads, cols)) -> None:
            x = np.ascontiguousarray(x)
            out3 = out.reshape(n, cout, oh * ow)
            if machine:
                calls, starts = machine_calls(x.ctypes.data, out3)
                if by_channels or n == 1 and not direct:
                    # (the pad or the patches first: part 0, then the rest at once)
                    threads.parallel_calls(calls[:starts[1]], starts[:2])
                    threads.parallel_calls(calls[starts[1]:], starts[1:] - starts[1])
                else:
                    threads.parallel_calls(calls, starts)
                epi(out, extras)
                return
            step = x[0].nbytes

            def images(lo: int, hi: int, slot: int) -> None:
                for i in range(lo, hi):
                    if not direct:
                        f_pad(x.ctypes.data + i * step, pads[slot].ctypes.data,
                              pad_dims.ctypes.data)
                    image(x.ctypes.data + i * step, i, out3, slot, 0)
            if by_channels:
                if not direct:
                    f_pad(x.ctypes.data, pads[0].ctypes.data, pad_dims.ctypes.data)
                src = x.ctypes.data if direct else pads[0].ctypes.data
                f(src, cols[0].ctypes.data, parts[0][0][2].ctypes.data)
                threads.parallel(lambda lo, hi, _: [channel_gemms[p](cols[0], out3[0])
                                                    for p in range(lo, hi)],
                                 len(channel_gemms), len(channel_gemms))
            elif n > 1:
                threads.parallel(images, n, slots)
            else:
                if not direct:
                    f_pad(x.ctypes.data, pads[0].ctypes.data, pad_dims.ctypes.data)
                threads.parallel(lambda lo, hi, part: [image(x.ctypes.data, 0, out3, 0, p)
                                                       for p in range(lo, hi)],
                                 len(parts), len(parts))
            epi(out, extras)
        return run
    return scratch, bind, "im2col-gen"


def _channel_gemms(packed: np.ndarray, width: int, workers: int
                   ) -> list[Callable[[np.ndarray, np.ndarray], None]]:
    """Per thread, run(patches [K, width], out [C_out, width]) of its output channels:
    codegen's GEMM over its register blocks of the weights packed once (one position), or
    np.matmul on its rows of them."""
    from tostatic.codegen import winograd_gemm as wg  # noqa: PLC0415

    cout, k = packed.shape
    vectors = -(-width // wg.LANES)
    rows = wg.rows_within(cout, width, MAX_PADDING) if BAND_GEMM and \
        packed.dtype == np.float32 else None
    parts = _even(cout // (rows or 1), workers)
    if rows is None:
        return [lambda m, out, lo=lo, hi=hi: np.matmul(packed[lo:hi], m, out=out[lo:hi])
                for lo, hi in parts]
    u = wg.pack(packed[None], rows)
    f = wg.kernel(rows, wg.vectors_for(rows, vectors))
    runs = []
    for lo, hi in parts:
        dims = wg.dims(0, 1, k, (hi - lo) * rows, width)

        def run(m: np.ndarray, out: np.ndarray, lo: int = lo, dims: np.ndarray = dims,
                _u: np.ndarray = u) -> None:
            f(_u.ctypes.data + lo * rows * k * 4, m.ctypes.data,
              out.ctypes.data + lo * rows * out.strides[0], dims.ctypes.data)
        # (as a machine-code call: function, weights, dims; the row offset of `out`)
        run.native = (_address(f),  # type: ignore[attr-defined]
                      u.ctypes.data + lo * rows * k * 4, dims.ctypes.data, lo * rows, u)
        runs.append(run)
    return runs


def _address(f: Any) -> int:
    """A compiled kernel's address (a ctypes function)."""
    import ctypes  # noqa: PLC0415

    return ctypes.cast(f, ctypes.c_void_p).value


def range_bands(y0: int, y1: int, band: int) -> list[tuple[int, int]]:
    return [(y, min(y1, y + band)) for y in range(y0, y1, band)]


def _even(items: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(items, parts))
    return [(i * items // parts, (i + 1) * items // parts) for i in range(parts)]


def _band_gemms(packed: np.ndarray, widths: list[int], ldv: int,
                ldm: int) -> list[Callable[[int, int], None] | None]:
    """Per band, codegen's GEMM over the weights packed once (codegen/winograd_gemm.py, one
    position: no per-call repacking as in BLAS) where rounding the band's float32 columns up
    to whole 16-float vectors adds at most MAX_PADDING and C_out splits into its register
    blocks; else None (np.matmul)."""
    from tostatic.codegen import winograd_gemm as wg  # noqa: PLC0415

    cout, k = packed.shape
    if not BAND_GEMM or packed.dtype != np.float32:
        return [None] * len(widths)
    out: list[Callable[[int, int], None] | None] = []
    units: dict[int, Any] = {}
    for width in widths:
        rows = wg.rows_within(cout, width, MAX_PADDING)
        if rows is None:
            out.append(None)
            continue
        if rows not in units:
            units[rows] = wg.pack(packed[None], rows)
        f = wg.kernel(rows, wg.vectors_for(rows, -(-width // wg.LANES)))
        dims = wg.dims(0, 1, k, cout, width, ldv, ldm)

        def run(v: int, m: int, f: Any = f, u: np.ndarray = units[rows],
                dims: np.ndarray = dims) -> None:
            f(u.ctypes.data, v, m, dims.ctypes.data)
        run.native = (_address(f),  # type: ignore[attr-defined]
                      units[rows].ctypes.data, dims.ctypes.data, units[rows], dims)
        out.append(run)
    return out
