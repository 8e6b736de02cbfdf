"""Kernels the execution plan binds once per input shape, writing into buffers the plan owns.

A factory sees the op, its attributes and sample arrays of the shapes it will get; it returns
None (the plan then calls the op's numpy `eager`) or a `Bound`: the scratch arrays it needs
(shared by all steps: they run one at a time) and a binder that, given them, returns
`run(*inputs, out)`, writing the result into `out`. So a repeated run allocates nothing, the
weights are laid out for the kernel once (pre-packed GEMM matrices), and the op's `eager`
stays the reference every kernel here is tested against (tests/test_runtime_kernels.py).

Convolutions run in NCHW as im2col + one sgemm per image (1x1 convolutions as a plain
matmul, no copy): measured at 160-190 GFLOP/s on ResNet-18's 3x3 layers at batch 1, as
fast as NHWC im2col there (benchmarks/results.md), so the layout of the file is kept.
Depthwise convolution runs codegen's kernel (codegen/depthwise.py: taps summed in registers,
its epilogue applied before one store; 3-10x the batched matrix-vector product it replaced,
which remains for TOSTATIC_KERNELS=numpy). A conv's epilogue (bias, residual, activation) is
codegen's one pass over the result (codegen.epilogue.RowsEpilogue), where numpy's two to four
passes over an out-of-cache result cost up to 3x the GEMM of a 1x1 convolution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tostatic import codegen
from tostatic.codegen.calls import CallCache
from tostatic.ir.scalar_expr import NotScalar
from tostatic.ops import activation as act
from tostatic.ops import elementwise as ew
from tostatic.ops.conv import (
    DATA_FORMATS,
    Conv2D,
    DepthwiseConv2D,
    conv_out,
    pair,
    resolve_pads,
)
from tostatic.ops.fused import EPILOGUE_ACTIVATIONS, FusedConv2D, FusedMatmul
from tostatic.ops.linalg import Matmul
from tostatic.ops.pooling import Pool2D
from tostatic.runtime import threads
from tostatic.runtime.epilogue_kernels import compiled_epilogue
from tostatic.runtime.matmul_blocks import blocked_gemm, column_blocks
from tostatic.runtime import packed_gemm
from tostatic.runtime.conv_winograd import winograd_factory
from tostatic.ops.pooling import _dims as _pool_dims

Run = Callable[..., None]
# below this many flops a kernel runs on one thread whatever the thread count (handing work
# to a pool costs about 20-50 us)
PARALLEL_FLOPS = 4_000_000
EAGER_BLOCK = 8192  # elements an epilogue runs an op's eager kernel on at a time
# elements a thread's compiled epilogue runs on at a time: 256 KiB of float32 stay in L2, and
# a compiled kernel given no more than this runs on the calling thread (codegen/threads.py)
EPILOGUE_BLOCK = 1 << 16


@dataclass
class Bound:
    """Scratch requests (name, shape, dtype) and the binder making the kernel from them."""

    scratch: list[tuple[str, tuple[int, ...], Any]]
    bind: Callable[[list[np.ndarray]], Run]
    kind: str  # what the profile calls the kernel ("gemm-conv", "ufunc", ...)


# --------------------------------------------------------------------------- epilogues

def _inplace_activation(name: str) -> Callable[[np.ndarray], None]:
    def relu(y: np.ndarray) -> None:
        np.maximum(y, 0, out=y)

    def relu6(y: np.ndarray) -> None:
        np.maximum(y, 0, out=y)
        np.minimum(y, 6, out=y)

    def sigmoid(y: np.ndarray) -> None:
        np.negative(y, out=y)
        np.exp(y, out=y)
        y += 1
        np.divide(y.dtype.type(1), y, out=y)

    def tanh(y: np.ndarray) -> None:
        np.tanh(y, out=y)

    def hardswish(y: np.ndarray) -> None:
        t = y + y.dtype.type(3)
        np.maximum(t, 0, out=t)
        np.minimum(t, 6, out=t)
        y *= t
        y /= y.dtype.type(6)

    table = {"relu": relu, "relu6": relu6, "sigmoid": sigmoid, "tanh": tanh,
             "hardswish": hardswish}
    if name in table:
        return table[name]
    cls, attrs = EPILOGUE_ACTIVATIONS[name]
    full = cls.normalize_attrs(dict(attrs))

    def through_eager(y: np.ndarray) -> None:
        """gelu, silu, swish: the op's own kernel, on blocks small enough that its float64
        temporaries come from the heap and stay in cache (whole-tensor temporaries are
        fresh pages: page faults took most of gelu's time in BERT)."""
        flat = y.reshape(-1)
        for lo in range(0, flat.size, EAGER_BLOCK):
            part = flat[lo:lo + EAGER_BLOCK]
            np.copyto(part, cls.run_eager([part], full)[0])
    return through_eager


def epilogue_runner(epilogue: Sequence[str], ndim: int,
                    channel_axis: int) -> Callable[[np.ndarray, Sequence[np.ndarray]], None]:
    """The epilogue steps applied in place to the result `y`, reading the extra operands."""
    bias_shape = [1] * ndim
    bias_shape[channel_axis] = -1
    steps: list[Callable[[np.ndarray, Sequence[np.ndarray]], None]] = []
    k = 0
    for step in epilogue:
        if step == "bias":
            steps.append(lambda y, e, k=k: np.add(y, e[k].reshape(bias_shape), out=y))
            k += 1
        elif step == "add":
            steps.append(lambda y, e, k=k: np.add(y, e[k], out=y))
            k += 1
        else:
            f = _inplace_activation(step)
            steps.append(lambda y, e, f=f: f(y))
    if not steps:
        return lambda y, e: None
    if len(steps) == 1:
        return steps[0]

    def run(y: np.ndarray, e: Sequence[np.ndarray]) -> None:
        for s in steps:
            s(y, e)
    return run


def rows_epilogue(epilogue: Sequence[str], dtype: np.dtype) -> Any:
    """codegen's one-pass epilogue over [rows, cols] blocks (epilogue.RowsEpilogue), or None
    (no steps, numpy kernels asked for, or a step without code)."""
    if not epilogue or not codegen.enabled():
        return None
    from tostatic.codegen.epilogue import RowsEpilogue  # llvmlite loads on first use
    try:
        return RowsEpilogue(epilogue, np.dtype(dtype).name)
    except (NotScalar, KeyError):
        return None


def _nchw_epilogue(rows: Any, cout: int) -> Callable[[np.ndarray, Sequence[np.ndarray]], None]:
    """The epilogue in place over an NCHW result, one pass."""
    calls = CallCache()

    def prepare(y: np.ndarray, e: Sequence[np.ndarray]) -> Callable[[], None]:
        y2 = y.reshape(-1, y.shape[2] * y.shape[3])
        ex = [np.ascontiguousarray(a).reshape(-1) if kind == "bias"
              else np.ascontiguousarray(a).reshape(y2.shape) for a, kind in zip(e, rows.kinds)]
        return rows.prepare(y2, y2, ex, cout)

    def run(y: np.ndarray, e: Sequence[np.ndarray]) -> None:
        if y.flags.c_contiguous and all(a.flags.c_contiguous for a in e):
            calls.get((y, *e), lambda: prepare(y, e))()
        else:
            prepare(y, e)()
    return run


# --------------------------------------------------------------------------- convolution

def conv_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                 out: np.ndarray, const: Sequence[bool]) -> Bound | None:
    x, w = ins[0], ins[1]
    if (not const[1] or DATA_FORMATS[attrs["data_format"]] or x.ndim != 4
            or x.dtype not in (np.float32, np.float64) or w.dtype != x.dtype):
        return None
    name = op.name
    n, c, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    groups = attrs["groups"]
    st, dil = pair(name, "strides", attrs["strides"]), pair(name, "dilations", attrs["dilations"])
    pads, dil = resolve_pads(name, (h, wd), (kh, kw), st, attrs["paddings"],
                             attrs["padding_algorithm"], dil)
    oh, ow = (conv_out(name, s_, k, s, p, d)
              for s_, k, s, p, d in zip((h, wd), (kh, kw), st, pads, dil))
    if cg == 1 and groups == c and groups > 1 and cout % c == 0:
        compiled = _depthwise_compiled(x, w, st, pads, dil, attrs.get("epilogue", ()))
        if compiled is not None:
            return compiled
    depthwise = cg == 1 and groups == c and cout == c and groups > 1
    if groups != 1 and not depthwise:
        return None
    if groups == 1 and (wino := winograd_factory(attrs, ins, out, pads, st, dil)):
        return Bound(*wino)
    (pt, pb), (pl, pr) = pads  # type: ignore[misc]
    hp, wp = h + pt + pb, wd + pl + pr
    padded = bool(pt or pb or pl or pr)
    direct = (kh, kw) == (1, 1) and st == (1, 1) and not padded
    if direct and groups == 1 and (
            packed_run := packed_gemm.conv1x1(x, w, out, attrs.get("epilogue", ()))):
        return Bound([], lambda _: packed_run, "gemm-1x1-packed")
    epi = epilogue_runner(attrs.get("epilogue", ()), 4, 1)
    rows_epi = rows_epilogue(attrs.get("epilogue", ()), x.dtype)
    if rows_epi is not None:
        epi = _nchw_epilogue(rows_epi, cout)
    k = cg * kh * kw
    # the weights, packed once: [C_out, C_in*kh*kw] (depthwise: [C, 1, kh*kw])
    packed = np.ascontiguousarray(w.reshape(c, 1, kh * kw) if depthwise else w.reshape(cout, k))
    workers = threads.current()
    parallel = workers > 1 and 2 * n * cout * k * oh * ow >= PARALLEL_FLOPS
    # im2col one image at a time (its patches stay in cache), into one buffer per thread
    slots = min(n, workers) if parallel and n > 1 else 1
    scratch = []
    if padded:
        scratch.append(("pad", (n, c, hp, wp), x.dtype))
    if not direct:
        scratch.append(("cols", (slots, c, kh * kw, oh * ow) if depthwise
                        else (slots, k, oh * ow), x.dtype))
    (sh, sw), (dh, dw) = st, dil

    def bind(arrays: list[np.ndarray]) -> Run:
        it = iter(arrays)
        xp = next(it) if padded else None
        cols = next(it) if not direct else None
        borders = []
        if xp is not None:
            borders = [b for b in (xp[:, :, :pt], xp[:, :, hp - pb:], xp[:, :, :, :pl],
                                   xp[:, :, :, wp - pr:]) if b.size]
            inner = xp[:, :, pt:pt + h, pl:pl + wd]

        def taps_of(src: np.ndarray) -> np.ndarray:
            s_n, s_c, s_h, s_w = src.strides
            return as_strided(src, (n, c, kh, kw, oh, ow),
                              (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w),
                              writeable=False)
        fixed_taps = taps_of(xp) if xp is not None and cols is not None else None
        cols6 = cols.reshape(slots, c, kh, kw, oh, ow) if cols is not None else None

        def pad(x: np.ndarray, lo: int = 0, hi: int = c) -> None:
            for b in borders:
                b[:, lo:hi].fill(0)
            np.copyto(inner[:, lo:hi], x[:, lo:hi])

        def images(x: np.ndarray, out: np.ndarray, lo: int, hi: int, slot: int) -> None:
            """Images lo..hi: their patches into cols[slot], one GEMM each."""
            taps = None if cols is None else (fixed_taps if fixed_taps is not None
                                               else taps_of(x))
            src = x.reshape(n, c, 1, h * wd) if depthwise else x.reshape(n, c, h * wd)
            for i in range(lo, hi):
                if taps is not None:
                    np.copyto(cols6[slot], taps[i])
                    m = cols[slot]
                else:
                    m = src[i]
                if depthwise:
                    np.matmul(packed, m, out=out[i].reshape(c, 1, oh * ow))
                else:
                    np.matmul(packed, m, out=out[i].reshape(cout, oh * ow))

        def run(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray, out: np.ndarray) -> None:
            if xp is not None:
                pad(x)
            images(x, out, 0, n, 0)
            epi(out, extras)

        if not parallel:
            return run

        def run_images_parallel(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray,
                                out: np.ndarray) -> None:
            """Several images: each thread takes some, with its own patch buffer."""
            if xp is not None:
                threads.parallel(lambda lo, hi, part: pad(x, lo, hi), c, workers)
            threads.parallel(lambda lo, hi, part: images(x, out, lo, hi, part), n, slots)
            epi(out, extras)

        def run_channels_parallel(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray,
                                  out: np.ndarray) -> None:
            """One image: the copies split by input channel, the GEMM by output channel."""
            src = cols if cols is not None else (
                x.reshape(n, c, 1, h * wd) if depthwise else x.reshape(n, c, h * wd))
            taps = None if cols is None else (fixed_taps if fixed_taps is not None
                                              else taps_of(x))
            out3 = out.reshape(n, c, 1, oh * ow) if depthwise else out.reshape(n, cout, oh * ow)

            def copy(lo: int, hi: int, part: int) -> None:
                if xp is not None:
                    pad(x, lo, hi)
                if taps is not None:
                    np.copyto(cols6[:, lo:hi], taps[:, lo:hi])  # type: ignore[index]

            def gemm(lo: int, hi: int, part: int) -> None:
                if depthwise:
                    np.matmul(packed[lo:hi], src[:, lo:hi], out=out3[:, lo:hi])
                else:
                    np.matmul(packed[lo:hi], src, out=out3[:, lo:hi])
            if xp is not None or taps is not None:
                threads.parallel(copy, c, workers)
            threads.parallel(gemm, c if depthwise else cout, workers)
            epi(out, extras)
        return run_images_parallel if n > 1 else run_channels_parallel
    return Bound(scratch, bind, "depthwise-matvec" if depthwise else
                 ("gemm-1x1" if direct else "im2col-gemm"))


