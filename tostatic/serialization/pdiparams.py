"""`.pdiparams`: Paddle's save_combine / load_combine format (FORMAT.md §2).

One record per persistable variable, sorted by name, nothing else: no header, no names, no
padding. The names come from the program (sorted persistable vars of block 0), so a reader must
be told them; `iter_records` walks a file without them.

Record (integers little-endian; Paddle writes native order, which is little-endian in practice):

    uint32 0 | uint64 lod_level | lod levels | uint32 0 | int32 L | TensorDesc (L bytes) | data

Only lod_level 0 is accepted: parameters and buffers never carry LoD, and dropping a LoD
silently would break the byte-exact round trip.

bfloat16: numpy has no bfloat16, so such records load as uint16 arrays holding the raw bits,
with dtype `BFLOAT16_RAW` (a uint16 dtype tagged with metadata). `save_combine` writes uint16
data as bfloat16 only when it carries that tag; plain uint16 has no Paddle dtype here. Numpy
drops dtype metadata in most arithmetic, so re-tag with `arr.view(BFLOAT16_RAW)` if needed.
"""
from __future__ import annotations

import concurrent.futures
import mmap
import os
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from google.protobuf.message import DecodeError

from tostatic.ir import dtypes as _dtypes
from tostatic.serialization import FormatError, atomic_write
from tostatic.serialization import framework_pb2 as _pb

__all__ = ["BFLOAT16_RAW", "save_combine", "write_combine", "load_combine", "iter_records",
           "record_checksums"]

BFLOAT16_RAW = np.dtype(np.uint16, metadata={"paddle_dtype": "bfloat16"})

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_PIECE = 1 << 20  # read then checksummed while in the CPU cache
_PARALLEL_FROM = 16 << 20  # smaller files are read by one thread
_READERS = 2
_OWN_PAGES_FROM = 4 << 20  # where numpy starts asking for huge pages (see _empty)
_PRIVATE_FLAGS = (mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS  # type: ignore[attr-defined]
                  if hasattr(mmap, "MAP_ANONYMOUS") else None)  # not on Windows


def _numpy_dtype(d: _dtypes.DType) -> np.dtype:
    if d.numpy is None:  # bfloat16
        return BFLOAT16_RAW
    le = d.numpy.newbyteorder("<")
    return d.numpy if le.isnative else le  # the file is little-endian


def _paddle_dtype(arr: np.ndarray) -> _dtypes.DType:
    meta = arr.dtype.metadata or {}
    if meta.get("paddle_dtype") == "bfloat16" and arr.dtype.itemsize == 2:
        return _dtypes.bfloat16
    npd = arr.dtype if arr.dtype.isnative else arr.dtype.newbyteorder("=")
    return _dtypes.convert_dtype(npd)


# ----------------------------------------------------------------------------- reading


class _Reader:
    """Sequential reader that knows the file size, so errors can say what is left."""

    def __init__(self, f: BinaryIO, path: str):
        self.f = f
        self.path = path
        self.size = os.fstat(f.fileno()).st_size
        self.pos = 0
        self.crc = 0  # CRC-32 of the current record so far

    def fail(self, offset: int, where: str, reason: str) -> FormatError:
        return FormatError(self.path, offset, f"{where}: {reason}")

    def read(self, n: int, what: str, where: str) -> bytes:
        data = self.f.read(n)
        self.crc = zlib.crc32(data, self.crc)
        if len(data) != n:
            raise self.fail(self.pos, where, f"expected {n} bytes of {what}, found only "
                            f"{len(data)} (file ends at byte {self.size}; truncated?)")
        self.pos += n
        return data


class _Record(NamedTuple):
    """A record's header, read; its data (`nbytes` from `data_offset`) not yet."""
    where: str
    offset: int
    data_offset: int
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    header_crc: int  # CRC-32 of the header bytes: the data's continues from it


