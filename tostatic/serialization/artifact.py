"""A model's files saved as one unit, and the manifest that lets a reader check them.

jit.save and save_inference_model write several files for one prefix (`.pdmodel`,
`.pdiparams`, `.pdiparams.info`). `save_files` makes that atomic and checkable:

1. Each file is written to a temporary file in the same directory (`.NAME.PID.XXXX.tmp`),
   straight from the writer (parameters go from their arrays to the file: no whole-file
   bytes, no copies) and checksummed as it is written (HashingWriter: sha256 of a small file,
   a CRC-32 per `.pdiparams` record), then fsync'ed.
2. The manifest `PREFIX.tostatic-manifest` (JSON, a sidecar that Paddle never opens) records
   each file's size and sha256, or for `.pdiparams` its records' offsets and CRC-32s (what
   a load checks, record by record) and their digest; and the content hash: sha256 of the
   model file's sha256 followed by the params' records digest (what `tostatic inspect`
   prints). No second pass over the parameters: a CRC-32 per record detects corruption, and
   the content hash identifies a save; neither is a signature against deliberate forgery.
   The manifest is written to a temporary file too.
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

import contextlib
import ctypes
import hashlib
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from tostatic.serialization import FormatError, _umask, remove_stale_temps

__all__ = ["MANIFEST_SUFFIX", "HashingWriter", "save_files", "recover", "read_manifest", "file_entry",
           "check_file", "tmp_path", "records_digest", "content_hash", "prefix_manifest",
           "record_crcs"]

MANIFEST_SUFFIX = ".tostatic-manifest"
_JOURNAL = ".tostatic-commit"
_PIECE = 1 << 20  # checksummed then written while in the CPU cache
_WRITEBACK_EVERY = 64 << 20
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


class HashingWriter:
    """A binary file that checksums what is written as it goes: the bytes before the first
    `mark()` by sha256 (a small file: the model, the info), each record from its `mark(name)`
    on by CRC-32 (the parameters: `records`, [name, offset, crc32]). Data goes from the
    caller's buffer to the file in 1 MiB pieces, each checksummed just before it is written
    while it is in the CPU cache (zlib.crc32 runs at memory speed; sha256 would cost more than
    the write itself on a big model); every 64 MiB the kernel is told to start writing back
    (sync_file_range), so the final fsync has little left to wait for."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.fd = f.fileno()
        self.size = 0
        self.sha = hashlib.sha256()
        self.records: list[list[Any]] = []  # [name, offset, crc32]
        self._unsynced = 0  # bytes written since the last writeback request

    def mark(self, name: str) -> None:
        if not self.records and self.size:
            raise ValueError("records must start at the beginning of the file: the bytes "
                             "before the first one would not be checksummed")
        self.records.append([name, self.size, 0])

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        record = self.records[-1] if self.records else None
        if record is None:
            self.sha.update(view)
            self._write(view)
        else:
            for start in range(0, len(view), _PIECE):
                piece = view[start:start + _PIECE]
                record[2] = zlib.crc32(piece, record[2])
                self._write(piece)
        self.size += len(view)
        self._unsynced += len(view)
        if self._unsynced >= _WRITEBACK_EVERY:
            _start_writeback(self.fd, self.size - self._unsynced, self._unsynced)
            self._unsynced = 0
        return len(view)

    def _write(self, view: memoryview) -> None:
        while len(view):
            view = view[os.write(self.fd, view):]

    def finish(self) -> dict[str, Any]:
        if self.records:
            return {"size": self.size, "records": self.records,
                    "digest": records_digest(self.size, self.records)}
        return {"size": self.size, "sha256": self.sha.hexdigest()}


def records_digest(size: int, records: list[list[Any]]) -> str:
    """What the content hash takes of a records file (`.pdiparams`): sha256 over its size
    and each record's offset and CRC-32. The names are not in it (the model file orders
    them); `tostatic inspect` recomputes it from the file (pdiparams.record_checksums)."""
    digest = hashlib.sha256(b"tostatic-records-v1" + _U64.pack(size))
    for _, offset, crc in records:
        digest.update(_U64.pack(offset) + _U32.pack(crc))
    return digest.hexdigest()


def _load_sync_file_range() -> Callable[[int, int, int], None] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return lambda fd, offset, length: fn(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE


_sync_file_range = _load_sync_file_range()


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Start (not wait for) the disk writes of a written range: the final fsync is short."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length)


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
            with open(tmp, "wb", buffering=0) as f:
                hw = HashingWriter(f)
                writer(hw)
                entry = hw.finish()
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


def content_hash(model: dict[str, Any] | None, params: dict[str, Any] | None) -> str:
    """sha256 of the model file's sha256 followed by the params file's records digest: what
    the manifest records and `tostatic inspect` shows (entries as HashingWriter.finish)."""
    content = hashlib.sha256()
    if model is not None:
        content.update(bytes.fromhex(model["sha256"]))
    if params is not None:
        content.update(bytes.fromhex(params["digest"]))
    return content.hexdigest()


def _manifest(prefix: str, writers: dict[str, Any],
              entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    model, params = (entries.get(os.path.basename(prefix + s)) for s in (".pdmodel", ".pdiparams"))
    return {"format": "tostatic-manifest", "version": 2, "files": entries,
            "content_hash": content_hash(model, params)}


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


def prefix_manifest(prefix: str) -> dict[str, Any] | None:
    """The manifest saved with `prefix` (None for Paddle's files), after finishing a save of
    the prefix that was killed after its commit point."""
    with contextlib.suppress(OSError):  # a read-only directory: read what is there
        recover(prefix)
    return read_manifest(prefix)


def record_crcs(manifest: dict[str, Any] | None, params_file: str) -> dict[str, int] | None:
    """The CRC-32 the manifest records for each record of the params file, by name (for
    pdiparams.load_combine), or None when it records none."""
    entry = file_entry(manifest, params_file)
    records = entry.get("records") if entry else None
    if not isinstance(records, list):
        return None
    try:
        return {str(name): int(crc) for name, _, crc in records}
    except (TypeError, ValueError):
        manifest_path = params_file.removesuffix(".pdiparams") + MANIFEST_SUFFIX
        raise FormatError(manifest_path, None, "malformed records list") from None


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
