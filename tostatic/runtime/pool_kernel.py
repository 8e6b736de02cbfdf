"""Pooling's bound kernels: max pooling over regular windows by codegen's window kernel (or,
for TOSTATIC_KERNELS=numpy and A/B runs, numpy's k*k passes over strided views of a padded
copy) and average pooling over whole planes as one mean. Returns (scratch, binder, kind) for
runtime.kernels.Bound, or None (the op's eager runs)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic import codegen
from tostatic.ir.op_rules import DATA_FORMATS, FLT_MAX, pool_dims as _pool_dims
from tostatic.runtime import threads

PARALLEL_ELEMENTS = 1 << 18  # a memory-bound pass split over the threads from this size
COMPILED_MAX_POOL = True  # codegen's pool2d kernel for max pooling (else numpy's taps)


def pool_factory(op: Any, attrs: dict[str, Any], ins: Sequence[np.ndarray],
                 out: np.ndarray, const: Sequence[bool]) -> tuple[Any, ...] | None:
    """Max pooling over regular windows (codegen's kernel: each window's taps maxed in
    registers, 10x numpy's k*k passes over strided views of a padded copy, which remain for
    TOSTATIC_KERNELS=numpy) and average pooling over whole planes (a mean); other pools use
    the op's eager."""
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
        # a matrix-vector product by 1/(h*w): one BLAS pass, where np.mean's reduction over
        # the last axis took 7x as long (ResNet-50's 2048 planes of 7x7: 48 -> 6.5 us)
        weights = np.full(h * w, 1.0 / (h * w), x.dtype)

        def mean(x: np.ndarray, out: np.ndarray) -> None:
            np.matmul(x.reshape(n * c, h * w), weights, out=out.reshape(n * c))
        return [], lambda _: mean, "plane-mean"
    if attrs["pooling_type"] != "max" or dh.adaptive or dw.adaptive or attrs["adaptive"] \
            or attrs["global_pooling"]:
        return None
    if COMPILED_MAX_POOL and codegen.enabled() and x.dtype in (np.float32, np.float64):
        from tostatic.codegen.pool import Pool2d  # noqa: PLC0415 (llvmlite loads on first use)
        compiled = Pool2d(x.shape, x.dtype, (dh, dw), True, attrs["exclusive"])

        def run_compiled(x: np.ndarray, out: np.ndarray) -> None:
            compiled.run(np.ascontiguousarray(x), out)
        return [], lambda _: run_compiled, "max-windows"
    oh, ow = out.shape[2:]
    after_h = max(0, (oh - 1) * dh.stride - dh.pad + dh.k - h)
    after_w = max(0, (ow - 1) * dw.stride - dw.pad + dw.k - w)
    hp, wp = dh.pad + h + after_h, dw.pad + w + after_w
    padded = (hp, wp) != (h, w)

    def bind(arrays: list[np.ndarray]) -> Callable[..., None]:
        xp = arrays[0] if padded else None
        if xp is not None:
            # the border stays -FLT_MAX (Paddle's start: what an empty ceil_mode window
            # gives): only the inside is written per run
            xp.fill(-FLT_MAX)
            inner = xp[:, :, dh.pad:dh.pad + h, dw.pad:dw.pad + w]

        def taps(src: np.ndarray) -> list[np.ndarray]:
            return [src[:, :, i:i + (oh - 1) * dh.stride + 1:dh.stride,
                        j:j + (ow - 1) * dw.stride + 1:dw.stride]
                    for i in range(dh.k) for j in range(dw.k)]
        fixed = taps(xp) if xp is not None else None

        def run(x: np.ndarray, out: np.ndarray, lo: int = 0, hi: int = c) -> None:
            """Channels lo..hi."""
            if xp is not None:
                np.copyto(inner[:, lo:hi], x[:, lo:hi])
            views = fixed if fixed is not None else taps(x)
            o = out
            if (lo, hi) != (0, c):
                views, o = [v[:, lo:hi] for v in views], out[:, lo:hi]
            if len(views) == 1:
                np.copyto(o, views[0])
                return
            np.maximum(views[0], views[1], out=o)
            for v in views[2:]:
                np.maximum(o, v, out=o)

        def run_parallel(x: np.ndarray, out: np.ndarray) -> None:
            threads.parallel(lambda lo, hi, _: run(x, out, lo, hi), c, workers)
        return run_parallel if workers > 1 else run
    # the channels split over the threads where the pass is long (ResNet's 64 x 112 x 112)
    workers = threads.current() if n * c * hp * wp >= PARALLEL_ELEMENTS else 1
    # the pad scratch is private to this step: its -inf border is written once
    return ([(f"pool-pad-{id(op)}", (n, c, hp, wp), x.dtype)] if padded else [], bind,
            "max-taps")
