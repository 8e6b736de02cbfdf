"""The JIT: LLVM IR text -> machine code for this CPU -> callable addresses, with a disk cache.

One MCJIT engine per process holds every kernel. A module is optimised at O3 (loop and SLP
vectorisation) for the host CPU (`llvm.get_host_cpu_name()` and its features, 512-bit vectors
preferred where AVX-512 is present) and emitted as an object file, which is stored under
`TOSTATIC_CACHE_DIR` (default `~/.cache/tostatic/kernels`) keyed by a hash of the IR text, the
llvmlite version and the CPU name and features. A later process loads that object file and
compiles nothing; `STATS` counts what happened, for tests and benchmarks (and
`TOSTATIC_KERNEL_LOG=FILE` appends one line per module: compiled / loaded and its key). A
file is written under a temporary name and renamed; a writer killed in between leaves the
temporary file, which the next process writing there removes (`sweep`).

A first-ever start uses every core (TOSTATIC_COMPILE_THREADS, codegen/module_parts.py): a
large module compiles as parts at once, and `compile_recipe_later` compiles a module on a
thread of its own while the caller goes on (each such thread in an LLVM context and with a
target machine of its own).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import llvmlite
import llvmlite.binding as llvm

from tostatic.codegen import module_parts
from tostatic.ir.processes import process_alive

STATS = {"compiled": 0, "loaded_from_disk": 0, "reused": 0}
_LOCK = threading.RLock()
_STATE: dict[str, Any] = {}
_ADDRESSES: dict[str, dict[str, int]] = {}  # key -> symbol -> address
# compile_recipe_later's threads now compiling: a fork waits for them (below)
_COMPILING: set[threading.Thread] = set()
SALT = "tostatic-codegen-1"  # bump when the emitted code changes meaning for the same IR


def cache_dir() -> Path:
    given = os.environ.get("TOSTATIC_CACHE_DIR")
    return Path(given) if given else Path.home() / ".cache" / "tostatic" / "kernels"


def _init() -> dict[str, Any]:
    if _STATE:
        return _STATE
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()  # (inline asm: codegen/spin.py's futex call)
    cpu = llvm.get_host_cpu_name()
    features = llvm.get_host_cpu_features().flatten()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    tm = target.create_target_machine(cpu=cpu, features=features, opt=3, jit=True)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), tm)
    _STATE.update(tm=tm, engine=engine, cpu=cpu, features=features,
                  triple=llvm.get_process_triple(), data_layout=str(tm.target_data))
    return _STATE


def host() -> dict[str, Any]:
    """cpu, features, triple and data_layout of the host, what modules are emitted for."""
    return _init()


def has_feature(name: str) -> bool:
    return f"+{name}" in host()["features"].split(",")


def vector_width_bits() -> int:
    """The vector width kernels ask LLVM for: 512 with AVX-512, else 256 with AVX2 (AVX),
    else 128."""
    if has_feature("avx512f"):
        return 512
    return 256 if has_feature("avx") else 128


def kernel_key(ir_text: str) -> str:
    h = host()
    text = "\n".join([SALT, llvmlite.__version__, h["cpu"], h["features"], h["triple"], ir_text])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _optimised(ir_text: str, tm: Any = None, context: Any = None) -> Any:
    h = host()
    mod = llvm.parse_assembly(ir_text, context)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm or h["tm"], pto)
    pb.getModulePassManager().run(mod, pb)
    return mod


_SPARE: list[Any] = []  # target machines for threads that compile in contexts of their own
_SPARE_LOCK = threading.Lock()


def _take_machine() -> Any:
    with _SPARE_LOCK:
        if _SPARE:
            return _SPARE.pop()
    h = host()
    return llvm.Target.from_triple(h["triple"]).create_target_machine(
        cpu=h["cpu"], features=h["features"], opt=3, jit=True)


def _compile_part(ir_text: str, _slot: int = 0) -> bytes:
    """The object of one module (part), in a context and with a target machine of its own:
    what a thread that passes llvmlite's lock may compile (module_parts)."""
    tm = _take_machine()
    context = llvm.create_context()
    mod = _optimised(ir_text, tm, context)
    try:
        return tm.emit_object(mod)
    finally:
        mod.close()
        context.close()
        with _SPARE_LOCK:
            _SPARE.append(tm)


def _compile(ir_text: str, private: bool = False) -> bytes:
    """The object file(s) of a module: a large one as parts compiled at once on the
    machine's cores (codegen/module_parts.py), stored together in one cache file;
    `private`: in contexts of its own only (a thread compiling beside the others)."""
    parts = module_parts.split(ir_text, module_parts.workers())
    if len(parts) == 1:
        if private:
            return _compile_part(ir_text)
        return host()["tm"].emit_object(_optimised(ir_text))
    return module_parts.pack(module_parts.run(parts, _compile_part))


