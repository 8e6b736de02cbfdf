"""Measure a model's latency and throughput in tostatic's native runtime.

Runs the model --warmup times unmeasured, then --iterations times (or until --max-time
seconds have passed, after at least 10 runs), timing each run; prints the median, p90 and p99
latency and the throughput. Progress goes to stderr. Inputs as in `tostatic run` (random by
default, --batch for the first any-size dim).

examples:
  tostatic bench out/model --batch 8 --threads 2
  tostatic bench model.pdmodel --input io.npz --iterations 500 --json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

import numpy as np

from tostatic.cli import blas
from tostatic.cli.common import CliError, fmt_shape
from tostatic.cli.inputs import add_input_arguments, make_inputs
from tostatic.cli.model_files import load, resolve


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file, prefix or directory")
    p.add_argument("--params", help="the params file, when it is not MODEL's prefix + "
                   ".pdiparams")
    add_input_arguments(p)
    p.add_argument("--threads", type=int, help="threads of numpy's BLAS (default: as it is, "
                   "OPENBLAS_NUM_THREADS or the core count)")
    p.add_argument("--warmup", type=int, default=10, help="unmeasured runs first (default 10)")
    p.add_argument("-n", "--iterations", type=int, default=100,
                   help="measured runs (default 100)")
    p.add_argument("--max-time", type=float, default=10.0, metavar="SECONDS",
                   help="stop measuring after this long, if 10 runs are done (default 10)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


class Progress:
    """A bar on stderr when it is a terminal; otherwise one line per phase."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def start(self, phase: str, total: int) -> None:
        self.phase, self.total = phase, total
        if not self.tty:
            print(f"{phase}: {total} runs", file=sys.stderr, flush=True)

    def update(self, done: int, note: str = "") -> None:
        now = time.perf_counter()
        if not self.tty or (now - self.last < 0.1 and done < self.total):
            return
        self.last = now
        width = 30
        filled = width * done // max(self.total, 1)
        sys.stderr.write(f"\r{self.phase:<9} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{self.total} {note}\x1b[K")
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def measure(fn: Callable[[], Any], warmup: int, iterations: int, max_time: float,
            progress: Progress) -> list[float]:
    progress.start("warm-up", warmup)
    for i in range(warmup):
        fn()
        progress.update(i + 1)
    progress.end()
    progress.start("measuring", iterations)
    times: list[float] = []
    deadline = time.perf_counter() + max_time
    for i in range(iterations):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        progress.update(i + 1, f"median {np.median(times) * 1e3:.3f} ms")
        if len(times) >= 10 and time.perf_counter() > deadline:
            break
    progress.end()
    return times


def run(args: argparse.Namespace) -> int:
    if args.iterations < 1 or args.warmup < 0 or args.batch < 1:
        raise CliError("--iterations and --batch must be at least 1, --warmup at least 0")
    if args.threads is not None:
        if args.threads < 1:
            raise CliError("--threads must be at least 1")
        if not blas.set_threads(args.threads):
            print("tostatic bench: warning: cannot set the BLAS thread count in this process; "
                  "set OPENBLAS_NUM_THREADS before starting instead", file=sys.stderr)
    files = resolve(args.model, args.params)
    model = load(files)
    feeds = make_inputs(model, args, quiet=args.json)
    model.run(feeds)  # the first run checks the feeds: errors before any measuring
    times = np.array(measure(lambda: model.run(feeds), args.warmup, args.iterations,
                             args.max_time, Progress()))
    median = float(np.median(times))
    batch = int(feeds[0].shape[0]) if feeds and feeds[0].ndim else 1
    result = {
        "model": files.model,
        "inputs": [{"name": n, "dtype": str(a.dtype), "shape": list(a.shape)}
                   for n, a in zip(model.feed_names, feeds)],
        "batch": batch,
        "threads": blas.get_threads(),
        "warmup": args.warmup,
        "runs": len(times),
        "latency_ms": {"median": median * 1e3,
                       "p90": float(np.percentile(times, 90)) * 1e3,
                       "p99": float(np.percentile(times, 99)) * 1e3,
                       "mean": float(times.mean()) * 1e3,
                       "min": float(times.min()) * 1e3,
                       "max": float(times.max()) * 1e3},
        "throughput": {"runs_per_s": 1.0 / median, "samples_per_s": batch / median},
    }
    if os.environ.get("OPENBLAS_CORETYPE"):
        result["note"] = (f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} forces "
                          f"numpy's BLAS kernel")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    lat = result["latency_ms"]
    print(f"model       {files.model}")
    print("inputs      " + ", ".join(f"{i['name']} {i['dtype']} {fmt_shape(i['shape'])}"
                                      for i in result["inputs"]))
    print(f"threads     {result['threads'] if result['threads'] is not None else '?'} (BLAS)")
    print(f"runs        {result['runs']} measured after {args.warmup} warm-up")
    print(f"latency     median {lat['median']:.3f} ms   p90 {lat['p90']:.3f} ms   "
          f"p99 {lat['p99']:.3f} ms   (min {lat['min']:.3f}, mean {lat['mean']:.3f})")
    print(f"throughput  {result['throughput']['runs_per_s']:.1f} runs/s, "
          f"{result['throughput']['samples_per_s']:.1f} samples/s (batch {batch})")
    if "note" in result:
        print(f"note        {result['note']}")
    return 0
