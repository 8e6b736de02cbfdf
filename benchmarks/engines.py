"""tostatic against the engines users deploy with, on the same files, one process per engine.

Models: the MLP 256-512-512-10, ResNet-18, ResNet-50, MobileNetV2 (224x224) and the BERT-class
classifier of examples/bert_classifier.py (4 layers, hidden 256, seq 128), all exported once
by tostatic.jit.save (batch norms randomised). Engines, each in its own worker process:

- tostatic: tostatic.inference (the native runtime, with its inference passes),
- paddle.inference 3.3.1 on the same .pdmodel,
- onnxruntime on paddle2onnx's conversion of it (converted once, before timing),
- OpenVINO's Paddle reader on it (f32, CPU).

For every model, batch size (1, 8) and thread count (1, 2), the four workers load the model
(timed: load + first run) and then run in interleaved rounds, each round asking every worker
for one call, the order rotating, so that the load of a shared machine hits every engine
alike. With several threads, after every call the benchmark waits SETTLE seconds (0.3 s)
before the next: an engine's worker threads keep spinning after its call returns, on the
cores the next engine needs. (At one thread no engine has worker threads, and calls follow
each other at once: the wait would make every call start from cold caches, 0.05 -> 0.2 ms
for the MLP in every engine.) Measured here at 2 threads (`--spin-check`: the CPU time a worker burns after
returning): Paddle Inference's OpenMP threads spin for KMP_BLOCKTIME, 200 ms (about 190 ms
of CPU), onnxruntime's intra-op pool for 20-50 ms (about 28 ms), OpenVINO and tostatic not at
all. Without the wait the engine called next shared the 2 cores with them (OpenVINO
MobileNetV2, batch 1: 4.4 ms at 1 thread, 33.5 ms at 2), which made every 2-thread row
meaningless; how each engine computes is unchanged. The table gives the median and p90
latency, the ratio tostatic / engine (below 1: tostatic is faster), load + first run, the
worker's peak RSS, and how far each engine's outputs are from Paddle Inference's.

Load + first run is timed in a fresh process from `import` to the first output. tostatic's is
a warm start, as a deployed model's every start but the first: its kernel cache (a directory of
this run) already holds the machine code a throwaway worker compiled, and Python loads its
modules from bytecode (compiled once here into a pycache of this run, as an installed package
has it, since this environment sets PYTHONDONTWRITEBYTECODE). Its first-ever start, with an
empty kernel cache, is the `cold` figure beside it.

The workers run without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (this environment sets them,
forcing a slower BLAS kernel), with OMP / OpenBLAS / MKL threads set to the thread count;
the script prints the machine and the BLAS kernel numpy uses (threadpoolctl, else OpenBLAS's
own get_corename).

    python benchmarks/engines.py [--models mlp,resnet18,resnet50,mobilenet_v2,bert]
        [--batches 1,8] [--threads 1,2] [--rounds 15] [--warmup 3] [--settle 0.3]
        [--markdown FILE]
    python benchmarks/engines.py --spin-check --models resnet18 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tostatic
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from predictors import handle_runner, paddle_predictor  # noqa: E402

UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# seconds between two calls: longer than any engine's threads spin once a call has returned
# (Paddle's Intel OpenMP: KMP_BLOCKTIME, 200 ms), so each call starts with the cores idle
SETTLE = 0.3
ENGINES = ("tostatic", "paddle.inference", "onnxruntime", "openvino")
VISION = ("resnet18", "resnet50", "mobilenet_v2")


# ------------------------------------------------------------------------------ models

def export_models(names: list[str], out: Path) -> dict[str, Path]:
    """Each model saved by tostatic.jit.save with a dynamic batch; its file prefix."""
    import tostatic
    from tostatic.static import InputSpec

    prefixes = {}
    rng = np.random.default_rng(0)
    for name in names:
        prefix = out / name
        if name == "mlp":
            nn = tostatic.nn
            model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512),
                                  nn.ReLU(), nn.Linear(512, 10))
            spec = [InputSpec([None, 256], "float32", "x")]
        elif name == "bert":
            import bert_classifier

            model = bert_classifier.BertForSequenceClassification(
                tostatic, bert_classifier.BertConfig())
            spec = bert_classifier.input_spec(tostatic)
        else:
            model = getattr(tostatic.vision.models, name)()
            for layer in model.sublayers():
                if isinstance(layer, tostatic.nn.BatchNorm2D):
                    n = layer.weight.shape[0]
                    layer._mean.set_value(rng.uniform(-0.2, 0.2, n).astype(np.float32))
                    layer._variance.set_value(rng.uniform(0.5, 1.5, n).astype(np.float32))
            spec = [InputSpec([None, 3, 224, 224], "float32", "x")]
        model.eval()
        tostatic.jit.save(model, str(prefix), input_spec=spec)
        prefixes[name] = prefix
    return prefixes


def inputs_for(name: str, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(batch)
    if name == "mlp":
        return {"x": rng.standard_normal((batch, 256)).astype(np.float32)}
    if name == "bert":
        import bert_classifier

        return bert_classifier.example_inputs(batch, 128, bert_classifier.BertConfig().vocab_size)
    return {"x": rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)}


def to_onnx(prefix: Path) -> None:
    import paddle2onnx

    paddle2onnx.export(str(prefix) + ".pdmodel", str(prefix) + ".pdiparams",
                       str(prefix) + ".onnx", opset_version=13, enable_optimize=False)


# ------------------------------------------------------------------------------ workers

def make_runner(engine: str, prefix: str, threads: int):
    """A function feeds -> first output, for one engine, loaded here."""
    if engine == "tostatic":
        import tostatic

        config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
        config.set_cpu_math_library_num_threads(threads)
        predictor = tostatic.inference.create_predictor(config)
        names = predictor.get_input_names()
        return lambda feeds: predictor.run([feeds[n] for n in names])[0]
    if engine == "paddle.inference":
        return handle_runner(paddle_predictor(prefix, threads))
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(prefix + ".onnx", options,
                                       providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return lambda feeds: session.run(None, {n: feeds[n] for n in names})[0]
    import openvino

    core = openvino.Core()
    compiled = core.compile_model(core.read_model(prefix + ".pdmodel"), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    names = [p.get_any_name() for p in compiled.inputs]
    out = compiled.outputs[0]
    return lambda feeds: request.infer({n: feeds[n] for n in names})[out].copy()


def rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not inherited through exec
    from the parent)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(engine: str, prefix: str, threads: int, feeds_file: str, out_file: str) -> None:
    """Load, run once (timed), save that output; then run on request: `run` -> one call's
    seconds, `quit` -> the peak RSS."""
    base = rss_mb()
    with np.load(feeds_file) as z:
        feeds = {k: z[k] for k in z.files}
    start = time.perf_counter()
    run = make_runner(engine, prefix, threads)
    y = run(feeds)
    first = time.perf_counter() - start
    np.save(out_file, np.asarray(y))
    print(json.dumps({"load_first_s": first, "rss_before_mb": base}), flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            t = time.perf_counter()
            run(feeds)
            print(json.dumps(time.perf_counter() - t), flush=True)
        else:
            print(json.dumps({"peak_rss_mb": rss_mb()}), flush=True)
            return


def profile_worker(prefix: str, feeds_file: str, runs: int) -> None:
    """tostatic's time per op type and kernel (Config.enable_profile's table), one thread."""
    import tostatic

    with np.load(feeds_file) as z:
        feeds = {k: z[k] for k in z.files}
    config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    config.set_cpu_math_library_num_threads(1)
    predictor = tostatic.inference.create_predictor(config)
    arrays = [feeds[n] for n in predictor.get_input_names()]
    for _ in range(3):
        predictor.run(arrays)
    profile = predictor._model.plan.enable_profile()
    for _ in range(runs):
        predictor.run(arrays)
    print(profile.table(), flush=True)


def bytecode_env(tmp: Path) -> dict[str, str]:
    """Workers load Python modules from bytecode, as installed packages do: this checkout's
    tostatic is compiled once into a pycache of the run (the other engines are installed
    packages, compiled when installed)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "tostatic")],
                   env=env, check=True)
    return {"PYTHONPYCACHEPREFIX": env["PYTHONPYCACHEPREFIX"]}


