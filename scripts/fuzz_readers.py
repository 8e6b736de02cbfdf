"""Fuzz tostatic's file readers with a seeded mutation loop.

    python scripts/fuzz_readers.py [--cases 10000] [--seed 0] [--formats pdmodel,json] [--workers 2]

For each format (`.pdmodel`, `.pdiparams`, `.pdiparams.info`, `.pdparams`, `.pdopt`, Paddle 3
`.json`) it mutates real files (Paddle 3.3.1's in tests/fixtures, and what tostatic writes) by
bytes (truncation, bit flips, insertions, deletions, overwritten integers) and by structure
(absurd dims and sizes, negative lengths, unknown dtype codes and op types, bad block indices,
cycles in sub-block references, deeply nested JSON, pickles calling os.system), loads each in a
worker process and, when it loads, runs it on inputs drawn from its input spec. Per format it
prints: cases, clean errors (a tostatic error naming the file and where in it: a byte
offset, a JSON field path, a block / op / record), loads-and-runs, run errors (a
tostatic error raised by running a model that loaded: should be 0), crashes (the worker died,
MemoryError, RecursionError or peak RSS growth over the bound), hangs (no answer within the
timeout), loads only (it loaded, but inputs of its spec are too big to draw: more than
4M elements), uncaught (any other exception, or an error that does not name the file or where).
Exit status 1 when crashes, hangs or uncaught are not all 0, or a pickle ran code.

Workers set TOSTATIC_MAX_WHILE_ITERATIONS=100000 (the default is ten million), so that a
program whose loop never ends (a mutated condition) fails in seconds rather than minutes.
The worker runs under RLIMIT_AS = its size at start + 1 GiB, and a case whose loading raises the
worker's peak RSS by more than 64 MiB + 64 x the file's size counts as a crash.
"""
from __future__ import annotations

import argparse
import collections
import functools
import multiprocessing as mp
import os
import random
import re
import resource
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tostatic  # noqa: E402
from fuzz_mutations import mutate  # noqa: E402
from tostatic.ir.errors import ToStaticError  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "paddle-3.3.1")
PIR_FIXTURES = os.path.join(ROOT, "tests", "fixtures", "pir-3.3.1")
FORMATS = ("pdmodel", "pdiparams", "info", "pdparams", "pdopt", "json")
TIMEOUT = 20.0  # seconds per case before it counts as a hang
RSS_SLACK = 64 << 20
RSS_FACTOR = 64
ALL_CATEGORIES = ("clean_error", "loads_and_runs", "loads_only", "run_error", "crash", "hang",
                  "uncaught")


# ----------------------------------------------------------------------------- seeds


class Seed:
    """A file to mutate and the files it goes with (the model for params and so on)."""

    def __init__(self, fmt: str, data: bytes, companions: dict[str, bytes], name: str):
        self.fmt, self.data, self.companions, self.name = fmt, data, companions, name


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _tostatic_pdparams(tmp: str) -> tuple[bytes, bytes]:
    net = tostatic.nn.Sequential(tostatic.nn.Linear(4, 3), tostatic.nn.LayerNorm(3))
    path = os.path.join(tmp, "seed.pdparams")
    tostatic.save(net.state_dict(), path)
    opt = {"linear_0.w_0_moment1_0": tostatic.randn([4, 3]),
           "linear_0.b_0_beta1_pow_acc_0": tostatic.to_tensor(np.array([0.9], np.float32)),
           "LR_Scheduler": {"last_epoch": 3, "last_lr": 0.1},
           "master_weights": {"linear_0.w_0": tostatic.randn([4, 3])}}
    opt_path = os.path.join(tmp, "seed.pdopt")
    tostatic.save(opt, opt_path, protocol=2)
    return _read(path), _read(opt_path)


