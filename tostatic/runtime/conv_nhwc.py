"""NHWC convolutions (what the choose-layout pass makes): a 1x1 as the packed GEMM's matmul
form, x[pixels, C_in] @ W[C_in, C_out] with its epilogue (runtime/packed_gemm.py), a
depthwise one on codegen's NHWC kernel (codegen/depthwise_nhwc.py), one of few input
channels (a stem) on the direct kernel (codegen/direct_conv_nhwc.py); a global pooling as one
reduction. Other NHWC convolutions, and these under TOSTATIC_KERNELS=numpy, run the op's
numpy kernel."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic import codegen
from tostatic.ir.scalar_expr import NotScalar
from tostatic.ir.op_rules import DATA_FORMATS, conv_out, pair, resolve_pads
from tostatic.runtime import packed_gemm


def nhwc_conv_factory(name: str, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                      out: np.ndarray) -> tuple[list[Any], Any, str] | None:
    """(scratch, binder, kind) for an NHWC convolution with a constant filter, or None."""
    x, w = ins[0], ins[1]
    if x.ndim != 4 or w.ndim != 4 or x.dtype != w.dtype or x.dtype.kind != "f":
        return None
    n, h, wd, c = x.shape
    cout, cg, kh, kw = w.shape
    groups = attrs["groups"]
    st, dil = pair(name, "strides", attrs["strides"]), pair(name, "dilations", attrs["dilations"])
    pads, dil = resolve_pads(name, (h, wd), (kh, kw), st, attrs["paddings"],
                             attrs["padding_algorithm"], dil)
    steps = attrs.get("epilogue", ())
    if (kh, kw) == (1, 1) and st == (1, 1) and groups == 1 and not any(sum(pads, ())):
        run = packed_gemm.matmul(x, w.reshape(cout, c), out,
                                 {"transpose_x": False, "transpose_y": True}, steps)
        return None if run is None else ([], lambda _: run, "gemm-1x1-nhwc")
    oh, ow = (conv_out(name, s_, k, s, p, d)
              for s_, k, s, p, d in zip((h, wd), (kh, kw), st, pads, dil))
    if out.shape != (n, oh, ow, cout) or not codegen.enabled():
        return None
    # llvmlite loads on first use
    from tostatic.codegen import depthwise_nhwc, direct_conv_nhwc, epilogue as epi
    if cg == 1 and groups == c == cout and groups > 1:
        make, kind = depthwise_nhwc.DepthwiseNHWC, "depthwise-nhwc"
    elif groups == 1 and c <= direct_conv_nhwc.MAX_INPUT_CHANNELS:
        make, kind = direct_conv_nhwc.DirectConvNHWC, "direct-conv-nhwc"
    else:
        return None
    try:
        expr, kinds = epi.epilogue_expr(steps, x.dtype.name) if steps else (None, ())
        k = make(x.shape, w, st, pads, dil, expr, kinds)
    except (NotScalar, KeyError):
        return None

    def bind(_: list[np.ndarray]) -> Any:
        def run(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray, out: np.ndarray) -> None:
            k.run(x, extras, out)  # (a bias: its C values, whatever its shape)
        return run
    return [], bind, kind


def nhwc_pool_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                      out: np.ndarray, const: Sequence[bool]) -> tuple[list[Any], Any, str] | None:
    """An NHWC pooling to one value per channel (global, or adaptive to 1x1: the head of a
    chain choose-layout put in NHWC) as one reduction over the pixels, or None."""
    x = ins[0]
    whole = attrs["global_pooling"] or (attrs["adaptive"] and tuple(attrs["ksize"]) == (1, 1))
    if (not DATA_FORMATS[attrs["data_format"]] or not whole or x.ndim != 4
            or x.dtype.kind != "f" or out.shape != (x.shape[0], 1, 1, x.shape[3])
            or attrs["pooling_type"] not in ("avg", "max") or 0 in x.shape):
        return None
    n, h, wd, c = x.shape
    scale = x.dtype.type(1.0 / (h * wd))
    average = attrs["pooling_type"] == "avg"

    def run(x: np.ndarray, out: np.ndarray) -> None:
        """ufuncs called directly: np.mean's Python layers cost up to 0.1 ms after a model's
        big kernels have left the interpreter's code out of cache."""
        o = out.reshape(n, c)
        if average:
            np.add.reduce(x.reshape(n, h * wd, c), axis=1, out=o)
            np.multiply(o, scale, out=o)
        else:
            np.maximum.reduce(x.reshape(n, h * wd, c), axis=1, out=o)
    return [], lambda _: run, "pixel-reduce-nhwc"