class Worker:
    env: dict[str, str] = {}  # set for every worker (bytecode_env); with it, bytecode is used

    def __init__(self, engine: str, prefix: Path, threads: int, feeds_file: Path,
                 out_file: Path, cache_dir: Path | None = None):
        drop = UNSET + (("PYTHONDONTWRITEBYTECODE",) if Worker.env else ())
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update({"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
                    "MKL_NUM_THREADS": str(threads), "FLAGS_enable_pir_api": "0",
                    "GLOG_minloglevel": "3", "PYTHONPATH": str(ROOT)})
        env.update(Worker.env)
        if cache_dir is not None:
            env["TOSTATIC_CACHE_DIR"] = str(cache_dir)
        self.engine, self.out_file = engine, out_file
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", engine, str(prefix), str(threads),
             str(feeds_file), str(out_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env=env)
        self.ready = self._read()

    def _read(self):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.engine} worker died (exit {self.proc.wait()})")
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue  # a library's own printing

    def call(self) -> float:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> dict:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        info = self._read()
        self.proc.wait()
        return info


# ------------------------------------------------------------------------------ the machine

def machine() -> list[str]:
    lines = []
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        keep = ("Model name", "CPU(s):", "Thread(s) per core", "Core(s) per socket",
                "L2 cache", "L3 cache")
        lines += [" ".join(l.split()) for l in out.splitlines() if l.startswith(keep)]
    except OSError:
        lines.append(platform.processor())
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    lines.append("SIMD: " + " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16")
                                     if f" {f}" in flags))
    return lines


