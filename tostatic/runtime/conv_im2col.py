"""Convolutions as im2col + GEMM with codegen's im2col kernel (codegen/im2col.py): the
strided and stem convolutions Winograd does not take (ResNets' 7x7 stride-2 stem, 3x3 and
1x1 stride-2 layers).

Per image the input is copied into a zero-bordered buffer (unless unpadded: a 1x1 stride-2
downsample reads it in place; nor where the unpadded im2col kernel reads it in place, its
padding masked-off lanes: UNPADDED), then the patch matrix is written a band of output rows
at a time and each band multiplied at once, while it is in L2 (BAND_BYTES), when the weights
are small enough to stay in L2 across bands (the stem's 64 x 147); otherwise the whole
patch matrix is one GEMM. The GEMM is codegen's packed one (codegen/gemm.py, conv mode:
weights packed once, patches read in place) with the conv's epilogue fused; ResNet-50's 7
im2col convolutions, interleaved against winograd_gemm's tile kernel + a pass for the
epilogue: 10.7 -> 10.1 ms (the 3x3 at 7x7: 1.73 -> 1.52). Without AVX-512, or in float64,
np.matmul, and the epilogue after.

On several threads (one hand-off a convolution): with several images each thread takes
whole images, into its own pad and patch buffers; with one, the pad runs first (split by
input planes) and each thread takes a range of output rows, in bands of its own, into its
own patch buffer, the packed weights shared; or, where the output channels outnumber the
pixels, the patches are written first (split by input planes) and each thread multiplies
its output channels. Where every GEMM is codegen's, the parts go to the pool as rows of
machine-code calls (threads.parallel_calls: taken with no GIL switch).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic import codegen
from tostatic.ir.scalar_expr import NotScalar
from tostatic.runtime import threads

BAND_BYTES = 1 << 20  # the patch rows of a band (L2 is 1 MiB a core here; 16 rows of the stem)
BAND_WEIGHT_BYTES = 256 << 10  # weights read again each band: at most this (L2-resident)
BAND_GEMM = True  # codegen's packed GEMM (else np.matmul)
# below this many flops one thread: parallel_calls hands a part over in ~2 us, so
# ResNet-18's 1x1 stride-2 downsamples (12.8 MFLOP, 4 parts) split with profit (2 threads:
# 95 -> 58-70 us each)
MIN_SPLIT_FLOPS = 4_000_000
# ... and where a part is handed over as Python (np.matmul's bands: no codegen GEMM), whose
# hand-off costs 20-40 us: this many (a part of 8 MFLOP runs ~50 us)
MIN_SPLIT_FLOPS_PYTHON = 16_000_000
# one image's row ranges a thread (each with its own patch buffer), taken by whichever thread
# is free: after an idle the pool's thread starts ~0.5 ms late (a sleeping vCPU's wake-up
# here), and with one range a thread the caller waited for its whole late half
ROW_PARTS_PER_THREAD = 2
# at batch 1 the pad (and, split by output channels, the patch matrix) is written first, by
# bands of input planes, this many a thread (taken by whichever thread is free): on one
# thread it was ResNet-50's largest 2-thread loss (a 3x3 stride-2 layer at 28x28 x 256:
# 1.33 ms on one thread, 0.81 on two)
PLANE_PARTS_PER_THREAD = 4
# at batch 1, a padded float32 convolution of stride 1 or 2 along rows, with output rows of
# at least this many columns, reads its input in place (codegen/im2col.py
# `_unpadded_module`: the padding read as masked-off lanes) instead of a zero-bordered copy.
# In a model (one thread, interleaved medians): ResNet-50's stem 1.43 -> 1.38 ms, its 3x3
# stride-2 layer at 56x56x128 1.32 -> 1.20; ResNet-18's stem 1.43 -> 1.36, its 3x3 stride-2
# layer at 56x56x64 0.72 -> 0.63. Narrower rows (14 and 7 outputs) lost to the masks as much
# as the copy cost (0.074 -> 0.078 ms, 0.063 -> 0.068 at 28x28x256 and 14x14x512); at batch
# 8 the input comes from L3 / memory, where the border's masked loads run at half speed and
# the copy's stream won (ResNet-18 at 56x56x64: 4.83 -> 5.43 ms). False: the copy, for A/B
UNPADDED = True
UNPADDED_MIN_COLUMNS = 28


def im2col_factory(x: np.ndarray, w: np.ndarray, out: np.ndarray, pads: Any, strides: Any,
                   dilations: Any, epi: Callable[[np.ndarray, Sequence[np.ndarray]], None],
                   workers: int = 1, epilogue: Sequence[str] = ()
                   ) -> tuple[list[Any], Callable[[list[np.ndarray]], Any], str] | None:
    """(scratch, binder, kind) for runtime.kernels.Bound, or None (numpy kernels asked for,
    an unsupported dtype). `epilogue`: epi's steps, fused into the packed GEMM where it has
    code for them and the extra operands are contiguous (else epi runs after)."""
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
    unpadded = UNPADDED and n == 1 and not direct and x.dtype == np.float32 and \
        sw in (1, 2) and ow >= UNPADDED_MIN_COLUMNS and \
        4 * (wd + ow + pl + (kw - 1) * dw) + 64 < 2**31
    direct = direct or unpadded
    k = c * kh * kw
    packed = np.ascontiguousarray(w.reshape(cout, k))
    item = x.dtype.itemsize
    if 2 * n * cout * k * oh * ow < (MIN_SPLIT_FLOPS if _has_gemm(x.dtype) else
                                     MIN_SPLIT_FLOPS_PYTHON):
        workers = 1
    # several images: each thread takes whole ones (its own pad and patch buffers); one
    # image: each thread a range of output rows (its own patch buffer), the pad first
    slots = max(1, min(workers, n))
    # ... unless the weights outnumber the patches (the last ResNet stage at batch 1: 9.4 MB
    # of weights, 49 pixels): split by rows, both threads streamed all of them (1.43 ms on
    # one thread, 1.46 on two); then the patches are written once and each thread multiplies
    # its output channels
    by_channels = n == 1 and workers > 1 and cout > oh * ow
    ranges = _even(oh, workers * ROW_PARTS_PER_THREAD) \
        if n == 1 and workers > 1 and not by_channels else [(0, oh)]
    rows = max(y1 - y0 for y0, y1 in ranges)
    # bands where BLAS repacks small weights per band, or codegen's GEMM takes every band
    # and reads weights that stay in L2 (bigger ones, streamed once a band, lose)
    band = rows if by_channels else max(1, min(rows, BAND_BYTES // (k * ow * item)))
    gemm = _PackedGemms(packed, epilogue)
    weights = cout * k * item
    if not by_channels and weights > BAND_WEIGHT_BYTES and (not gemm.has_gemm or
                                                            weights > BAND_BYTES):
        band = rows
    bands = [b for y0, y1 in ranges for b in range_bands(y0, y1, band)]
    f = im2col(x.dtype.name, (kh, kw), (sh, sw), (dh, dw), unpadded)
    f_pad = pad_planes(x.dtype.name)
    # (a vector of slack after each buffer: the stride-2 loads of the im2col kernel and the
    # GEMM's last vector of columns read past the end)
    pad_size, cols_size = c * hp * wp, k * band * ow
    scratch = [("pad", (0 if direct else (1 if n == 1 else slots) * pad_size + 16,), x.dtype),
               ("cols", (slots * len(ranges) * (cols_size + 16),), x.dtype)]
    # per part (thread): its bands, each (y0, y1, dims, GEMM or None)
    parts = []
    for y0, y1 in ranges:
        parts.append([(b0, b1, np.array([c, h, wd, ow, b0, b1, band * ow, pt, pl] if unpadded
                                        else [c, hp, wp, ow, b0, b1, band * ow], np.int64))
                      for b0, b1 in bands if y0 <= b0 < y1])
    # per slot (thread) and band: its packed GEMM calls (None: np.matmul)
    calls_of = [[gemm.band((cout, (b1 - b0) * ow), band * ow, oh * ow) for b0, b1 in bands]
                for _ in range(slots)]
    band_at = {b: i for i, b in enumerate(bands)}
    channel_bands = gemm.channel_bands(oh * ow, workers) if by_channels else []
    channel_gemms = gemm.channels(channel_bands, workers) if by_channels else []
    # split, and machine code only (codegen's GEMMs, not np.matmul): threads.parallel_calls
    machine = gemm.has_gemm and (by_channels or slots * len(ranges) > 1)

    def bind(arrays: list[np.ndarray]) -> Any:
        xp_flat, cols_flat = arrays
        pad_dims = np.array([c, h, wd, hp, wp, pt, pl], np.int64)
        cols = [cols_flat[i * (cols_size + 16):i * (cols_size + 16) + cols_size]
                .reshape(k, band * ow) for i in range(slots * len(ranges))]
        pads = [xp_flat[i * pad_size:(i + 1) * pad_size] for i in range(slots)] \
            if not direct else []

        def image(x_at: int, i: int, out3: np.ndarray, slot: int, part: int,
                  fused: list[int] | None) -> None:
            """Output rows of part `part` of image i, into patch buffer `slot`; fused: the
            extras' addresses for the GEMM's own epilogue (else None)."""
            src = x_at if direct else pads[0 if n == 1 else slot].ctypes.data
            m_all = cols[slot if n > 1 else part]
            for b0, b1, d in parts[part]:
                f(src, m_all.ctypes.data, d.ctypes.data)
                g = calls_of[slot if n > 1 else 0][band_at[(b0, b1)]]
                if g is None:
                    np.matmul(packed, m_all[:, :(b1 - b0) * ow], out=out3[i, :, b0 * ow:b1 * ow])
                elif fused is None:
                    g.plain()(m_all.ctypes.data, out3[i, :, b0 * ow:].ctypes.data, ())
                else:
                    at = (i * cout * oh * ow + b0 * ow) * 4
                    g.fused(m_all.ctypes.data, out3[i, :, b0 * ow:].ctypes.data,
                         [e + at * step for e, step in zip(fused, gemm.steps)])

        native: dict[tuple[Any, ...], tuple[list[tuple[np.ndarray, np.ndarray]],
                                            list[Any]]] = {}

        def machine_calls(x_at: int, out3: np.ndarray, fused: list[int] | None
                          ) -> list[tuple[np.ndarray, np.ndarray]]:
            """The split as threads.parallel_calls rows (a part: its calls above, in order),
            made once for these addresses: the pool takes parts with no GIL switch."""
            key = (x_at, out3.ctypes.data, None if fused is None else tuple(fused))
            if key not in native:
                if len(native) > 8:
                    native.clear()
                f_at, pad_at, step = _address(f), _address(f_pad), c * h * wd * item
                calls: list[list[int]] = []
                keep: list[Any] = []
                starts = [0]

                def gemm_row(g: _Band, m_at: int, out_at: int, at: int) -> None:
                    if fused is None:
                        row, alive = g.plain().row(m_at, out_at, ())
                    else:
                        row, alive = g.fused.row(m_at, out_at, [
                            e + at * s for e, s in zip(fused, gemm.steps)])
                    calls.append(row)
                    keep.append(alive)

                def bands_of(src: int, i: int, m_at: int, part: int, slot: int) -> None:
                    for b0, b1, d in parts[part]:
                        calls.append([f_at, src, m_at, d.ctypes.data])
                        gemm_row(calls_of[slot][band_at[(b0, b1)]], m_at,
                                 out3[i, :, b0 * ow:].ctypes.data,
                                 (i * cout * oh * ow + b0 * ow) * 4)

                def first_phase(patches: bool) -> None:
                    """The pad (and, `patches`, the patch matrix) first, by bands of input
                    channels (planes), a part each: the pad and im2col kernels take any
                    range of planes at its offset."""
                    for c0, c1 in _even(c, workers * PLANE_PARTS_PER_THREAD):
                        src = x_at + c0 * h * wd * item
                        if not direct:
                            at = pads[0].ctypes.data + c0 * hp * wp * item
                            d = np.array([c1 - c0, *pad_dims[1:]], np.int64)
                            calls.append([pad_at, src, at, d.ctypes.data])
                            keep.append(d)
                            src = at
                        if patches:
                            d = np.array([c1 - c0, *parts[0][0][2][1:]], np.int64)
                            calls.append([f_at, src, cols[0].ctypes.data
                                          + c0 * kh * kw * band * ow * item, d.ctypes.data])
                            keep.append(d)
                        starts.append(len(calls))
                if by_channels:
                    first_phase(True)
                    for g in channel_bands:
                        gemm_row(g, cols[0].ctypes.data, out3[0].ctypes.data, 0)
                        starts.append(len(calls))
                elif n > 1:
                    for slot, (lo, hi) in enumerate(_even(n, slots)):
                        for i in range(lo, hi):
                            src = x_at + i * step
                            if not direct:
                                calls.append([pad_at, src, pads[slot].ctypes.data,
                                              pad_dims.ctypes.data])
                                src = pads[slot].ctypes.data
                            bands_of(src, i, cols[slot].ctypes.data, 0, slot)
                        starts.append(len(calls))
                else:
                    if not direct:
                        first_phase(False)
                    for p in range(len(parts)):
                        bands_of(x_at if direct else pads[0].ctypes.data, 0,
                                 cols[p].ctypes.data, p, 0)
                        starts.append(len(calls))
                rows = np.zeros((len(calls), 1 + threads.CALL_ARGS), np.int64)
                for r, call in enumerate(calls):
                    rows[r, :len(call)] = call
                # the parallel phases: the first's parts (if any), then the rest at once
                first = len(starts) - 1 - (len(channel_bands) if by_channels else
                                           len(parts) if n == 1 else slots)
                cut = starts[first]
                phases = [(rows[:cut], np.array(starts[:first + 1], np.int64)),
                          (rows[cut:], np.array(starts[first:], np.int64) - cut)]
                native[key] = (phases[1 - bool(first):], keep)
            return native[key][0]

        def run(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray, out: np.ndarray,
                _keep: Any = (pads, cols)) -> None:
            x = np.ascontiguousarray(x)
            out3 = out.reshape(n, cout, oh * ow)
            fused = gemm.fused_extras(out, extras)
            if machine:
                for calls, starts in machine_calls(x.ctypes.data, out3, fused):
                    threads.parallel_calls(calls, starts)
                if fused is None:
                    epi(out, extras)
                return
            step = x[0].nbytes

            def images(lo: int, hi: int, slot: int) -> None:
                for i in range(lo, hi):
                    if not direct:
                        f_pad(x.ctypes.data + i * step, pads[slot].ctypes.data,
                              pad_dims.ctypes.data)
                    image(x.ctypes.data + i * step, i, out3, slot, 0, fused)
            if by_channels:
                if not direct:
                    f_pad(x.ctypes.data, pads[0].ctypes.data, pad_dims.ctypes.data)
                src = x.ctypes.data if direct else pads[0].ctypes.data
                f(src, cols[0].ctypes.data, parts[0][0][2].ctypes.data)
                threads.parallel(lambda lo, hi, _: [channel_gemms[p](cols[0], out3[0], fused)
                                                    for p in range(lo, hi)],
                                 len(channel_gemms), len(channel_gemms))
            elif n > 1:
                threads.parallel(images, n, slots)
            else:
                if not direct:
                    f_pad(x.ctypes.data, pads[0].ctypes.data, pad_dims.ctypes.data)
                threads.parallel(lambda lo, hi, part: [image(x.ctypes.data, 0, out3, 0, p,
                                                             fused) for p in range(lo, hi)],
                                 len(parts), len(parts))
            if fused is None:
                epi(out, extras)
        return run
    return scratch, bind, "im2col-gen"


def _address(f: Any) -> int:
    """A compiled kernel's address (a ctypes function)."""
    import ctypes  # noqa: PLC0415

    return ctypes.cast(f, ctypes.c_void_p).value