def _depthwise_compiled(x: np.ndarray, w: np.ndarray, st: Any, pads: Any, dil: Any,
                        epilogue: Sequence[str]) -> Bound | None:
    """codegen's depthwise kernel, its epilogue applied in registers before the one store
    (None where it has no code for the dtype, paddings or an epilogue step)."""
    if not codegen.enabled():
        return None
    from tostatic.codegen import depthwise, epilogue as epi  # llvmlite loads on first use
    try:
        expr, kinds = epi.epilogue_expr(epilogue, x.dtype.name) if epilogue else (None, ())
        k = depthwise.Depthwise(x.shape, w, st, pads, dil, expr, kinds)
    except (NotScalar, KeyError):
        return None

    def bind(_: list[np.ndarray]) -> Run:
        def run(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray, out: np.ndarray) -> None:
            k.run(x, extras, out)
        return run
    return Bound([], bind, "depthwise")


# --------------------------------------------------------------------------- matmul

def matmul_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                   out: np.ndarray, const: Sequence[bool]) -> Bound | None:
    x, y = ins[0], ins[1]
    if x.dtype != y.dtype or x.dtype.kind != "f" or x.ndim < 1 or y.ndim < 1:
        return None
    tx, ty = attrs["transpose_x"], attrs["transpose_y"]
    steps = attrs.get("epilogue", ())
    if const[1] and (packed_mm := packed_gemm.matmul(x, y, out, attrs, steps)):
        return Bound([], lambda _: packed_mm, "gemm-packed")
    compiled_epi = compiled_epilogue(steps, out, ins[2:])
    epi = compiled_epi or epilogue_runner(steps, max(out.ndim, 1), max(out.ndim - 1, 0))
    residual = [s == "add" for s in steps if s in ("bias", "add")]
    packed = None
    if const[1] and ty and y.ndim == 2:  # a transposed weight: packed as [K, N] once
        packed = np.ascontiguousarray(y.T)

    rows = int(np.prod(out.shape[:-1])) if out.ndim >= 2 else 1
    k = x.shape[-2] if tx and x.ndim >= 2 else x.shape[-1]
    many = 2 * rows * k * out.shape[-1] >= PARALLEL_FLOPS
    split = (threads.current() > 1 and (packed is not None or (not ty and y.ndim == 2))
             and not tx and out.ndim >= 2 and rows >= 2 and many)
    # a weight [K, N] times all rows of x as one 2-D GEMM (or column blocks, for few rows)
    weight = packed if packed is not None else (y if const[1] and not ty and y.ndim == 2
                                                else None)
    flat = weight is not None and not tx and out.ndim >= 2
    blocks = column_blocks(weight, rows) if flat else None
    n = out.shape[-1]
    block_rows = max(1, EPILOGUE_BLOCK // max(n, 1))
    # batched products (attention's heads): the first batch dim both operands have in full
    # split over the threads
    batch_axis = next((ax for ax in range(out.ndim - 2) if x.ndim == y.ndim == out.ndim
                       and x.shape[ax] == y.shape[ax] == out.shape[ax] >= 2), None) \
        if threads.current() > 1 and many and not split and not flat else None

    def bind(_: list[np.ndarray]) -> Run:
        def run_flat(x: np.ndarray, y: np.ndarray, *extras: np.ndarray, out: np.ndarray) -> None:
            np.dot(x.reshape(rows, k), weight, out=out.reshape(rows, n))
            epi(out, extras)

        if blocks is not None:
            gemm = blocked_gemm(blocks, threads.current()
                                if 2 * rows * k * n >= 4 * PARALLEL_FLOPS else 1)

            def run_blocked(x: np.ndarray, y: np.ndarray, *extras: np.ndarray,
                            out: np.ndarray) -> None:
                gemm(x.reshape(rows, k), out.reshape(rows, n))
                epi(out, extras)
            return run_blocked
        if flat and not split:
            return run_flat

        def run(x: np.ndarray, y: np.ndarray, *extras: np.ndarray, out: np.ndarray) -> None:
            if tx and x.ndim >= 2:
                x = np.swapaxes(x, -1, -2)
            if packed is not None:
                y = packed
            elif ty and y.ndim >= 2:
                y = np.swapaxes(y, -1, -2)
            np.matmul(x, y, out=out)
            epi(out, extras)

        def run_parallel(x: np.ndarray, y: np.ndarray, *extras: np.ndarray,
                         out: np.ndarray) -> None:
            """A 2-D weight: the rows of x (all leading dims) split over the threads; each
            thread applies a compiled epilogue to its own rows, in blocks that stay in
            cache (one hand-off a call, where a separate epilogue would make two)."""
            y = packed if packed is not None else y
            x2 = np.ascontiguousarray(x).reshape(rows, x.shape[-1])
            o2 = out.reshape(rows, out.shape[-1])
            es = [e.reshape(rows, n) if r else e for e, r in zip(extras, residual)]

            def part(lo: int, hi: int, _: int) -> None:
                np.matmul(x2[lo:hi], y, out=o2[lo:hi])
                if compiled_epi is None:
                    return
                for a in range(lo, hi, block_rows):
                    b = min(hi, a + block_rows)
                    compiled_epi(o2[a:b], [e[a:b] if r else e for e, r in zip(es, residual)])
            threads.parallel(part, rows, threads.current())
            if compiled_epi is None:
                epi(out, extras)
        def run_batches_parallel(x: np.ndarray, y: np.ndarray, *extras: np.ndarray,
                                 out: np.ndarray) -> None:
            xs = np.swapaxes(x, -1, -2) if tx else x
            ys = np.swapaxes(y, -1, -2) if ty else y
            lead = (slice(None),) * batch_axis  # type: ignore[operator]

            def part(lo: int, hi: int, _: int) -> None:
                at = lead + (slice(lo, hi),)
                np.matmul(xs[at], ys[at], out=out[at])
            threads.parallel(part, out.shape[batch_axis], threads.current())
            epi(out, extras)
        if batch_axis is not None:
            return run_batches_parallel
        return run_parallel if split else run
    return Bound([], bind, "gemm-blocks" if blocks is not None else "gemm")


# --------------------------------------------------------------------------- elementwise

UFUNCS = {ew.Add: np.add, ew.Subtract: np.subtract, ew.Multiply: np.multiply,
          ew.Maximum: np.maximum, ew.Minimum: np.minimum}


def binary_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                   out: np.ndarray, const: Sequence[bool]) -> Bound | None:
    x, y = ins
    if attrs["axis"] != -1 and x.ndim != y.ndim or x.dtype != y.dtype \
            or out.dtype != x.dtype:
        return None
    f = UFUNCS[type(op)]
    return Bound([], lambda _: (lambda x, y, out: f(x, y, out=out)), "ufunc")


