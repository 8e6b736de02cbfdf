"""Padding: Paddle's `pad3d` (what F.pad / nn.Pad2D / Pad3D write, for 3-, 4- and 5-D inputs)
and the legacy all-dims constant `pad` (what F.pad writes for a constant pad of every dim).

pad3d takes a 5-D input only: for a 4-D NCHW input F.pad writes unsqueeze2(axes=[2]) ->
pad3d(paddings [l, r, t, b, 0, 0], NCDHW) -> squeeze2(axes=[2]) (NHWC: axis 1, NDHWC; 3-D
inputs: two unit axes), so the op here is the 5-D one and the 4-D path is those three ops.
`paddings` are (left, right, top, bottom, front, back): width first, as Paddle orders them.

Every mode maps each output index to a source index with the kernel's own formula, one
spatial axis at a time (reflect: |i| folded at both ends, the pad smaller than the dim;
replicate: clamped; circular: modulo, any pad), so the kernel is three np.take calls, or one
slice assignment for `constant`. Negative paddings crop, as the kernel's formulas do.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic.ir.attributes import FLOAT, INTS, STR, attr
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.core import array_to_dense

MODES = ("constant", "reflect", "replicate", "circular")
FORMATS = ("NCDHW", "NDHWC")


def pad_value(value: float, dtype: np.dtype) -> np.ndarray:
    """The float32 attribute cast to the tensor's type as static_cast<T> does (truncating)."""
    return np.asarray(np.float32(value)).astype(dtype)


def constant_pad(x: np.ndarray, pairs: Sequence[tuple[int, int]], value: float) -> np.ndarray:
    """x padded (or cropped, for negative amounts) by (before, after) per dim with `value`."""
    shape = [n + a + b for n, (a, b) in zip(x.shape, pairs)]
    if any(s < 0 for s in shape):
        raise ShapeError(f"padding {list(pairs)} crops more than the shape {list(x.shape)} has")
    out = np.empty(shape, x.dtype)
    out[...] = pad_value(value, x.dtype)
    dst, src = [], []
    for n, s, (a, _) in zip(x.shape, shape, pairs):
        lo, hi = max(a, 0), min(s, n + a)  # output range the input covers
        if hi <= lo:
            return out
        dst.append(slice(lo, hi))
        src.append(slice(lo - a, hi - a))
    out[tuple(dst)] = x[tuple(src)]
    return out


def source_index(mode: str, n_in: int, n_out: int, before: int) -> np.ndarray:
    """For each output index along one axis, the input index the kernel reads."""
    i = np.arange(n_out) - before
    if mode == "reflect":
        i = np.abs(i)
        return np.minimum(i, 2 * n_in - i - 2)
    if mode == "replicate":
        return np.clip(i, 0, n_in - 1)
    return np.mod(i, n_in)  # circular (numpy's mod is already non-negative)


def _pad3d_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """Each padded axis is an np.take of source indices: its adjoint adds them back."""
    x, tensors = inputs
    if tensors:
        raise UnsupportedError(f"{cls.name}: no gradient when the paddings are a tensor")
    shape = e.shape(x)
    axes = cls.check(len(shape), attrs["mode"], attrs["data_format"])
    p = attrs["paddings"]
    g = cts[0]
    for k, ax in enumerate(axes):
        before, after, n = p[2 * k], p[2 * k + 1], shape[ax]
        if not (before or after):
            continue
        src = source_index(attrs["mode"], n, n + before + after, before) \
            if attrs["mode"] != "constant" else np.arange(n)
        if attrs["mode"] == "constant":
            g = A.e(e, "pd.slice", g, axes=(ax,), starts=(before,), ends=(before + n,),
                    decrease_axis=())
            continue
        zeros_shape = list(e.shape(g))
        zeros_shape[ax] = n
        zeros = A.e(e, "pd.full", shape=tuple(zeros_shape), value=0.0, dtype=e.dtype(g))
        index = A.e(e, "pd.constant", value=array_to_dense(src.astype(np.int64)))
        g = A.e(e, "pd.index_add", zeros, index, g, axis=ax)
    return [g, [None] * len(tensors)]


