"""codegen's recipe index (engine.compile_recipe): a warm start loads a kernel's machine code
without building its IR; a bad index entry is ignored and rebuilt, never trusted. Results
against numpy (bias + relu, and a Winograd F(2x2) convolution against im2col's numbers)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import numpy as np
    from tostatic.codegen import emit, engine, winograd
    from tostatic.codegen.epilogue import RowsEpilogue
    built = []
    init = emit.KernelModule.__init__
    emit.KernelModule.__init__ = lambda self: (built.append(1), init(self))[1]
    rng = np.random.default_rng(0)
    y = rng.standard_normal((6, 40)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    out = np.empty_like(y)
    RowsEpilogue(("bias", "relu"), "float32").run(y, out, [bias], 6)
    assert np.array_equal(out, np.maximum(y + bias[:, None], 0))
    f = winograd.input_transform(2, "float32")
    getattr(f, "resolve", lambda: f)()  # (a first start compiles it meanwhile: waited for)
    print(len(built), engine.STATS["compiled"], engine.STATS["loaded_from_disk"])
""")


def _start(env: dict[str, str]) -> tuple[int, ...]:
    run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, text=True,
                         capture_output=True, check=True)
    return tuple(int(n) for n in run.stdout.split())


def test_a_warm_start_builds_no_ir_and_bad_entries_are_rebuilt(tmp_path):
    cache = tmp_path / "kernels"
    env = {**os.environ, "TOSTATIC_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("TOSTATIC_KERNELS", None)
    # (IR modules built, compiled, loaded from disk)
    # (the epilogue's in-place and out-of-place kernels, Winograd's input transform)
    assert _start(env) == (3, 3, 0)  # cold: all built and compiled
    assert _start(env) == (0, 0, 3)  # warm: none built
    entries = sorted((cache / "recipes").iterdir())
    assert len(entries) == 3
    entries[0].write_bytes(b"\xff\xfe not a key")
    entries[1].write_text("0" * 32)  # a key with no object file
    entries[2].unlink()
    assert _start(env) == (3, 0, 3)  # all rebuilt (their objects were there), results right
    assert _start(env) == (0, 0, 3)  # and the entries written again


def test_the_index_is_keyed_by_the_generator_code_and_the_recipe(tmp_path, monkeypatch):
    from tostatic.codegen import engine, winograd

    monkeypatch.setenv("TOSTATIC_CACHE_DIR", str(tmp_path))
    built = []

    def build() -> str:
        built.append(1)
        return winograd._input_module(2, "float32").text()

    first = engine.compile_recipe(("test-recipe", 1), build, ["__NAME__win"])
    assert engine.compile_recipe(("test-recipe", 1), build, ["__NAME__win"]) == first
    assert len(built) == 1  # the second found the index entry
    engine.compile_recipe(("test-recipe", 2), build, ["__NAME__win"])
    assert len(built) == 2  # another recipe
    monkeypatch.setattr(engine, "_DIGEST", ["another generator"])
    assert engine.compile_recipe(("test-recipe", 1), build, ["__NAME__win"]) == first
    assert len(built) == 3  # changed generator code: built again (the same IR, here)


MODEL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from tostatic.codegen import emit, engine
    built = []
    init = emit.KernelModule.__init__
    emit.KernelModule.__init__ = lambda self: (built.append(1), init(self))[1]
    import tostatic
    config = tostatic.inference.Config(sys.argv[1] + ".pdmodel", sys.argv[1] + ".pdiparams")
    predictor = tostatic.inference.create_predictor(config)
    x = np.random.default_rng(0).standard_normal((1, 3, 40, 40)).astype(np.float32)
    y = predictor.run([x])[0]
    np.save(sys.argv[2], y)
    print(len(built), engine.STATS["compiled"], engine.STATS["loaded_from_disk"])
""")


def test_a_model_warm_start_builds_no_kernel_ir(tmp_path):
    """Every kernel a vision model's plan binds (the strided im2col and its band GEMM, the
    padding, Winograd's transforms and tile GEMM, max pooling, the packed GEMMs of a 1x1
    convolution and the classifier) is found through the index on a second start: none
    builds its IR again (the packed GEMM's took 0.4 s of MobileNetV2's first run when it
    did), and the outputs are the first start's."""
    import tostatic
    from tostatic.static import InputSpec

    nn = tostatic.nn
    tostatic.seed(0)
    model = nn.Sequential(
        nn.Conv2D(3, 16, 3, stride=2, padding=1), nn.ReLU(),   # im2col, pad
        nn.MaxPool2D(3, stride=2, padding=1),                  # max pooling
        nn.Conv2D(16, 16, 3, padding=1), nn.ReLU(),            # Winograd
        nn.Conv2D(16, 32, 1),                                  # 1x1: packed GEMM
        nn.Flatten(), nn.Linear(32 * 10 * 10, 10))             # matmul: packed GEMM
    model.eval()
    prefix = str(tmp_path / "net")
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, 3, 40, 40], "float32")])
    assert_warm_start_builds_no_ir(prefix, tmp_path)


