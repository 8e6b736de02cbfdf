"""2-D pooling: Paddle's pool2d (max / avg; explicit, SAME or VALID padding; ceil_mode;
exclusive; global and adaptive pooling; NCHW and NHWC) and max_pool2d_with_index (max pooling
that also gives the argmax, plain or adaptive, NCHW).

The window rules are Paddle's CPU kernel's (phi Pool2dFunctor), quirks included:
- a window starts at o*stride - pad_before and ends at min(start + k, size + pad_before)
  (pad_before also bounds the far side); non-exclusive average divides by that unclipped size,
  exclusive by the size clipped to the input, which may be 0 (giving nan) or negative (giving
  -0) for windows lying wholly in the padding, as Paddle's kernel gives;
- an empty max window gives -FLT_MAX (Paddle's initial value);
- ceil_mode only changes the output size, (size - k + pads + stride - 1) / stride + 1;
- adaptive windows are [floor(o*size/out), ceil((o+1)*size/out)), for average pooling only:
  Paddle's pool2d kernel runs max pooling with adaptive=True as plain max pooling with
  kernel `ksize` and the op's strides, unpadded, over `ksize` outputs (its adaptive max pool
  API writes max_pool2d_with_index instead), and so does this kernel.

The kernel is separable: it reduces the rows, then the columns, each as a loop over the window
taps of vectorised numpy over the whole tensor.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, INTS, STR, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.conv import DATA_FORMATS, check_choice, pair  # noqa: F401

from tostatic.ir.op_rules import (  # noqa: F401  (the rules, where they were)
    FLT_MAX,
    POOLING_TYPES,
    _Dim,
    pool_dims as _dims,
)


def _along(ndim: int, axis: int, index: Any) -> tuple[Any, ...]:
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


def _reduce(x: np.ndarray, axis: int, dim: _Dim, fill: float,
            combine: Callable[..., np.ndarray]) -> np.ndarray:
    """Reduce every window of `dim` along `axis` with `combine` (np.add / np.maximum)."""
    start, end, _ = dim.windows()
    out, n = dim.out, x.shape[axis]
    if not dim.adaptive:  # regular windows: strided slices of the input padded with `fill`
        before = dim.pad
        after = max(0, (out - 1) * dim.stride - dim.pad + dim.k - n)
        if before or after:
            width = [(0, 0)] * x.ndim
            width[axis] = (before, after)
            x = np.pad(x, width, constant_values=fill)
        acc = None
        for t in range(dim.k):
            tap = x[_along(x.ndim, axis, slice(t, t + (out - 1) * dim.stride + 1, dim.stride))]
            acc = tap.copy() if acc is None else combine(acc, tap, out=acc)
        return acc  # type: ignore[return-value]
    acc = None
    shape = [1] * x.ndim
    shape[axis] = out
    for t in range(int((end - start).max())):
        idx = start + t
        tap = np.take(x, np.minimum(idx, n - 1), axis=axis)
        valid = idx < end
        if not valid.all():
            tap = np.where(valid.reshape(shape), tap, x.dtype.type(fill))
        acc = tap if acc is None else combine(acc, tap, out=acc)
    return acc  # type: ignore[return-value]


def pool2d_kernel(x: np.ndarray, pooling_type: str, ksize: tuple[int, ...],
                  strides: tuple[int, ...], paddings: tuple[int, ...], ceil_mode: bool,
                  exclusive: bool, data_format: str, global_pooling: bool, adaptive: bool,
                  padding_algorithm: str, use_cudnn: bool = False,
                  op: str = "pd.pool2d") -> np.ndarray:
    channel_last = DATA_FORMATS[data_format]
    axes = (1, 2) if channel_last else (2, 3)
    if global_pooling or (adaptive and pooling_type == "avg" and tuple(ksize) == (1, 1)):
        if pooling_type == "max":
            return x.max(axis=axes, keepdims=True)
        return x.mean(axis=axes, keepdims=True, dtype=x.dtype)
    dh, dw = _dims(op, (x.shape[axes[0]], x.shape[axes[1]]), ksize, strides, paddings,
                   ceil_mode, pooling_type, global_pooling, adaptive, padding_algorithm)
    if pooling_type == "max":
        low = -FLT_MAX
        return _reduce(_reduce(x, axes[0], dh, low, np.maximum), axes[1], dw, low, np.maximum)
    total = _reduce(_reduce(x, axes[0], dh, 0.0, np.add), axes[1], dw, 0.0, np.add)
    sizes = []
    for d in (dh, dw):
        start, end, unclipped = d.windows()
        sizes.append(end - start if exclusive or d.adaptive else unclipped)
    count = (sizes[0][:, None] * sizes[1][None, :]).astype(x.dtype)
    if channel_last:
        count = count[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / count


@pd_op
class Pool2D(PdOp):
    """Max or average pooling over 2-D windows; Paddle's pool2d. `use_cudnn` is only carried
    to the file (Paddle writes True from max_pool2d/avg_pool2d, False from
    adaptive_avg_pool2d)."""

    name = "pd.pool2d"
    INPUTS = ("x",)
    ATTRS = {"pooling_type": attr(STR), "ksize": attr(INTS), "strides": attr(INTS, (1, 1)),
             "paddings": attr(INTS, (0, 0)), "ceil_mode": attr(BOOL, False),
             "exclusive": attr(BOOL, True), "data_format": attr(STR, "NCHW"),
             "global_pooling": attr(BOOL, False), "adaptive": attr(BOOL, False),
             "padding_algorithm": attr(STR, "EXPLICIT"), "use_cudnn": attr(BOOL, False)}
    PADDLE = Legacy("pool2d", {"X": "x"}, {"Out": 0},
                    {k: From(t, k) for k, t in [
                        ("pooling_type", "STRING"), ("ksize", "INTS"), ("strides", "INTS"),
                        ("paddings", "INTS"), ("ceil_mode", "BOOLEAN"),
                        ("exclusive", "BOOLEAN"), ("data_format", "STRING"),
                        ("global_pooling", "BOOLEAN"), ("adaptive", "BOOLEAN"),
                        ("padding_algorithm", "STRING"), ("use_cudnn", "BOOLEAN")]})
    NAME_HINT = "pool2d"

    @staticmethod
    def infer(x: Abstract, pooling_type: str, ksize: tuple[int, ...], strides: tuple[int, ...],
              paddings: tuple[int, ...], ceil_mode: bool, exclusive: bool, data_format: str,
              global_pooling: bool, adaptive: bool, padding_algorithm: str,
              use_cudnn: bool) -> Abstract:
        op = "pd.pool2d"
        check_choice(op, "data_format", data_format, tuple(DATA_FORMATS))
        if x.ndim != 4:
            raise ShapeError(f"{op}: input must be 4-D, got {list(x.shape)}")
        channel_last = DATA_FORMATS[data_format]
        sizes = (x.shape[1], x.shape[2]) if channel_last else (x.shape[2], x.shape[3])
        dh, dw = _dims(op, sizes, ksize, strides, paddings, ceil_mode, pooling_type,
                       global_pooling, adaptive, padding_algorithm)
        n, c = x.shape[0], x.shape[3] if channel_last else x.shape[1]
        shape = (n, dh.out, dw.out, c) if channel_last else (n, c, dh.out, dw.out)
        return Abstract(shape, x.dtype)

    @staticmethod
    def eager(x: np.ndarray, **attrs: Any) -> np.ndarray:
        return pool2d_kernel(x, **attrs)

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        return [e(Pool2DGrad, inputs[0], outputs[0], cts[0], **attrs)]


def pool2d_grad_kernel(x: np.ndarray, out: np.ndarray, g: np.ndarray, pooling_type: str,
                       ksize: tuple[int, ...], strides: tuple[int, ...],
                       paddings: tuple[int, ...], ceil_mode: bool, exclusive: bool,
                       data_format: str, global_pooling: bool, adaptive: bool,
                       padding_algorithm: str, use_cudnn: bool = False) -> np.ndarray:
    """Paddle's pool2d_grad: an average spreads over its window (the same divisor as the
    forward), a max goes to the first maximum of its window."""
    if DATA_FORMATS[data_format]:
        back = pool2d_grad_kernel(x.transpose(0, 3, 1, 2), out.transpose(0, 3, 1, 2),
                                  g.transpose(0, 3, 1, 2), pooling_type, ksize, strides,
                                  paddings, ceil_mode, exclusive, "NCHW", global_pooling,
                                  adaptive, padding_algorithm)
        return np.ascontiguousarray(back.transpose(0, 2, 3, 1))
    n, c, h, w = x.shape
    if global_pooling or (adaptive and pooling_type == "avg" and tuple(ksize) == (1, 1)):
        dims = _dims("pd.pool2d", (h, w), (h, w), (1, 1), (0, 0), False, pooling_type, True,
                     False, "EXPLICIT")
    else:
        dims = _dims("pd.pool2d", (h, w), ksize, strides, paddings, ceil_mode, pooling_type,
                     global_pooling, adaptive, padding_algorithm)
    (hs, he, hu), (ws, we, wu) = dims[0].windows(), dims[1].windows()
    dx = np.zeros_like(x)
    for i in range(len(hs)):
        for j in range(len(ws)):
            gij = g[:, :, i, j]
            if pooling_type == "max":
                win = x[:, :, hs[i]:he[i], ws[j]:we[j]]
                flat = win.reshape(n, c, -1)
                hit = np.zeros_like(flat)
                np.put_along_axis(hit, flat.argmax(axis=2)[..., None], gij[..., None], axis=2)
                dx[:, :, hs[i]:he[i], ws[j]:we[j]] += hit.reshape(win.shape)
            else:
                clipped = (he[i] - hs[i]) * (we[j] - ws[j])
                count = clipped if exclusive or dims[0].adaptive else hu[i] * wu[j]
                dx[:, :, hs[i]:he[i], ws[j]:we[j]] += (gij / x.dtype.type(count))[..., None, None]
    return dx


@pd_op
class Pool2DGrad(PdOp):
    """pool2d's gradient (Paddle's pool2d_grad): x, the pooled result and its cotangent in,
    x's cotangent out. Second order through pooling is not supported."""

    name = "pd.pool2d_grad"
    INPUTS = ("x", "out", "out_grad")
    ATTRS = Pool2D.ATTRS
    PADDLE = Legacy("pool2d_grad", {"X": "x", "Out": "out", "Out@GRAD": "out_grad"},
                    {"X@GRAD": 0}, Pool2D.PADDLE.attrs, out_lod_level=False)
    NONDIFF = True

    @staticmethod
    def infer(x: Abstract, out: Abstract, out_grad: Abstract, **_: Any) -> Abstract:
        return x

    @staticmethod
    def eager(x: np.ndarray, out: np.ndarray, out_grad: np.ndarray, **attrs: Any) -> np.ndarray:
        return pool2d_grad_kernel(x, out, out_grad, **attrs)


