"""Convolutions as im2col + GEMM with codegen's im2col kernel (codegen/im2col.py): the
strided and stem convolutions Winograd does not take (ResNets' 7x7 stride-2 stem, 3x3 and
1x1 stride-2 layers), one thread.

Per image the input is copied into a zero-bordered buffer (unless unpadded: a 1x1 stride-2
downsample reads it in place), then the patch matrix is written
a band of output rows at a time and each band multiplied at once, while it is in L2
(BAND_BYTES), when the packed weights are small enough for BLAS to repack them per band
(the stem's 64 x 147); otherwise the whole patch matrix is one GEMM. The conv's epilogue
runs after, as for runtime.kernels' im2col path.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic import codegen

BAND_BYTES = 1 << 20  # the patch rows of a band (L2 is 1 MiB a core here; 16 rows of the stem)
BAND_WEIGHT_BYTES = 256 << 10  # weights repacked by BLAS per band: at most this
BAND_GEMM = True  # codegen's GEMM over weights packed once, where the band allows it
MAX_PADDING = 1.35  # ... computing at most 35% more columns (49 -> 64: 0.7-0.9x BLAS's time)


def im2col_factory(x: np.ndarray, w: np.ndarray, out: np.ndarray, pads: Any, strides: Any,
                   dilations: Any, epi: Callable[[np.ndarray, Sequence[np.ndarray]], None]
                   ) -> tuple[list[Any], Callable[[list[np.ndarray]], Any], str] | None:
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
    # bands where BLAS repacks small weights per band, or codegen's GEMM takes every band
    # and reads weights that stay in L2 (bigger ones, streamed once a band, lose)
    band = max(1, min(oh, BAND_BYTES // (k * ow * item)))
    gemms = _band_gemms(packed, [(y1 - y0) * ow for y0, y1 in range_bands(oh, band)],
                        band * ow, oh * ow)
    weights = cout * k * item
    if weights > BAND_WEIGHT_BYTES and (None in gemms or weights > BAND_BYTES):
        band = oh
        gemms = _band_gemms(packed, [oh * ow], oh * ow, oh * ow)
    f = im2col(x.dtype.name, (kh, kw), (sh, sw), (dh, dw))
    f_pad = pad_planes(x.dtype.name)
    # (a vector of slack after each buffer: the stride-2 loads of the im2col kernel and the
    # GEMM's last vector of columns read past the end)
    scratch = [("pad", (0 if direct else c * hp * wp + 16,), x.dtype),
               ("cols", (k * band * ow + 16,), x.dtype)]
    bands = range_bands(oh, band)

    def bind(arrays: list[np.ndarray]) -> Any:
        xp_flat, cols = arrays
        xp = xp_flat[:c * hp * wp]
        cols = cols[:k * band * ow].reshape(k, band * ow)
        pad_dims = np.array([c, h, wd, hp, wp, pt, pl], np.int64)
        dims = [np.array([c, hp, wp, ow, y0, y1, band * ow], np.int64) for y0, y1 in bands]
        views = [cols[:, :(y1 - y0) * ow] for y0, y1 in bands]

        def run(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray, out: np.ndarray) -> None:
            x = np.ascontiguousarray(x)
            out3 = out.reshape(n, cout, oh * ow)
            for i in range(n):
                image = x.ctypes.data + i * x[0].nbytes
                if not direct:
                    f_pad(image, xp.ctypes.data, pad_dims.ctypes.data)
                src = image if direct else xp.ctypes.data
                for (y0, y1), d, m, g in zip(bands, dims, views, gemms):
                    f(src, cols.ctypes.data, d.ctypes.data)
                    if g is None:
                        np.matmul(packed, m, out=out3[i, :, y0 * ow:y1 * ow])
                    else:
                        g(cols.ctypes.data, out3[i, :, y0 * ow:].ctypes.data)
            epi(out, extras)
        return run
    return scratch, bind, "im2col-gen"


def range_bands(oh: int, band: int) -> list[tuple[int, int]]:
    return [(y, min(oh, y + band)) for y in range(0, oh, band)]


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
        vectors = -(-width // wg.LANES)
        rows = wg.rows_for(cout, vectors) if vectors * wg.LANES <= MAX_PADDING * width \
            else None
        if rows is None:
            out.append(None)
            continue
        if rows not in units:
            units[rows] = wg.pack(packed[None], rows)
        f = wg.kernel(rows, wg.vectors_for(rows, vectors))
        dims = wg.dims(0, 1, k, cout, width, ldv, ldm)

        def run(v: int, m: int, f: Any = f, u: np.ndarray = units[rows],
                dims: np.ndarray = dims) -> None:
            f(u.ctypes.data, v, m, dims.ctypes.data)
        out.append(run)
    return out
