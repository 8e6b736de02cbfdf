"""Moving elements without computing: flip (reverse along axes) and pixel_shuffle (channels
into space: [N, C*r*r, H, W] -> [N, C, H*r, W*r], or its NHWC form)."""
from __future__ import annotations

import numpy as np

from tostatic.ir.attributes import INT, INTS, STR, attr
from tostatic.ir.errors import ShapeError
from tostatic.ops import autodiff as A
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops.shapes import normalize_axis


@pd_op
class Flip(PdOp):
    name = "pd.flip"
    INPUTS = ("x",)
    ATTRS = {"axis": attr(INTS)}
    PADDLE = Legacy("flip", {"X": "x"}, {"Out": 0}, {"axis": From("INTS", "axis")},
                    keeps_extra_attrs=True)
    NAME_HINT = "flip"
    vjp = A.unary_vjp(lambda e, x, out, g, axis: e(Flip, g, axis=axis))

    @classmethod
    def infer(cls, x: Abstract, axis: tuple[int, ...]) -> Abstract:
        axes = [normalize_axis(a, x.ndim, f"{cls.name} axis") for a in axis]
        if len(set(axes)) != len(axes):
            raise ShapeError(f"{cls.name}: axis {list(axis)} names an axis twice")
        return x

    @staticmethod
    def eager(x: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
        if x.ndim == 0:
            return x.copy()
        return np.ascontiguousarray(np.flip(x, axis=tuple(a % x.ndim for a in axis)))


@pd_op
class PixelShuffle(PdOp):
    name = "pd.pixel_shuffle"
    INPUTS = ("x",)
    ATTRS = {"upscale_factor": attr(INT), "data_format": attr(STR, "NCHW")}
    PADDLE = Legacy("pixel_shuffle", {"X": "x"}, {"Out": 0},
                    {"data_format": From("STRING", "data_format"),
                     "upscale_factor": From("INT", "upscale_factor")},
                    keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "pixel_shuffle"
    vjp = A.moved_back_vjp()

    @classmethod
    def infer(cls, x: Abstract, upscale_factor: int, data_format: str) -> Abstract:
        r = upscale_factor
        if x.ndim != 4:
            raise ShapeError(f"{cls.name}: expects a 4-D tensor, got shape {list(x.shape)}")
        if data_format not in ("NCHW", "NHWC"):
            raise ShapeError(f"{cls.name}: data_format must be NCHW or NHWC, got "
                             f"{data_format!r}")
        if r < 1:
            raise ShapeError(f"{cls.name}: upscale_factor must be positive, got {r}")
        n, c, h, w = x.shape if data_format == "NCHW" else (x.shape[0], x.shape[3],
                                                             *x.shape[1:3])
        if c >= 0 and c % (r * r):
            raise ShapeError(f"{cls.name}: {c} channels do not divide by upscale_factor^2 = "
                             f"{r * r}")
        c = c // (r * r) if c >= 0 else -1
        h, w = (d * r if d >= 0 else -1 for d in (h, w))
        return Abstract((n, c, h, w) if data_format == "NCHW" else (n, h, w, c), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, upscale_factor: int, data_format: str) -> np.ndarray:
        r = upscale_factor
        if data_format == "NCHW":
            n, c, h, w = x.shape
            y = x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3)
            return np.ascontiguousarray(y.reshape(n, c // (r * r), h * r, w * r))
        n, h, w, c = x.shape
        y = x.reshape(n, h, w, c // (r * r), r, r).transpose(0, 1, 4, 2, 5, 3)
        return np.ascontiguousarray(y.reshape(n, h * r, w * r, c // (r * r)))
