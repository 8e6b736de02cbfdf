"""The BERT-class classifier of examples/bert_classifier.py at batch 1, seq_len 128, one thread:
tostatic's native runtime against Paddle Inference 3.3.1 and onnxruntime (via paddle2onnx) on
the very same exported files, in one process, interleaved, medians and ratios.

    python benchmarks/bert.py [--layers 4] [--hidden 256] [--heads 4] [--seq 128]
                              [--rounds 15] [--per-round 5] [--profile] [--what-if] [--base]

The environment here forces OpenBLAS onto a slower kernel (OPENBLAS_CORETYPE,
OPENBLAS_L2_SIZE): the script re-executes itself without them, one thread everywhere, and
prints the BLAS kernel numpy's OpenBLAS picked and the machine. --profile adds where
tostatic's time goes, by op type (the plan's kernels timed one by one); --what-if adds an
engine that is tostatic with gelu's erf replaced by Eigen's float32 rational approximation
(what Paddle's kernel computes without MKL; 4.4e-7 relative error against tostatic's fitted
float32 erf's 8.7e-8): analysis of what a cheaper, less accurate gelu would give, not a mode
of tostatic. --base: BERT-base
sizes (12 layers, hidden 768, 12 heads; use fewer --rounds).
"""
from __future__ import annotations

import os
import sys

FORCED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WANTED = {**ONE_THREAD, "FLAGS_enable_pir_api": "0"}  # Paddle reads legacy .pdmodel files
if any(k in os.environ for k in FORCED) or any(os.environ.get(k) != v
                                               for k, v in WANTED.items()):
    env = {k: v for k, v in os.environ.items() if k not in FORCED}
    env.update(WANTED)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse  # noqa: E402
import ctypes  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import bert_classifier  # noqa: E402
from predictors import handle_runner, paddle_predictor  # noqa: E402


def blas_kernel() -> str:
    """The OpenBLAS kernel numpy uses: threadpoolctl if installed, else OpenBLAS's own
    openblas_get_corename from the library loaded in this process."""
    try:
        from threadpoolctl import threadpool_info

        return ", ".join(f"{i.get('internal_api')} {i.get('version')} "
                         f"{i.get('architecture')} ({i.get('num_threads')} threads)"
                         for i in threadpool_info())
    except ImportError:
        pass
    libs = sorted({line.split()[-1] for line in open("/proc/self/maps")
                   if "openblas" in line.lower()})
    for path in libs:
        lib = ctypes.CDLL(path)
        for sym in ("scipy_openblas_get_corename64_", "openblas_get_corename64_",
                    "openblas_get_corename"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return f"OpenBLAS {fn().decode()} kernel ({Path(path).name})"
    return "unknown (no OpenBLAS loaded)"


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = open("/proc/cpuinfo").read()
        flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile")
                         if f" {f}" in text)
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cpus [{flags}], {platform.system()} "
            f"{platform.release()}, python {platform.python_version()}, numpy {np.__version__}")


def export(outdir: str, config) -> tuple[str, object]:
    import tostatic

    model = bert_classifier.BertForSequenceClassification(tostatic, config)
    prefix = os.path.join(outdir, "bert")
    tostatic.jit.save(model, prefix, input_spec=bert_classifier.input_spec(tostatic))
    return prefix, model