@functools.lru_cache(maxsize=1)
def load_seeds() -> dict[str, list[Seed]]:
    seeds: dict[str, list[Seed]] = collections.defaultdict(list)
    for name in sorted(os.listdir(FIXTURES)):
        d = os.path.join(FIXTURES, name)
        files = {ext: _read(os.path.join(d, "model" + ext)) for ext in
                 (".pdmodel", ".pdiparams", ".pdiparams.info")
                 if os.path.exists(os.path.join(d, "model" + ext))}
        seeds["pdmodel"].append(Seed("pdmodel", files[".pdmodel"], files, name))
        if ".pdiparams" in files:
            seeds["pdiparams"].append(Seed("pdiparams", files[".pdiparams"], files, name))
        if ".pdiparams.info" in files:
            seeds["info"].append(Seed("info", files[".pdiparams.info"], files, name))
    for name in sorted(os.listdir(PIR_FIXTURES)):
        if name.endswith(".json"):
            base = os.path.join(PIR_FIXTURES, name[:-5])
            comp = {".json": _read(base + ".json")}
            if os.path.exists(base + ".pdiparams"):
                comp[".pdiparams"] = _read(base + ".pdiparams")
            seeds["json"].append(Seed("json", comp[".json"], comp, name[:-5]))
    with tempfile.TemporaryDirectory() as tmp:
        pdparams, pdopt = _tostatic_pdparams(tmp)
        ref = os.path.join(FIXTURES, "mlp")
        # the same model saved by tostatic: its manifest makes a flipped data bit an error
        layer = tostatic.jit.load(os.path.join(ref, "model"))
        tostatic.jit.save(layer, os.path.join(tmp, "m"))
        own = {ext: _read(os.path.join(tmp, "m" + ext)) for ext in
               (".pdmodel", ".pdiparams", ".pdiparams.info", ".tostatic.json")
               if os.path.exists(os.path.join(tmp, "m" + ext))}
    seeds["pdparams"].append(Seed("pdparams", pdparams, {}, "tostatic"))
    seeds["pdopt"].append(Seed("pdopt", pdopt, {}, "tostatic"))
    seeds["pdiparams"].append(Seed("pdiparams", own[".pdiparams"], own, "tostatic-mlp"))
    seeds["pdmodel"].append(Seed("pdmodel", own[".pdmodel"], own, "tostatic-mlp"))
    return seeds


# ----------------------------------------------------------------------------- running


class TooBig(Exception):
    """The spec's inputs are too big to draw here: the model loaded but is not run."""


def _inputs(model: Any, rng: np.random.Generator) -> list[np.ndarray]:
    arrays = []
    for spec in model.plan.input_abstracts:
        shape = [1 if d < 0 else d for d in spec.shape]  # 1 broadcasts with any dim
        if np.prod(shape, dtype=object) > 2**22:
            raise TooBig()
        dt = spec.dtype.numpy
        if dt is None:
            raise ToStaticError(f"input of dtype {spec.dtype.name}")
        if np.issubdtype(dt, np.integer):
            arrays.append(rng.integers(0, 3, size=shape).astype(dt))
        elif dt == np.bool_:
            arrays.append(rng.random(shape) < 0.5)
        else:
            arrays.append(rng.standard_normal(shape).astype(dt))
    return arrays


def _load(fmt: str, path: str, prefix: str) -> tuple[Any, Callable[[], Any] | None]:
    """Load the case; returns (what loaded, a function that runs it or None)."""
    from tostatic.runtime.loaded_model import load_model
    if fmt in ("pdparams", "pdopt"):
        return tostatic.load(path), None
    if fmt == "info":
        layer = tostatic.jit.load(prefix)
        return layer, lambda: layer._model.run(_inputs(layer._model, np.random.default_rng(0)))
    model_file = prefix + (".json" if fmt == "json" else ".pdmodel")
    params = prefix + ".pdiparams"
    model = load_model(model_file, params if os.path.exists(params) else None)
    return model, lambda: model.run(_inputs(model, np.random.default_rng(0)))


_LOCATION = re.compile(r"byte offset \d+|op \d+|block \d+|record \d+|\w\[\d+\]|"
                       r"\bprogram\b|line \d+|tensor '|variable '|input '|sub_block|"
                       r"\bat \[|at the top level|\(key ")


def _located(e: BaseException) -> bool:
    """The error says where: a byte offset, a JSON field path, a block / op / record."""
    if getattr(e, "offset", None) is not None or getattr(e, "field", None):
        return True
    return bool(_LOCATION.search(str(e)))


def _names_file(e: BaseException, path: str) -> bool:
    """The message names the case's file, or the file beside it that the error is about."""
    text = str(e)
    return any(name in text for name in os.listdir(os.path.dirname(path)))