def _read_header(r: _Reader, where: str) -> _Record:
    """Parse a record's header at the reader's position and skip its data."""
    start = r.pos
    r.crc = 0
    (version,) = _U32.unpack(r.read(4, "DenseTensor version", where))
    if version != 0:
        raise r.fail(start, where, f"expected DenseTensor version 0, found {version}")
    off = r.pos
    (lod_level,) = _U64.unpack(r.read(8, "lod_level", where))
    if lod_level != 0:
        raise r.fail(off, where, f"expected lod_level 0 (parameters carry no LoD), found "
                     f"{lod_level}")
    off = r.pos
    (version,) = _U32.unpack(r.read(4, "tensor version", where))
    if version != 0:
        raise r.fail(off, where, f"expected tensor version 0, found {version}")
    off = r.pos
    (desc_len,) = _I32.unpack(r.read(4, "TensorDesc length", where))
    remaining = r.size - r.pos
    if desc_len <= 0 or desc_len > remaining:
        raise r.fail(off, where, f"expected a TensorDesc length between 1 and {remaining} "
                     f"(bytes left in the file), found {desc_len}")
    off = r.pos
    desc = _pb.VarType.TensorDesc()
    try:
        desc.ParseFromString(r.read(desc_len, "TensorDesc", where))
        ok = desc.IsInitialized()
    except DecodeError:
        ok = False
    if not ok:
        raise r.fail(off, where, f"expected a {desc_len}-byte VarType.TensorDesc protobuf, "
                     "found bytes that do not decode as one")
    dtype = _dtypes.BY_VAR_TYPE.get(desc.data_type)
    if dtype is None:
        name = _pb.VarType.Type.Name(desc.data_type)
        raise r.fail(off, where, f"unsupported data type {name} ({desc.data_type}); expected "
                     f"one of {', '.join(d.name for d in _dtypes.ALL)}")
    shape = tuple(desc.dims)
    if any(d < 0 for d in shape):
        raise r.fail(off, where, f"expected non-negative dims in a stored tensor, found {list(shape)}")
    npd = _numpy_dtype(dtype)
    nbytes = int(np.prod(shape, dtype=object)) * npd.itemsize
    remaining = r.size - r.pos
    if nbytes > remaining:
        raise r.fail(r.pos, where, f"expected {nbytes} data bytes for {dtype.name}{list(shape)}, "
                     f"found only {remaining} (file ends at byte {r.size}; truncated?)")
    record = _Record(where, start, r.pos, shape, npd, nbytes, r.crc)
    r.pos += nbytes
    r.f.seek(r.pos)
    return record