def tostatic_runner(prefix: str):
    import tostatic

    predictor = tostatic.inference.create_predictor(
        tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams"))
    return handle_runner(predictor), predictor


def paddle_runner(prefix: str):
    return handle_runner(paddle_predictor(prefix, 1))


def onnxruntime_runner(prefix: str):
    import onnxruntime as ort
    import paddle2onnx

    onnx_file = prefix + ".onnx"
    paddle2onnx.export(prefix + ".pdmodel", prefix + ".pdiparams", onnx_file, opset_version=13,
                       enable_onnx_checker=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
    def run(feeds):
        return session.run(None, feeds)[0]
    return run


def plan_ops(predictor) -> tuple[object, list]:
    """The predictor's execution plan (its top block) and the pd op of each of its steps
    (the function's ops in order, weights and constants aside)."""
    from tostatic.ops.control_flow import Yield
    from tostatic.ops.core import Capture, Constant, Persistable
    from tostatic.ir.opdef import PdOp
    from tostatic.passes.base import entry

    model = predictor._model
    block = model.plan.body
    ops = [op for op in entry(model.module).body.block.ops if isinstance(op, PdOp)
           and not isinstance(op, (Persistable, Constant, Capture, Yield))]
    assert len(ops) == len(block.steps), (len(ops), len(block.steps))
    return block, ops


def with_float32_gelu(predictor) -> None:
    """What-if: the plan's exact gelu steps computed with Eigen's float32 rational erf."""
    block, ops = plan_ops(predictor)
    for k, op in enumerate(ops):
        if op.name == "pd.gelu" and not op.attr_values()["approximate"]:
            _, ins, outs = block.steps[k]
            block.steps[k] = (lambda arrays: [fast_gelu(arrays[0])], ins, outs)


def profile(predictor, feeds, repeat: int = 20) -> None:
    """tostatic's time by op type: each step of the execution plan timed on its own."""
    block, ops = plan_ops(predictor)
    kinds = [op.name for op in ops]
    env = [None] * block.num_slots
    env[:block.num_inputs] = list(feeds.values())
    for i, value in block.constants:
        env[i] = value.numpy() if hasattr(value, "numpy") else value
    totals: dict[str, list[float]] = defaultdict(list)
    flops: dict[str, float] = defaultdict(float)
    gelu_inputs = []
    for r in range(repeat):
        per: dict[str, float] = defaultdict(float)
        for op, kind, (kernel, ins, outs) in zip(ops, kinds, block.steps):
            args = [env[i] for i in ins]
            start = time.perf_counter()
            results = kernel(args)
            per[kind] += time.perf_counter() - start
            for i, res in zip(outs, results):
                env[i] = np.asarray(res)
            if r == 0 and kind == "pd.matmul":
                x = args[0]
                trans = op.attr_values()["transpose_x"] and x.ndim > 1
                contracted = x.shape[-2] if trans else x.shape[-1]
                flops[kind] += 2.0 * env[outs[0]].size * contracted
            if r == 0 and kind == "pd.gelu":
                gelu_inputs.append(args[0])
        for kind, t in per.items():
            totals[kind].append(t)
    rows = sorted(((statistics.median(v), k) for k, v in totals.items()), reverse=True)
    total = sum(t for t, _ in rows)
    count: dict[str, int] = defaultdict(int)
    for kind in kinds:
        count[kind] += 1
    print(f"tostatic by op type (median of {repeat}; sum {total * 1e3:.2f} ms, "
          f"{len(kinds)} steps):")
    for t, kind in rows:
        rate = f"  {flops[kind] / t / 1e9:6.1f} GFLOP/s" if flops.get(kind) else ""
        print(f"  {kind:28s} x{count[kind]:3d} {t * 1e3:8.3f} ms  {100 * t / total:5.1f}%"
              f"{rate}")
    if gelu_inputs:
        what_if_gelu(gelu_inputs, statistics.median(totals["pd.gelu"]), repeat)


# Eigen's float erf (generic_fast_erf_float): x * P(x^2) / Q(x^2) on x clamped to [-4, 4]
_ALPHA = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02)
_BETA = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
         -7.37332916720468e-03, -1.42647390514189e-02)


def _float32_erf(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, np.float32(-4.0), np.float32(4.0))
    z = x * x
    p = np.full_like(x, _ALPHA[0])
    for a in _ALPHA[1:]:
        p *= z
        p += np.float32(a)
    p *= x
    q = np.full_like(x, _BETA[0])
    for b in _BETA[1:]:
        q *= z
        q += np.float32(b)
    return np.divide(p, q, out=p)