def run_case(fmt: str, seed: Seed, data: bytes, workdir: str) -> tuple[str, str]:
    """Write the case beside its companions, load it, run it: (category, detail)."""
    for name in os.listdir(workdir):
        os.unlink(os.path.join(workdir, name))
    prefix = os.path.join(workdir, "model")
    ext = {"pdmodel": ".pdmodel", "pdiparams": ".pdiparams", "info": ".pdiparams.info",
           "json": ".json", "pdparams": ".pdparams", "pdopt": ".pdopt"}[fmt]
    for cext, cdata in seed.companions.items():
        with open(prefix + cext, "wb") as f:
            f.write(cdata)
    path = prefix + ext
    with open(path, "wb") as f:
        f.write(data)
    try:
        _, runner = _load(fmt, path, prefix)
    except (MemoryError, RecursionError) as e:
        if run_case_raise:
            raise
        return "crash", f"{type(e).__name__} at load: {str(e)[:200]}"
    except ToStaticError as e:
        if type(e).__name__ == "PassFailure":
            return "uncaught", f"PassFailure (a tostatic bug) at load: {str(e)[:300]}"
        if not _names_file(e, path):
            return "uncaught", f"{type(e).__name__} not naming the file: {str(e)[:300]}"
        if not _located(e):
            return "uncaught", f"{type(e).__name__} not saying where: {str(e)[:300]}"
        return "clean_error", type(e).__name__
    except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
        if run_case_raise:
            raise
        return "uncaught", f"{type(e).__name__} at load: {str(e)[:300]}"
    if runner is None:
        return "loads_and_runs", ""
    try:
        runner()
    except TooBig:
        return "loads_only", ""
    except (MemoryError, RecursionError) as e:
        return "crash", f"{type(e).__name__} at run: {str(e)[:200]}"
    except ToStaticError as e:
        return "run_error", f"{type(e).__name__} at run: {str(e)[:300]}"
    except Exception as e:  # noqa: BLE001
        return "uncaught", f"{type(e).__name__} at run: {str(e)[:300]}"
    return "loads_and_runs", ""


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


WHILE_LIMIT = "100000"  # a mutated loop condition can make an endless loop: stop it early


def _worker(conn: Any, seeds: dict[str, list[Seed]]) -> None:
    os.environ["TOSTATIC_MAX_WHILE_ITERATIONS"] = WHILE_LIMIT
    limit = _vm_size() + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    workdir = tempfile.mkdtemp(prefix="tostatic-fuzz-")
    import warnings
    warnings.simplefilter("ignore")
    while True:
        msg = conn.recv()
        if msg is None:
            break
        fmt, seed_index, data = msg
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        category, detail = run_case(fmt, seeds[fmt][seed_index], data, workdir)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        if grown > RSS_SLACK + RSS_FACTOR * len(data):
            category, detail = "crash", f"peak RSS grew by {grown >> 20} MiB"
        conn.send((category, detail))


class Pool:
    """Workers forked from this process; a worker that dies or hangs is replaced."""

    def __init__(self, n: int, seeds: dict[str, list[Seed]], timeout: float = TIMEOUT):
        self.seeds = seeds
        self.timeout = timeout
        self.ctx = mp.get_context("fork")
        self.workers = [self._start() for _ in range(n)]

    def _start(self) -> Any:
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker, args=(child, self.seeds), daemon=True)
        p.start()
        child.close()
        return [p, parent, None]  # process, pipe, case in flight

    def run(self, cases: Any, on_result: Callable[[Any, str, str], None]) -> None:
        cases = iter(cases)
        busy = 0
        started: dict[int, float] = {}
        done = False
        while True:
            for i, w in enumerate(self.workers):
                if w[2] is None and not done:
                    case = next(cases, None)
                    if case is None:
                        done = True
                        continue
                    w[2] = case
                    w[1].send((case[0], case[1], case[2]))
                    started[i] = time.monotonic()
                    busy += 1
            if busy == 0:
                break
            for i, w in enumerate(self.workers):
                if w[2] is None:
                    continue
                if w[1].poll(0.005):
                    case = w[2]
                    try:
                        category, detail = w[1].recv()
                        w[2] = None
                    except EOFError:
                        w[0].join()
                        category, detail = "crash", f"worker died (exit code {w[0].exitcode})"
                        self.workers[i] = self._start()
                    on_result(case, category, detail)
                    busy -= 1
                elif not w[0].is_alive():
                    w[0].join()
                    on_result(w[2], "crash", f"worker died (exit code {w[0].exitcode})")
                    self.workers[i] = self._start()
                    busy -= 1
                elif time.monotonic() - started[i] > self.timeout:
                    w[0].kill()
                    w[0].join()
                    on_result(w[2], "hang", f"no answer in {self.timeout} s")
                    self.workers[i] = self._start()
                    busy -= 1

    def close(self) -> None:
        for p, conn, _ in self.workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()


