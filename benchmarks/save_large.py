"""Saving and loading a big model: tostatic against Paddle 3.3.1, each in its own process.

    python benchmarks/save_large.py [--layers 4] [--width 8192] [--rounds 3]

The model is `layers` x Linear(width, width) (4 x 8192: 1.0 GiB of float32 weights). In each
round, each framework runs in a fresh subprocess (their order alternates from round to round)
that builds the model, then times one `jit.save` while a thread samples the process's
resident memory every 2 ms: "peak +" is the highest RSS during the save minus the RSS just
before, as a fraction of the parameter bytes. Then it times loading the files back
(tostatic: `jit.load`; Paddle: `paddle.inference.create_predictor`, what serving uses) the
same way. Medians over the rounds. `os.sync()` runs before each timed step, so that no
framework pays for writing back the other's files. tostatic's save fsyncs its files (it is
atomic, see serialization/artifact.py); Paddle's does not. "warm load" loads the same files a
second time: on a machine that reclaims clean page cache eagerly (fsync'ed files are clean at
once), the first load of tostatic's files reads the disk, Paddle's unsynced ones stay cached. tostatic's save runs
with its defaults (verify on save included; the model is big enough that verification is
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


def child(framework: str, layers: int, width: int, repeat: int, out: str) -> dict:
    if framework == "paddle":
        os.environ["FLAGS_enable_pir_api"] = "0"  # legacy .pdmodel, like tostatic
        import paddle as fw
        from paddle import inference
    else:
        sys.path.insert(0, ROOT)
        import tostatic as fw
        inference = None
    fw.seed(0)
    model = fw.nn.Sequential(*[fw.nn.Linear(width, width) for _ in range(layers)])
    model.eval()
    spec = [fw.static.InputSpec([None, width], "float32", "x")]
    nbytes = sum(int(p.numpy().nbytes) for p in model.parameters())
    save_t, save_grow = _measure(
        lambda i: fw.jit.save(model, os.path.join(out, f"m{i}"), input_spec=spec), repeat)
    if framework == "paddle":
        def load(i):
            cfg = inference.Config(os.path.join(out, f"m{i}.pdmodel"),
                                   os.path.join(out, f"m{i}.pdiparams"))
            cfg.disable_glog_info()
            return inference.create_predictor(cfg)
    else:
        def load(i):
            return fw.jit.load(os.path.join(out, f"m{i}"))
    load_t, load_grow = _measure(load, repeat)
    warm_t, _ = _measure(load, repeat)  # the files now in the page cache
    return {"framework": framework, "param_bytes": nbytes, "save_s": save_t,
            "save_peak_grow": save_grow, "load_s": load_t, "load_peak_grow": load_grow,
            "warm_load_s": warm_t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--width", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--frameworks", default="tostatic,paddle")
    args = ap.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory(dir=os.getcwd()) as out:
            print(json.dumps(child(args.child, args.layers, args.width, 1, out)))
        return
    frameworks = args.frameworks.split(",")
    runs: dict[str, list[dict]] = {fw: [] for fw in frameworks}
    for r in range(args.rounds):
        for fw in (frameworks if r % 2 == 0 else frameworks[::-1]):
            proc = subprocess.run([sys.executable, __file__, "--child", fw, "--layers",
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
            for key in ("save_s", "save_peak_grow", "load_s", "load_peak_grow", "warm_load_s"):
                row[key] = statistics.median(x[key] for x in runs[fw])
            rows.append(row)
    if not rows:
        return
    gib = rows[0]["param_bytes"] / 2**30
    print(f"model: {args.layers} x Linear({args.width}, {args.width}), {gib:.2f} GiB of "
          f"float32 parameters; median of {args.rounds} rounds; peak + = RSS growth / parameter bytes")
    print(f"{'':10}{'save s':>9}{'save peak +':>13}{'load s':>9}{'load peak +':>13}"
          f"{'warm load s':>13}")
    for r in rows:
        pb = r["param_bytes"]
        print(f"{r['framework']:10}{r['save_s']:9.2f}{r['save_peak_grow'] / pb:12.2f}x"
              f"{r['load_s']:9.2f}{r['load_peak_grow'] / pb:12.2f}x{r['warm_load_s']:13.2f}")
    if len(rows) == 2:
        print(f"save time tostatic / paddle: {rows[0]['save_s'] / rows[1]['save_s']:.2f}")


if __name__ == "__main__":
    main()
