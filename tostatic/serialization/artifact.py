"""A model's files saved as one unit, and the manifest that lets a reader check them.

jit.save and save_inference_model write several files for one prefix (`.pdmodel`,
`.pdiparams`, `.pdiparams.info`). `save_files` makes that atomic and checkable:

1. Each file is written to a temporary file in the same directory (`.NAME.PID.XXXX.tmp`),
   straight from the writer (parameters go from their arrays to the file: no whole-file
   bytes) while a thread hashes what was written (sha256, and a CRC-32 per `.pdiparams`
   record), then fsync'ed.
2. The manifest `PREFIX.tostatic-manifest` (JSON, a sidecar that Paddle never opens) records
   each file's size and sha256, the records' CRC-32s and the content hash: sha256 of the model
   file's bytes followed by the params file's (what `tostatic inspect` prints). It is written
   to a temporary file too.
3. The commit point: a journal `.PREFIX.tostatic-commit` naming every temporary file and its
   destination (and the files of an earlier save the new one does not have) is written
   atomically. Then each temporary file is renamed over its destination, the directory
   fsync'ed and the journal removed.

`recover(prefix)` finishes a save that was killed after its commit point (all renames are
redone) and removes temporary files left by killed saves; the next save and every load
through `load_model` call it. So a process killed at any point of a save leaves the previous
files, unchanged, or (after the commit point) the new ones: never a mixture.
Same model, same bytes: nothing time-, process- or path-dependent is written.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from tostatic.serialization import FormatError, _umask, remove_stale_temps

__all__ = ["MANIFEST_SUFFIX", "HashingWriter", "save_files", "recover", "read_manifest", "file_entry",
           "check_file", "tmp_path"]

MANIFEST_SUFFIX = ".tostatic-manifest"
_JOURNAL = ".tostatic-commit"
_CHUNK = 32 << 20  # big arrays are written and hashed in pieces, so the two overlap
_FLUSH_EVERY = 128 << 20  # a big file is fdatasync'ed as it grows: its final fsync is short


class HashingWriter:
    """A binary file whose bytes are hashed (sha256) by a thread while they are written;
    `mark()` starts a new record whose CRC-32 `records` keeps."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.size = 0
        self.sha = hashlib.sha256()
        self.records: list[list[Any]] = []  # [name, offset, crc32]
        self._pool = concurrent.futures.ThreadPoolExecutor(1)
        self._last: concurrent.futures.Future | None = None
        self._written = 0  # since the last early flush

    def mark(self, name: str) -> None:
        self.records.append([name, self.size, 0])

    def _hash(self, view: memoryview, record: list[Any] | None) -> None:
        self.sha.update(view)
        if record is not None:
            record[2] = zlib.crc32(view, record[2])

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        record = self.records[-1] if self.records else None
        for start in range(0, max(len(view), 1), _CHUNK):
            piece = view[start:start + _CHUNK]
            if not len(piece):
                break
            prev = self._last
            self.f.write(piece)
            self._written += len(piece)
            flush = self._written >= _FLUSH_EVERY
            if flush:
                self._written = 0
                self.f.flush()
            # hashing runs in order on one thread, beside the write of the next piece
            self._last = self._pool.submit(self._after, prev, piece, record, flush)
        self.size += len(view)
        return len(view)

    def _after(self, prev: concurrent.futures.Future | None, piece: memoryview,
               record: list[Any] | None, flush_upto: bool) -> None:
        if prev is not None:
            prev.result()
        self._hash(piece, record)
        if flush_upto:  # start the disk writes of what is written so far (see save_files)
            with contextlib.suppress(OSError, ValueError):
                os.fdatasync(self.f.fileno())

    def finish(self) -> dict[str, Any]:
        if self._last is not None:
            self._last.result()
        self._pool.shutdown()
        entry: dict[str, Any] = {"size": self.size, "sha256": self.sha.hexdigest()}
        if self.records:
            entry["records"] = self.records
        return entry


def tmp_path(path: str) -> str:
    directory, base = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    return tmp


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsync'ed
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _journal(prefix: str) -> str:
    directory, base = os.path.split(os.path.abspath(prefix))
    return os.path.join(directory, f".{base}{_JOURNAL}")


