"""Resampling: Paddle's `*_interp_v2` ops (what F.interpolate / F.upsample / nn.Upsample write).

All five legacy types (nearest, bilinear, linear, trilinear, bicubic) run one Paddle kernel
that dispatches on the `interp_method` attribute, not on the op type (a `nearest_interp_v2`
op whose interp_method is 'bilinear' interpolates bilinearly); so do these classes.

The output size comes, by priority, from the SizeTensor inputs (one 1-element int tensor a
dim), else the OutSize input (one int32 tensor), else the scale (the Scale input, else the
`scale` attribute: out = int(in * scale)), else `out_d/out_h/out_w`. A scale also sets the
sampling ratio (1/scale, not in/out), even where OutSize overrides the size. Every one of those
float32 roundings is reproduced here, so the gather indices and weights are Paddle's own:

- nearest: src = int(ratio*k), or int(ratio*k + 0.5) with align_corners;
- linear (align_mode=0, not align_corners: half-pixel): src = max(ratio*(k+0.5) - 0.5, 0),
  else (align_mode=1 or align_corners): src = ratio*k; ratio = (in-1)/(out-1) with
  align_corners, else 1/scale or in/out; neighbours int(src) and min(int(src)+1, in-1);
- bicubic: Keys' kernel with A = -0.75 over 4 clamped taps, half-pixel unless align_corners.

A SizeTensor or Scale input is one variadic pd input each, so a legacy type has three pd ops:
`pd.<method>_interp` (attributes or OutSize), `..._interp_sizes` (SizeTensor) and
`..._interp_scale` (Scale). Raising picks the first op of a legacy type, the OutSize one; a
program whose op fills SizeTensor or Scale then fails in `infer` (out_h=-1 with no scale and
no OutSize) with an UnsupportedError instead of running with a wrong size, until raising
chooses among the ops by which slots hold variables.

Kernels are separable numpy gathers (np.take with index arrays along one spatial axis at a
time, weights broadcast along the others): no loop over pixels, channels or batch.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from tostatic.ir.attributes import BOOL, FLOAT, FLOATS, INT, STR, attr
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.core import array_to_dense

F32 = np.float32

# the methods Paddle's kernel has for an input of each rank (its InferMeta checks these)
METHODS = {3: ("linear",), 4: ("bilinear", "nearest", "bicubic"), 5: ("trilinear", "nearest")}
LAYOUTS = ("NCHW", "NHWC")  # what the Python API writes for NC(D)HW / N(D)HWC inputs
SLOTS = {"out_size": "OutSize", "size_tensor": "SizeTensor", "scale_tensor": "Scale"}


def interp_attrs(method: str) -> dict[str, Any]:
    """The attributes of every *_interp_v2 op, with the op maker's defaults."""
    return {"data_layout": attr(STR, "NCHW"), "out_d": attr(INT, 0), "out_h": attr(INT, 0),
            "out_w": attr(INT, 0), "scale": attr(FLOATS, ()),
            "interp_method": attr(STR, method), "align_corners": attr(BOOL, True),
            "align_mode": attr(INT, 1)}


def interp_legacy(paddle_type: str, size_input: str) -> Legacy:
    """`size_input` (a pd input name) fills its slot; the other two size slots stay empty."""
    slot = SLOTS[size_input]
    attrs = {"data_layout": From("STRING", "data_layout"), "out_d": From("INT", "out_d"),
             "out_h": From("INT", "out_h"), "out_w": From("INT", "out_w"),
             "scale": From("FLOATS", "scale"), "interp_method": From("STRING", "interp_method"),
             "align_corners": From("BOOLEAN", "align_corners"),
             "align_mode": From("INT", "align_mode")}
    return Legacy(paddle_type, {"X": "x", slot: "*" + size_input}, {"Out": 0}, attrs,
                  optional_inputs=tuple(s for s in SLOTS.values() if s != slot),
                  out_lod_level=False)


def spatial_axes(ndim: int, layout: str) -> tuple[int, ...]:
    return tuple(range(2, ndim)) if layout == "NCHW" else tuple(range(1, ndim - 1))


