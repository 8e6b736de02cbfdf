"""Vision-model inference latency: tostatic against Paddle Inference, onnxruntime and OpenVINO,
in one run, on the same files.

Each model (ResNet-18, ResNet-50, MobileNetV2 by default) is built by tostatic.vision.models
(batch norms randomised), exported by tostatic.jit.save at batch 1, 3x224x224, and run by

- tostatic: tostatic.jit.load of that file (the native runtime),
- Paddle Inference 3.3.1 on the same file,
- onnxruntime on paddle2onnx's conversion of it,
- OpenVINO's Paddle reader on it (f32, CPU),

all on one thread. Rounds are interleaved (every engine once a round, the order rotating) so
that drifting machine load hits every engine alike; the table gives medians over the rounds
and the ratio tostatic / engine (below 1: tostatic is faster).

The script re-executes itself once with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from
the environment (they force a slower BLAS kernel) and the thread counts set to 1, then prints
the machine and the BLAS kernel numpy's OpenBLAS actually uses.

    python benchmarks/vision_models.py [--models resnet18,resnet50,mobilenet_v2]
                                       [--rounds 20] [--warmup 3]
"""
from __future__ import annotations

import os
import sys

UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
MARK = "TOSTATIC_BENCH_CLEAN_ENV"


def _reexec_with_clean_environment() -> None:
    """Run this script again, before numpy is loaded, without the variables that pin the BLAS
    kernel and with one thread everywhere; the child records what it was started without."""
    if os.environ.get(MARK) is not None:
        return
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(ONE_THREAD)
    env["FLAGS_enable_pir_api"] = "0"  # Paddle Inference reads the legacy .pdmodel
    env[MARK] = ",".join(f"{k}={os.environ[k]}" for k in UNSET if k in os.environ)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)


_reexec_with_clean_environment()

# --- from here on, the clean child --------------------------------------------------------
import argparse  # noqa: E402
import contextlib  # noqa: E402
import ctypes  # noqa: E402
import glob  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's tostatic

import numpy as np  # noqa: E402

SIZE = (1, 3, 224, 224)


# ------------------------------------------------------------------------ the machine, BLAS

def cpu_description() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model}, {os.cpu_count()} logical cpus, {' '.join(simd) or 'no avx2'}"