def unary_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                  out: np.ndarray, const: Sequence[bool]) -> Bound | None:
    if ins[0].dtype.kind != "f":
        return None
    name = {act.Relu: "relu", act.Relu6: "relu6", act.Sigmoid: "sigmoid",
            act.Tanh: "tanh"}[type(op)]
    f = _inplace_activation(name)

    def run(x: np.ndarray, out: np.ndarray) -> None:
        np.copyto(out, x)
        f(out)
    return Bound([], lambda _: run, "ufunc")


# --------------------------------------------------------------------------- pooling

def pool_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                 out: np.ndarray, const: Sequence[bool]) -> Bound | None:
    """Max pooling over regular windows (a max over the k*k strided taps of a padded copy)
    and average pooling over whole planes (a mean); other pools use the op's eager."""
    x = ins[0]
    if DATA_FORMATS[attrs["data_format"]] or x.ndim != 4 or x.dtype.kind != "f":
        return None
    n, c, h, w = x.shape
    dh, dw = _pool_dims(op.name, (h, w), attrs["ksize"], attrs["strides"], attrs["paddings"],
                        attrs["ceil_mode"], attrs["pooling_type"], attrs["global_pooling"],
                        attrs["adaptive"], attrs["padding_algorithm"])
    if attrs["pooling_type"] == "avg" and out.shape[2:] == (1, 1) and \
            (attrs["global_pooling"] or attrs["adaptive"] or (dh.k, dw.k) == (h, w)) \
            and (dh.pad, dw.pad) == (0, 0):
        def mean(x: np.ndarray, out: np.ndarray) -> None:
            np.mean(x.reshape(n, c, h * w), axis=2, out=out.reshape(n, c))
        return Bound([], lambda _: mean, "plane-mean")
    if attrs["pooling_type"] != "max" or dh.adaptive or dw.adaptive or attrs["adaptive"] \
            or attrs["global_pooling"]:
        return None
    oh, ow = out.shape[2:]
    after_h = max(0, (oh - 1) * dh.stride - dh.pad + dh.k - h)
    after_w = max(0, (ow - 1) * dw.stride - dw.pad + dw.k - w)
    hp, wp = dh.pad + h + after_h, dw.pad + w + after_w
    padded = (hp, wp) != (h, w)

    def bind(arrays: list[np.ndarray]) -> Run:
        xp = arrays[0] if padded else None
        if xp is not None:
            xp.fill(-np.inf)  # the border stays -inf: only the inside is written per run
            inner = xp[:, :, dh.pad:dh.pad + h, dw.pad:dw.pad + w]

        def taps(src: np.ndarray) -> list[np.ndarray]:
            return [src[:, :, i:i + (oh - 1) * dh.stride + 1:dh.stride,
                        j:j + (ow - 1) * dw.stride + 1:dw.stride]
                    for i in range(dh.k) for j in range(dw.k)]
        fixed = taps(xp) if xp is not None else None

        def run(x: np.ndarray, out: np.ndarray) -> None:
            if xp is not None:
                np.copyto(inner, x)
            views = fixed if fixed is not None else taps(x)
            if len(views) == 1:
                np.copyto(out, views[0])
                return
            np.maximum(views[0], views[1], out=out)
            for v in views[2:]:
                np.maximum(out, v, out=out)
        return run
    # the pad scratch is private to this step: its -inf border is written once
    return Bound([(f"pool-pad-{id(op)}", (n, c, hp, wp), x.dtype)] if padded else [], bind,
                 "max-taps")


FACTORIES: dict[type, Callable[..., Bound | None]] = {
    Conv2D: conv_factory, DepthwiseConv2D: conv_factory, FusedConv2D: conv_factory,
    Matmul: matmul_factory, FusedMatmul: matmul_factory,
    **{cls: binary_factory for cls in UFUNCS},
    act.Relu: unary_factory, act.Relu6: unary_factory, act.Sigmoid: unary_factory,
    act.Tanh: unary_factory, Pool2D: pool_factory,
}