class Interpolate(PdOp):
    """Shared rules of the *_interp_v2 ops; SIZE_INPUT names the tensor input the class
    reads its size from (the variadic input: empty when the size is an attribute)."""

    SIZE_INPUT: ClassVar[str] = "out_size"

    # --- checks -------------------------------------------------------------------------

    @classmethod
    def what(cls) -> str:
        return f"{cls.name} ({cls.PADDLE.type if cls.PADDLE else '-'})"

    @classmethod
    def check(cls, ndim: int, data_layout: str, interp_method: str, align_mode: int,
              scale: Sequence[float]) -> int:
        """Validate the attributes for an input of rank `ndim`; the number of spatial dims."""
        if ndim not in METHODS:
            raise ShapeError(f"{cls.what()}: input must be 3-, 4- or 5-D, got rank {ndim}")
        if data_layout not in LAYOUTS:
            raise UnsupportedError(f"{cls.what()}: data_layout {data_layout!r} is not "
                                   f"supported (one of {', '.join(LAYOUTS)})")
        if interp_method not in METHODS[ndim]:
            raise UnsupportedError(f"{cls.what()}: interp_method {interp_method!r} is not "
                                   f"supported for a {ndim}-D input (one of "
                                   f"{', '.join(METHODS[ndim])})")
        if align_mode not in (0, 1):
            raise UnsupportedError(f"{cls.what()}: align_mode {align_mode} is not supported "
                                   f"(0 or 1)")
        nsp = ndim - 2
        if len(scale) not in (0, nsp):
            raise ShapeError(f"{cls.what()}: scale {list(scale)} must have {nsp} values for a "
                             f"{ndim}-D input")
        if any(not s > 0 for s in scale):
            raise ShapeError(f"{cls.what()}: scale {list(scale)} must be greater than 0")
        return nsp

    # --- shape rule ---------------------------------------------------------------------

    @classmethod
    def infer(cls, x: Abstract, sizes: list[Abstract], data_layout: str, out_d: int,
              out_h: int, out_w: int, scale: Sequence[float], interp_method: str,
              align_corners: bool, align_mode: int) -> Abstract:
        nsp = cls.check(x.ndim, data_layout, interp_method, align_mode, scale)
        axes = spatial_axes(x.ndim, data_layout)
        if sizes:
            cls.check_size_inputs(sizes, nsp)
            outs = [-1] * nsp
        elif scale:
            outs = []
            for ax, s in zip(axes, scale):
                n = x.shape[ax]
                o = int(n * float(F32(s))) if n >= 0 else -1  # as the kernel, in double
                if n >= 0 and o <= 0:
                    raise ShapeError(f"{cls.what()}: scale {s} of a dim of size {n} gives an "
                                     f"empty output")
                outs.append(o)
        else:
            outs = [out_d, out_h, out_w][3 - nsp:]
            names = ["out_d", "out_h", "out_w"][3 - nsp:]
            bad = [(n, o) for n, o in zip(names, outs) if o <= 0]
            if bad:
                n, o = bad[0]
                raise UnsupportedError(
                    f"{cls.what()}: {n}={o} and no scale: the output size must be given by "
                    f"out_d/out_h/out_w, scale, or the {SLOTS[cls.SIZE_INPUT]} input (a "
                    f"program passing it in another of the OutSize/SizeTensor/Scale inputs is "
                    f"not supported by this op)")
        shape = list(x.shape)
        for ax, o in zip(axes, outs):
            shape[ax] = o
        return Abstract(tuple(shape), x.dtype)

    @classmethod
    def check_size_inputs(cls, sizes: list[Abstract], nsp: int) -> None:
        """SizeTensor: nsp int tensors of one value; OutSize: one int tensor of nsp values;
        Scale: one float tensor of 1 or nsp values."""
        slot = SLOTS[cls.SIZE_INPUT]
        count, values = {"size_tensor": (nsp, (1,)), "out_size": (1, (nsp,)),
                         "scale_tensor": (1, (1, nsp))}[cls.SIZE_INPUT]
        if len(sizes) != count:
            raise ShapeError(f"{cls.what()}: {slot} holds {len(sizes)} tensors, a {nsp + 2}-D "
                             f"input needs {count}")
        floating = cls.SIZE_INPUT == "scale_tensor"
        for s in sizes:
            n = -1 if any(d < 0 for d in s.shape) else int(np.prod(s.shape, dtype=np.int64))
            if s.dtype.is_floating != floating or s.ndim > 1 or (n >= 0 and n not in values):
                raise ShapeError(f"{cls.what()}: {slot} has {s.dtype.name}{list(s.shape)}, "
                                 f"expected {'a float' if floating else 'an int'} tensor of "
                                 f"{' or '.join(map(str, sorted(set(values))))} value(s)")

    # --- kernel -------------------------------------------------------------------------

    @classmethod
    def eager(cls, x: np.ndarray, sizes: list[np.ndarray], data_layout: str, out_d: int,
              out_h: int, out_w: int, scale: Sequence[float], interp_method: str,
              align_corners: bool, align_mode: int) -> np.ndarray:
        nsp = cls.check(x.ndim, data_layout, interp_method, align_mode, scale)
        axes = spatial_axes(x.ndim, data_layout)
        ins = [x.shape[a] for a in axes]
        scales = [F32(-1.0)] * nsp
        if sizes and cls.SIZE_INPUT == "size_tensor":
            outs = [int(np.asarray(t).reshape(-1)[0]) for t in sizes]
        else:
            if sizes and cls.SIZE_INPUT == "scale_tensor":
                v = np.asarray(sizes[0]).astype(F32).reshape(-1)
                scales = list(v[:nsp]) if v.size > 1 else [v[0]] * nsp
                if any(not s > 0 for s in scales):
                    raise ShapeError(f"{cls.what()}: the Scale input {v.tolist()} must be "
                                     f"greater than 0")
            elif scale:
                scales = [F32(s) for s in scale]
            if all(s > 0 for s in scales):  # in * scale in double (the scale as float32)
                outs = [int(n * float(s)) for n, s in zip(ins, scales)]
            else:
                outs = [out_d, out_h, out_w][3 - nsp:]
            if sizes and cls.SIZE_INPUT == "out_size":
                outs = [int(v) for v in np.asarray(sizes[0]).reshape(-1)[:nsp]]
        if any(o <= 0 for o in outs):
            raise ShapeError(f"{cls.what()}: output size {outs} must be greater than 0")
        if outs == ins:
            return x.copy()
        ratios = [ratio(n, o, s, align_corners, nsp) for n, o, s in zip(ins, outs, scales)]
        if interp_method == "nearest":
            taps = [nearest_taps(n, o, r, align_corners) for n, o, r in zip(ins, outs, ratios)]
        elif interp_method == "bicubic":
            ct = np.float64 if x.dtype == np.float64 else F32
            taps = [cubic_taps(n, o, r, align_corners, ct)
                    for n, o, r in zip(ins, outs, ratios)]
        else:
            f32_source = [nsp == 3 or (nsp == 2 and i == 1) for i in range(nsp)]
            taps = [linear_taps(n, o, r, align_corners, align_mode, f)
                    for n, o, r, f in zip(ins, outs, ratios, f32_source)]
            if not np.issubdtype(x.dtype, np.floating):
                if nsp == 1:  # the 1-D kernel keeps its weights in the input's own type:
                    return np.take(x, taps[0][0][0], axis=axes[0])  # 0 and 1, the left one
                return corners_in_paddle_order(x, axes, taps)
        return resample(x, axes, taps)


    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        """Resampling is linear and separable: along each axis, every tap's cotangent is
        added back at its source index (index_add) with its weight."""
        x, sizes = inputs
        if cls.SIZE_INPUT == "scale_tensor" and sizes:
            raise UnsupportedError(f"{cls.what()}: no gradient when the scale is a tensor")
        shape = e.shape(x)
        axes = spatial_axes(len(shape), attrs["data_layout"])
        nsp = len(axes)
        ins = [shape[a] for a in axes]
        outs = [e.shape(outputs[0])[a] for a in axes]
        g = cts[0]
        if outs == ins:
            return [g, [None] * len(sizes)]
        scale = attrs["scale"]
        if isinstance(scale, float):  # the first-generation ops: one float
            scale = InterpolateV1.scales(len(shape), scale)
        scales = [F32(v) for v in scale] if scale else [F32(-1.0)] * nsp
        ratios = [ratio(n, o, v, attrs["align_corners"], nsp) for n, o, v in zip(ins, outs, scales)]
        method = attrs["interp_method"]
        dtype = e.dtype(g)
        for i, (ax, n, o, r) in enumerate(zip(axes, ins, outs, ratios)):
            if method == "nearest":
                taps = nearest_taps(n, o, r, attrs["align_corners"])
            elif method == "bicubic":
                ct = np.float64 if dtype.numpy == np.float64 else F32
                taps = cubic_taps(n, o, r, attrs["align_corners"], ct)
            else:
                taps = linear_taps(n, o, r, attrs["align_corners"], attrs["align_mode"],
                                   nsp == 3 or (nsp == 2 and i == 1))
            zeros_shape = list(e.shape(g))
            zeros_shape[ax] = n
            acc = A.e(e, "pd.full", shape=tuple(zeros_shape), value=0.0, dtype=dtype)
            for idx, w in taps:
                term = g
                if w is not None:
                    wshape = [1] * len(zeros_shape)
                    wshape[ax] = o
                    weight = np.asarray(w, dtype=dtype.numpy).reshape(wshape)
                    term = A.mul(e, g, A.e(e, "pd.constant", value=array_to_dense(weight)))
                index = A.e(e, "pd.constant", value=array_to_dense(np.asarray(idx, np.int64)))
                acc = A.e(e, "pd.index_add", acc, index, term, axis=ax)
            g = acc
        return [g, [None] * len(sizes)]