def blas_description() -> str:
    """The BLAS numpy calls and the kernel it picked at run time: threadpoolctl when
    installed, else OpenBLAS's own get_config / get_corename through ctypes, else numpy's
    build configuration."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            return "; ".join(f"{i.get('internal_api')} {i.get('version')} kernel "
                             f"{i.get('architecture')} threads {i.get('num_threads')} "
                             f"({Path(i.get('filepath', '')).name})" for i in blas)
    libdir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in glob.glob(str(libdir / "*openblas*.so*")):
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                config = getattr(lib, f"{prefix}get_config{suffix}", None)
                core = getattr(lib, f"{prefix}get_corename{suffix}", None)
                if config is not None and core is not None:
                    config.restype = core.restype = ctypes.c_char_p
                    return (f"{config().decode()} -- kernel in use: {core().decode()} "
                            f"({Path(path).name}, via ctypes)")
    cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return f"{cfg.get('name')} {cfg.get('version')} (numpy build info; run-time kernel unknown)"


def versions() -> str:
    out = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for name in ("paddle", "onnxruntime", "openvino", "paddle2onnx"):
        try:
            module = __import__(name)
            out.append(f"{name} {getattr(module, '__version__', '?')}")
        except ImportError:
            out.append(f"{name} missing")
    return ", ".join(out)


# ------------------------------------------------------------------------------ engines

@contextlib.contextmanager
def quiet():
    """Silence what the libraries print while converting and compiling (file descriptors 1
    and 2: paddle2onnx and Paddle's C++ logging bypass sys.stdout)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def build_and_export(name: str, out: Path) -> Path:
    """tostatic.vision.models.<name> with random batch-norm statistics, saved at batch 1."""
    import tostatic
    import tostatic.vision.models as models

    rng = np.random.default_rng(0)
    model = getattr(models, name)()
    for layer in model.sublayers():
        if isinstance(layer, tostatic.nn.BatchNorm2D):
            n = layer.weight.shape[0]
            layer._mean.set_value(rng.uniform(-0.2, 0.2, n).astype(np.float32))
            layer._variance.set_value(rng.uniform(0.5, 1.5, n).astype(np.float32))
    model.eval()
    prefix = out / name
    tostatic.jit.save(model, str(prefix),
                      input_spec=[tostatic.static.InputSpec(list(SIZE), "float32", "x")])
    return prefix


def tostatic_engine(prefix: Path):
    import tostatic

    layer = tostatic.jit.load(str(prefix))
    return lambda x: layer(tostatic.to_tensor(x)).numpy()


def paddle_engine(prefix: Path):
    from paddle import inference

    cfg = inference.Config(str(prefix) + ".pdmodel", str(prefix) + ".pdiparams")
    cfg.disable_gpu()
    cfg.disable_glog_info()
    cfg.set_cpu_math_library_num_threads(1)
    predictor = inference.create_predictor(cfg)
    inp = predictor.get_input_handle(predictor.get_input_names()[0])
    out = predictor.get_output_handle(predictor.get_output_names()[0])

    def run(x):
        inp.reshape(x.shape)
        inp.copy_from_cpu(x)
        predictor.run()
        return out.copy_to_cpu()
    return run


def onnxruntime_engine(prefix: Path):
    import onnxruntime as ort
    import paddle2onnx

    onnx_file = str(prefix) + ".onnx"
    # onnxruntime fuses and folds at session creation; paddle2onnx's own optimiser (slow,
    # same graph here) is left off
    paddle2onnx.export(str(prefix) + ".pdmodel", str(prefix) + ".pdiparams", onnx_file,
                       opset_version=13, enable_optimize=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def openvino_engine(prefix: Path):
    import openvino

    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(prefix) + ".pdmodel"), "CPU", {
        "INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    output = compiled.outputs[0]
    return lambda x: request.infer([x])[output].copy()


ENGINES = [("tostatic", tostatic_engine), ("paddle.inference", paddle_engine),
           ("onnxruntime", onnxruntime_engine), ("openvino", openvino_engine)]


# ------------------------------------------------------------------------------ timing

def measure(runs: dict, x: np.ndarray, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each engine, one call each per round, the order rotating."""
    for run in runs.values():
        for _ in range(warmup):
            run(x)
    names = list(runs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            runs[name](x)
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet18,resnet50,mobilenet_v2")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    unset = os.environ.get(MARK, "")
    print(f"machine: {platform.system()} {platform.machine()}, {cpu_description()}")
    print(f"versions: {versions()}")
    print(f"environment: unset {unset or 'nothing (neither was set)'}; "
          + " ".join(f"{k}={v}" for k, v in ONE_THREAD.items()))
    print(f"BLAS: {blas_description()}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} (other "
          f"processes share the cpus: interleaving spreads their effect over every engine)")
    print(f"batch {SIZE[0]}, input {SIZE[1]}x{SIZE[2]}x{SIZE[3]}, 1 thread, {args.rounds} "
          f"interleaved rounds after {args.warmup} warm-up calls; medians\n")
    header = (f"{'model':<13}{'engine':<18}{'median ms':>10}{'min ms':>9}"
              f"{'tostatic/engine':>17}{'max |diff|/max|y|':>19}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            with quiet():
                prefix = build_and_export(name, Path(tmp))
                runs = {engine: make(prefix) for engine, make in ENGINES}
            x = rng.standard_normal(SIZE).astype(np.float32)
            reference = runs["paddle.inference"](x)
            scale = float(np.abs(reference).max())
            diffs = {e: float(np.abs(run(x) - reference).max()) / scale
                     for e, run in runs.items()}
            times = measure(runs, x, args.rounds, args.warmup)
            medians = {e: statistics.median(t) for e, t in times.items()}
            for i, (engine, t) in enumerate(times.items()):
                ratio = ("" if engine == "tostatic" else
                         f"{medians['tostatic'] / medians[engine]:.2f}")
                print(f"{name if i == 0 else '':<13}{engine:<18}{medians[engine] * 1e3:>10.2f}"
                      f"{min(t) * 1e3:>9.2f}{ratio:>17}{diffs[engine]:>19.1e}")
            del runs
            sys.stdout.flush()
    print(f"\nload average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
