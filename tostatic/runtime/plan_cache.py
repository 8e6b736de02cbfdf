"""The plan cache: what binding a loaded model's plan prepared from its weights (packed GEMM
panels, Winograd filter transforms: codegen/prepared.py), kept on disk so that a later start
maps it instead of computing it again (ResNet-50: ~0.1 s of its first run).

One file a (model content, tostatic code, CPU, threads, input signature, kernel settings)
under `<kernel cache dir>/plans/` (TOSTATIC_CACHE_DIR, as the kernel cache), written
atomically (temp file + rename) after a model's first binding in a process, when it prepared
something the file lacked; a model keeps MAX_FILES of them, the least recently used removed.
A file is never trusted: its header (magic, length, CRC-32 of its index) and size are checked
when opened, each array's CRC-32 before it is used, and every call's key (its function, its
arguments' shapes, dtypes and plain values, its place in the binding's order) must be the one
recorded; anything that differs is computed as without the cache, and the file written anew.
No pickle: a JSON index and raw arrays, 64-byte aligned, mapped read-only (a kernel never
writes what it prepared). `TOSTATIC_PLAN_CACHE=0` turns it off.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import mmap
import os
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tostatic.codegen import num_threads
from tostatic.codegen.engine import cache_dir
from tostatic.codegen.prepared import is_result

MAGIC = b"TSPLAN1\n"
_HEAD = struct.Struct("<8sQI")  # magic, index length, index CRC-32
ALIGN = 64
ENV = "TOSTATIC_PLAN_CACHE"
MAX_FILES = 4  # a model's plan files kept (input shapes, thread counts, tostatic versions)
# settings that change which kernels bind, so what they prepare (not where the caches live)
_IGNORED_ENV = ("TOSTATIC_CACHE_DIR", "TOSTATIC_KERNEL_LOG", "TOSTATIC_DUMP",
                "TOSTATIC_REPRODUCER_DIR", "TOSTATIC_VERBOSITY", "TOSTATIC_TRACEBACK")
_CODE: list[str] = []
THREADED_FROM = 32 << 20  # bytes of a file whose arrays' checks run on other threads


class _Now:
    """An executor running each task when submitted (Future-like results)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 - kept for result(), as a pool would
            future.set_exception(e)
        return future

    def shutdown(self, wait: bool = True) -> None:
        return None


