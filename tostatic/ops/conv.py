"""2-D convolutions: Paddle's conv2d, depthwise_conv2d, conv2d_transpose and
depthwise_conv2d_transpose.

Attributes are Paddle's own: `paddings` holds 2 values (symmetric, per spatial dim) or 4
([top, bottom, left, right]); `padding_algorithm` 'SAME' / 'VALID' overrides them (SAME also
resets the dilations to 1, as Paddle's UpdatePaddingAndDilation does). The filter is
[C_out, C_in / groups, kh, kw] for conv2d in both layouts, [C_in, C_out / groups, kh, kw] for
the transposed ones.

Paddle's Python API writes depthwise_conv2d when groups == C_in != 1 and C_out % C_in == 0,
and depthwise_conv2d_transpose when groups == C_in != 1 and the filter's dim 1 (C_out / groups)
is 1; otherwise conv2d / conv2d_transpose (whose kernels here take the depthwise path by
themselves whenever each group has one input channel).

Kernels: im2col as one strided view plus one copy, then one batched GEMM over all groups
(BLAS); depthwise as a loop over the k*k taps, each a multiply-add over the whole tensor;
transposed convolution as one GEMM then a col2im loop over the taps.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tostatic.ir.attributes import INT, INTS, STR, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A

from tostatic.ir.op_rules import (  # noqa: F401  (the rules, where they were)
    DATA_FORMATS,
    PADDING_ALGORITHMS,
    check_choice,
    conv_out,
    explicit_pads,
    pair,
    resolve_pads,
    same_pads,
)


def spatial(shape: tuple[int, ...], channel_last: bool) -> tuple[int, int]:
    return (shape[1], shape[2]) if channel_last else (shape[2], shape[3])


def channels(shape: tuple[int, ...], channel_last: bool) -> int:
    return shape[3] if channel_last else shape[1]


def _positive(op: str, name: str, values: tuple[int, int]) -> None:
    if min(values) <= 0:
        raise ShapeError(f"{op}: {name} must be positive, got {list(values)}")


# ---------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------

def _pad_spatial(x: np.ndarray, pads: list[tuple[int, int]], channel_last: bool) -> np.ndarray:
    if not any(p for pair_ in pads for p in pair_):
        return x
    width = [(0, 0), pads[0], pads[1], (0, 0)] if channel_last else [(0, 0), (0, 0), *pads]
    return np.pad(x, width)


def _taps(xp: np.ndarray, i: int, j: int, out_hw: tuple[int, int], strides: tuple[int, int],
          dilations: tuple[int, int], channel_last: bool) -> np.ndarray:
    """The input elements tap (i, j) of the filter meets, for every output position (a view)."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, strides, dilations
    rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
    cols = slice(j * dw, j * dw + (ow - 1) * sw + 1, sw)
    return xp[:, rows, cols, :] if channel_last else xp[:, :, rows, cols]


BLOCK_ELEMENTS = 1 << 16  # depthwise works on blocks of about this many outputs (in cache)