def _empty(shape: tuple[int, ...], dtype: np.dtype, nbytes: int) -> np.ndarray:
    """An array for a record's data. A big one gets its own anonymous memory in plain 4 KiB
    pages: numpy asks the kernel for transparent huge pages from 4 MiB on, and on the
    virtual machines measured here the first touch of huge pages costs about 4x as much
    (1 GiB of parameters: 1.6 s against 6 s while loading; Paddle's allocator does not ask
    for them either). The array keeps its memory alive; the memory goes with the array."""
    if nbytes < _OWN_PAGES_FROM or _PRIVATE_FLAGS is None:
        return np.empty(shape, dtype)
    memory = mmap.mmap(-1, nbytes, flags=_PRIVATE_FLAGS)
    return np.frombuffer(memory, dtype, count=nbytes // dtype.itemsize).reshape(shape)


def _read_data(fd: int, path: str, rec: _Record, check: bool) -> tuple[np.ndarray, int]:
    """The record's array and its CRC-32 (0 unless `check`), read in pieces straight into
    the array, each checksummed while it is in the CPU cache (preadv and crc32 release the
    GIL: records are read by two threads at once)."""
    arr = _empty(rec.shape, rec.dtype, rec.nbytes)
    view = memoryview(arr.reshape(-1).view(np.uint8))
    crc = rec.header_crc
    for start in range(0, rec.nbytes, _PIECE):
        piece = view[start:start + _PIECE]
        got = os.preadv(fd, [piece], rec.data_offset + start)
        if got != len(piece):  # the file shrank while we read it
            raise FormatError(path, rec.data_offset + start + got, f"{rec.where}: expected "
                              f"{rec.nbytes} data bytes, found only {start + got}")
        if check:
            crc = zlib.crc32(piece, crc)
    if not arr.dtype.isnative:  # big-endian host
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr, crc


def _read_all(f: BinaryIO, path: str, records: list[_Record],
              check: bool) -> list[tuple[np.ndarray, int]]:
    """Every record's data; big files by two threads (in file order, the first error wins)."""
    fd = f.fileno()
    if sum(rec.nbytes for rec in records) < _PARALLEL_FROM:
        return [_read_data(fd, path, rec, check) for rec in records]
    with concurrent.futures.ThreadPoolExecutor(_READERS) as pool:
        futures = [pool.submit(_read_data, fd, path, rec, check) for rec in records]
        return [fut.result() for fut in futures]


def load_combine(path: str | os.PathLike[str], names: Sequence[str],
                 offsets: dict[str, int] | None = None,
                 crcs: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """Read one record per name, in the given order (callers pass the sorted persistable names).

    The file must end exactly after the last record (Paddle refuses partial loads too); an
    empty `names` therefore requires an empty file. `offsets`, if given, receives each
    record's byte offset (for errors found later). `crcs` (from the manifest tostatic
    saves beside the file) gives the CRC-32 each named record must have: all are checked
    before this returns.
    """
    path = os.fspath(path)
    if isinstance(names, str):
        raise TypeError("names must be a sequence of variable names, not a str")
    names = list(names)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate variable names {dup} for {path}")
    with open(path, "rb") as f:
        r = _Reader(f, path)
        records = []
        for i, name in enumerate(names):
            if r.pos == r.size:
                raise FormatError(path, r.pos, f"record {i} ({name!r}): expected {len(names)} "
                                  f"records, but the file ends after {i}")
            records.append(_read_header(r, f"record {i} ({name!r})"))
        if r.pos != r.size:
            last = f"record {len(names) - 1} ({names[-1]!r})" if names else "no records requested"
            raise FormatError(path, r.pos, f"expected the file to end after {last}, found "
                              f"{r.size - r.pos} more bytes (more variables in the file than "
                              "names given?)")
        data = _read_all(f, path, records, crcs is not None)
    out: dict[str, np.ndarray] = {}
    for name, rec, (arr, crc) in zip(names, records, data):
        if crcs is not None and crcs.get(name, crc) != crc:
            raise FormatError(path, rec.offset, f"{rec.where}: its CRC-32 is {crc:#010x}, the "
                              f"manifest saved with it records {crcs[name]:#010x} (corrupted "
                              "after it was saved)")
        if offsets is not None:
            offsets[name] = rec.offset
        out[name] = arr
    return out


def iter_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (byte offset, array) for every record, without knowing the names."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        r = _Reader(f, path)
        i = 0
        while r.pos < r.size:
            rec = _read_header(r, f"record {i}")
            yield rec.offset, _read_data(f.fileno(), path, rec, False)[0]
            i += 1


def record_checksums(path: str | os.PathLike[str]) -> list[tuple[int, int]]:
    """(byte offset, CRC-32) of every record, as a tostatic save records them in its
    manifest (for `tostatic inspect`'s content hash): no array is kept."""
    path = os.fspath(path)
    out = []
    buf = memoryview(bytearray(_PIECE))
    with open(path, "rb") as f:
        r = _Reader(f, path)
        while r.pos < r.size:
            rec = _read_header(r, f"record {len(out)}")
            crc = rec.header_crc
            for start in range(0, rec.nbytes, _PIECE):
                n = os.preadv(f.fileno(), [buf[:min(_PIECE, rec.nbytes - start)]],
                              rec.data_offset + start)
                crc = zlib.crc32(buf[:n], crc)
            out.append((rec.offset, crc))
    return out


# ----------------------------------------------------------------------------- writing


def _record_header(dtype: _dtypes.DType, shape: tuple[int, ...]) -> bytes:
    desc = _pb.VarType.TensorDesc(data_type=dtype.var_type, dims=shape).SerializeToString()
    return b"".join((_U32.pack(0), _U64.pack(0), _U32.pack(0), _I32.pack(len(desc)), desc))


def save_combine(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write one record per array, sorted by name, atomically.

    An empty mapping writes an empty (0-byte) file, which paddle.inference accepts; Paddle's
    jit.save writes no file at all in that case, so callers mimicking it should skip the call.
    """
    with atomic_write(path) as f:
        write_combine(f, arrays)


def write_combine(f: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """The records of `arrays` into an open file, each straight from its array's memory (a
    non-contiguous or foreign-dtype array is converted one at a time). `f.mark(name)`, if the
    file has it (artifact.HashingWriter), is called at the start of each record."""
    names = list(arrays.keys())
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"variable names must be str, got {n!r}")
    mark = getattr(f, "mark", None)
    for name in sorted(names):  # str order == UTF-8 byte order == std::sort in Paddle
        arr = arrays[name]
        if not isinstance(arr, (np.ndarray, np.generic)):
            raise TypeError(f"{name!r}: expected a numpy array, got {type(arr).__name__}")
        arr = np.asarray(arr)
        try:
            dtype = _paddle_dtype(arr)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name!r}: cannot save dtype {arr.dtype}: {e}") from None
        npd = _numpy_dtype(dtype)
        data = np.ascontiguousarray(arr, dtype=npd if dtype.numpy is not None else np.dtype("<u2"))
        if mark is not None:
            mark(name)
        f.write(_record_header(dtype, tuple(int(d) for d in arr.shape)))
        if data.size:
            f.write(memoryview(data.reshape(-1).view(np.uint8)))