def assert_warm_start_builds_no_ir(prefix: str, tmp_path: Path) -> None:
    """Two starts of the saved model in fresh processes over one empty kernel cache: the
    first builds and compiles kernels, the second neither, and both give the same outputs."""
    env = {**os.environ, "TOSTATIC_CACHE_DIR": str(tmp_path / "kernels"),
           "PYTHONPATH": str(ROOT)}
    env.pop("TOSTATIC_KERNELS", None)

    def start(out: str) -> tuple[int, ...]:
        run = subprocess.run([sys.executable, "-c", MODEL_SCRIPT, prefix, out], env=env,
                             text=True, capture_output=True, check=True)
        return tuple(int(n) for n in run.stdout.split()[-3:])

    built, compiled, _ = start(str(tmp_path / "cold.npy"))
    assert built > 0 and compiled > 0
    assert start(str(tmp_path / "warm.npy"))[:2] == (0, 0)
    assert np.array_equal(np.load(tmp_path / "cold.npy"), np.load(tmp_path / "warm.npy"))


def test_a_killed_writers_temporary_files_are_removed(tmp_path, monkeypatch):
    """A process killed while storing a kernel (or its index entry) leaves a temporary file
    that no one renames: the next process that writes there removes those of writers that
    are gone and those older than any write takes, and no one's write under way."""
    from tostatic.codegen import emit, engine

    cache = tmp_path / "kernels"
    monkeypatch.setenv("TOSTATIC_CACHE_DIR", str(cache))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = engine._temp_prefix().split("-")[1]
    removed, kept = [], []
    for directory in (cache, cache / "recipes"):
        directory.mkdir(parents=True)
        removed += [directory / f".tmp-{host}-{gone}-abc", directory / ".tmp-old"]
        kept += [directory / f".tmp-{host}-{os.getpid()}-abc",  # (this process: writing)
                 directory / f".tmp-otherhost-{gone}-abc"]  # (its pids: not ours to tell)
    for f in removed + kept:
        f.write_bytes(b"half an object")
    for f in removed[1::2]:
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns - (engine.STALE_TEMP_S + 5) * 10**9))
    km = emit.KernelModule()
    name = f"t{os.getpid()}_{tmp_path.name}".replace("-", "_")
    km.function(name, [])[1].ret_void()
    engine.compile_recipe(("a killed writer's test", name), km.text, [f"__NAME__{name}"])
    assert len(list(cache.glob("*.o"))) == 1 and len(list((cache / "recipes").iterdir())) == 3
    assert [f for f in removed if f.exists()] == [] and all(f.exists() for f in kept)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="tells the fsynced file by /proc")
def test_an_object_file_is_durable_and_a_zero_filled_one_is_compiled_again(tmp_path):
    """A crash can leave a cached object zero-filled (written, renamed, never on the disk):
    LLVM aborts the process on it, every later start too. Objects are fsynced before their
    rename, and a file that is not an object is compiled again, not given to LLVM."""
    cache = tmp_path / "kernels"
    env = {**os.environ, "TOSTATIC_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("TOSTATIC_KERNELS", None)
    script = SCRIPT.replace("import numpy as np", textwrap.dedent("""
        import os
        import numpy as np
        fsync, replace, synced = os.fsync, os.replace, []
        os.fsync = lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), fsync(fd))[1]
        def renamed(a, b):
            assert not str(b).endswith(".o") or os.path.abspath(a) in synced, (a, synced)
            replace(a, b)
        os.replace = renamed
    """), 1)
    run = lambda: tuple(int(n) for n in subprocess.run(  # noqa: E731
        [sys.executable, "-c", script], env=env, text=True, capture_output=True,
        check=True).stdout.split())
    assert run() == (3, 3, 0)
    objects = sorted(cache.glob("*.o"))
    assert len(objects) == 3
    objects[0].write_bytes(bytes(objects[0].stat().st_size))  # (a crash's zero-filled file)
    assert run() == (1, 1, 2)  # its IR built and compiled again; results right
    assert run() == (0, 0, 3)  # and stored again