# ---------------------------------------------------------------------------------------------
# Paddle's index arithmetic, one spatial axis at a time
# ---------------------------------------------------------------------------------------------

def ratio(n_in: int, n_out: int, scale: np.float32, align_corners: bool,
          nsp: int) -> np.float32:
    """Source step per output step, as the kernel computes it (AreaPixelComputeScale): in
    float32, except the 1-D kernel's in double; only the 2-D kernel zeroes it for a 1-long
    output (1-D and 3-D keep in/out there, so a 1-long half-pixel output samples the centre)."""
    if nsp == 2 and n_out <= 1:
        return F32(0.0)
    if align_corners:
        if n_out <= 1:
            return F32(0.0)
        return F32((n_in - 1) / (n_out - 1)) if nsp == 1 else F32(n_in - 1) / F32(n_out - 1)
    if scale > 0:
        return F32(1.0 / float(scale))
    return F32(n_in / n_out) if nsp == 1 else F32(n_in) / F32(n_out)


Taps = list[tuple[np.ndarray, np.ndarray | None]]  # (source index, weight) per tap


def nearest_taps(n_in: int, n_out: int, r: np.float32, align_corners: bool) -> Taps:
    prod = r * np.arange(n_out, dtype=F32)  # float32 products, as float * int in C++
    src = (prod.astype(np.float64) + 0.5) if align_corners else prod
    return [(np.clip(src.astype(np.int64), 0, n_in - 1), None)]