def fast_gelu(x: np.ndarray) -> np.ndarray:
    y = _float32_erf(x * np.float32(0.7071067811865476))
    y += np.float32(1.0)
    y *= x
    y *= np.float32(0.5)
    return y


def what_if_gelu(inputs: list[np.ndarray], measured: float, repeat: int) -> None:
    """What gelu would cost with Eigen's float32 rational erf (what Paddle's kernel computes
    without MKL) instead of tostatic's fitted float32 erf."""
    from tostatic.ops.activation import _gelu

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for x in inputs:
            fast_gelu(x)
        times.append(time.perf_counter() - start)
    err = max(float(np.abs(fast_gelu(x) - _gelu(x, False)).max()) for x in inputs)
    print(f"what if: gelu with Eigen's float32 erf: {statistics.median(times) * 1e3:.3f} ms "
          f"for the {len(inputs)} gelus (now {measured * 1e3:.3f} ms), max |difference| "
          f"{err:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--what-if", action="store_true",
                        help="also time tostatic with gelu's erf in float32 (analysis only)")
    parser.add_argument("--base", action="store_true",
                        help="BERT-base sizes: 12 layers, hidden 768, 12 heads")
    args = parser.parse_args()
    if args.base:
        args.layers, args.hidden, args.heads = 12, 768, 12

    config = bert_classifier.BertConfig(hidden_size=args.hidden, num_hidden_layers=args.layers,
                                        num_attention_heads=args.heads,
                                        intermediate_size=4 * args.hidden, vocab_size=1000)
    with tempfile.TemporaryDirectory(prefix="bert_bench_") as outdir:
        run_benchmark(args, config, outdir)


def run_benchmark(args, config, outdir: str) -> None:
    prefix, model = export(outdir, config)
    feeds = bert_classifier.example_inputs(args.batch, args.seq, config.vocab_size, seed=1)
    import tostatic

    eager = model(*[tostatic.to_tensor(v) for v in feeds.values()]).numpy()

    ours, predictor = tostatic_runner(prefix)
    engines = {"tostatic": ours}
    if args.what_if:
        engines["tostatic f32 erf"], patched = tostatic_runner(prefix)
        with_float32_gelu(patched)
    for name, make in (("paddle.inference", paddle_runner),
                       ("onnxruntime", onnxruntime_runner)):
        try:
            engines[name] = make(prefix)
        except Exception as e:  # an anchor that is missing is reported, not fatal
            print(f"{name}: unavailable ({type(e).__name__}: {str(e).splitlines()[0][:120]})")

    print(f"machine: {machine()}")
    print(f"BLAS: {blas_kernel()}")
    print(f"environment: {', '.join(f'{k} unset' for k in FORCED)}; "
          f"{', '.join(f'{k}={v}' for k, v in ONE_THREAD.items())}")
    flops = 2 * args.batch * args.seq * args.layers * (
        4 * args.hidden ** 2 + 2 * args.hidden * 4 * args.hidden + 2 * args.seq * args.hidden)
    print(f"model: BERT classifier, {args.layers} layers, hidden {args.hidden}, "
          f"{args.heads} heads, ffn {4 * args.hidden}; batch {args.batch}, seq_len "
          f"{args.seq} ({flops / 1e9:.2f} GFLOP in the encoder's matrix products)")
    for name, run in engines.items():
        out = run(feeds)
        print(f"  {name:17s} max |out - tostatic eager| = {np.abs(out - eager).max():.2e}")
        for _ in range(3):
            run(feeds)

    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, run in engines.items():
            for _ in range(args.per_round):
                start = time.perf_counter()
                run(feeds)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"median of {args.rounds} interleaved rounds x {args.per_round} runs:")
    for name, t in medians.items():
        ratios = ", ".join(f"{t / medians[other]:.2f}x {other}" for other in medians
                           if other != name)
        print(f"  {name:17s} {t * 1e3:8.2f} ms  {flops / t / 1e9:6.1f} GFLOP/s   ({ratios})")
    if args.profile:
        profile(predictor, feeds)


if __name__ == "__main__":
    main()
