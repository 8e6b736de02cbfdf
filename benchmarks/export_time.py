"""Export time: tostatic's jit.save against Paddle 3.3.1's jit.save on the same MLP, in one
process. Prints medians and the ratio tostatic / paddle, plus tostatic's time per pass and
what the verifier modes cost.

    python benchmarks/export_time.py [--layers 200] [--width 64] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("FLAGS_enable_pir_api", "0")  # Paddle writes legacy .pdmodel files


def mlp(nn, layers: int, width: int):
    blocks = []
    for _ in range(layers):
        blocks += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*blocks)


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=200)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import tostatic
    from tostatic.frontend.capture.static_function import trace

    out = tempfile.mkdtemp()
    ours = mlp(tostatic.nn, args.layers, args.width)
    spec = [tostatic.static.InputSpec([None, args.width], "float32", "x")]
    t_ours = median_time(lambda: tostatic.jit.save(ours, f"{out}/ours", input_spec=spec),
                         args.repeat)
    print(f"machine: {platform.machine()} {platform.processor() or ''} "
          f"{os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"model: MLP of {args.layers} x (Linear({args.width}) + ReLU), "
          f"median of {args.repeat}")
    print(f"tostatic jit.save   {t_ours * 1e3:8.1f} ms")
    try:
        import paddle
    except ImportError:
        print("paddle not installed: no anchor")
    else:
        theirs = mlp(paddle.nn, args.layers, args.width)
        pspec = [paddle.static.InputSpec([None, args.width], "float32", "x")]
        t_paddle = median_time(
            lambda: paddle.jit.save(theirs, f"{out}/paddle", input_spec=pspec), args.repeat)
        print(f"paddle jit.save     {t_paddle * 1e3:8.1f} ms")
        print(f"ratio tostatic / paddle: {t_ours / t_paddle:.2f}")
    for verify in ("each", "end", "off"):
        t = median_time(lambda: trace(ours.forward, spec, ours, verify=verify), args.repeat)
        print(f"trace + default pipeline, verify={verify:<4}  {t * 1e3:8.1f} ms")
    cp = trace(ours.forward, spec, ours, pipeline="export")
    for name, seconds in cp.manager.timings:
        print(f"  {name:<24} {seconds * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