def linear_taps(n_in: int, n_out: int, r: np.float32, align_corners: bool, align_mode: int,
                f32_source: bool) -> Taps:
    """`f32_source`: the half-pixel source position of the weights in float32 arithmetic, as
    the kernel has it for bilinear's width and all trilinear axes (else in double, rounded)."""
    k = np.arange(n_out)
    if align_mode == 0 and not align_corners:  # half-pixel centres
        src = np.float64(r) * (k + 0.5) - 0.5  # the index: in double, as `ratio * (l + 0.5) - 0.5`
        lo = np.maximum(src.astype(np.int64), 0)
        if f32_source:
            src = r * (k.astype(F32) + F32(0.5)) - F32(0.5)
        frac = np.maximum(src.astype(F32), F32(0)) - lo.astype(F32)
    else:
        prod = r * k.astype(F32)
        lo = np.maximum(prod.astype(np.int64), 0)
        frac = prod - lo.astype(F32)
    lo = np.minimum(lo, n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return [(lo, F32(1) - frac), (hi, frac)]


def cubic_taps(n_in: int, n_out: int, r: np.float32, align_corners: bool, ct: Any) -> Taps:
    k = np.arange(n_out)
    if align_corners:
        src = (r * k.astype(F32)).astype(ct)
    else:
        src = (np.float64(r) * (k + 0.5) - 0.5).astype(ct)
    base = np.floor(src).astype(np.int64)
    t = (src - base.astype(ct)).astype(ct)
    a = ct(-0.75)
    one = ct(1)

    def conv1(v: np.ndarray) -> np.ndarray:  # |v| <= 1
        return ((a + 2) * v - (a + 3)) * v * v + one

    def conv2(v: np.ndarray) -> np.ndarray:  # 1 < |v| < 2
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

    opposite = (one - t).astype(ct)  # 1 - t, then + 1: not 2 - t, whose rounding differs
    weights = [conv2(t + one), conv1(t), conv1(opposite), conv2(opposite + one)]
    return [(np.clip(base - 1 + j, 0, n_in - 1), w.astype(ct)) for j, w in enumerate(weights)]


def resample(x: np.ndarray, axes: Sequence[int], taps: Sequence[Taps]) -> np.ndarray:
    """Apply each axis's taps: gather along that axis, weight, sum; the axes that shrink the
    data most go first so the intermediates stay small."""
    out_dtype = x.dtype
    weighted = any(t[0][1] is not None for t in taps)
    work = x
    if weighted and not np.issubdtype(x.dtype, np.floating):
        work = x.astype(F32)  # uint8 input: float arithmetic, truncated back at the end
    elif weighted and x.dtype == np.float16:
        work = x.astype(F32)
    order = sorted(range(len(axes)), key=lambda i: len(taps[i][0][0]) / max(x.shape[axes[i]], 1))
    for i in order:
        ax, axis_taps = axes[i], taps[i]
        if axis_taps[0][1] is None:
            work = take_axis(work, axis_taps[0][0], ax)
            continue
        shape = [1] * work.ndim
        shape[ax] = -1
        acc = None
        for idx, w in axis_taps:
            term = take_axis(work, idx, ax)
            term *= w.astype(work.dtype).reshape(shape)
            if acc is None:
                acc = term
            else:
                acc += term
        work = acc
    return work.astype(out_dtype, copy=False) if work.dtype != out_dtype else work


def corners_in_paddle_order(x: np.ndarray, axes: Sequence[int], taps: Sequence[Taps]) -> np.ndarray:
    """Linear interpolation of an integer (uint8) input summed corner by corner in the
    kernel's own order and float32 rounding, then truncated as its cast does: the separable
    form would round differently, and truncation turns an ulp into a whole unit."""
    nsp = len(axes)
    if nsp == 2:  # BilinearInterpolation: x corner outer, y corner inner
        corners = [(cy, cx) for cx in (0, 1) for cy in (0, 1)]
    else:  # 1-D; 3-D: depth outer, then height, then width
        corners = [tuple((c >> (nsp - 1 - i)) & 1 for i in range(nsp)) for c in range(2 ** nsp)]
    src = x.astype(F32)
    out = None
    for corner in corners:
        index: list[Any] = [slice(None)] * x.ndim
        for i, (ax, c) in enumerate(zip(axes, corner)):
            shape = [1] * nsp
            shape[i] = -1
            index[ax] = taps[i][c][0].reshape(shape)
        term = src[tuple(index)]  # adjacent index arrays: the spatial dims stay in place
        for i, (ax, c) in enumerate(zip(axes, corner)):
            shape = [1] * x.ndim
            shape[ax] = -1
            term = term * taps[i][c][1].reshape(shape)
        out = term if out is None else out + term
    assert out is not None
    return out.astype(x.dtype)


def take_axis(x: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """x gathered along `axis`; an integer up-sampling (idx = k // f) as np.repeat."""
    n_in, n_out = x.shape[axis], len(idx)
    if n_out % n_in == 0 and n_out > n_in:
        f = n_out // n_in
        if np.array_equal(idx, np.arange(n_out) // f):
            return np.repeat(x, f, axis=axis)
    return np.take(x, idx, axis=axis)


# ---------------------------------------------------------------------------------------------
# The ops: per legacy type, the OutSize form (also the one for constant sizes, and the one
# raising picks), the SizeTensor form and the Scale form
# ---------------------------------------------------------------------------------------------

def interp_ops(method: str, paddle_type: str, class_name: str) -> tuple[type[Interpolate], ...]:
    """The three pd ops of one legacy type: `pd.<method>_interp` (attributes, or OutSize),
    `pd.<method>_interp_sizes` (SizeTensor), `pd.<method>_interp_scale` (Scale)."""
    made = []
    for suffix, size_input in (("", "out_size"), ("_sizes", "size_tensor"),
                               ("_scale", "scale_tensor")):
        body = {"name": f"pd.{method}_interp{suffix}", "INPUTS": ("x", "*" + size_input),
                "SIZE_INPUT": size_input, "ATTRS": interp_attrs(method),
                "PADDLE": interp_legacy(paddle_type, size_input), "NAME_HINT": paddle_type,
                "__module__": __name__, "__doc__": f"Paddle's {paddle_type}, its size from "
                f"{'attributes or ' if size_input == 'out_size' else ''}{SLOTS[size_input]}."}
        name = class_name + {"": "", "_sizes": "Sizes", "_scale": "Scale"}[suffix]
        made.append(pd_op(type(name, (Interpolate,), body)))
    return tuple(made)


NearestInterp, NearestInterpSizes, NearestInterpScale = interp_ops(
    "nearest", "nearest_interp_v2", "NearestInterp")
BilinearInterp, BilinearInterpSizes, BilinearInterpScale = interp_ops(
    "bilinear", "bilinear_interp_v2", "BilinearInterp")
LinearInterp, LinearInterpSizes, LinearInterpScale = interp_ops(
    "linear", "linear_interp_v2", "LinearInterp")
TrilinearInterp, TrilinearInterpSizes, TrilinearInterpScale = interp_ops(
    "trilinear", "trilinear_interp_v2", "TrilinearInterp")
BicubicInterp, BicubicInterpSizes, BicubicInterpScale = interp_ops(
    "bicubic", "bicubic_interp_v2", "BicubicInterp")


# ---------------------------------------------------------------------------------------------
# The first-generation ops (Paddle 1.x / 2.x `nearest_interp`, `bilinear_interp`; still
# registered in 3.3.1): the same kernel, one float `scale` for every spatial dim (0: none)
# ---------------------------------------------------------------------------------------------

class InterpolateV1(Interpolate):
    @staticmethod
    def scales(ndim: int, scale: float) -> tuple[float, ...]:
        return (scale,) * max(ndim - 2, 0) if scale > 0 else ()

    @classmethod
    def infer(cls, x: Abstract, sizes: list[Abstract], *, scale: float,  # type: ignore[override]
              **attrs: Any) -> Abstract:
        return super().infer(x, sizes, scale=cls.scales(x.ndim, scale), **attrs)

    @classmethod
    def eager(cls, x: np.ndarray, sizes: list[np.ndarray], *, scale: float,  # type: ignore[override]
              **attrs: Any) -> np.ndarray:
        return super().eager(x, sizes, scale=cls.scales(x.ndim, scale), **attrs)


def interp_v1_op(method: str, class_name: str) -> type[Interpolate]:
    legacy = interp_legacy(f"{method}_interp", "out_size")
    attrs = dict(legacy.attrs, scale=From("FLOAT", "scale"))
    body = {"name": f"pd.{method}_interp_v1", "INPUTS": ("x", "*out_size"),
            "ATTRS": dict(interp_attrs(method), scale=attr(FLOAT, 0.0)),
            "PADDLE": Legacy(legacy.type, legacy.inputs, legacy.outputs, attrs,
                             optional_inputs=legacy.optional_inputs, out_lod_level=False),
            "NAME_HINT": f"{method}_interp", "__module__": __name__,
            "__doc__": f"Paddle's first {method}_interp: as {method}_interp_v2 with one scale."}
    return pd_op(type(class_name, (InterpolateV1,), body))


NearestInterpV1 = interp_v1_op("nearest", "NearestInterpV1")
BilinearInterpV1 = interp_v1_op("bilinear", "BilinearInterpV1")