def recover(prefix: str) -> None:
    """Finish a committed save of `prefix` that was interrupted; remove the temporary files
    of killed saves (those whose process is gone) of the prefix's files."""
    journal = _journal(prefix)
    directory, base = os.path.split(os.path.abspath(prefix))
    if os.path.exists(journal):
        try:
            with open(journal, encoding="utf-8") as f:
                plan = json.load(f)
            for tmp, dst in plan["replace"]:
                if os.path.exists(os.path.join(directory, tmp)):
                    os.replace(os.path.join(directory, tmp), os.path.join(directory, dst))
            for stale in plan["remove"]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, stale))
            _fsync_dir(directory)
        except (ValueError, KeyError, TypeError):
            pass  # a journal that is not ours or half-written (it is written atomically)
        os.unlink(journal)
    remove_stale_temps(prefix)


Writer = Callable[[HashingWriter], None]


def save_files(prefix: str, writers: dict[str, Writer | None],
               others: tuple[str, ...] = ()) -> dict[str, Any]:
    """Write `prefix + suffix` for each writer (None: that file must not exist afterwards, as
    must not the `others` suffixes) as one atomic unit with its manifest; returns the
    manifest. See the module docstring."""
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    recover(prefix)
    temps: dict[str, str] = {}
    entries: dict[str, dict[str, Any]] = {}
    try:
        for suffix, writer in writers.items():
            if writer is None:
                continue
            tmp = temps[suffix] = tmp_path(prefix + suffix)
            with open(tmp, "wb") as f:
                hw = HashingWriter(f)
                try:
                    writer(hw)
                finally:
                    entry = hw.finish()
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            entries[os.path.basename(prefix + suffix)] = entry
        manifest = _manifest(prefix, writers, entries)
        data = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
        tmp = temps[MANIFEST_SUFFIX] = tmp_path(prefix + MANIFEST_SUFFIX)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        _fsync_dir(directory)
        base = os.path.basename(prefix)
        plan = {"replace": [[os.path.basename(t), base + s] for s, t in temps.items()],
                "remove": [base + s for s, w in writers.items() if w is None]
                + [base + s for s in others]}
        journal = _journal(prefix)
        jtmp = tmp_path(journal)
        with open(jtmp, "w", encoding="utf-8") as f:
            json.dump(plan, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(jtmp, journal)  # the commit point
    except BaseException:
        for t in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(t)
        raise
    _fsync_dir(directory)
    recover(prefix)  # the renames
    return manifest


def _manifest(prefix: str, writers: dict[str, Any],
              entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    content = hashlib.sha256()
    for suffix in (".pdmodel", ".pdiparams"):  # what `tostatic inspect` hashes: model, params
        name = os.path.basename(prefix + suffix)
        if name in entries:
            content.update(bytes.fromhex(entries[name]["sha256"]))
    return {"format": "tostatic-manifest", "version": 1, "files": entries,
            "content_hash": content.hexdigest()}


def read_manifest(prefix: str) -> dict[str, Any] | None:
    """The manifest saved with `prefix`, or None (files written by Paddle have none)."""
    path = prefix + MANIFEST_SUFFIX
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 24)
        manifest = json.loads(data)
        files = manifest["files"]
        if manifest.get("format") != "tostatic-manifest" or not isinstance(files, dict):
            raise ValueError("not a tostatic manifest")
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise FormatError(path, None, f"expected a tostatic manifest (JSON), found something "
                          f"else ({type(e).__name__}: {e})") from None
    return manifest


def file_entry(manifest: dict[str, Any] | None, path: str) -> dict[str, Any] | None:
    if manifest is None:
        return None
    entry = manifest["files"].get(os.path.basename(path))
    return entry if isinstance(entry, dict) else None


def check_file(manifest: dict[str, Any] | None, path: str, data: bytes | None = None) -> None:
    """The file must have the size (and, given its bytes, the sha256) its manifest records."""
    entry = file_entry(manifest, path)
    if entry is None:
        return
    size = os.path.getsize(path)
    if size != entry.get("size"):
        raise FormatError(path, min(size, entry.get("size") or 0),
                          f"the manifest records {entry.get('size')} bytes, the file has {size} "
                          f"(truncated, or not from the same save as the manifest)")
    if data is not None and hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise FormatError(path, None, "its sha256 differs from the one its manifest records "
                          "(the file was changed or corrupted after it was saved)")