def blas() -> str:
    code = ("import json, numpy\n"
            "try:\n from threadpoolctl import threadpool_info\n"
            " print(json.dumps([f\"{i['internal_api']} {i['version']} kernel \"\n"
            "  f\"{i['architecture']}\" for i in threadpool_info() if i['user_api']=='blas']))\n"
            "except ImportError:\n"
            " import ctypes\n from tostatic.runtime.threads import _blas_libraries\n"
            " out = []\n for p in _blas_libraries():\n  lib = ctypes.CDLL(p)\n"
            "  for pre in ('scipy_openblas_', 'openblas_'):\n"
            "   for suf in ('64_', ''):\n"
            "    c, k = getattr(lib, pre+'get_config'+suf, None), "
            "getattr(lib, pre+'get_corename'+suf, None)\n"
            "    if c and k:\n     c.restype = k.restype = ctypes.c_char_p\n"
            "     out.append(c().decode() + ' -- kernel ' + k().decode() + ' (ctypes; "
            "threadpoolctl not installed)')\n"
            " print(json.dumps(out))\n")
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    found = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else []
    return "; ".join(sorted(set(found))) or f"unknown ({out.stderr.strip()[-200:]})"


def versions() -> str:
    code = ("import importlib, json\nout = {}\n"
            "for m in ('numpy', 'paddle', 'onnxruntime', 'openvino', 'paddle2onnx'):\n"
            " try: out[m] = importlib.import_module(m).__version__\n"
            " except Exception: out[m] = 'missing'\nprint(json.dumps(out))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return ", ".join(f"{k} {v}" for k, v in found.items())


# ------------------------------------------------------------------------------ the run

def bench_one(name: str, prefix: Path, batch: int, threads: int, rounds: int, warmup: int,
              tmp: Path, settle: float = SETTLE) -> list[dict]:
    feeds_file = tmp / f"{name}_b{batch}.npz"
    np.savez(feeds_file, **inputs_for(name, batch))
    # tostatic's first-ever start (an empty kernel cache of its own), then a throwaway start
    # that fills the run's kernel cache, so the measured worker below starts warm
    out = tmp / f"{name}_b{batch}_t{threads}_cold.npy"
    cold = Worker("tostatic", prefix, threads, feeds_file, out,
                  tmp / f"cold-{name}-b{batch}-t{threads}")
    cold_s = cold.ready["load_first_s"]
    cold.close()
    Worker("tostatic", prefix, threads, feeds_file, out, tmp / "kernels").close()
    workers = {}
    for engine in ENGINES:  # loaded one after the other: load times do not overlap
        workers[engine] = Worker(engine, prefix, threads, feeds_file,
                                 tmp / f"{name}_b{batch}_t{threads}_{engine}.npy",
                                 tmp / "kernels")
    for w in workers.values():
        for _ in range(warmup):
            w.call()
            time.sleep(settle)
    times = {e: [] for e in ENGINES}
    for r in range(rounds):
        order = ENGINES[r % len(ENGINES):] + ENGINES[:r % len(ENGINES)]
        for engine in order:
            times[engine].append(workers[engine].call())
            time.sleep(settle)  # the engine's spinning threads go idle (SETTLE)
    reference = np.load(workers["paddle.inference"].out_file)
    scale = float(np.abs(reference).max()) or 1.0
    rows = []
    for engine, w in workers.items():
        info = w.close()
        t = sorted(times[engine])
        rows.append({"model": name, "batch": batch, "threads": threads, "engine": engine,
                     "median_ms": statistics.median(t) * 1e3,
                     "p90_ms": t[min(len(t) - 1, int(round(0.9 * (len(t) - 1))))] * 1e3,
                     "load_first_s": w.ready["load_first_s"],
                     "peak_rss_mb": info["peak_rss_mb"],
                     "diff": float(np.abs(np.load(w.out_file) - reference).max()) / scale})
    best = min(r["median_ms"] for r in rows if r["engine"] in ("onnxruntime", "openvino"))
    ours = rows[0]["median_ms"]
    for r in rows:
        r["ratio"] = ours / r["median_ms"]
    rows[0]["ratio_best"] = ours / best
    rows[0]["cold_s"] = cold_s
    return rows


def profiles(names: list[str], runs: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        prefixes = export_models(names, tmp)
        for name in names:
            feeds_file = tmp / f"{name}.npz"
            np.savez(feeds_file, **inputs_for(name, 1))
            out = subprocess.run([sys.executable, __file__, "--rounds", str(runs),
                                  "--profile-worker", str(prefixes[name]), str(feeds_file)],
                                 capture_output=True, text=True, env=env)
            print(f"\n### {name} (batch 1, 1 thread, {runs} runs)\n\n```\n"
                  f"{out.stdout.strip() or out.stderr[-2000:]}\n```", flush=True)


def cpu_ns(pid: int) -> int:
    """CPU time of all of a process's threads (their schedstat), in ns."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{task}/schedstat").read().split()[0])
        except OSError:
            pass  # a thread that ended
    return total


def spin_check(names: list[str], threads: int, edges=(0.01, 0.05, 0.1, 0.2, 0.3, 0.5)) -> None:
    """The CPU time each engine's worker burns after its call has returned, per window
    (what SETTLE must outlast): batch 1, median of 3 calls."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        prefixes = export_models(names, tmp)
        for name in names:
            to_onnx(prefixes[name])
            feeds = tmp / f"{name}.npz"
            np.savez(feeds, **inputs_for(name, 1))
            print(f"\n{name}, batch 1, {threads} threads: CPU ms after the call returned, "
                  f"in the windows ending at {edges} s")
            for engine in ENGINES:
                w = Worker(engine, prefixes[name], threads, feeds, tmp / f"{engine}.npy",
                           tmp / "kernels")
                burnt = []
                for _ in range(3):
                    time.sleep(1.0)
                    w.call()
                    start, before, row = time.perf_counter(), cpu_ns(w.proc.pid), []
                    for edge in edges:
                        time.sleep(max(0.0, start + edge - time.perf_counter()))
                        now = cpu_ns(w.proc.pid)
                        row.append((now - before) / 1e6)
                        before = now
                    burnt.append(row)
                w.close()
                print(f"{engine:<18}" + "".join(f"{v:8.1f}" for v in np.median(burnt, 0)),
                      flush=True)


def table(rows: list[dict]) -> str:
    out = ["| model | batch | threads | engine | median ms | p90 ms | tostatic / engine | "
           "load + first run s (tostatic: warm / cold) | peak RSS MB | "
           "max abs diff / max abs (vs Paddle) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = (f"**{r['ratio_best']:.2f}** vs best of ORT/OV" if "ratio_best" in r
                 else f"{r['ratio']:.2f}")
        cold = f" / {r['cold_s']:.2f}" if "cold_s" in r else ""
        out.append(f"| {r['model']} | {r['batch']} | {r['threads']} | {r['engine']} | "
                   f"{r['median_ms']:.3f} | {r['p90_ms']:.3f} | {ratio} | "
                   f"{r['load_first_s']:.2f}{cold} | {r['peak_rss_mb']:.0f} | "
                   f"{r['diff']:.1e} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mlp,resnet18,resnet50,mobilenet_v2,bert")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--settle", type=float, default=SETTLE,
                        help="seconds to wait after each call with 2+ threads, for the "
                             "engine's spinning threads to go idle (default %(default)s)")
    parser.add_argument("--markdown", help="also write the results here")
    parser.add_argument("--profile", action="store_true",
                        help="print tostatic's per-kernel profile of each model (batch 1, 1 "
                             "thread) instead of timing the engines")
    parser.add_argument("--spin-check", action="store_true",
                        help="print the CPU time each engine burns after a call returns "
                             "(batch 1, the first of --threads) instead of timing")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        engine, prefix, threads, feeds, out = args.worker
        return worker(engine, prefix, int(threads), feeds, out)
    if args.profile_worker:
        return profile_worker(*args.profile_worker, runs=args.rounds)
    if args.profile:
        return profiles(args.models.split(","), args.rounds)
    if args.spin_check:
        return spin_check(args.models.split(","), int(args.threads.split(",")[0]))
    header = [f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
              *machine(), f"BLAS (workers' environment): {blas()}", f"versions: {versions()}",
              f"environment of the workers: {', '.join(UNSET)} unset; Python bytecode used "
              f"(tostatic compiled into a pycache of the run); OMP / OPENBLAS / MKL "
              f"threads = the thread count",
              f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
              f"(the machine is shared: other processes ran beside this benchmark; rounds are "
              f"interleaved so their load spreads over every engine)",
              f"{args.rounds} interleaved rounds after {args.warmup} warm-up calls per engine, "
              f"with 2+ threads {args.settle} s of idle after every call (engines' worker "
              f"threads spin after a call returns: Paddle's OpenMP 200 ms, onnxruntime's pool "
              f"20-50 ms); none at 1 thread"]
    print("\n".join(header), flush=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        Worker.env = bytecode_env(tmp)
        names = args.models.split(",")
        prefixes = export_models(names, tmp)
        for prefix in prefixes.values():
            to_onnx(prefix)
        for name in names:
            for batch in map(int, args.batches.split(",")):
                for threads in map(int, args.threads.split(",")):
                    got = bench_one(name, prefixes[name], batch, threads, args.rounds,
                                    args.warmup, tmp, args.settle if threads > 1 else 0.0)
                    rows += got
                    print(table(got).split("\n", 2)[2], flush=True)
    header.append(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    text = "\n".join(f"- {h}" for h in header) + "\n\n" + table(rows) + "\n"
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