def assembly(ir_text: str) -> str:
    """The host assembly of a module (for tests that check vector instructions)."""
    return host()["tm"].emit_assembly(_optimised(ir_text))


STALE_TEMP_S = 300  # a temporary file older than this was left by a killed writer
_SWEPT: set[Path] = set()  # directories this process has swept (on its first write there)


def _temp_prefix() -> str:
    """`.tmp-<host>-<pid>-`: a sweep on this host can tell that its writer is gone."""
    return f".tmp-{os.uname().nodename.replace('-', '_')}-{os.getpid()}-"


def sweep(directory: Path) -> None:
    """`_store`'s temporary files left by writers killed mid-write, removed: those of a
    process of this host that is gone, and any older than STALE_TEMP_S (an object file is
    written at once). Run on a process's first write to a directory, as runtime/plan_file's
    evict does for plan files: a warm start, which writes nothing, lists nothing. (A
    writer taken for gone wrongly, in another pid namespace of the same host name, loses
    only its cache entry: `_store` gives up quietly.)"""
    host, stale = _temp_prefix().split("-")[1], time.time() - STALE_TEMP_S
    for path in directory.glob(".tmp-*"):
        parts = path.name.split("-")
        with contextlib.suppress(OSError, ValueError):
            gone = len(parts) > 3 and parts[1] == host and not process_alive(int(parts[2]))
            if gone or path.stat().st_mtime < stale:
                path.unlink()