def _depthwise(xp: np.ndarray, w: np.ndarray, out_hw: tuple[int, int],
               strides: tuple[int, int], dilations: tuple[int, int],
               channel_last: bool) -> np.ndarray:
    """One input channel per group: output channel c*m + k = sum over the taps of input channel
    c times w[c*m + k, 0, i, j]. A loop over the k*k taps, each a multiply-add vectorised over a
    block of channels (NCHW) or output rows (NHWC) small enough to stay in cache."""
    n = xp.shape[0]
    c = channels(xp.shape, channel_last)
    cout, _, kh, kw = w.shape
    m = cout // c
    oh, ow = out_hw
    wk = w.reshape(c, m, kh, kw)
    if channel_last:
        out = np.empty((n, oh, ow, c, m), dtype=xp.dtype)
        rows = max(1, BLOCK_ELEMENTS // max(1, n * ow * cout))
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            xs = xp[:, r0 * strides[0]:(r1 - 1) * strides[0] + (kh - 1) * dilations[0] + 1]
            _accumulate_taps(out[:, r0:r1], lambda t: t[..., None],
                             lambda i, j: wk[:, :, i, j], xs, (kh, kw), (r1 - r0, ow),
                             strides, dilations, True)
        return out.reshape(n, oh, ow, cout)
    out = np.empty((n, c, m, oh, ow), dtype=xp.dtype)
    block = max(1, BLOCK_ELEMENTS // max(1, n * m * oh * ow))
    for c0 in range(0, c, block):
        c1 = min(c, c0 + block)
        _accumulate_taps(out[:, c0:c1], lambda t: t[:, :, None],
                         lambda i, j, c0=c0, c1=c1: wk[c0:c1, :, i, j, None, None],
                         xp[:, c0:c1], (kh, kw), out_hw, strides, dilations, False)
    return out.reshape(n, cout, oh, ow)


def _accumulate_taps(out: np.ndarray, expand: Any, weight: Any, xs: np.ndarray,
                     ksize: tuple[int, int], out_hw: tuple[int, int], strides: tuple[int, int],
                     dilations: tuple[int, int], channel_last: bool) -> None:
    """out = sum over taps (i, j) of expand(input under the tap) * weight(i, j)."""
    tmp = np.empty_like(out)
    first = True
    for i in range(ksize[0]):
        for j in range(ksize[1]):
            t = expand(_taps(xs, i, j, out_hw, strides, dilations, channel_last))
            if first:
                np.multiply(t, weight(i, j), out=out)
                first = False
            else:
                np.multiply(t, weight(i, j), out=tmp)
                out += tmp


def _im2col_nchw(xp: np.ndarray, ksize: tuple[int, int], out_hw: tuple[int, int],
                 strides: tuple[int, int], dilations: tuple[int, int], groups: int) -> np.ndarray:
    """[N, G, C/G * kh * kw, OH * OW]: one strided view, one copy."""
    n, c, _, _ = xp.shape
    (kh, kw), (oh, ow), (sh, sw), (dh, dw) = ksize, out_hw, strides, dilations
    s_n, s_c, s_h, s_w = xp.strides
    view = as_strided(xp, (n, c, kh, kw, oh, ow),
                      (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w), writeable=False)
    return view.reshape(n, groups, (c // groups) * kh * kw, oh * ow)


def conv2d_kernel(x: np.ndarray, w: np.ndarray, strides: tuple[int, ...],
                  paddings: tuple[int, ...], padding_algorithm: str,
                  dilations: tuple[int, ...], groups: int, data_format: str,
                  op: str = "pd.conv2d") -> np.ndarray:
    channel_last = DATA_FORMATS[data_format]
    st, dil = pair(op, "strides", strides), pair(op, "dilations", dilations)
    cout, cg, kh, kw = w.shape
    sizes = spatial(x.shape, channel_last)
    pads, dil = resolve_pads(op, sizes, (kh, kw), st, paddings, padding_algorithm, dil)
    out_hw = tuple(conv_out(op, n, k, s, p, d)
                   for n, k, s, p, d in zip(sizes, (kh, kw), st, pads, dil))
    c = channels(x.shape, channel_last)
    if cg * groups != c:
        raise ShapeError(f"{op}: input has {c} channels, filter {list(w.shape)} with "
                         f"groups={groups} expects {cg * groups}")
    xp = _pad_spatial(x, pads, channel_last)  # type: ignore[arg-type]
    if cg == 1 and groups > 1:
        return _depthwise(xp, w, out_hw, st, dil, channel_last)  # type: ignore[arg-type]
    if channel_last:
        if groups != 1:  # grouped NHWC: through NCHW
            out = conv2d_kernel(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), w, strides,
                                paddings, padding_algorithm, dilations, groups, "NCHW", op)
            return np.ascontiguousarray(out.transpose(0, 2, 3, 1))
        n = xp.shape[0]
        (oh, ow), (sh, sw), (dh, dw) = out_hw, st, dil
        s_n, s_h, s_w, s_c = xp.strides
        cols = as_strided(xp, (n, oh, ow, kh, kw, c),
                          (s_n, sh * s_h, sw * s_w, dh * s_h, dw * s_w, s_c), writeable=False)
        if n * oh * ow >= cout:  # more patches than filters: copy the filter, not the patches
            w2 = w.transpose(2, 3, 1, 0).reshape(kh * kw * c, cout)
        else:  # patches in (c, kh, kw) order, so the filter is used as it is (a transposed view)
            cols = as_strided(xp, (n, oh, ow, c, kh, kw),
                              (s_n, sh * s_h, sw * s_w, s_c, dh * s_h, dw * s_w), writeable=False)
            w2 = w.reshape(cout, c * kh * kw).T
        return (cols.reshape(n * oh * ow, kh * kw * c) @ w2).reshape(n, oh, ow, cout)
    n = x.shape[0]
    oh, ow = out_hw
    wg = w.reshape(groups, cout // groups, cg * kh * kw)
    if (kh, kw) == (1, 1) and st == (1, 1):
        cols = xp.reshape(n, groups, cg, oh * ow)
    else:
        cols = _im2col_nchw(xp, (kh, kw), out_hw, st, dil, groups)  # type: ignore[arg-type]
    return np.matmul(wg, cols).reshape(n, cout, oh, ow)


def transpose_out(op: str, size: int, k: int, s: int, pad: tuple[int, int] | None, d: int,
                  output_padding: int | None, output_size: int | None) -> int:
    """Paddle's conv2d_transpose output size: (in-1)*s - pads + d*(k-1) + 1, then
    output_size (within [that, that + stride)) or + output_padding."""
    if size < 0 or pad is None:
        return output_size if output_size is not None else -1
    infer = (size - 1) * s - pad[0] - pad[1] + d * (k - 1) + 1
    if output_size is not None:
        if not infer <= output_size < infer + s:
            raise ShapeError(f"{op}: output_size {output_size} must be in [{infer}, "
                             f"{infer + s}) for input size {size}")
        return output_size
    out = infer + (output_padding or 0)
    if out <= 0:
        raise ShapeError(f"{op}: output size {out} is not positive (input size {size})")
    return out


def conv2d_transpose_kernel(x: np.ndarray, w: np.ndarray, strides: tuple[int, ...],
                            paddings: tuple[int, ...], output_padding: tuple[int, ...],
                            output_size: tuple[int, ...], padding_algorithm: str,
                            dilations: tuple[int, ...], groups: int, data_format: str,
                            op: str = "pd.conv2d_transpose") -> np.ndarray:
    channel_last = DATA_FORMATS[data_format]
    if channel_last:
        out = conv2d_transpose_kernel(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), w,
                                      strides, paddings, output_padding, output_size,
                                      padding_algorithm, dilations, groups, "NCHW", op)
        return np.ascontiguousarray(out.transpose(0, 2, 3, 1))
    n, cin, h, wd = x.shape
    _, coutg, kh, kw = w.shape
    st, dil = pair(op, "strides", strides), pair(op, "dilations", dilations)
    pads, dil = resolve_pads(op, (h, wd), (kh, kw), st, paddings, padding_algorithm, dil)
    ops_ = _opt_pair(op, "output_padding", output_padding)
    osz = _opt_pair(op, "output_size", output_size)
    oh, ow = (transpose_out(op, size, k, s, p, d, op_, os_) for size, k, s, p, d, op_, os_
              in zip((h, wd), (kh, kw), st, pads, dil, ops_, osz))
    (sh, sw), (dh, dw) = st, dil
    (pt, _), (pl, _) = pads  # type: ignore[misc]
    cing = cin // groups
    full_h = max((h - 1) * sh + dh * (kh - 1) + 1, pt + oh)
    full_w = max((wd - 1) * sw + dw * (kw - 1) + 1, pl + ow)
    full = np.zeros((n, groups, coutg, full_h, full_w), dtype=x.dtype)
    xg = x.reshape(n, groups, cing, h * wd)
    if cing == 1:  # depthwise: one multiply-add per tap, no GEMM
        wk = w.reshape(groups, coutg, kh, kw)
        xs = x.reshape(n, groups, 1, h, wd)
        for i in range(kh):
            for j in range(kw):
                full[..., i * dh: i * dh + (h - 1) * sh + 1: sh,
                     j * dw: j * dw + (wd - 1) * sw + 1: sw] += xs * wk[:, :, i, j, None, None]
    else:
        wt = w.reshape(groups, cing, coutg * kh * kw).transpose(0, 2, 1)
        cols = np.matmul(wt, xg).reshape(n, groups, coutg, kh, kw, h, wd)
        for i in range(kh):
            for j in range(kw):
                full[..., i * dh: i * dh + (h - 1) * sh + 1: sh,
                     j * dw: j * dw + (wd - 1) * sw + 1: sw] += cols[:, :, :, i, j]
    out = full[..., pt: pt + oh, pl: pl + ow]
    return np.ascontiguousarray(out).reshape(n, groups * coutg, oh, ow)


def _opt_pair(op: str, name: str, values: tuple[int, ...]) -> tuple[int | None, int | None]:
    if not values:
        return None, None
    return pair(op, name, values)


# ---------------------------------------------------------------------------------------------
# ops
# ---------------------------------------------------------------------------------------------

CONV_ATTRS = {"strides": attr(INTS, (1, 1)), "paddings": attr(INTS, (0, 0)),
              "padding_algorithm": attr(STR, "EXPLICIT"), "dilations": attr(INTS, (1, 1)),
              "groups": attr(INT, 1), "data_format": attr(STR, "NCHW")}


def conv_legacy(paddle_type: str, transpose: bool = False) -> Legacy:
    attrs = {"strides": From("INTS", "strides"), "paddings": From("INTS", "paddings"),
             "padding_algorithm": From("STRING", "padding_algorithm"),
             "dilations": From("INTS", "dilations"), "groups": From("INT", "groups"),
             "data_format": From("STRING", "data_format")}
    if transpose:
        attrs["output_padding"] = From("INTS", "output_padding")
        attrs["output_size"] = From("INTS", "output_size")
    # Paddle's conv helpers declare the output without legacy_lod_level
    return Legacy(paddle_type, {"Input": "x", "Filter": "weight"}, {"Output": 0}, attrs,
                  optional_inputs=("Bias",) if transpose else (), out_lod_level=False)


def _check_common(op: str, x: Abstract, w: Abstract, strides: tuple[int, ...],
                  dilations: tuple[int, ...], groups: int, data_format: str) -> None:
    check_choice(op, "data_format", data_format, tuple(DATA_FORMATS))
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(f"{op}: input and filter must be 4-D, got {list(x.shape)} and "
                         f"{list(w.shape)}")
    if x.dtype != w.dtype:
        raise ShapeError(f"{op}: input is {x.dtype.name}, filter {w.dtype.name}")
    if groups <= 0:
        raise ShapeError(f"{op}: groups must be positive, got {groups}")
    _positive(op, "strides", pair(op, "strides", strides))
    _positive(op, "dilations", pair(op, "dilations", dilations))


class ConvBase(PdOp):
    INPUTS = ("x", "weight")
    ATTRS = CONV_ATTRS

    @classmethod
    def infer(cls, x: Abstract, weight: Abstract, strides: tuple[int, ...],
              paddings: tuple[int, ...], padding_algorithm: str, dilations: tuple[int, ...],
              groups: int, data_format: str) -> Abstract:
        op = cls.name
        _check_common(op, x, weight, strides, dilations, groups, data_format)
        channel_last = DATA_FORMATS[data_format]
        cout, cg, kh, kw = weight.shape
        c = channels(x.shape, channel_last)
        if c >= 0 and cg >= 0 and c != cg * groups:
            raise ShapeError(f"{op}: input {list(x.shape)} ({data_format}) has {c} channels, "
                             f"filter {list(weight.shape)} with groups={groups} expects "
                             f"{cg * groups}")
        if cout >= 0 and cout % groups:
            raise ShapeError(f"{op}: {cout} filters do not split into {groups} groups")
        st, dil = pair(op, "strides", strides), pair(op, "dilations", dilations)
        sizes = spatial(x.shape, channel_last)
        pads, dil = resolve_pads(op, sizes, (kh, kw), st, paddings, padding_algorithm, dil)
        oh, ow = (conv_out(op, n, k, s, p, d) if k >= 0 else -1
                  for n, k, s, p, d in zip(sizes, (kh, kw), st, pads, dil))
        n = x.shape[0]
        shape = (n, oh, ow, cout) if channel_last else (n, cout, oh, ow)
        return Abstract(shape, x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, weight: np.ndarray, **attrs: Any) -> np.ndarray:
        return conv2d_kernel(x, weight, op=cls.name, **attrs)

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        """dx: the transposed convolution of the cotangent (to x's size); dw: its own op."""
        x, w = inputs
        g = cts[0]
        explicit = _explicit_attrs(cls.name, e.shape(x), e.shape(w), attrs)
        dx = dw = None
        if needs[0]:
            size = spatial(e.shape(x), DATA_FORMATS[attrs["data_format"]])
            dx = e(Conv2DTranspose, g, w, output_size=size, **explicit)
        if needs[1]:
            dw = e(Conv2DFilterGrad, x, g, filter_shape=e.shape(w), **explicit)
        return [dx, dw]


@pd_op
class Conv2D(ConvBase):
    """2-D convolution (cross-correlation), any groups; Paddle's conv2d."""

    name = "pd.conv2d"
    PADDLE = conv_legacy("conv2d")
    NAME_HINT = "conv2d"


@pd_op
class DepthwiseConv2D(ConvBase):
    """conv2d with one input channel per group (groups == C_in); Paddle's depthwise_conv2d."""

    name = "pd.depthwise_conv2d"
    PADDLE = conv_legacy("depthwise_conv2d")
    NAME_HINT = "depthwise_conv2d"


TRANSPOSE_ATTRS = {**CONV_ATTRS, "output_padding": attr(INTS, ()),
                   "output_size": attr(INTS, ())}


class ConvTransposeBase(PdOp):
    INPUTS = ("x", "weight")
    ATTRS = TRANSPOSE_ATTRS

    @classmethod
    def infer(cls, x: Abstract, weight: Abstract, strides: tuple[int, ...],
              paddings: tuple[int, ...], padding_algorithm: str, dilations: tuple[int, ...],
              groups: int, data_format: str, output_padding: tuple[int, ...],
              output_size: tuple[int, ...]) -> Abstract:
        op = cls.name
        _check_common(op, x, weight, strides, dilations, groups, data_format)
        channel_last = DATA_FORMATS[data_format]
        cin, coutg, kh, kw = weight.shape
        c = channels(x.shape, channel_last)
        if c >= 0 and cin >= 0 and c != cin:
            raise ShapeError(f"{op}: input {list(x.shape)} ({data_format}) has {c} channels, "
                             f"filter {list(weight.shape)} expects {cin}")
        if cin >= 0 and cin % groups:
            raise ShapeError(f"{op}: {cin} input channels do not split into {groups} groups")
        st, dil = pair(op, "strides", strides), pair(op, "dilations", dilations)
        if output_size and output_padding and any(output_padding):
            raise ShapeError(f"{op}: output_size and output_padding exclude each other")
        ops_ = _opt_pair(op, "output_padding", output_padding)
        for p, s, d in zip(ops_, st, dil):
            if p is not None and not 0 <= p < max(s, d):
                raise ShapeError(f"{op}: output_padding {list(output_padding)} must be in "
                                 f"[0, max(stride, dilation))")
        osz = _opt_pair(op, "output_size", output_size)
        sizes = spatial(x.shape, channel_last)
        pads, dil = resolve_pads(op, sizes, (kh, kw), st, paddings, padding_algorithm, dil)
        oh, ow = (transpose_out(op, n, k, s, p, d, op_, os_) if k >= 0 else -1
                  for n, k, s, p, d, op_, os_ in zip(sizes, (kh, kw), st, pads, dil, ops_, osz))
        cout = coutg * groups if coutg >= 0 else -1
        n = x.shape[0]
        shape = (n, oh, ow, cout) if channel_last else (n, cout, oh, ow)
        return Abstract(shape, x.dtype)

    @classmethod
    def eager(cls, x: np.ndarray, weight: np.ndarray, **attrs: Any) -> np.ndarray:
        return conv2d_transpose_kernel(x, weight, op=cls.name, **attrs)

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        """The adjoint of a convolution z -> conv2d(z, w): dx = conv2d(g, w), and dw the
        filter gradient of that convolution with g as its input and x as its cotangent."""
        x, w = inputs
        g = cts[0]
        explicit = _explicit_attrs(cls.name, e.shape(outputs[0]), e.shape(w), attrs)
        dx = e(Conv2D, g, w, **explicit) if needs[0] else None
        dw = e(Conv2DFilterGrad, g, x, filter_shape=e.shape(w), **explicit) if needs[1] else None
        return [dx, dw]


@pd_op
class Conv2DTranspose(ConvTransposeBase):
    """Transposed 2-D convolution (the gradient of conv2d w.r.t. its input); Paddle's
    conv2d_transpose (its dispensable Bias slot is written empty, as Paddle does)."""

    name = "pd.conv2d_transpose"
    PADDLE = conv_legacy("conv2d_transpose", transpose=True)
    NAME_HINT = "conv2d_transpose"


@pd_op
class DepthwiseConv2DTranspose(ConvTransposeBase):
    """conv2d_transpose with groups == C_in and one output channel per group."""

    name = "pd.depthwise_conv2d_transpose"
    PADDLE = conv_legacy("depthwise_conv2d_transpose", transpose=True)
    NAME_HINT = "depthwise_conv2d_transpose"


def _explicit_attrs(op: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                    attrs: dict[str, Any]) -> dict[str, Any]:
    """A convolution's attributes with SAME / VALID resolved to explicit paddings (and the
    dilations SAME implies), for the ops its gradient is built from."""
    channel_last = DATA_FORMATS[attrs["data_format"]]
    st = pair(op, "strides", attrs["strides"])
    pads, dil = resolve_pads(op, spatial(x_shape, channel_last), tuple(w_shape[2:]), st,
                             attrs["paddings"], attrs["padding_algorithm"],
                             pair(op, "dilations", attrs["dilations"]))
    return {"strides": st, "paddings": tuple(p for pr in pads for p in pr),
            "padding_algorithm": "EXPLICIT", "dilations": dil, "groups": attrs["groups"],
            "data_format": attrs["data_format"]}


def conv2d_filter_grad_kernel(x: np.ndarray, g: np.ndarray, filter_shape: tuple[int, ...],
                              strides: tuple[int, ...], paddings: tuple[int, ...],
                              padding_algorithm: str, dilations: tuple[int, ...], groups: int,
                              data_format: str) -> np.ndarray:
    """d conv2d(x, w) / dw against the cotangent g: per group, g's rows times x's im2col."""
    if DATA_FORMATS[data_format]:
        x, g = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), g.transpose(0, 3, 1, 2)
    cout, cg, kh, kw = filter_shape
    n, _, oh, ow = g.shape
    pads = explicit_pads("pd.conv2d_filter_grad", paddings)
    xp = np.ascontiguousarray(_pad_spatial(x, list(pads), False))
    st, dil = pair("", "strides", strides), pair("", "dilations", dilations)
    need_h, need_w = (oh - 1) * st[0] + dil[0] * (kh - 1) + 1, (ow - 1) * st[1] + dil[1] * (kw - 1) + 1
    xp = np.ascontiguousarray(xp[:, :, :need_h, :need_w])
    cols = _im2col_nchw(xp, (kh, kw), (oh, ow), st, dil, groups)  # [N, G, cg*kh*kw, OH*OW]
    g2 = np.ascontiguousarray(g).reshape(n, groups, cout // groups, oh * ow)
    dw = np.einsum("ngok,ngck->goc", g2, cols, optimize=True)
    return dw.reshape(filter_shape).astype(x.dtype)


@pd_op
class Conv2DFilterGrad(PdOp):
    """The filter gradient of conv2d (Paddle's conv2d_grad Filter@GRAD), as an op of its own
    so both the eager tape and the pd backward pass emit it. Second order through
    convolutions is not supported."""

    name = "pd.conv2d_filter_grad"
    INPUTS = ("x", "out_grad")
    ATTRS = {**CONV_ATTRS, "filter_shape": attr(INTS)}
    NONDIFF = True

    @staticmethod
    def infer(x: Abstract, out_grad: Abstract, filter_shape: tuple[int, ...],
              **_: Any) -> Abstract:
        return Abstract(tuple(filter_shape), x.dtype)

    @staticmethod
    def eager(x: np.ndarray, out_grad: np.ndarray, **attrs: Any) -> np.ndarray:
        return conv2d_filter_grad_kernel(x, out_grad, **attrs)