def fuzz(cases_per_format: int, seed: int, formats: tuple[str, ...], workers: int,
         verbose: bool = False, timeout: float = TIMEOUT) -> dict[str, collections.Counter]:
    """Run the mutation loop; returns the counts per format (and `examples` of failures)."""
    seeds = load_seeds()
    marker = os.path.join(tempfile.gettempdir(), f"tostatic-fuzz-pwned-{os.getpid()}")
    counts: dict[str, collections.Counter] = {f: collections.Counter() for f in formats}
    examples: dict[str, list[str]] = collections.defaultdict(list)

    def cases() -> Any:
        for fmt in formats:
            rng = random.Random(f"{seed}-{fmt}")
            for k in range(cases_per_format):
                i = rng.randrange(len(seeds[fmt]))
                yield fmt, i, mutate(rng, seeds[fmt][i], marker), k

    def on_result(case: Any, category: str, detail: str) -> None:
        fmt = case[0]
        counts[fmt][category] += 1
        counts[fmt]["cases"] += 1
        shown = sum(1 for e in examples[fmt] if f": {category}: " in e)
        if category in ("crash", "hang", "uncaught", "run_error") and shown < 5:
            examples[fmt].append(f"{fmt} case {case[3]} (seed {seeds[fmt][case[1]].name}): "
                                 f"{category}: {detail}")
            if verbose:
                print(examples[fmt][-1], file=sys.stderr, flush=True)

    pool = Pool(workers, seeds, timeout)
    try:
        pool.run(cases(), on_result)
    finally:
        pool.close()
    if os.path.exists(marker):
        os.unlink(marker)
        for fmt in formats:
            counts[fmt]["code_executed"] += 1
    for fmt in formats:
        counts[fmt]["examples"] = examples[fmt]  # type: ignore[assignment]
    return counts


def report(counts: dict[str, collections.Counter], seconds: float) -> str:
    head = f"{'format':<10}{'cases':>8}{'clean errors':>14}{'loads+runs':>12}{'loads only':>12}" \
           f"{'run errors':>12}{'crashes':>9}{'hangs':>7}{'uncaught':>10}"
    lines = [head]
    for fmt, c in counts.items():
        lines.append(f"{fmt:<10}{c['cases']:>8}{c['clean_error']:>14}{c['loads_and_runs']:>12}"
                     f"{c['loads_only']:>12}{c['run_error']:>12}{c['crash']:>9}{c['hang']:>7}"
                     f"{c['uncaught']:>10}")
    lines.append(f"({seconds:.0f} s)")
    for fmt, c in counts.items():
        if c["code_executed"]:
            lines.append(f"{fmt}: A PICKLE EXECUTED CODE")
        for ex in c["examples"]:
            lines.append("  " + ex)
    return "\n".join(lines)


def failures(counts: dict[str, collections.Counter]) -> int:
    """Crashes, hangs, uncaught errors and code run from a file. (A run error is a tostatic
    error naming the op's failure when a model with dynamic dims meets inputs its ops cannot
    take: counted and shown, not a failure.)"""
    return sum(c[k] for c in counts.values()
               for k in ("crash", "hang", "uncaught", "code_executed"))


def replay(case: str, seed: int) -> int:
    """Rebuild one case and load it in this process (tracebacks shown)."""
    fmt, index = case.split(":")
    seeds = load_seeds()
    rng = random.Random(f"{seed}-{fmt}")
    marker = os.path.join(tempfile.gettempdir(), "tostatic-fuzz-replay")
    for _ in range(int(index) + 1):
        i = rng.randrange(len(seeds[fmt]))
        data = mutate(rng, seeds[fmt][i], marker)
    workdir = tempfile.mkdtemp(prefix="tostatic-fuzz-replay-")
    global run_case_raise
    run_case_raise = True
    os.environ["TOSTATIC_MAX_WHILE_ITERATIONS"] = WHILE_LIMIT
    print(run_case(fmt, seeds[fmt][i], data, workdir), "in", workdir)
    return 0


run_case_raise = False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10000, help="mutated files per format")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--case", help="FORMAT:INDEX: run that case here, with its traceback")
    args = ap.parse_args(argv)
    if args.case:
        return replay(args.case, args.seed)
    t0 = time.perf_counter()
    counts = fuzz(args.cases, args.seed, tuple(args.formats.split(",")), args.workers,
                  args.verbose)
    print(report(counts, time.perf_counter() - t0))
    return 1 if failures(counts) else 0


if __name__ == "__main__":
    sys.exit(main())
