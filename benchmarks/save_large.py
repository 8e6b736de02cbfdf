"""Saving and loading a big model: tostatic against Paddle 3.3.1, each in its own process.

    python benchmarks/save_large.py [--layers 4] [--width 8192] [--rounds 5] [--model resnet50]

The model is `layers` x Linear(width, width) (4 x 8192: 1.0 GiB of float32 weights), or
ResNet-50 (`--model resnet50`). In each round, each framework runs in a fresh subprocess
(their order alternates from round to round) that builds the model, then times one
`jit.save` while a thread samples the process's resident memory every 2 ms: "peak +" is the
highest RSS during the save minus the RSS just before, as a fraction of the parameter bytes.
Then it times loading the files back with the framework's inference predictor
(`inference.create_predictor`, what serving uses) and its first run on a batch of 1, the same
way; "warm" does both again on the same files. Medians over the rounds, and each round's
figures, since the machine may be shared. `os.sync()` runs before each timed step, so that
no framework pays for writing back the other's files. tostatic's save fsyncs its files (it
is atomic, see serialization/artifact.py); Paddle's does not. tostatic's save runs with its
defaults (verify on save included; the 1 GiB model is big enough that verification is
skipped, see jit.save's docstring).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """The highest RSS seen while the block runs, sampled by a thread."""

    def __enter__(self) -> "PeakRSS":
        self.start = _rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _measure(fn, repeat: int) -> tuple[float, int]:
    times, growth = [], 0
    for i in range(repeat):
        os.sync()  # start from a clean page cache: no writeback of an earlier run is timed
        with PeakRSS() as m:
            t0 = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t0)
        growth = max(growth, m.peak - m.start)
    return statistics.median(times), growth


def _model(fw, model: str, layers: int, width: int):
    """The model and its input shape: `layers` x Linear(width, width), or ResNet-50."""
    fw.seed(0)
    if model == "resnet50":
        net, shape = fw.vision.models.resnet50(), [3, 224, 224]
    else:
        net, shape = fw.nn.Sequential(*[fw.nn.Linear(width, width) for _ in range(layers)]), [width]
    net.eval()
    return net, shape


def child(framework: str, model: str, layers: int, width: int, repeat: int, out: str) -> dict:
    if framework == "paddle":
        os.environ["FLAGS_enable_pir_api"] = "0"  # legacy .pdmodel, like tostatic
        import paddle as fw
    else:
        sys.path.insert(0, ROOT)
        import tostatic as fw
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from predictors import handle_runner

    net, shape = _model(fw, model, layers, width)
    spec = [fw.static.InputSpec([None, *shape], "float32", "x")]
    nbytes = sum(int(p.numpy().nbytes) for p in net.parameters())
    save_t, save_grow = _measure(
        lambda i: fw.jit.save(net, os.path.join(out, f"m{i}"), input_spec=spec), repeat)
    feeds = {"x": np.random.default_rng(0).standard_normal([1, *shape]).astype(np.float32)}
    runs: list = []

    def load(i):  # each framework's inference predictor (what serving uses), then one run
        cfg = fw.inference.Config(os.path.join(out, f"m{i}.pdmodel"),
                                  os.path.join(out, f"m{i}.pdiparams"))
        cfg.disable_glog_info()
        t0 = time.perf_counter()
        predictor = fw.inference.create_predictor(cfg)
        t1 = time.perf_counter()
        handle_runner(predictor)(feeds)
        runs.append((t1 - t0, time.perf_counter() - t1))
        return predictor

    load_t, load_grow = _measure(load, repeat)
    warm_t, _ = _measure(load, repeat)  # the same files again, in the page cache
    return {"framework": framework, "param_bytes": nbytes, "save_s": save_t,
            "save_peak_grow": save_grow, "load_s": runs[0][0], "run_s": runs[0][1],
            "load_peak_grow": load_grow, "warm_load_s": warm_t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--width", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", choices=["linear", "resnet50"], default="linear")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--frameworks", default="tostatic,paddle")
    args = ap.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory(dir=os.getcwd()) as out:
            print(json.dumps(child(args.child, args.model, args.layers, args.width, 1, out)))
        return
    frameworks = args.frameworks.split(",")
    runs: dict[str, list[dict]] = {fw: [] for fw in frameworks}
    for r in range(args.rounds):
        for fw in (frameworks if r % 2 == 0 else frameworks[::-1]):
            proc = subprocess.run([sys.executable, __file__, "--child", fw, "--model", args.model, "--layers",
                                   str(args.layers), "--width", str(args.width)],
                                  capture_output=True, text=True)
            if proc.returncode:
                print(f"{fw}: failed\n{proc.stderr[-2000:]}")
                continue
            runs[fw].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    rows = []
    for fw in frameworks:
        if runs[fw]:
            row = dict(runs[fw][0])
            for key in ("save_s", "save_peak_grow", "load_s", "run_s", "load_peak_grow",
                        "warm_load_s"):
                row[key] = statistics.median(x[key] for x in runs[fw])
            rows.append(row)
    if not rows:
        return
    gib = rows[0]["param_bytes"] / 2**30
    what = ("ResNet-50" if args.model == "resnet50"
            else f"{args.layers} x Linear({args.width}, {args.width})")
    print(f"model: {what}, {gib:.2f} GiB of float32 parameters; median of {args.rounds} "
          f"rounds; peak + = RSS growth / parameter bytes; load = create_predictor, run = its "
          f"first run; warm = both again on the same files")
    print(f"{'':10}{'save s':>8}{'save peak +':>13}{'load s':>8}{'run s':>7}{'load+run':>10}"
          f"{'load peak +':>13}{'warm s':>8}")
    for r in rows:
        pb = r["param_bytes"]
        print(f"{r['framework']:10}{r['save_s']:8.2f}{r['save_peak_grow'] / pb:12.2f}x"
              f"{r['load_s']:8.2f}{r['run_s']:7.2f}{r['load_s'] + r['run_s']:10.2f}"
              f"{r['load_peak_grow'] / pb:12.2f}x{r['warm_load_s']:8.2f}")
    if len(rows) == 2:
        a, b = rows
        print(f"tostatic / paddle: save {a['save_s'] / b['save_s']:.2f}, load+first run "
              f"{(a['load_s'] + a['run_s']) / (b['load_s'] + b['run_s']):.2f}")
    print("per round (tostatic save, paddle save, tostatic load+run, paddle load+run): "
          + "; ".join(" ".join(f"{x:.2f}" for x in vals) for vals in zip(
              *([r["save_s"] for r in runs[fw]] for fw in frameworks),
              *([r["load_s"] + r["run_s"] for r in runs[fw]] for fw in frameworks))))

if __name__ == "__main__":
    main()
