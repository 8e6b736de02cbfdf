"""Convolutions as im2col + GEMM with codegen's im2col kernel (codegen/im2col.py): the
strided and stem convolutions Winograd does not take (ResNets' 7x7 stride-2 stem, 3x3 and
1x1 stride-2 layers), one thread.

Per image the input is copied into a zero-bordered buffer, then the patch matrix is written
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


def im2col_factory(x: np.ndarray, w: np.ndarray, out: np.ndarray, pads: Any, strides: Any,
                   dilations: Any, epi: Callable[[np.ndarray, Sequence[np.ndarray]], None]
                   ) -> tuple[list[Any], Callable[[list[np.ndarray]], Any], str] | None:
    """(scratch, binder, kind) for runtime.kernels.Bound, or None (numpy kernels asked for,
    an unsupported dtype)."""
    if not codegen.enabled() or x.dtype not in (np.float32, np.float64):
        return None
    from tostatic.codegen.im2col import im2col  # noqa: PLC0415 (llvmlite loads on first use)
    n, c, h, wd = x.shape
    cout, _, kh, kw = w.shape
    oh, ow = out.shape[2:]
    (pt, _), (pl, _) = pads
    (sh, sw), (dh, dw) = strides, dilations
    # the buffer covers every tap read (a stride may leave the last rows / columns unread)
    hp = max(pt + h, (oh - 1) * sh + (kh - 1) * dh + 1)
    wp = max(pl + wd, (ow - 1) * sw + (kw - 1) * dw + 1)
    k = c * kh * kw
    packed = np.ascontiguousarray(w.reshape(cout, k))
    item = x.dtype.itemsize
    band = oh
    if cout * k * item <= BAND_WEIGHT_BYTES:
        band = max(1, min(oh, BAND_BYTES // (k * ow * item)))
    f = im2col(x.dtype.name, (kh, kw), (sh, sw), (dh, dw))
    # (a vector of slack after the buffer: the kernel's stride-2 loads read past the end)
    scratch = [("pad", (c * hp * wp + 16,), x.dtype), ("cols", (k, band * ow), x.dtype)]
    bands = [(y, min(oh, y + band)) for y in range(0, oh, band)]

    def bind(arrays: list[np.ndarray]) -> Any:
        xp_flat, cols = arrays
        xp = xp_flat[:c * hp * wp].reshape(c, hp, wp)
        inner = xp[:, pt:pt + h, pl:pl + wd]
        borders = [r for r in (xp[:, :pt], xp[:, pt + h:], xp[:, pt:pt + h, :pl],
                               xp[:, pt:pt + h, pl + wd:]) if r.size]
        dims = [np.array([c, hp, wp, ow, y0, y1, band * ow], np.int64) for y0, y1 in bands]
        views = [cols[:, :(y1 - y0) * ow] for y0, y1 in bands]

        def run(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray, out: np.ndarray) -> None:
            for r in borders:
                r.fill(0)
            out3 = out.reshape(n, cout, oh * ow)
            for i in range(n):
                np.copyto(inner, x[i])
                for (y0, y1), d, m in zip(bands, dims, views):
                    f(xp.ctypes.data, cols.ctypes.data, d.ctypes.data)
                    np.matmul(packed, m, out=out3[i, :, y0 * ow:y1 * ow])
            epi(out, extras)
        return run
    return scratch, bind, "im2col-gen"
