"""Generated kernels (tostatic.codegen) against the numpy kernels the runtime otherwise runs
(each op's `eager`), one thread, in one process, interleaved rounds, medians:

- fused 4-op elementwise chains on 10M float32 (one generated pass vs four numpy ops);
- MobileNetV2's depthwise convolutions (batch 1, 224x224), each shape and the whole set;
- softmax / layer_norm rows of a BERT-base encoder at seq 128;
- pooling and a reduction.

    python benchmarks/kernels.py [--rounds 15]

Like the other benchmarks it re-executes itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
(which this environment sets) and with one thread, and prints the machine. The first run of
a kernel compiles it (or loads it from the disk cache): that is timed apart, as `compile`.
"""
from __future__ import annotations

import os
import sys

FORCED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
if any(k in os.environ for k in FORCED) or any(os.environ.get(k) != v
                                               for k, v in ONE_THREAD.items()):
    env = {k: v for k, v in os.environ.items() if k not in FORCED}
    env.update(ONE_THREAD)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

from tostatic.codegen import depthwise, elementwise, engine, reduce, rows  # noqa: E402
from tostatic.ir import scalar_expr as se  # noqa: E402
from tostatic.ir.opdef import REGISTRY  # noqa: E402
from tostatic.ops import conv, layer_norm, pooling  # noqa: E402
from tostatic.ops.activation import Softmax  # noqa: E402

# MobileNetV2 (scale 1.0, 224x224): each depthwise conv's channels, input size, stride, count
MOBILENET_V2_DEPTHWISE = [(32, 112, 1, 1), (96, 112, 2, 1), (144, 56, 1, 1), (144, 56, 2, 1),
                          (192, 28, 1, 2), (192, 28, 2, 1), (384, 14, 1, 4), (576, 14, 1, 2),
                          (576, 14, 2, 1), (960, 7, 1, 3)]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    h = engine.host()
    return (f"{cpu}, {os.cpu_count()} cores; LLVM target {h['cpu']}, "
            f"{engine.vector_width_bits()}-bit vectors; numpy {np.__version__}")


