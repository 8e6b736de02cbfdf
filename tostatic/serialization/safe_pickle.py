"""Unpickling files from anyone without executing anything from them.

Paddle stores `.pdiparams.info` and `paddle.save` files as pickles, and a plain `pickle.load`
runs whatever callable the file names. `safe_load` reads them in two steps:

1. The opcode stream is scanned first (pickletools) against an allowlist, before anything is
   unpickled. This refuses, with the byte offset, whatever could reach a callable other than
   through `find_class`: EXT1/2/4 (CPython's C unpickler resolves them through copyreg without
   calling an overridden find_class), INST/OBJ/NEWOBJ (instantiate classes), PERSID, and
   protocol-5 buffers. GLOBAL, STACK_GLOBAL, REDUCE and BUILD pass only when the caller allows
   some globals. A truncated or corrupt stream fails here, at the offset where it breaks.
2. The unpickler's `find_class` resolves only the caller's allowlist. Each allowed global is a
   `Restricted` stand-in that checks its arguments (e.g. `numpy.dtype` always copies, so the
   BUILD that follows never sets state on numpy's shared dtype objects) and refuses BUILD on
   itself. The k-th find_class call belongs to the k-th GLOBAL/STACK_GLOBAL opcode, which gives
   the offset of a refused global.

`DATA_GLOBALS` is the allowlist for plain data with numpy arrays (what numpy and Python write
for ndarrays, dtypes, numpy scalars, OrderedDict, sets, complex and, under protocol 2, bytes).
Callers still check the shape of what they get back.
"""
from __future__ import annotations

import collections
import pickle
import pickletools
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np

from tostatic.serialization import FormatError

__all__ = ["DATA_GLOBALS", "DATA_OPCODES", "Restricted", "safe_load"]

# Containers, strings, numbers, bools, memo: nothing that can reach a callable.
DATA_OPCODES = frozenset("""
    PROTO FRAME STOP MARK POP POP_MARK DUP
    EMPTY_DICT DICT SETITEM SETITEMS EMPTY_LIST LIST APPEND APPENDS
    EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_SET ADDITEMS FROZENSET
    NONE NEWTRUE NEWFALSE INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT
    STRING BINSTRING SHORT_BINSTRING UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8
    BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8
    PUT BINPUT LONG_BINPUT GET BINGET LONG_BINGET MEMOIZE
""".split())
# Calls, allowed only together with an allowlist of globals (resolved by find_class).
CALL_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD"})
_GLOBAL_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL"})
_PY2_MODULES = {"__builtin__": "builtins"}  # what fix_imports would map; we see raw names


class Restricted:
    """An allowed global as the unpickler sees it: calls `fn`, refuses BUILD on itself."""

    __slots__ = ("qualname", "_fn")

    def __init__(self, qualname: str, fn: Callable[..., Any]):
        self.qualname = qualname
        self._fn = fn

    def __call__(self, *args: Any) -> Any:
        return self._fn(*args)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"refusing to set state on {self.qualname}")

    def __repr__(self) -> str:
        return f"<restricted {self.qualname}>"


def _refuse(what: str) -> Callable[..., Any]:
    def fn(*args: Any) -> Any:
        raise pickle.UnpicklingError(f"refusing to call {what}")
    return fn


def _want(cond: bool, message: str) -> None:
    if not cond:
        raise pickle.UnpicklingError(message)


_NDARRAY = Restricted("numpy.ndarray", _refuse("numpy.ndarray except as _reconstruct's subtype"))


def _reconstruct(subtype: Any, shape: Any, tag: Any) -> np.ndarray:
    # ndarray.__reduce__ always writes _reconstruct(ndarray, (0,), b'b'); BUILD then sets the
    # real shape and data, and numpy checks the data's length against that shape.
    _want(subtype is _NDARRAY and type(shape) is tuple and shape == (0,)
          and isinstance(tag, (bytes, str)),
          f"numpy _reconstruct called with unexpected arguments {subtype!r}, {shape!r}")
    return np.ndarray((0,), np.int8)


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    _want(isinstance(spec, str) and isinstance(align, bool) and isinstance(copy, bool),
          f"numpy.dtype called with unexpected arguments {spec!r}")
    dt = np.dtype(spec, align=align, copy=True)  # never a shared singleton: BUILD follows
    _want(not dt.hasobject, "refusing numpy object dtype: arrays of Python objects are not data")
    return dt


def _scalar(dtype: Any, data: Any = None) -> np.generic:
    _want(isinstance(dtype, np.dtype) and not dtype.hasobject and isinstance(data, (bytes, str)),
          "numpy scalar called with unexpected arguments")
    raw = data.encode("latin1") if isinstance(data, str) else data  # str: a Python 2 pickle
    _want(len(raw) == dtype.itemsize, f"numpy scalar of {dtype} with {len(raw)} bytes of data")
    return np.frombuffer(raw, dtype=dtype)[0].copy()


def _ordered_dict() -> collections.OrderedDict:
    return collections.OrderedDict()  # SETITEMS fills it, as OrderedDict.__reduce__ writes it


def _from_list(kind: type) -> Callable[..., Any]:
    def fn(items: Any = ()) -> Any:
        _want(isinstance(items, (list, tuple)), f"{kind.__name__} from {type(items).__name__}")
        return kind(items)
    return fn


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    _want(all(isinstance(v, (int, float)) for v in (real, imag)), "complex of non-numbers")
    return complex(real, imag)