def _store(path: Path, data: bytes, durable: bool = False) -> None:
    """`data` as the file `path`, written whole under a temporary name and renamed (a
    reader never sees half a file); `durable`: on the disk before it has its name (an
    object file: LLVM aborts the process on a damaged one, and one left zero-filled by a
    crash would abort every later start; 21 objects of ResNet-50's first start: ~100 ms)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent not in _SWEPT:
            _SWEPT.add(path.parent)
            sweep(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs compile time


# the object file formats LLVM emits (ELF, Mach-O, COFF x86-64): anything else in the cache
# (a file zero-filled by a crash, from before objects were written durably) is not given
# to LLVM, which would abort the process on it, but compiled again
_OBJECT_MAGICS = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\x64\x86")


def compile_module(ir_text: str, symbols: list[str]) -> dict[str, int]:
    """Addresses of `symbols` defined by the module `ir_text` (compiled, or loaded from the
    disk cache, once per process). `__NAME__` in the text and the symbols becomes a prefix
    made of the IR's hash, so that every module's symbols are distinct in the one engine."""
    return _link(kernel_key(ir_text), ir_text, symbols)


def _link(key: str, ir_text: str | None, symbols: list[str],
          compiled: bytes | None = None) -> dict[str, int]:
    """compile_module's work for the IR whose key is `key`; `ir_text` None: only from the
    process's engine or the disk cache (None returned when neither has it); `compiled`:
    its object file(s), compiled already (compile_recipe_later)."""
    with _LOCK:
        if ir_text is not None:
            ir_text = ir_text.replace("__NAME__", f"k{key}_")
        symbols = [s.replace("__NAME__", f"k{key}_") for s in symbols]
        if key in _ADDRESSES:
            STATS["reused"] += 1
            return _ADDRESSES[key]
        h = host()
        path = cache_dir() / f"{key}.o"
        how = "loaded_from_disk"
        try:
            if compiled is not None:
                raise OSError  # (not read: compiled here)
            objects = module_parts.unpack(path.read_bytes())
            if not all(o.startswith(_OBJECT_MAGICS) for o in objects):
                raise ValueError("not an object file")
        except (OSError, ValueError):  # (absent, several objects cut short, not objects)
            if ir_text is None:
                return None  # type: ignore[return-value]
            data = compiled if compiled is not None else _compile(ir_text)
            objects = module_parts.unpack(data)
            how = "compiled"
            if compiled is None:
                _store(path, data, durable=True)
        STATS[how] += 1
        log = os.environ.get("TOSTATIC_KERNEL_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{how} {key}\n")
        for obj in objects:
            h["engine"].add_object_file(llvm.ObjectFileRef.from_data(obj))
        h["engine"].finalize_object()
        addresses = {s.replace(f"k{key}_", "__NAME__"): h["engine"].get_function_address(s)
                     for s in symbols}
        missing = [s for s, a in addresses.items() if not a]  # a bug in an emitter
        if missing:
            raise RuntimeError(f"generated kernel module {key} lacks {missing}")
        _ADDRESSES[key] = addresses
        return addresses


# ------------------------------------------------------------------ recipes (warm starts)

_DIGEST: list[str] = []


# what the generators read besides codegen's own modules (keep in step with their imports)
_GENERATOR_DEPS = ("ir/scalar_expr.py", "ops/pooling.py", "ops/fused.py")


def _generator_digest() -> str:
    """A hash of the code that turns a recipe into IR (codegen's modules and what they
    import), read once a process: a changed generator never meets an old index entry.
    Without its source files (a bytecode-only install) a per-process random value: the
    index is then never shared between processes."""
    if not _DIGEST:
        here = Path(__file__).resolve().parent
        h = hashlib.sha256()
        try:
            for path in sorted(here.glob("*.py")) + [here.parent / d for d in _GENERATOR_DEPS]:
                h.update(path.name.encode() + b"\0" + path.read_bytes())
            _DIGEST.append(h.hexdigest())
        except OSError:
            _DIGEST.append(os.urandom(16).hex())
    return _DIGEST[0]


def recipe_key(recipe: tuple[Any, ...]) -> str:
    h = host()
    text = "\n".join([SALT, llvmlite.__version__, h["cpu"], h["features"], h["triple"],
                      _generator_digest(), repr(recipe)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def compile_recipe(recipe: tuple[Any, ...], build: Callable[[], str],
                   symbols: list[str]) -> dict[str, int]:
    """compile_module(build(), symbols), without building the IR when this recipe (what a
    generator was asked for: its name and arguments, as a deterministic repr) was built
    before with this cache, the same generator code, llvmlite and CPU: an index entry
    (`recipes/<hash of all that>`, holding the IR's key) names the object file to load.
    llvmlite builds IR in pure Python: 26-35 ms of every warm start of ResNet-50 or
    MobileNetV2 went to IR whose machine code was on disk. An entry that is unreadable, not
    a key, or names no object file is ignored and written again; the cache directory is
    trusted as the object files themselves are."""
    index = cache_dir() / "recipes" / recipe_key(recipe)
    try:
        key = index.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        key = ""
    if len(key) == 32 and all(c in "0123456789abcdef" for c in key):
        found = _link(key, None, symbols)
        if found is not None:
            return found
    text = build()
    key = kernel_key(text)
    addresses = _link(key, text, symbols)
    _store(index, key.encode("ascii"))
    return addresses


def compile_recipe_later(recipe: tuple[Any, ...], build: Callable[[], str],
                         symbols: list[str]) -> Callable[[], dict[str, int]]:
    """compile_recipe's addresses, by a function that waits for them: a recipe not in the
    cache is built here and compiled on a thread of its own meanwhile (in a context of its own,
    passing llvmlite's lock: module_parts), so that a first-ever start compiles this module
    while it goes on binding (and compiling) the next kernels. With one compile thread, or
    a warm cache, compiled (or loaded) at once (the function's `ready` True)."""
    index = cache_dir() / "recipes" / recipe_key(recipe)
    try:
        key = index.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        key = ""
    if (module_parts.workers() < 2 or not module_parts.parallel() or key in _ADDRESSES
            or (len(key) == 32 and (cache_dir() / f"{key}.o").exists())):
        found = compile_recipe(recipe, build, symbols)
        ready = lambda: found  # noqa: E731
        ready.ready = True  # type: ignore[attr-defined]
        return ready
    text = build()  # (here: a generator's error, e.g. NotScalar, reaches its caller now)
    key = kernel_key(text)
    box: dict[str, Any] = {"text": text, "key": key}

    def job() -> None:
        try:
            path = cache_dir() / f"{key}.o"
            if key in _ADDRESSES or path.exists():
                return  # (linked, or loaded by `result`)
            with module_parts.unlocked():
                box["data"] = _compile(text.replace("__NAME__", f"k{key}_"), private=True)
            _store(path, box["data"], durable=True)
        except BaseException as e:  # noqa: BLE001 (raised where the result is asked for)
            box["error"] = e
        finally:
            _COMPILING.discard(threading.current_thread())
    thread = threading.Thread(target=job)  # (not a daemon: exit waits for LLVM)
    _COMPILING.add(thread)
    thread.start()
    done: list[dict[str, int]] = []

    def result() -> dict[str, int]:
        if not done:
            thread.join()
            if "error" in box:
                raise box["error"]
            done.append(_link(box["key"], box["text"], symbols, box.get("data")))
            _store(index, box["key"].encode("ascii"))
        return done[0]
    result.ready = False  # type: ignore[attr-defined]
    return result


def _finish_compiles() -> None:
    """Before a fork, compile_recipe_later's threads finish: the child has none of them but
    would inherit what one held inside LLVM (its locks, mid-compile state), and its first
    compile or link could hang on it forever."""
    for thread in list(_COMPILING):
        thread.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_finish_compiles)