# ---------------------------------------------------------------------------------------------
# max pooling with the argmax (paddle.nn.functional.max_pool2d(return_mask=True),
# adaptive_max_pool2d)
# ---------------------------------------------------------------------------------------------

def _index_windows(op: str, size: int, k: int, stride: int, pad: int, ceil_mode: bool,
                   adaptive: bool, out: int | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """(output size, window starts, window ends) of one spatial dim, clipped to the input, as
    Paddle's MaxPool2dWithIndexFunctor has them (adaptive: [floor(o*n/out), ceil((o+1)*n/out)))."""
    if adaptive:
        o = np.arange(k)
        return k, (o * size) // k, -((-(o + 1) * size) // k)
    if out is None:
        num = size - k + 2 * pad + (stride - 1 if ceil_mode else 0)
        out = int(num / stride) + 1
        if out <= 0:
            raise ShapeError(f"{op}: input size {size} with padding {pad} leaves no room for a "
                             f"{k}-wide window")
    start = np.arange(out) * stride - pad
    return out, np.maximum(start, 0), np.minimum(start + k, size)


def _with_index_dims(op: str, shape: tuple[int, ...], ksize: tuple[int, ...],
                     strides: tuple[int, ...], paddings: tuple[int, ...], global_pooling: bool,
                     adaptive: bool) -> tuple[tuple[int, int], tuple[int, int],
                                              tuple[int, int]]:
    """ksize, strides and paddings as (h, w) pairs after Paddle's checks and global pooling."""
    if len(shape) != 4:
        raise ShapeError(f"{op}: input must be 4-D (NCHW), got {list(shape)}")
    ks, st = pair(op, "ksize", ksize), pair(op, "strides", strides)
    if len(paddings) != 2:
        raise ShapeError(f"{op}: paddings needs 2 values (height, width), like ksize; got "
                         f"{list(paddings)} (Paddle's max_pool2d_with_index pads symmetrically)")
    pads = (paddings[0], paddings[1])
    if global_pooling:
        return (shape[2], shape[3]), st, (0, 0)
    if min(ks) <= 0 or min(st) <= 0 or min(pads) < 0:
        raise ShapeError(f"{op}: ksize and strides must be positive and paddings not negative, "
                         f"got ksize={list(ksize)}, strides={list(strides)}, "
                         f"paddings={list(paddings)}")
    return ks, st, pads


def max_pool2d_with_index_kernel(x: np.ndarray, ksize: tuple[int, ...],
                                 strides: tuple[int, ...], paddings: tuple[int, ...],
                                 global_pooling: bool, adaptive: bool, ceil_mode: bool,
                                 op: str = "pd.max_pool2d_with_index") -> list[np.ndarray]:
    """The max of every window and its flat index h * W + w in the input plane. Paddle's
    rule: scanning the window row by row, an element replaces the running max (starting at
    -FLT_MAX, index -1) only when strictly greater; so the first maximum wins. A loop over
    the window's taps, each vectorised over the whole tensor."""
    ks, st, pads = _with_index_dims(op, x.shape, ksize, strides, paddings, global_pooling,
                                    adaptive)
    n, c, h, w = x.shape
    oh, hs, he = _index_windows(op, h, ks[0], st[0], pads[0], ceil_mode, adaptive and not
                                global_pooling, 1 if global_pooling else None)
    ow, ws, we = _index_windows(op, w, ks[1], st[1], pads[1], ceil_mode, adaptive and not
                                global_pooling, 1 if global_pooling else None)
    if global_pooling:
        hs, he, ws, we = np.zeros(1, int), np.full(1, h), np.zeros(1, int), np.full(1, w)
    best = np.full((n, c, oh, ow), -FLT_MAX, dtype=x.dtype)
    index = np.full((n, c, oh, ow), -1, dtype=np.int32)
    for i in range(int(max(0, (he - hs).max(initial=0)))):
        rows = hs + i
        row_ok = rows < he
        rows = np.minimum(rows, h - 1)
        for j in range(int(max(0, (we - ws).max(initial=0)))):
            cols = ws + j
            ok = row_ok[:, None] & (cols < we)[None, :]
            cols = np.minimum(cols, w - 1)
            tap = x[:, :, rows[:, None], cols[None, :]]
            better = (tap > best) & ok
            np.copyto(best, tap, where=better)
            np.copyto(index, (rows[:, None] * w + cols[None, :]).astype(np.int32),
                      where=better)
    return [best, index]


def _max_pool_index_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """The cotangent added at the argmax positions (the Mask result)."""
    x = inputs[0]
    n, c, h, w = e.shape(x)
    g, mask = cts[0], outputs[1]
    k = 1
    for d in e.shape(g)[2:]:
        k *= d
    flat = A.e(e, "pd.put_along_axis_add", A.e(e, "pd.full", shape=(n, c, h * w), value=0.0,
                                                dtype=e.dtype(x)),
               A.reshape(e, mask, (n, c, k)), A.reshape(e, g, (n, c, k)), axis=2)
    return [A.reshape(e, flat, (n, c, h, w))]


@pd_op
class MaxPool2DWithIndex(PdOp):
    """Max pooling that also returns where each maximum was (Mask: int32, the flat index
    h * W + w within its input plane); Paddle's max_pool2d_with_index, written by
    paddle.nn.functional.max_pool2d(return_mask=True) and adaptive_max_pool2d (whose windows
    are the adaptive ones, [floor(o*n/out), ceil((o+1)*n/out))). NCHW only; paddings are two
    symmetric values, as Paddle requires."""

    name = "pd.max_pool2d_with_index"
    INPUTS = ("x",)
    ATTRS = {"ksize": attr(INTS), "strides": attr(INTS, (1, 1)),
             "paddings": attr(INTS, (0, 0)), "global_pooling": attr(BOOL, False),
             "adaptive": attr(BOOL, False), "ceil_mode": attr(BOOL, False)}
    NUM_RESULTS = 2
    PADDLE = Legacy("max_pool2d_with_index", {"X": "x"}, {"Out": 0, "Mask": 1},
                    {k: From(t, k) for k, t in [
                        ("ksize", "INTS"), ("strides", "INTS"), ("paddings", "INTS"),
                        ("global_pooling", "BOOLEAN"), ("adaptive", "BOOLEAN"),
                        ("ceil_mode", "BOOLEAN")]},
                    keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "max_pool2d_with_index"
    vjp = classmethod(_max_pool_index_vjp)

    @staticmethod
    def infer(x: Abstract, ksize: tuple[int, ...], strides: tuple[int, ...],
              paddings: tuple[int, ...], global_pooling: bool, adaptive: bool,
              ceil_mode: bool) -> list[Abstract]:
        op = "pd.max_pool2d_with_index"
        ks, st, pads = _with_index_dims(op, x.shape, ksize, strides, paddings, global_pooling,
                                        adaptive)
        if global_pooling:
            out_hw = [1, 1]
        elif adaptive:
            out_hw = list(ks)
        else:
            out_hw = [-1 if n < 0 else _index_windows(op, n, k, s, p, ceil_mode, False)[0]
                      for n, k, s, p in zip(x.shape[2:], ks, st, pads)]
        shape = (x.shape[0], x.shape[1], *out_hw)
        return [Abstract(shape, x.dtype), Abstract(shape, dtypes.int32)]

    @staticmethod
    def eager(x: np.ndarray, **attrs: Any) -> list[np.ndarray]:
        return max_pool2d_with_index_kernel(x, **attrs)
