"""paddle.nn.functional resampling and padding (paddle/nn/functional/common.py, 3.3.1):
interpolate, upsample, pad.

interpolate writes one `<mode>_interp_v2` op with the attributes Paddle's static branch
writes: out_d/out_h/out_w -1 and `scale` for a scale factor, the sizes (and no scale) for a
size; a size given as a Tensor goes through a `cast` to int32 into OutSize, a scale Tensor
into Scale. pad writes the legacy all-dims `pad` op for a constant pad not of 2 values a
spatial dim, else `pad3d` on a 5-D view: a 3-D or 4-D input is unsqueezed to 5-D first and
squeezed back after (unsqueeze2 -> pad3d -> squeeze2), as Paddle writes it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic.frontend.nn.functional_pooling import adaptive_avg_pool2d
from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.manipulation import is_tensor, squeeze, unsqueeze
from tostatic.frontend.tensor.naming import helper
from tostatic.ir import builder as builders
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import padding, resize

INTERP_OPS = {  # method -> (attributes / OutSize, SizeTensor, Scale)
    "nearest": (resize.NearestInterp, resize.NearestInterpSizes, resize.NearestInterpScale),
    "bilinear": (resize.BilinearInterp, resize.BilinearInterpSizes,
                 resize.BilinearInterpScale),
    "linear": (resize.LinearInterp, resize.LinearInterpSizes, resize.LinearInterpScale),
    "trilinear": (resize.TrilinearInterp, resize.TrilinearInterpSizes,
                  resize.TrilinearInterpScale),
    "bicubic": (resize.BicubicInterp, resize.BicubicInterpSizes, resize.BicubicInterpScale),
}
DEFAULT_FORMAT = {3: "NCW", 4: "NCHW", 5: "NCDHW"}
FORMATS = {3: ("NCW", "NWC"), 4: ("NCHW", "NHWC"), 5: ("NCDHW", "NDHWC")}


def _check_interpolate(x: Any, size: Any, scale_factor: Any, resample: str,
                       align_corners: Any, align_mode: int, antialias: Any) -> None:
    rank = len(x.shape)
    if resample not in ("LINEAR", "BILINEAR", "TRILINEAR", "NEAREST", "BICUBIC", "AREA"):
        raise ValueError("The 'resample' of image_resize can only be 'area', 'linear', "
                         "'bilinear', 'trilinear',  'bicubic' or 'nearest' currently.")
    if resample == "LINEAR" and rank != 3:
        raise ValueError("'linear' only support 3-D tensor.")
    if resample == "NEAREST" and rank not in (4, 5):
        raise ValueError("'NEAREST' only support 4-D  or 5-D tensor.")
    if resample in ("BILINEAR", "BICUBIC") and rank != 4:
        raise ValueError("'bilinear' and 'bicubic' only support 4-D tensor.")
    if resample == "TRILINEAR" and rank != 5:
        raise ValueError("'trilinear'only support 5-D tensor.")
    if size is None and scale_factor is None:
        raise ValueError("One of size and scale_factor must not be None.")
    if isinstance(size, (tuple, list)) and len(size) != rank - 2:
        raise ValueError("The x and size should satisfy rank(x) - 2 == len(size).")
    if not isinstance(align_corners, bool):
        raise TypeError("Attr align_corners should be a bool value")
    if not isinstance(antialias, bool):
        raise TypeError("Attr antialias should be a bool value")
    if align_mode not in (0, 1):
        raise ValueError("align_mode can only be 0 or 1")
    if align_corners and resample == "NEAREST":
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise UnsupportedError("interpolate(antialias=True) (interp_antialias) is not "
                               "supported")
    if size is not None and scale_factor is not None:
        raise ValueError("Only one of size or scale_factor should be defined.")


def _size_attrs(x_rank: int, sizes: Sequence[int]) -> dict[str, int]:
    for s in sizes:
        if not s > 0:
            raise ValueError("Each dimension size given in out_shape must be greater than 0.")
    names = ("out_d", "out_h", "out_w")[3 - (x_rank - 2):]
    return {n: int(s) for n, s in zip(names, sizes)}


def interpolate(x: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool = False, align_mode: int = 0, data_format: str | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False,
                name: str | None = None) -> Any:
    """Resize the spatial dims to `size`, or by `scale_factor` (a number or one a dim)."""
    rank = len(x.shape)
    if data_format is None:
        if rank not in DEFAULT_FORMAT:
            raise ValueError(f"The dimension of the input tensor should only be 3-D, 4-D or "
                             f"5-D, but the received dimension is {rank}.")
        data_format = DEFAULT_FORMAT[rank]
    data_format, resample, method = data_format.upper(), mode.upper(), mode.lower()
    eager = builders.current() is None
    if is_tensor(size) and not eager:
        size = math.cast(size, "int32")
    _check_interpolate(x, size, scale_factor, resample, align_corners, align_mode, antialias)
    if resample == "AREA":
        if rank != 4 or size is None:
            raise UnsupportedError("interpolate(mode='area') is supported for 4-D inputs with "
                                   "a size only (adaptive_avg_pool2d)")
        return adaptive_avg_pool2d(x, size)
    if data_format not in FORMATS[rank]:
        raise ValueError(f"Got wrong value for param `data_format`: {data_format} received "
                         f"but only `{FORMATS[rank][0]}` or `{FORMATS[rank][1]}` supported "
                         f"for {rank}-D input.")
    attrs: dict[str, Any] = {
        "out_d": -1, "out_h": -1, "out_w": -1, "interp_method": method,
        "align_corners": False if resample == "NEAREST" else align_corners,
        "align_mode": align_mode, "data_layout": "NCHW" if data_format[1] == "C" else "NHWC"}
    op_cls, _, scale_cls = INTERP_OPS[method]
    size_inputs: list[Any] = []
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        if is_tensor(size) and not eager:
            size_inputs = [size]
        else:
            if is_tensor(size):
                sizes = [int(v) for v in size.numpy().reshape(-1)]
            elif isinstance(size, (list, tuple)):
                if any(is_tensor(v) for v in size) and not eager:
                    raise UnsupportedError("interpolate: a size list holding Tensors "
                                           "(SizeTensor) is not supported; give ints or one "
                                           "Tensor")
                sizes = [int(v) for v in size]
            else:
                raise TypeError("size should be a list or tuple or Variable.")
            attrs.update(_size_attrs(rank, sizes))
    else:
        scale = scale_factor
        if is_tensor(scale) and eager:
            scale = float(scale.numpy()) if scale.shape == [] else list(scale.numpy())
        if recompute_scale_factor:
            if is_tensor(scale):
                raise UnsupportedError("interpolate: recompute_scale_factor with a Tensor "
                                       "scale_factor is not supported")
            scales = ([float(scale)] * (rank - 2) if not isinstance(scale, (list, tuple))
                      else [float(s) for s in scale])
            if len(scales) != rank - 2:
                raise ValueError(f"scale_shape length should be {rank - 2} for input "
                                 f"{rank}-D tensor.")
            # Paddle reads the input sizes at dims 2.. whatever the layout
            attrs.update(_size_attrs(rank, [int(np.floor(float(x.shape[i + 2]) * s))
                                            for i, s in enumerate(scales)]))
        elif is_tensor(scale):
            size_inputs, op_cls = [scale], scale_cls
        elif isinstance(scale, (float, int, np.ndarray)) and not isinstance(scale, bool):
            if scale <= 0:
                raise ValueError("Attr(scale) should be greater than zero.")
            attrs["scale"] = tuple(float(scale) for _ in range(rank - 2))
        elif isinstance(scale, (list, tuple)):
            if len(scale) != rank - 2:
                raise ValueError(f"scale_shape length should be {rank - 2} for input "
                                 f"{rank}-D tensor.")
            if any(v <= 0 for v in scale):
                raise ValueError("Attr(scale) should be greater than zero.")
            attrs["scale"] = tuple(float(v) for v in scale)
        else:
            raise TypeError("Attr(scale)'s type should be float, int, list, tuple, or Tensor.")
    with helper(f"{method}_interp_v2", name):
        return apply(op_cls, x, *size_inputs, **attrs)


def upsample(x: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
             align_corners: bool = False, align_mode: int = 0, data_format: str | None = None,
             name: str | None = None) -> Any:
    """interpolate under its older name (Paddle does not pass `name` on)."""
    return interpolate(x, size, scale_factor, mode, align_corners, align_mode, data_format)


PAD_FORMATS = {3: ("NCL", "NLC"), 4: ("NCHW", "NHWC"), 5: ("NCDHW", "NDHWC")}


def pad(x: Any, pad: Any, mode: str = "constant", value: float = 0.0,
        data_format: str | None = None, pad_from_left_axis: bool = True,
        name: str | None = None) -> Any:
    """Pad (or crop, for negative amounts) the spatial dims, or every dim for a constant pad
    of 2 values a dim; `pad` lists (before, after) pairs, the last spatial dim first."""
    if mode not in ("reflect", "replicate", "constant", "circular"):
        raise ValueError(f"mode should be one of constant, reflect, replicate, circular, but "
                         f"got {mode}.")
    if is_tensor(pad):
        raise UnsupportedError("F.pad: pad given as a Tensor (pad3d's Paddings input) is not "
                               "supported; give a list of ints")
    rank = len(x.shape)
    pad = [int(p) for p in pad]
    if mode == "constant" and len(pad) != (rank - 2) * 2:
        paddings = pad + [0] * max(2 * rank - len(pad), 0)
        if not (len(pad) == rank * 2 and pad_from_left_axis):
            paddings = [paddings[i - 1] if i % 2 == 1 else paddings[i + 1]
                        for i in range(2 * rank - 1, -1, -1)]
        with helper("pad", name):
            return apply(padding.Pad, x, paddings=tuple(paddings), pad_value=float(value))
    if rank not in (3, 4, 5):
        raise ValueError(f"input tensor dimension must be in [3, 4, 5] but got {rank}")
    data_format = (data_format or {3: "NCL", 4: "NCHW", 5: "NCDHW"}[rank]).upper()
    if data_format not in PAD_FORMATS[rank]:
        raise ValueError(f"input tensor dimension is {rank}, it's data format should be in "
                         f"{list(PAD_FORMATS[rank])} but got {data_format}")
    channel_first = data_format[1] == "C"
    unsqueezed = {3: [3, 4] if channel_first else [2, 3], 4: [2] if channel_first else [1],
                  5: []}[rank]
    pad = {3: [0, 0, 0, 0, *pad], 4: [*pad, 0, 0], 5: pad}[rank]
    if unsqueezed:
        x = unsqueeze(x, unsqueezed)
    with helper("pad3d", name):
        out = apply(padding.Pad3d, x, paddings=tuple(pad), mode=mode, value=float(value),
                    data_format="NCDHW" if channel_first else "NDHWC")
    return squeeze(out, unsqueezed) if unsqueezed else out


__all__ = ["interpolate", "pad", "upsample"]