def _codecs_encode(text: Any, encoding: Any = "latin1") -> bytes:
    # Protocol 2 has no bytes opcode: Python writes bytes as _codecs.encode(str, 'latin1').
    _want(isinstance(text, str) and encoding in ("latin1", "latin-1"),
          "_codecs.encode is allowed only as encode(str, 'latin1')")
    return text.encode("latin1")


def _bytes_like(kind: type) -> Callable[..., Any]:
    def fn(*args: Any) -> Any:
        _want(args == () or (len(args) == 1 and isinstance(args[0], (bytes, bytearray))),
              f"{kind.__name__} is allowed only from bytes")
        return kind(*args)
    return fn


def _numpy_globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NDARRAY,
                                         ("numpy", "dtype"): Restricted("numpy.dtype", _dtype)}
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2 / numpy 1
        table[(module, "_reconstruct")] = Restricted(f"{module}._reconstruct", _reconstruct)
        table[(module, "scalar")] = Restricted(f"{module}.scalar", _scalar)
    return table


DATA_GLOBALS: Mapping[tuple[str, str], Any] = {
    **_numpy_globals(),
    ("collections", "OrderedDict"): Restricted("collections.OrderedDict", _ordered_dict),
    ("builtins", "tuple"): Restricted("builtins.tuple", _from_list(tuple)),
    ("builtins", "set"): Restricted("builtins.set", _from_list(set)),
    ("builtins", "frozenset"): Restricted("builtins.frozenset", _from_list(frozenset)),
    ("builtins", "complex"): Restricted("builtins.complex", _complex),
    ("builtins", "bytes"): Restricted("builtins.bytes", _bytes_like(bytes)),
    ("builtins", "bytearray"): Restricted("builtins.bytearray", _bytes_like(bytearray)),
    ("_codecs", "encode"): Restricted("_codecs.encode", _codecs_encode),
}


def _scan(f: BinaryIO, path: str, expected: str, holds: str, allow_calls: bool) -> list[int]:
    """Check every opcode before unpickling; return the offsets of GLOBAL/STACK_GLOBAL."""
    allowed = DATA_OPCODES | CALL_OPCODES if allow_calls else DATA_OPCODES
    globals_at: list[int] = []
    start = f.tell()
    if not f.read(1):
        raise FormatError(path, start, f"expected {expected}, found an empty file")
    f.seek(start)
    pos = start  # start of the opcode being decoded
    try:
        for op, arg, p in pickletools.genops(f):
            pos = p if p is not None else pos
            if op.name not in allowed:
                shown = "" if arg is None else f" {arg!r}"
                raise FormatError(path, pos, f"refusing pickle opcode {op.name}{shown}: {holds} "
                                  "(the file was not unpickled)")
            if op.name == "PROTO" and not 2 <= arg <= 4:
                raise FormatError(path, pos, f"expected {expected}, found pickle protocol {arg}")
            if op.name in _GLOBAL_OPCODES:
                globals_at.append(pos)
            pos = f.tell()
    except FormatError:
        raise
    except Exception as e:  # noqa: BLE001 - genops raises ValueError and friends on garbage
        raise FormatError(path, pos, f"expected {expected}, found an opcode that does not "
                          f"decode (truncated or corrupt file?): {e}") from None
    return globals_at


class _Unpickler(pickle.Unpickler):
    def __init__(self, f: BinaryIO, path: str, holds: str, allowed: Mapping[tuple[str, str], Any],
                 globals_at: list[int], encoding: str):
        super().__init__(f, encoding=encoding)
        self._path, self._holds, self._allowed, self._globals_at = path, holds, allowed, globals_at
        self._calls = 0

    def find_class(self, module: str, name: str) -> Any:
        index, self._calls = self._calls, self._calls + 1
        found = self._allowed.get((_PY2_MODULES.get(module, module), name))
        if found is None:
            offset = self._globals_at[index] if index < len(self._globals_at) else None
            raise FormatError(self._path, offset, f"refusing to load global {module}.{name}: "
                              f"{self._holds} (nothing from the file was executed)")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise FormatError(self._path, None, "refusing a persistent id: not allowed here")


def safe_load(f: BinaryIO, path: str, *, expected: str, holds: str,
              allowed_globals: Mapping[tuple[str, str], Any] | None = None,
              encoding: str = "ASCII") -> Any:
    """Unpickle one object from seekable `f` without running code from it.

    `expected` names the format ("a pickled dict (protocol 2)") and `holds` says what such a
    file contains; both go into the FormatError (with `path` and offset) raised for anything
    refused, truncated or corrupt. `allowed_globals` maps (module, name) to the object
    find_class returns; without it, no global, call or BUILD is accepted at all.
    """
    allowed = allowed_globals or {}
    start = f.tell()
    globals_at = _scan(f, path, expected, holds, allow_calls=bool(allowed))
    f.seek(start)
    try:
        return _Unpickler(f, path, holds, allowed, globals_at, encoding).load()
    except FormatError:
        raise
    except Exception as e:  # noqa: BLE001 - unpickling garbage raises almost anything
        raise FormatError(path, None, f"expected {expected}, found data that does not unpickle "
                          f"({type(e).__name__}: {e})") from None
