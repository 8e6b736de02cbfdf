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

import os
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np
from google.protobuf.message import DecodeError

from tostatic.ir import dtypes as _dtypes
from tostatic.serialization import FormatError, atomic_write
from tostatic.serialization import framework_pb2 as _pb

__all__ = ["BFLOAT16_RAW", "save_combine", "write_combine", "load_combine", "iter_records"]

BFLOAT16_RAW = np.dtype(np.uint16, metadata={"paddle_dtype": "bfloat16"})

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")


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


def _read_record(r: _Reader, where: str) -> np.ndarray:
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
    arr = np.empty(shape, npd)
    if nbytes:
        view = memoryview(arr.reshape(-1).view(np.uint8))
        got = r.f.readinto(view)
        if got != nbytes:  # the file shrank while we read it
            raise r.fail(r.pos, where, f"expected {nbytes} data bytes, found only {got}")
        r.crc = zlib.crc32(view, r.crc)
        r.pos += nbytes
    if not arr.dtype.isnative:  # big-endian host
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def load_combine(path: str | os.PathLike[str], names: Sequence[str],
                 offsets: dict[str, int] | None = None,
                 crcs: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """Read one record per name, in the given order (callers pass the sorted persistable names).

    The file must end exactly after the last record (Paddle refuses partial loads too); an
    empty `names` therefore requires an empty file. `offsets`, if given, receives each
    record's byte offset (for errors found later). `crcs` (from the manifest tostatic
    saves beside the file) gives the CRC-32 each named record must have.
    """
    path = os.fspath(path)
    if isinstance(names, str):
        raise TypeError("names must be a sequence of variable names, not a str")
    names = list(names)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate variable names {dup} for {path}")
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        r = _Reader(f, path)
        for i, name in enumerate(names):
            if r.pos == r.size:
                raise FormatError(path, r.pos, f"record {i} ({name!r}): expected {len(names)} "
                                  f"records, but the file ends after {i}")
            if offsets is not None:
                offsets[name] = r.pos
            start = r.pos
            out[name] = _read_record(r, f"record {i} ({name!r})")
            if crcs is not None and crcs.get(name, r.crc) != r.crc:
                raise FormatError(path, start, f"record {i} ({name!r}): its CRC-32 is "
                                  f"{r.crc:#010x}, the manifest saved with it records "
                                  f"{crcs[name]:#010x} (corrupted after it was saved)")
        if r.pos != r.size:
            last = f"record {len(names) - 1} ({names[-1]!r})" if names else "no records requested"
            raise FormatError(path, r.pos, f"expected the file to end after {last}, found "
                              f"{r.size - r.pos} more bytes (more variables in the file than "
                              "names given?)")
    return out


def iter_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (byte offset, array) for every record, without knowing the names."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        r = _Reader(f, path)
        i = 0
        while r.pos < r.size:
            start = r.pos
            yield start, _read_record(r, f"record {i}")
            i += 1


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
