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
from tostatic.ir.op_rules import (
    DATA_FORMATS,
    LAYER_NORM_WEIGHTS,
    conv_out,
    pair,
    resolve_pads,
)
from tostatic.runtime import threads
from tostatic.runtime.epilogue_kernels import compiled_epilogue
from tostatic.runtime.matmul_blocks import blocked_gemm, column_blocks
from tostatic.runtime.conv_im2col import im2col_factory
from tostatic.runtime.conv_nhwc import nhwc_conv_factory, nhwc_pool_factory
from tostatic.runtime import packed_gemm
from tostatic.runtime.conv_winograd import winograd_factory
from tostatic.runtime.attention import attention_factory
from tostatic.runtime.layer_norm_kernel import layer_norm_factory
from tostatic.runtime.embedding_kernel import embedding_factory
from tostatic.runtime.pool_kernel import pool_factory

Run = Callable[..., None]
# below this many flops a kernel runs on one thread whatever the thread count (handing work
# to a pool costs about 20-50 us)
PARALLEL_FLOPS = 4_000_000
COLUMNS_PER_CHANNEL = 4  # see by_columns in conv_factory
COLUMN_BLOCK = 16  # a thread's output columns start at a multiple of this (whole vectors)
EAGER_BLOCK = 8192  # elements an epilogue runs an op's eager kernel on at a time
# elements a thread's compiled epilogue runs on at a time: 256 KiB of float32 stay in L2, and
# a compiled kernel given no more than this runs on the calling thread (codegen/threads.py)
EPILOGUE_BLOCK = 1 << 16
GENERATED_IM2COL = True  # codegen's im2col, in L2-sized bands (conv_im2col.py)


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
    from tostatic.ops.fused import EPILOGUE_ACTIVATIONS  # (xDSL: gelu, silu, swish only)

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
        return rows.prepare(y2, y2, ex, y.shape[1])  # (a slice of channels: its own)

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
    if const[1] and DATA_FORMATS[attrs["data_format"]]:  # NHWC (the choose-layout pass)
        return None if (nhwc := nhwc_conv_factory(op.name, attrs, ins, out)) is None \
            else Bound(*nhwc)
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
    if GENERATED_IM2COL and not direct and not depthwise and (gen := im2col_factory(
            x, w, out, pads, st, dil, epi, workers if parallel else 1,
            attrs.get("epilogue", ()))):
        return Bound(*gen)
    # im2col one image at a time (its patches stay in cache), into one buffer per thread
    slots = min(n, workers) if parallel and n > 1 else 1
    scratch = []
    if padded:
        scratch.append(("pad", (n, c, hp, wp), x.dtype))
    if not direct:
        scratch.append(("cols", (slots, c, kh * kw, oh * ow) if depthwise
                        else (slots, k, oh * ow), x.dtype))
    (sh, sw), (dh, dw) = st, dil
    # one image: the GEMM split by output columns where they outnumber the output channels
    # (split by channels, every thread packs all of the patches). One thread's half, by
    # channels / by columns: ResNet-18's first convolution (12544 columns a channel) 898 /
    # 659 us; 6 columns a channel, even; 0.1 (512 channels at 7x7) 339 / 418 us.
    by_columns = not depthwise and oh * ow >= COLUMNS_PER_CHANNEL * cout

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

        views: dict[tuple[int, ...], tuple[Any, ...]] = {}

        def sliced(y: np.ndarray, extras: Sequence[np.ndarray], lo: int, hi: int,
                   axis: int) -> tuple[np.ndarray, list[np.ndarray]] | None:
            """The result's and the epilogue operands' part for images (axis 0) or channels
            (1) lo..hi: a residual's part, the bias whole (images) or its part (channels);
            None when an operand broadcasts (then the epilogue runs after, on the whole
            result). The same views each run, so the compiled epilogue's prepared call is
            found again (calls.CallCache keys on the arrays' identity)."""
            key = (id(y), *map(id, extras), lo, hi, axis)
            got = views.get(key)
            if got is None:
                if not all(e.shape == y.shape or e.ndim <= 1 for e in extras):
                    return None
                if len(views) > 16:
                    views.clear()
                at = (slice(None),) * axis + (slice(lo, hi),)
                got = views[key] = (y, *extras, y[at], [  # (keeps y, extras alive: ids stay)
                    e[at] if e.shape == y.shape else (e[lo:hi] if axis else e)
                    for e in extras])
            return got[-2], got[-1]

        def run_images_parallel(x: np.ndarray, _w: np.ndarray, *extras: np.ndarray,
                                out: np.ndarray) -> None:
            """Several images: each thread takes some (padded, patches into its own buffer,
            GEMMs, epilogue: one hand-off a convolution)."""
            whole = sliced(out, extras, 0, 0, 0) is None

            def part(lo: int, hi: int, slot: int) -> None:
                if xp is not None:
                    for b in borders:
                        b[lo:hi].fill(0)
                    np.copyto(inner[lo:hi], x[lo:hi])
                images(x, out, lo, hi, slot)
                if not whole:
                    epi(*sliced(out, extras, lo, hi, 0))  # type: ignore[misc]
            threads.parallel(part, n, slots)
            if whole:
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
                """Rows lo..hi of (channel, kernel row): few input channels (a network's
                first convolution: 3) split evenly too. A channel two threads share is
                padded by both (the same values)."""
                if xp is not None:
                    pad(x, lo // kh, (hi - 1) // kh + 1)
                if taps is None:
                    return
                first, last = -(-lo // kh), hi // kh  # the whole channels, in one copy
                parts = [(slice(first, last), slice(None))] if last > first else []
                if lo % kh:
                    parts.append((lo // kh, slice(lo % kh, min(kh, hi - lo // kh * kh))))
                if hi % kh and hi // kh >= first:
                    parts.append((hi // kh, slice(0, hi % kh)))
                for ch, rows in parts:
                    np.copyto(cols6[:, ch, rows], taps[:, ch, rows])  # type: ignore[index]

            whole = sliced(out, extras, 0, 0, 1) is None

            def gemm(lo: int, hi: int, part: int) -> None:
                """Output channels lo..hi, their epilogue while they are in cache."""
                if depthwise:
                    np.matmul(packed[lo:hi], src[:, lo:hi], out=out3[:, lo:hi])
                else:
                    np.matmul(packed[lo:hi], src, out=out3[:, lo:hi])
                if not whole:
                    epi(*sliced(out, extras, lo, hi, 1))  # type: ignore[misc]

            def gemm_columns(lo: int, hi: int, part: int) -> None:
                """Output columns lo..hi (in blocks of COLUMN_BLOCK): each thread packs
                its part of the patches, not all of them."""
                at = slice(lo * COLUMN_BLOCK, hi * COLUMN_BLOCK)
                np.matmul(packed, src[0][:, at], out=out3[0][:, at])
            if xp is not None or taps is not None:
                threads.parallel(copy, c * kh, workers)
            if by_columns:
                threads.parallel(gemm_columns, -(-oh * ow // COLUMN_BLOCK), workers)
            else:
                threads.parallel(gemm, c if depthwise else cout, workers)
            if whole or by_columns:
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

UFUNCS = {"pd.add": np.add, "pd.subtract": np.subtract, "pd.multiply": np.multiply,
          "pd.maximum": np.maximum, "pd.minimum": np.minimum}


def binary_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                   out: np.ndarray, const: Sequence[bool]) -> Bound | None:
    x, y = ins
    if attrs["axis"] != -1 and x.ndim != y.ndim or x.dtype != y.dtype \
            or out.dtype != x.dtype:
        return None
    f = UFUNCS[op.name]
    return Bound([], lambda _: (lambda x, y, out: f(x, y, out=out)), "ufunc")


def unary_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                  out: np.ndarray, const: Sequence[bool]) -> Bound | None:
    if ins[0].dtype.kind != "f":
        return None
    name = op.name[len("pd."):]  # relu, relu6, sigmoid, tanh
    f = _inplace_activation(name)

    def run(x: np.ndarray, out: np.ndarray) -> None:
        np.copyto(out, x)
        f(out)
    return Bound([], lambda _: run, "ufunc")


# --------------------------------------------------------------------------- pooling

# by op name (a live op's and a warm start's recorded one: runtime/op_info.py)
FACTORIES: dict[str, Callable[..., Bound | None]] = {
    "pd.conv2d": conv_factory, "pd.depthwise_conv2d": conv_factory,
    "pd.fused_conv2d": conv_factory,
    "pd.matmul": matmul_factory, "pd.fused_matmul": matmul_factory,
    **{name: binary_factory for name in UFUNCS},
    **{name: unary_factory for name in ("pd.relu", "pd.relu6", "pd.sigmoid", "pd.tanh")},
    "pd.pool2d": lambda *a: None if (p := pool_factory(*a) or nhwc_pool_factory(*a)) is None
    else Bound(*p),
    "pd.lookup_table_v2": lambda *a: None if (e := embedding_factory(*a)) is None
    else Bound(*e),
    "pd.fused_attention": lambda op, attrs, ins, out, const: (
        None if (a := attention_factory(attrs, ins, out)) is None else Bound(*a)),
    **{name: lambda op, attrs, ins, out, const: (
        None if (a := layer_norm_factory(LAYER_NORM_WEIGHTS[op.name], attrs, ins, out)) is None
        else Bound(*a)) for name in LAYER_NORM_WEIGHTS},
}
