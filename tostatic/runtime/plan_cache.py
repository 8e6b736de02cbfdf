"""The plan cache: what binding a loaded model's plan prepared from its weights (packed GEMM
panels, Winograd filter transforms: codegen/prepared.py), kept on disk so that a later start
maps it instead of computing it again (ResNet-50: ~0.1 s of its first run).

One file a (model content, tostatic code, CPU, threads, input signature, kernel settings)
under `<kernel cache dir>/plans/` (TOSTATIC_CACHE_DIR, as the kernel cache), written
atomically (temp file + rename) after a model's first binding in a process, when it prepared
something the file lacked; a model keeps MAX_FILES of them, the least recently used removed.
The file (runtime/plan_file.py: a JSON index and raw arrays, checked, mapped read-only: a
kernel never writes what it prepared) is answered from only where every call's key (its
function, its arguments' shapes, dtypes and plain values, its place in the binding's order)
is the one recorded; anything that differs is computed as without the cache, and the file
written anew. Also here: `Verified` (loads whose IR verification can be skipped) and
`prefetch` (a model's last file opened while it loads). `TOSTATIC_PLAN_CACHE=0` turns it off.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import mmap
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tostatic.codegen import num_threads
from tostatic.codegen.engine import cache_dir
from tostatic.runtime import plan_file

ENV = "TOSTATIC_PLAN_CACHE"
MAX_FILES = 4  # a model's plan files kept (input shapes, thread counts, tostatic versions)
# settings that change which kernels bind, so what they prepare (not where the caches live)
_IGNORED_ENV = ("TOSTATIC_CACHE_DIR", "TOSTATIC_KERNEL_LOG", "TOSTATIC_DUMP",
                "TOSTATIC_REPRODUCER_DIR", "TOSTATIC_VERBOSITY", "TOSTATIC_TRACEBACK")
_CODE: list[str] = []


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def code_digest() -> str:
    """tostatic's code as installed: every module's path, size and modification time (the
    passes make the weights the kernels prepare from, so all of it counts; a stat of each
    file, ~2 ms). Without source files, a per-process random value (nothing is shared)."""
    if not _CODE:
        lines: list[str] = []
        pending = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
        while pending:
            with os.scandir(pending.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.name.endswith(".py"):
                        st = entry.stat()
                        lines.append(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}")
        text = "\n".join(sorted(lines))
        _CODE.append(hashlib.sha256(text.encode()).hexdigest() if lines
                     else os.urandom(16).hex())
    return _CODE[0]


def store_key(model_key: str, signature: Any) -> str:
    """The file name: everything the prepared arrays follow from."""
    from tostatic.codegen import engine  # noqa: PLC0415 (llvmlite: only when a kernel prepares)

    h = engine.host()
    text = "\n".join([plan_file.MAGIC.decode().strip(), model_key, code_digest(), h["cpu"],
                      h["features"], h["triple"], str(num_threads()), repr(signature),
                      repr(settings()),
                      sys.byteorder, np.__version__])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def settings() -> list[tuple[str, str]]:
    """The TOSTATIC_ settings a cached file is keyed on: they decide which kernels bind."""
    return sorted((k, v) for k, v in os.environ.items()
                  if k.startswith("TOSTATIC_") and k not in _IGNORED_ENV)


class Verified:
    """Whether a load of this very program, with these weights, settings and tostatic code,
    verified its IR before: then the passes' verifier need not run again (ResNet-50: ~16 ms
    of a start). The passes make the same IR from the same program and code (the weights'
    values do not shape it); the weights file is still told by its size and modification
    time, as Python tells a module's source for its .pyc. The mark is an empty file in
    `verified/` beside `plans/`, made after a load that verified; with the plan cache off,
    every load verifies."""

    def __init__(self, program: bytes, params_file: str | None, optimize: bool,
                 directory: Path | None = None):
        self.path: Path | None = None
        self.known = False
        if not enabled():
            return
        try:
            st = os.stat(params_file) if params_file and os.path.exists(params_file) else None
            text = "\n".join([plan_file.MAGIC.decode().strip(), "verified",
                              hashlib.sha256(program).hexdigest(),
                              f"{st.st_size},{st.st_mtime_ns}" if st else "-", str(optimize),
                              code_digest(), repr(settings())])
            directory = directory or cache_dir() / "verified"
            self.path = directory / hashlib.sha256(text.encode()).hexdigest()[:40]
            self.known = self.path.exists()
        except OSError:
            self.path = None

    def record(self) -> None:
        """Mark the load as verified (nothing if it was known, or the cache is read-only);
        the directory keeps the VERIFIED_KEPT most recent marks."""
        if self.path is None or self.known:
            return
        plan_file.mark(self.path)


class PlanStore:
    """codegen.prepared's Store for one binding: answers from the file if it holds the same
    calls, keeps what was computed, and `save` writes the file when it was missing or
    differed. Keyed lazily: nothing is read (and llvmlite not asked for the CPU) unless a
    kernel prepares something. A file's name starts with its model's key: at most
    MAX_FILES a model are kept, the least recently used removed (a service binding many
    input shapes must not fill the disk)."""

    def __init__(self, model_key: str, key_of: Callable[[], str],
                 directory: Path | None = None):
        self._model = model_key[:16]
        self._key_of = key_of
        self._directory = directory
        self._path: Path | None = None
        self._entries: list[Any] | None = None
        self._memory: mmap.mmap | None = None
        self._calls = 0
        self.results: dict[int, tuple[str, Any]] = {}
        self.hits = self.misses = 0

    @property
    def path(self) -> Path:
        if self._path is None:
            directory = self._directory or cache_dir() / "plans"
            self._path = directory / f"{self._model}-{self._key_of()}.plan"
        return self._path

    def _open(self) -> list[Any]:
        """Each entry and its arrays' checks (opened_checked), begun by `prefetch` while
        the model loaded if it opened this very file."""
        if self._entries is None:
            self._entries = []
            opening = _take_prefetched(self._model, self.path)
            # (a missing, short, corrupt or foreign file: no entries, rewritten by save)
            with contextlib.suppress(Exception):
                self._entries, self._memory = (opening.result() if opening is not None
                                               else plan_file.open_checked(self.path))
        return self._entries

    def fetch(self, key: str) -> Any:
        i, self._calls = self._calls, self._calls + 1
        entries = self._open()
        entry = entries[i] if i < len(entries) else None
        result = None
        if entry is not None and entry[0].get("key") == key:
            result = plan_file.entry_value(entry[0], entry[1], self._memory)
        if result is None:
            self.misses += 1
            return None
        self.hits += 1
        self.results[i] = (key, result)
        return result

    def keep(self, key: str, result: Any) -> None:
        self.results[self._calls - 1] = (key, result)

    def save(self) -> bool:
        """Write the file if this binding's calls are not exactly what it held."""
        if self._calls == 0 or (self.misses == 0 and len(self._open()) == self._calls):
            return False
        if sorted(self.results) != list(range(self._calls)):
            return False  # a call whose result could not be kept: the next start recomputes
        try:
            plan_file.write(self.path, [self.results[i] for i in range(self._calls)])
            self._evict()
        except OSError:
            return False  # a read-only cache only costs the preparation
        return True

    def used(self) -> None:
        """Mark the file as just used (what eviction goes by), when it answered."""
        if self.hits and self._entries:
            plan_file.used(self.path,
                           checked=self.misses == 0 and len(self._entries) == self._calls)

    def _evict(self) -> None:
        """The model's files beyond MAX_FILES, least recently used (written or read) first."""
        plan_file.evict(self.path.parent, f"{self._model}-*.plan", MAX_FILES)