def chain(names: list[tuple[str, dict[str, Any], int | None]], shapes: list[tuple[int, ...]]
          ) -> tuple[Callable[..., Any], Callable[..., Any], list[np.ndarray]]:
    """A chain of pd ops: each takes the previous value and (if given) input k. Returns the
    op-by-op numpy run, the generated kernel and the inputs."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    value = se.arg(0, "float32")
    steps = []
    for name, attrs, k in names:
        cls = REGISTRY[name]
        full = cls.normalize_attrs(attrs)
        ins = [value] if k is None else [value, se.arg(k, "float32")]
        value = cls.SCALAR(*ins, **full)
        steps.append((cls, full, k))
    kernel = elementwise.ElementwiseKernel(value, ["float32"] * len(arrays))

    def numpy_run(*xs: np.ndarray) -> np.ndarray:
        v = xs[0]
        for cls, full, k in steps:
            v = cls.run_eager([v] if k is None else [v, xs[k]], full)[0]
        return v
    return numpy_run, lambda *xs: kernel(*xs)[0], arrays


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def compare(label: str, ours: Callable[[], Any], ref: Callable[[], Any], rounds: int,
            results: list[tuple[str, float, float, float]]) -> None:
    compile_s = timed(ours)
    np.testing.assert_allclose(ours(), ref(), rtol=1e-4, atol=1e-4)
    a, b = [], []
    for _ in range(rounds):  # interleaved
        a.append(timed(ours))
        b.append(timed(ref))
    ma, mb = statistics.median(a), statistics.median(b)
    results.append((label, ma, mb, compile_s))
    print(f"{label:<44} {ma * 1e3:>10.3f} {mb * 1e3:>10.3f} {mb / ma:>7.2f}x "
          f"{compile_s * 1e3:>9.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print(machine())
    print(f"kernel cache: {engine.cache_dir()}")
    print(f"{'case':<44} {'tostatic':>10} {'numpy':>10} {'speedup':>8} {'compile':>9}")
    print(f"{'':<44} {'ms':>10} {'ms':>10} {'':>8} {'ms':>9}")
    results: list[tuple[str, float, float, float]] = []
    n = 10_000_000
    for label, ops, shapes in [
        ("chain mul,add,relu,mul [10M] bcast [1]", [("pd.multiply", {}, 1), ("pd.add", {}, 2),
                                                  ("pd.relu", {}, None),
                                                  ("pd.multiply", {}, 3)],
         [(n,), (1,), (1,), (1,)]),
        ("chain scale,add,sigmoid,mul [10M] same shape", [("pd.scale", {"scale": 0.5}, None),
                                                         ("pd.add", {}, 1),
                                                         ("pd.sigmoid", {}, None),
                                                         ("pd.multiply", {}, 0)],
         [(n,), (n,)]),
        ("chain mul,add,hardswish,add [1000,10000] rows", [("pd.multiply", {}, 1),
                                                           ("pd.add", {}, 2),
                                                           ("pd.hardswish", {}, None),
                                                           ("pd.add", {}, 3)],
         [(1000, 10000), (1000, 1), (1000, 1), (1000, 10000)]),
    ]:
        ref, ours, arrays = chain(ops, shapes)
        compare(label, lambda: ours(*arrays), lambda: ref(*arrays), args.rounds, results)

    rng = np.random.default_rng(1)
    total_ours, total_ref = [], []
    for c, h, s, count in MOBILENET_V2_DEPTHWISE:
        x = rng.standard_normal((1, c, h, h)).astype(np.float32)
        w = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
        compare(f"depthwise 3x3 C={c} {h}x{h} stride {s} (x{count})",
                lambda: depthwise.depthwise_conv2d(x, w, (s, s), ((1, 1), (1, 1)), (1, 1)),
                lambda: conv.conv2d_kernel(x, w, (s, s), (1, 1), "EXPLICIT", (1, 1), c, "NCHW"),
                args.rounds, results)
        total_ours.append(results[-1][1] * count)
        total_ref.append(results[-1][2] * count)
    print(f"{'MobileNetV2 depthwise convs, all 17':<44} {sum(total_ours) * 1e3:>10.3f} "
          f"{sum(total_ref) * 1e3:>10.3f} {sum(total_ref) / sum(total_ours):>7.2f}x")

    scores = rng.standard_normal((12 * 128, 128)).astype(np.float32)
    compare("softmax rows [12*128, 128] (BERT-base, seq 128)", lambda: rows.softmax(scores),
            lambda: Softmax.eager(scores, -1), args.rounds, results)
    hidden = rng.standard_normal((128, 768)).astype(np.float32)
    g, b = rng.standard_normal(768).astype(np.float32), rng.standard_normal(768).astype(np.float32)
    compare("layer_norm rows [128, 768]", lambda: rows.layer_norm(hidden, g, b, 1e-12, 1)[0],
            lambda: layer_norm.layer_norm(hidden, g, b, 1e-12, 1)[0], args.rounds, results)
    x = rng.standard_normal((1, 64, 112, 112)).astype(np.float32)
    attrs = dict(pooling_type="max", ksize=(3, 3), strides=(2, 2), paddings=(1, 1),
                 ceil_mode=False, exclusive=True, data_format="NCHW", global_pooling=False,
                 adaptive=False, padding_algorithm="EXPLICIT")
    dims = pooling._dims("pd.pool2d", (112, 112), (3, 3), (2, 2), (1, 1), False, "max",
                         False, False, "EXPLICIT")
    from tostatic.codegen import pool
    compare("max pool 3x3/2 [1, 64, 112, 112] (ResNet stem)",
            lambda: pool.pool2d(x, dims, True, True),
            lambda: pooling.pool2d_kernel(x, **attrs), args.rounds, results)
    feat = rng.standard_normal((8, 1280, 7, 7)).astype(np.float32)
    compare("global mean [8, 1280, 7, 7]", lambda: reduce.reduce(feat, "mean", (2, 3), True,
                                                                 feat.dtype),
            lambda: feat.mean(axis=(2, 3), keepdims=True, dtype=feat.dtype), args.rounds,
            results)
    print(f"modules compiled {engine.STATS['compiled']}, loaded from the disk cache "
          f"{engine.STATS['loaded_from_disk']}")


if __name__ == "__main__":
    main()