@pd_op
class Pad3d(PdOp):
    """Paddle's pad3d on a 5-D input; `paddings` from the attribute, or from the Paddings
    input (an int tensor of 6 values) when given."""

    name = "pd.pad3d"
    INPUTS = ("x", "*paddings_tensor")
    ATTRS = {"paddings": attr(INTS, (0, 0, 0, 0, 0, 0)), "mode": attr(STR, "constant"),
             "value": attr(FLOAT, 0.0), "data_format": attr(STR, "NCDHW")}
    PADDLE = Legacy("pad3d", {"X": "x", "Paddings": "*paddings_tensor"}, {"Out": 0},
                    {"paddings": From("INTS", "paddings"), "mode": From("STRING", "mode"),
                     "value": From("FLOAT", "value"),
                     "data_format": From("STRING", "data_format")})
    NAME_HINT = "pad3d"
    vjp = classmethod(_pad3d_vjp)

    @classmethod
    def check(cls, ndim: int, mode: str, data_format: str) -> tuple[int, ...]:
        """Validate; the input's spatial axes in pad order (width, height, depth)."""
        if mode not in MODES:
            raise UnsupportedError(f"{cls.name} (pad3d): mode {mode!r} is not supported (one "
                                   f"of {', '.join(MODES)})")
        if data_format not in FORMATS:
            raise UnsupportedError(f"{cls.name} (pad3d): data_format {data_format!r} is not "
                                   f"supported (one of {', '.join(FORMATS)})")
        if ndim != 5:
            raise ShapeError(f"{cls.name} (pad3d): input must be 5-D, got rank {ndim} "
                             f"(F.pad unsqueezes 3-D and 4-D inputs to 5-D first)")
        return (4, 3, 2) if data_format == "NCDHW" else (3, 2, 1)

    @classmethod
    def check_paddings(cls, x_shape: Sequence[int], paddings: Sequence[int], mode: str,
                       axes: Sequence[int]) -> None:
        if len(paddings) != 6:
            raise ShapeError(f"{cls.name} (pad3d): paddings {list(paddings)} must have 6 values "
                             f"(left, right, top, bottom, front, back)")
        for k, ax in enumerate(axes):
            n, before, after = x_shape[ax], paddings[2 * k], paddings[2 * k + 1]
            if n < 0:
                continue
            if mode == "reflect" and (before >= n or after >= n):
                raise ShapeError(f"{cls.name} (pad3d): reflect padding {[before, after]} must be "
                                 f"smaller than the dim it pads ({n}) (input {list(x_shape)})")
            if mode in ("replicate", "circular") and n == 0:
                raise ShapeError(f"{cls.name} (pad3d): {mode} padding of an empty dim "
                                 f"(input {list(x_shape)})")
            if n + before + after < 0:
                raise ShapeError(f"{cls.name} (pad3d): paddings {list(paddings)} crop more than "
                                 f"input {list(x_shape)} has")

    @classmethod
    def infer(cls, x: Abstract, paddings_tensor: list[Abstract], paddings: Sequence[int],
              mode: str, value: float, data_format: str) -> Abstract:
        axes = cls.check(x.ndim, mode, data_format)
        shape = list(x.shape)
        if paddings_tensor:
            (p,) = paddings_tensor
            if p.dtype.is_floating or p.ndim != 1 or p.shape[0] not in (-1, 6):
                raise ShapeError(f"{cls.name} (pad3d): the Paddings input must be an int tensor "
                                 f"of 6 values, got {p.dtype.name}{list(p.shape)}")
            for ax in axes:
                shape[ax] = -1
            return Abstract(tuple(shape), x.dtype)
        cls.check_paddings(x.shape, paddings, mode, axes)
        for k, ax in enumerate(axes):
            if shape[ax] >= 0:
                shape[ax] += paddings[2 * k] + paddings[2 * k + 1]
        return Abstract(tuple(shape), x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, paddings_tensor: list[np.ndarray], paddings: Sequence[int],
              mode: str, value: float, data_format: str) -> np.ndarray:
        axes = cls.check(x.ndim, mode, data_format)
        if paddings_tensor:
            paddings = [int(v) for v in np.asarray(paddings_tensor[0]).reshape(-1)]
        cls.check_paddings(x.shape, paddings, mode, axes)
        if mode == "constant":
            pairs = [(0, 0)] * 5
            for k, ax in enumerate(axes):
                pairs[ax] = (paddings[2 * k], paddings[2 * k + 1])
            return constant_pad(x, pairs, value)
        out = x
        for k, ax in enumerate(axes):
            before, after = paddings[2 * k], paddings[2 * k + 1]
            if before or after:
                n = x.shape[ax]
                out = np.take(out, source_index(mode, n, n + before + after, before), axis=ax)
        return out if out is not x else x.copy()


def _pad_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    shape = e.shape(inputs[0])
    befores = attrs["paddings"][0::2]
    return [A.e(e, "pd.slice", cts[0], axes=tuple(range(len(shape))), starts=tuple(befores),
                ends=tuple(b + n for b, n in zip(befores, shape)), decrease_axis=())]


@pd_op
class Pad(PdOp):
    """Paddle's legacy `pad`: a constant pad of every dim, paddings (before, after) per dim
    in dim order, none negative (what F.pad writes for constant mode when the pad does not
    have exactly 2 values a spatial dim)."""

    name = "pd.pad"
    INPUTS = ("x",)
    ATTRS = {"paddings": attr(INTS), "pad_value": attr(FLOAT, 0.0)}
    PADDLE = Legacy("pad", {"X": "x"}, {"Out": 0},
                    {"paddings": From("INTS", "paddings"),
                     "pad_value": From("FLOAT", "pad_value")}, keeps_extra_attrs=True)
    NAME_HINT = "pad"
    vjp = classmethod(_pad_vjp)

    @classmethod
    def pairs(cls, shape: Sequence[int], paddings: Sequence[int]) -> list[tuple[int, int]]:
        if len(paddings) != 2 * len(shape):
            raise ShapeError(f"{cls.name} (pad): paddings {list(paddings)} must have 2 values a "
                             f"dim ({2 * len(shape)} for input {list(shape)})")
        if any(p < 0 for p in paddings):
            raise ShapeError(f"{cls.name} (pad): paddings {list(paddings)} must be >= 0")
        return [(paddings[2 * i], paddings[2 * i + 1]) for i in range(len(shape))]

    @classmethod
    def infer(cls, x: Abstract, paddings: Sequence[int], pad_value: float) -> Abstract:
        pairs = cls.pairs(x.shape, paddings)
        return Abstract(tuple(n + a + b if n >= 0 else -1 for n, (a, b) in zip(x.shape, pairs)),
                        x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, paddings: Sequence[int], pad_value: float) -> np.ndarray:
        return constant_pad(x, cls.pairs(x.shape, paddings), pad_value)