_NOW = _Now()


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
    text = "\n".join([MAGIC.decode().strip(), model_key, code_digest(), h["cpu"], h["features"],
                      h["triple"], str(num_threads()), repr(signature), repr(settings()),
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
            text = "\n".join([MAGIC.decode().strip(), "verified",
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
        _mark(self.path)


def _mark(path: Path) -> None:
    """An empty file at `path`; its directory keeps the VERIFIED_KEPT most recent marks."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        marks = sorted(((p.stat().st_mtime_ns, p) for p in path.parent.iterdir()),
                       reverse=True)
        for _, old in marks[VERIFIED_KEPT:]:
            old.unlink()


VERIFIED_KEPT = 64


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
                                               else open_checked(self.path))
        return self._entries

    def fetch(self, key: str) -> Any:
        i, self._calls = self._calls, self._calls + 1
        entries = self._open()
        entry = entries[i] if i < len(entries) else None
        result = None
        if entry is not None and entry[0].get("key") == key:
            result = entry_value(entry[0], entry[1], self._memory)
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
            write(self.path, [self.results[i] for i in range(self._calls)])
            self._evict()
        except OSError:
            return False  # a read-only cache only costs the preparation
        return True

    def used(self) -> None:
        """Mark the file as just used (what eviction goes by), when it answered."""
        if self.hits and self._entries:
            used(self.path, checked=self.misses == 0 and len(self._entries) == self._calls)

    def _evict(self) -> None:
        """The model's files beyond MAX_FILES, least recently used (written or read) first."""
        evict(self.path.parent, f"{self._model}-*.plan", MAX_FILES)


STALE_TEMP_NS = 3600 * 10**9  # a temporary file this old was left by a killed writer


def evict(directory: Path, pattern: str, kept: int, kept_bytes: int | None = None) -> None:
    """The files matching `pattern` beyond the `kept` most recently used (their mtime, which
    `used` sets), or beyond `kept_bytes` together (the newest is always kept), removed; and
    `write`'s temporary files left by a process killed while writing, once older than any
    write takes (a file holds a model's weights: the disk would fill with them)."""
    mine, stale = [], time.time_ns() - STALE_TEMP_NS
    for path in directory.glob(pattern):
        with contextlib.suppress(OSError):
            st = path.stat()
            mine.append((st.st_mtime_ns, st.st_size, path))
    total = 0
    for k, (_, size, path) in enumerate(sorted(mine, reverse=True)):
        total += size
        if k >= kept or (k and kept_bytes is not None and total > kept_bytes):
            with contextlib.suppress(OSError):
                path.unlink()
    for path in directory.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime_ns < stale:
                path.unlink()


def used(path: Path, checked: bool) -> None:
    """Mark a plan file (or a warm start's record) as just used: eviction goes by its
    mtime. `checked`: every array of it passed its check (or was trusted), so the bytes the
    new times are of are those, and its checked mark follows them."""
    with contextlib.suppress(OSError):
        os.utime(path)
        if checked:
            _mark(checked_mark(path, os.stat(path)))


def open_checked(path: Path, pool: Any = None) -> tuple[list[Any], mmap.mmap]:
    """The file's entries, each with its arrays' checks (bounds, size and CRC-32) as
    futures, and the file mapped. A big file's checks run on two threads in the binding's
    order while it goes on (zlib releases the GIL; ResNet-50's 150 MB take ~20 ms of a
    core), each awaited only when its entry is asked for; a small file's on this thread
    (handing the GIL to and fro per array would cost more than the checks)."""
    entries, memory, mark = _read_index(path)
    own = pool is None and mark is not None
    if own:
        pool = concurrent.futures.ThreadPoolExecutor(2) if len(memory) >= THREADED_FROM \
            else _NOW
    out: list[Any] = []
    for e in entries:
        arrays = e.get("arrays") if isinstance(e, dict) else None
        if not isinstance(arrays, list) or not arrays:
            out.append(None)
        elif mark is None:  # checked before: trusted
            out.append((e, [_PASSED] * len(arrays)))
        else:
            out.append((e, [pool.submit(_check, spec, memory) for spec in arrays]))
    if mark is not None:
        _mark_when_passed([c for o in out if o is not None for c in o[1]], mark)
    if own:
        pool.shutdown(wait=False)  # (its threads end once the checks are done)
    return out, memory


_PASSED: concurrent.futures.Future[bool] = concurrent.futures.Future()
_PASSED.set_result(True)


def checked_mark(path: Path, st: os.stat_result) -> Path:
    """The mark of this very file (device, inode, size, mtime_ns) having passed every check
    once: a later opening trusts it, maps it without reading it (its pages come as the
    kernels touch them) and checks nothing but its index, as Python trusts a .pyc whose
    source's size and mtime are the ones it records (~40 ms of ResNet-50's warm start,
    250 MB at ~6.5 GB/s, the most of it waited for). A plan file is only ever replaced
    whole (temp file + rename: another inode), and one changed in place has another mtime
    (unless changed within the file system clock's tick of its last use: tostatic never
    writes one in place)."""
    text = "\n".join([MAGIC.decode().strip(), "checked", os.path.abspath(path),
                      f"{st.st_dev},{st.st_ino},{st.st_size},{st.st_mtime_ns}"])
    return path.parent.parent / "verified" / hashlib.sha256(text.encode()).hexdigest()[:40]


def _mark_when_passed(checks: list[Any], mark: Path) -> None:
    """Write `mark` once every one of `checks` has passed (none failing)."""
    left, lock = [len(checks)], threading.Lock()

    def done(check: Any) -> None:
        passed = check.exception() is None and check.result() is True
        with lock:
            if left[0] <= 0:
                return  # one failed before: never marked
            left[0] = left[0] - 1 if passed else -1
            last = left[0] == 0
        if last:
            _mark(mark)
    for c in checks:
        c.add_done_callback(done)


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
    (ResNet-50: ~15 ms of its first run). Only for a big file (THREADED_FROM); nothing
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
    if best is None or best[2].st_size < THREADED_FROM:
        return
    _, path, st = best
    pool = concurrent.futures.ThreadPoolExecutor(2)
    opening = pool.submit(open_checked, path, pool)
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


def read_index(path: Path) -> tuple[list[dict[str, Any]], mmap.mmap]:
    """The entries of a plan file and the file mapped (read-only); ValueError for anything
    but a whole file of this format."""
    entries, memory, _ = _read_index(path)
    return entries, memory


def _read_index(path: Path) -> tuple[list[dict[str, Any]], mmap.mmap, Path | None]:
    """read_index's, and the file's checked_mark if it has not passed its checks before
    (then its pages are populated now: the checks read them all), None if it has."""
    with open(path, "rb") as f:
        head = f.read(_HEAD.size)
        if len(head) != _HEAD.size:
            raise ValueError("short header")
        magic, length, crc = _HEAD.unpack(head)
        if magic != MAGIC or length > 1 << 26:
            raise ValueError("not a plan file")
        raw = f.read(length)
        if len(raw) != length or zlib.crc32(raw) != crc:
            raise ValueError("index damaged")
        index = json.loads(raw)
        st = os.fstat(f.fileno())
        size = st.st_size
        if index.get("size") != size or not isinstance(index.get("entries"), list):
            raise ValueError("truncated or extended")
        mark: Path | None = checked_mark(path, st)
        if mark.exists():  # type: ignore[union-attr]
            mark = None
        # read-only and shared: the page cache's own pages, mapped at once when all will be
        # read (a writable private map would copy each of them)
        flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if mark else 0)
        memory = mmap.mmap(f.fileno(), size, flags=flags, prot=mmap.PROT_READ)
    return index["entries"], memory, mark


def entry_value(entry: dict[str, Any], checks: list[Any], memory: mmap.mmap) -> Any:
    """An entry's arrays over the mapped file, None unless every check passed."""
    try:
        if not all(c.result() for c in checks) or not isinstance(entry["arrays"], list):
            return None
        arrays = [np.frombuffer(memory, np.dtype(s["dtype"]), int(np.prod(s["shape"])),
                                s["offset"]).reshape(s["shape"]) for s in entry["arrays"]]
        if entry["tuple"] is True:
            return tuple(arrays)
        return arrays[0] if entry["tuple"] is False and len(arrays) == 1 else None
    except Exception:  # noqa: BLE001 - whatever a damaged entry makes fail: not used
        return None


def _check(spec: dict[str, Any], memory: mmap.mmap) -> bool:
    try:
        dtype = np.dtype(spec["dtype"])
        shape, offset, nbytes = tuple(spec["shape"]), spec["offset"], spec["nbytes"]
        if (dtype.hasobject or offset % ALIGN or offset + nbytes > len(memory)
                or int(np.prod(shape)) * dtype.itemsize != nbytes):
            return False
        with memoryview(memory) as whole:
            return zlib.crc32(whole[offset:offset + nbytes]) == spec["crc"]
    except (KeyError, TypeError, ValueError):
        return False


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def write(path: Path, results: list[tuple[str, Any]]) -> None:
    """The file for these calls' (key, result), written whole under a temporary name and
    renamed: a reader sees the old file or the new one, never part of one."""
    entries, blobs = [], []
    offset = 0  # relative to the data start, fixed once the index's length is known
    for key, result in results:
        if not is_result(result):
            raise ValueError(f"cannot keep {type(result).__name__}")
        arrays = [result] if isinstance(result, np.ndarray) else list(result)
        specs = []
        for a in arrays:
            a = np.ascontiguousarray(a)
            specs.append({"shape": list(a.shape), "dtype": a.dtype.str, "nbytes": a.nbytes,
                          "offset": offset, "crc": zlib.crc32(a.reshape(-1).view(np.uint8))})
            blobs.append((offset, a))
            offset = _aligned(offset + a.nbytes)
        entries.append({"key": key, "tuple": not isinstance(result, np.ndarray),
                        "arrays": specs})
    # the data starts at an aligned offset after the index, which records absolute offsets:
    # the index's length depends on them, so grow the start until it fits
    start = _aligned(_HEAD.size + 64)
    while True:
        for entry in entries:
            for spec in entry["arrays"]:
                spec["offset"] = spec.setdefault("rel", spec["offset"]) + start
        index = {"entries": [{**e, "arrays": [{k: v for k, v in s.items() if k != "rel"}
                                              for s in e["arrays"]]} for e in entries],
                 "size": start + offset}
        raw = json.dumps(index, separators=(",", ":")).encode()
        if _HEAD.size + len(raw) <= start:
            break
        start = _aligned(_HEAD.size + len(raw))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_HEAD.pack(MAGIC, len(raw), zlib.crc32(raw)))
            f.write(raw)
            for rel, a in blobs:
                f.seek(start + rel)
                f.write(a.reshape(-1).view(np.uint8))
            f.truncate(start + offset)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
