"""Would one level of Strassen pay on ResNet-50's 1x1 convolutions at batch 1, one thread?

Strassen's algorithm multiplies two block-2x2 matrices with 7 half-size products instead of
8: 1/8 fewer multiplies, which would lower the float32 bound of `flop_bound.py` (it assumes
the 1x1 layers have no fast algorithm). The weight's block sums could be made once at bind,
so the least a real kernel pays is the 7 products themselves. This times them (numpy's sgemm
on the half-size blocks, inputs already summed) against the one full product, for the
GEMM shapes of ResNet-50's 1x1 layers (pixels x input channels x output channels), and checks
the full Strassen result against float64.

    python benchmarks/strassen_trial.py
"""
from __future__ import annotations

import os
import statistics
import time

for _name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # the machine's own sgemm kernel
    os.environ.pop(_name, None)
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

SHAPES = [(3136, 64, 256), (3136, 256, 64), (784, 128, 512), (784, 512, 128),
          (196, 256, 1024), (196, 1024, 256), (49, 512, 2048), (49, 2048, 512)]


def median_ms(fn, calls: int = 60, rounds: int = 5) -> float:
    meds = []
    for _ in range(rounds):
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        meds.append(statistics.median(times))
    return statistics.median(meds) * 1e3


def blocks(x: np.ndarray) -> tuple[np.ndarray, ...]:
    r, c = x.shape[0] // 2, x.shape[1] // 2
    return x[:r, :c], x[:r, c:], x[r:, :c], x[r:, c:]


def strassen_operands(a: np.ndarray, b: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 7 products' operands (block sums made here, as a bind would make b's)."""
    a11, a12, a21, a22 = blocks(a)
    b11, b12, b21, b22 = blocks(b)
    pairs = [(a11 + a22, b11 + b22), (a21 + a22, b11), (a11, b12 - b22), (a22, b21 - b11),
             (a11 + a12, b22), (a21 - a11, b11 + b12), (a12 - a22, b21 + b22)]
    return [(np.ascontiguousarray(x), np.ascontiguousarray(y)) for x, y in pairs]


def strassen_result(m: list[np.ndarray]) -> np.ndarray:
    return np.block([[m[0] + m[3] - m[4] + m[6], m[2] + m[4]],
                     [m[1] + m[3], m[0] - m[1] + m[2] + m[5]]])


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'pixels x K x N':>20}  {'sgemm ms':>9}  {'GFLOP/s':>8}  {'7 products ms':>13}  "
          f"{'ratio':>6}  {'rel. error full / Strassen':>26}")
    for rows, k, n in SHAPES:
        rows -= rows % 2
        a = rng.standard_normal((rows, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = np.empty((rows, n), np.float32)
        pairs = strassen_operands(a, b)
        products = [np.empty((x.shape[0], y.shape[1]), np.float32) for x, y in pairs]

        def full() -> None:
            np.matmul(a, b, out=c)

        def seven() -> None:
            for (x, y), out in zip(pairs, products):
                np.matmul(x, y, out=out)

        exact = a.astype(np.float64) @ b.astype(np.float64)
        scale = np.abs(exact).max()
        full()
        seven()
        errors = (np.abs(c - exact).max() / scale,
                  np.abs(strassen_result(products) - exact).max() / scale)
        t_full, t_seven = median_ms(full), median_ms(seven)
        print(f"{rows:>8} x {k:>4} x {n:>4}  {t_full:9.3f}  {2 * rows * k * n / t_full / 1e6:8.0f}"
              f"  {t_seven:13.3f}  {t_seven / t_full:6.2f}  {errors[0]:12.1e} / {errors[1]:.1e}")


if __name__ == "__main__":
    main()