# model key (its first 16 characters) -> (the plan file, its (device, inode), its opening)
_PREFETCHED: dict[str, tuple[Path, tuple[int, int], Any]] = {}
_PREFETCH_LOCK = threading.Lock()
if hasattr(os, "register_at_fork"):  # a child has not the threads finishing an opening:
    os.register_at_fork(after_in_child=_PREFETCHED.clear)  # it would wait for it forever


def prefetch(model_key: str, directory: Path | None = None) -> None:
    """Open the model's most recently used plan file and check its arrays on two other
    threads, while the model loads (parse, raise, passes: the main thread's Python, which
    these threads barely contend with): the binding that follows, if it asks for this
    file (the same input signature as the last start's), finds it mapped and checked
    (ResNet-50: ~15 ms of its first run). Only for a big file (plan_file.THREADED_FROM); nothing
    when the cache is off or the model has no file."""
    if not enabled():
        return
    model = model_key[:16]
    try:
        directory = directory or cache_dir() / "plans"
        best = None
        with os.scandir(directory) as it:
            for entry in it:
                if entry.name.startswith(model + "-") and entry.name.endswith(".plan"):
                    st = entry.stat()
                    if best is None or st.st_mtime_ns > best[0]:
                        best = (st.st_mtime_ns, Path(entry.path), st)
    except OSError:
        return
    if best is None or best[2].st_size < plan_file.THREADED_FROM:
        return
    _, path, st = best
    pool = concurrent.futures.ThreadPoolExecutor(2)
    opening = plan_file.track(pool.submit(plan_file.open_checked, path, pool))
    opening.add_done_callback(lambda _: pool.shutdown(wait=False))
    with _PREFETCH_LOCK:  # one at a time: a model loaded but never run keeps no mapping
        _PREFETCHED.clear()  # beyond the next load's (dropped: unmapped after its checks)
        _PREFETCHED[model] = (path, (st.st_dev, st.st_ino), opening)


def _take_prefetched(model: str, path: Path) -> Any:
    """The prefetched opening of `path`, if it is the file there now (a file is written
    whole and renamed into place, never changed: the same inode is the same content);
    any other prefetch of the model is dropped (its mapping goes with its last check)."""
    with _PREFETCH_LOCK:
        got = _PREFETCHED.pop(model, None)
    if got is None or got[0] != path:
        return None
    with contextlib.suppress(OSError):
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == got[1]:
            return got[2]
    return None