def range_bands(y0: int, y1: int, band: int) -> list[tuple[int, int]]:
    return [(y, min(y1, y + band)) for y in range(y0, y1, band)]


def _even(items: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(items, parts))
    return [(i * items // parts, (i + 1) * items // parts) for i in range(parts)]


class _PackedGemms:
    """codegen's packed GEMM (codegen/gemm.py) of the weights [C_out, K], packed once, for
    the patch bands: `fused` with the conv's epilogue where it has code (None else), `plain`
    without (None: no AVX-512, float64, numpy kernels asked for: np.matmul)."""

    def __init__(self, packed: np.ndarray, epilogue: Sequence[str]) -> None:
        self.w, self.cout = packed, packed.shape[0]
        self.has_gemm = _has_gemm(packed.dtype)
        self.fused = _packed(packed, epilogue) if epilogue and self.has_gemm else None
        # without a fused one, built now; else when first needed (extras that do not suit it)
        self._plain = _packed(packed, ()) if self.has_gemm and self.fused is None else None
        self.kinds = self.fused.kinds if self.fused is not None else ()
        # an extra's address step per output element: 0 for a bias, 1 for an addend
        self.steps = [0 if kind == "bias" else 1 for kind in self.kinds]

    @property
    def plain(self) -> Any:
        if self._plain is None:
            self._plain = _packed(self.w, ())
        return self._plain

    def band(self, shape: tuple[int, int], ldx: int, ldc: int,
             span: tuple[int, int] | None = None) -> _Band | None:
        """One band's GEMM calls (on the calling thread); None without the GEMM."""
        return _Band(self, shape, ldx, ldc, span) if self.has_gemm else None

    def channel_bands(self, width: int, workers: int) -> list[_Band]:
        """Per thread, the GEMM calls of its output channels (whole register blocks of them);
        none without the GEMM."""
        from tostatic.codegen.gemm import MR  # noqa: PLC0415
        if not self.has_gemm:
            return []
        return [_Band(self, (self.cout, width), width, width, (lo * MR, min(self.cout, hi * MR)))
                for lo, hi in _even(-(-self.cout // MR), workers)]

    def channels(self, bands: list[_Band], workers: int) -> list[Callable[..., None]]:
        """Per thread, run(patches [K, width], out [C_out, width], fused extras or None) of
        its output channels: `bands`' calls, or np.matmul on its rows without the GEMM."""
        if not self.has_gemm:
            return [lambda m, out, _e, lo=lo, hi=hi: np.matmul(self.w[lo:hi], m, out=out[lo:hi])
                    for lo, hi in _even(self.cout, workers)]
        runs = []
        for g in bands:

            def run(m: np.ndarray, out: np.ndarray, fused: list[int] | None,
                    g: Any = g) -> None:
                if fused is None:
                    g.plain()(m.ctypes.data, out.ctypes.data, ())
                else:
                    g.fused(m.ctypes.data, out.ctypes.data, fused)
            runs.append(run)
        return runs

    def fused_extras(self, out: np.ndarray, extras: Sequence[np.ndarray]) -> list[int] | None:
        """The extras' addresses where the fused GEMM can read them (float32, contiguous, a
        bias of C_out values, an addend of out's shape not overlapping it), else None."""
        if self.fused is None or len(extras) != len(self.kinds):
            return None
        for e, kind in zip(extras, self.kinds):
            if e.dtype != np.float32 or not e.flags.c_contiguous or \
                    (e.size != self.cout if kind == "bias" else e.shape != out.shape) or \
                    np.may_share_memory(out, e):
                return None
        return [e.__array_interface__["data"][0] for e in extras]


class _Band:
    """A band's calls(patches address, its output's address, the extras' addresses): `fused`
    (or None) and `plain()`, prepared on first use."""

    def __init__(self, gemms: _PackedGemms, shape: tuple[int, int], ldx: int, ldc: int,
                 span: tuple[int, int] | None) -> None:
        self.gemms, self.args = gemms, (shape, ldx, ldc, span)
        lde = [0 if kind == "bias" else ldc for kind in gemms.kinds]
        self.fused = None if gemms.fused is None else \
            gemms.fused.prepare_strides(shape, ldx, ldc, lde, split=False, span=span)
        self._plain: Any = None

    def plain(self) -> Any:
        if self._plain is None:
            shape, ldx, ldc, span = self.args
            self._plain = self.gemms.plain.prepare_strides(shape, ldx, ldc, [], split=False,
                                                           span=span)
        return self._plain


def _has_gemm(dtype: np.dtype) -> bool:
    if not BAND_GEMM or dtype != np.float32:
        return False
    from tostatic.codegen import gemm  # noqa: PLC0415 (llvmlite loads on first use)
    return gemm.available()


def _packed(packed: np.ndarray, epilogue: Sequence[str]) -> Any:
    """codegen's PackedGemm of the weights with the epilogue, or None (no code for it)."""
    from tostatic.codegen import epilogue as epi, gemm  # noqa: PLC0415
    try:
        expr, kinds = epi.epilogue_expr(epilogue, "float32") if epilogue else (None, ())
        return gemm.PackedGemm("conv", packed, expr, kinds)
    except (NotScalar, KeyError):
        return None
