"""The plan file: a JSON index and raw arrays, the format of the plan cache
(runtime/plan_cache.py) and of warm starts' records (runtime/warm_start.py).

A header (magic, the index's length and CRC-32), the index (one entry a call: its key and
its arrays' offsets, shapes, dtypes and CRC-32s), then the arrays, 64-byte aligned, mapped
read-only. Written whole (temp file + fsync + rename, never in place); opened, every array is
checked before use unless this very file (device, inode, size, mtime) passed every check
once (`checked_mark`). Eviction by mtime (`used` sets it), bounded by count and bytes. No
pickle.
"""
from __future__ import annotations

import concurrent.futures
# (imported now, not on a first ThreadPoolExecutor: its fork hook, which holds the pools'
# global lock through a fork, must be registered before _finish_checks, so that ours runs
# first, while the threads it waits for can still submit their checks)
import concurrent.futures.thread  # noqa: F401
import contextlib
import hashlib
import json
import mmap
import os
import struct
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tostatic.codegen.prepared import is_result

MAGIC = b"TSPLAN1\n"


_HEAD = struct.Struct("<8sQI")  # magic, index length, index CRC-32


ALIGN = 64


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


VERIFIED_KEPT = 64  # marks in `verified/` (verified loads, checked files) kept


def mark(path: Path) -> None:
    """An empty file at `path`; its directory keeps the VERIFIED_KEPT most recent marks."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        marks = sorted(((p.stat().st_mtime_ns, p) for p in path.parent.iterdir()),
                       reverse=True)
        for _, old in marks[VERIFIED_KEPT:]:
            old.unlink()


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
            mark(checked_mark(path, os.stat(path)))


def open_checked(path: Path, pool: Any = None) -> tuple[list[Any], mmap.mmap]:
    """The file's entries, each with its arrays' checks (bounds, size and CRC-32) as
    futures, and the file mapped. A big file's checks run on two threads in the binding's
    order while it goes on (zlib releases the GIL; ResNet-50's 150 MB take ~20 ms of a
    core), each awaited only when its entry is asked for; a small file's on this thread
    (handing the GIL to and fro per array would cost more than the checks)."""
    entries, memory, unchecked = _read_index(path)
    own = pool is None and unchecked is not None
    if own:
        pool = concurrent.futures.ThreadPoolExecutor(2) if len(memory) >= THREADED_FROM \
            else _NOW
    out: list[Any] = []
    for e in entries:
        arrays = e.get("arrays") if isinstance(e, dict) else None
        if not isinstance(arrays, list) or not arrays:
            out.append(None)
        elif unchecked is None:  # checked before: trusted
            out.append((e, [_PASSED] * len(arrays)))
        else:
            out.append((e, [track(pool.submit(_check, spec, memory)) for spec in arrays]))
    if unchecked is not None:
        _mark_when_passed([c for o in out if o is not None for c in o[1]], unchecked)
    if own:
        pool.shutdown(wait=False)  # (its threads end once the checks are done)
    return out, memory


# checks (and openings) running on other threads: a fork waits for them (below)
_PENDING: set[concurrent.futures.Future[Any]] = set()
_PENDING_LOCK = threading.Lock()


def track(future: concurrent.futures.Future[Any]) -> concurrent.futures.Future[Any]:
    """`future` (run by a pool thread) kept among those a fork waits for, until done."""
    with _PENDING_LOCK:
        _PENDING.add(future)
    future.add_done_callback(_done)
    return future


def _done(future: concurrent.futures.Future[Any]) -> None:
    with _PENDING_LOCK:
        _PENDING.discard(future)


def _finish_checks() -> None:
    """Before a fork, the checks under way finish: a child has none of the threads running
    them, and a predictor it inherited (a warm start's record opened, not yet checked)
    would wait for their results forever."""
    while True:
        with _PENDING_LOCK:
            left = list(_PENDING)
        if not left:
            return
        concurrent.futures.wait(left)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_finish_checks)


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
    writes one in place). Its data reached the disk before it was renamed (`write`): a
    crash cannot leave a file of the marked size and mtime holding what was never written
    (a zero-filled one), which the mark would pass unread."""
    text = "\n".join([MAGIC.decode().strip(), "checked", os.path.abspath(path),
                      f"{st.st_dev},{st.st_ino},{st.st_size},{st.st_mtime_ns}"])
    return path.parent.parent / "verified" / hashlib.sha256(text.encode()).hexdigest()[:40]


def _mark_when_passed(checks: list[Any], checked: Path) -> None:
    """Write the mark `checked` once every one of `checks` has passed (none failing)."""
    left, lock = [len(checks)], threading.Lock()

    def done(check: Any) -> None:
        passed = check.exception() is None and check.result() is True
        with lock:
            if left[0] <= 0:
                return  # one failed before: never marked
            left[0] = left[0] - 1 if passed else -1
            last = left[0] == 0
        if last:
            mark(checked)
    for c in checks:
        c.add_done_callback(done)


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
        unchecked: Path | None = checked_mark(path, st)
        if unchecked.exists():  # type: ignore[union-attr]
            unchecked = None
        # read-only and shared: the page cache's own pages, mapped at once when all will be
        # read (a writable private map would copy each of them)
        flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if unchecked else 0)
        memory = mmap.mmap(f.fileno(), size, flags=flags, prot=mmap.PROT_READ)
    return index["entries"], memory, unchecked


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
    """The file for these calls' (key, result), written whole under a temporary name, on
    the disk, and renamed: a reader sees the old file or the new one, never part of one,
    and after a crash a file with its name holds what was written (a checked mark trusts
    it unread: checked_mark). The fsync: ~80-90 ms of ResNet-50's first-ever start (its
    plan file and warm record, 250 MB), of 6-7 s; nothing on a warm start."""
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
            f.flush()
            os.fsync(f.fileno())  # (on the disk before it has its name: checked_mark)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
