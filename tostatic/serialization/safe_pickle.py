"""Unpickling files from anyone without executing anything from them.

Paddle stores `.pdiparams.info` and `paddle.save` files as pickles, and a plain `pickle.load`
runs whatever callable the file names. `safe_load` reads them in two steps:

1. The opcode stream is scanned first (pickletools) against an allowlist, before anything is
   unpickled. This refuses, with the byte offset, whatever could reach a callable other than
   through `find_class`: EXT1/2/4, INST/OBJ/NEWOBJ (instantiate classes), PERSID, and
   protocol-5 buffers. GLOBAL, STACK_GLOBAL, REDUCE and BUILD pass only when the caller allows
   some globals. A truncated or corrupt stream fails here, at the offset where it breaks.
2. The file is unpickled by Python's pure-Python unpickler with a dispatch table holding only
   the allowed opcodes, so that REDUCE and BUILD go through checks here, not C code:
   * `find_class` resolves only the caller's allowlist. Each allowed global is a `Restricted`
     stand-in that checks its arguments (e.g. `numpy.dtype` only for plain numeric dtypes and
     always as a copy, never numpy's shared singletons). REDUCE calls nothing else.
   * BUILD (setting an object's state) is what numpy's pickles need, and nothing else's: it is
     accepted once on each array made by `_reconstruct` and on each dtype made by
     `numpy.dtype`, and only with exactly the state numpy writes for a plain array or dtype
     (`_build_ndarray`, `_build_dtype`). Any other BUILD is refused: a dtype state can make a
     structured dtype whose fields lie outside the array's memory, and a state on an
     OrderedDict or a stand-in would shadow its methods through its `__dict__`.
   The k-th GLOBAL/STACK_GLOBAL, REDUCE or BUILD executed is the k-th such opcode in the
   stream, which gives the byte offset of whatever is refused (found again by a rescan).

`DATA_GLOBALS` is the allowlist for plain data with numpy arrays (what numpy and Python write
for ndarrays, dtypes, numpy scalars, OrderedDict, sets, complex and, under protocol 2, bytes),
with `PLAIN_DTYPES` the numpy dtypes it accepts (`is_plain_dtype`); writers use the same test so
that whatever they write reads back. Callers still check the shape of what they get back.
"""
from __future__ import annotations

import collections
import math
import pickle
import pickletools
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np

from tostatic.serialization import FormatError

__all__ = ["DATA_GLOBALS", "DATA_OPCODES", "PLAIN_DTYPES", "Restricted", "is_plain_dtype",
           "safe_load"]

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

# The dtypes numpy writes as `numpy.dtype(spec, False, True)` plus a plain state: the
# spec is kind and item size, as numpy 1.x and 2.x write them (bool is 'b1').
PLAIN_DTYPES = ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
                "f2", "f4", "f8", "c8", "c16")


def is_plain_dtype(dt: Any) -> bool:
    """A bool, integer, float or complex numpy dtype of either byte order: no fields, no
    subarray, no objects, no metadata. Only these load (see `_build_dtype`)."""
    return (isinstance(dt, np.dtype) and f"{dt.kind}{dt.itemsize}" in PLAIN_DTYPES
            and dt.fields is None and dt.subdtype is None and dt.metadata is None
            and dt.flags == 0 and dt == np.dtype(dt.str))


class Restricted:
    """An allowed global as the unpickler sees it: calls `fn`. BUILD is accepted only on what
    it returns and only if `build` is given: `build(obj, state)` checks and sets the state."""

    __slots__ = ("qualname", "_fn", "build")

    def __init__(self, qualname: str, fn: Callable[..., Any],
                 build: Callable[[Any, Any], None] | None = None):
        self.qualname = qualname
        self._fn = fn
        self.build = build

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


def _want(cond: bool, message: str | Callable[[], str]) -> None:
    """Raise UnpicklingError(message) unless cond; a callable message is made only then."""
    if not cond:
        raise pickle.UnpicklingError(message if isinstance(message, str) else message())


class _ShortRepr(reprlib.Repr):
    def repr_bytes(self, x: bytes, level: int) -> str:  # reprlib would repr all of it
        return repr(x[:self.maxstring]) + ("..." if len(x) > self.maxstring else "")


_SHORT = _ShortRepr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxtuple = _SHORT.maxlist = 10  # a dtype state (8 or 9 items) in full


def _r(value: Any) -> str:
    """repr of a value from the file, cut short (its data can be gigabytes)."""
    return _SHORT.repr(value)


def _is(value: Any, kind: type, *allowed: Any) -> bool:
    """value is exactly of type kind (no bool for int, no subclass) and one of allowed."""
    return type(value) is kind and (not allowed or value in allowed)


_MAX_DIMS = 64  # numpy 2's limit (numpy 1: 32); also bounds the work on a hostile shape
_NDARRAY = Restricted("numpy.ndarray", _refuse("numpy.ndarray except as _reconstruct's subtype"))


def _reconstruct(subtype: Any, shape: Any, tag: Any) -> np.ndarray:
    # ndarray.__reduce__ always writes _reconstruct(ndarray, (0,), b'b'); BUILD then sets the
    # real shape, dtype and data (_build_ndarray).
    _want(subtype is _NDARRAY and type(shape) is tuple and shape == (0,)
          and isinstance(tag, (bytes, str)),
          lambda: f"numpy _reconstruct called with unexpected arguments {_r(subtype)}, "
          f"{_r(shape)}")
    return np.ndarray((0,), np.int8)


def _build_ndarray(arr: np.ndarray, state: Any) -> None:
    """Accept exactly what ndarray.__reduce__ writes (numpy 1.x and 2.x alike) for an array of
    a plain dtype: (1, shape, dtype, is_fortran, data), shape a tuple of ints >= 0, data the
    bytes of all elements (a str from a Python 2 pickle). Object arrays (data as a list) and
    other dtypes are refused."""
    _want(type(state) is tuple and len(state) == 5,
          lambda: f"numpy array state must be (1, shape, dtype, fortran, data), found "
          f"{_r(state)}")
    version, shape, dtype, fortran, data = state
    _want(_is(version, int, 1), lambda: f"numpy array state version must be 1, found "
          f"{_r(version)}")
    _want(type(shape) is tuple and len(shape) <= _MAX_DIMS
          and all(_is(n, int) and 0 <= n < 2**63 for n in shape),
          lambda: f"numpy array shape must be a tuple of at most {_MAX_DIMS} ints >= 0, found "
          f"{_r(shape)}")
    _want(is_plain_dtype(dtype), lambda: f"refusing numpy array of dtype {_r(dtype)}: only "
          "plain bool, integer, float and complex arrays are data here")
    _want(_is(fortran, bool), lambda: f"numpy array Fortran flag must be a bool, found "
          f"{_r(fortran)}")
    if type(data) is str:  # a Python 2 pickle's str, unpickled as latin1 text
        try:
            data = data.encode("latin1")
        except UnicodeEncodeError:
            raise pickle.UnpicklingError("numpy array data is text that is not latin1 "
                                         "bytes") from None
    _want(type(data) is bytes, lambda: f"numpy array data must be bytes, found "
          f"{type(data).__name__}")
    _want(math.prod(n for n in shape if n) * dtype.itemsize < 2**63,
          lambda: f"numpy array shape {_r(shape)} is too big for numpy")
    nbytes = math.prod(shape) * dtype.itemsize
    _want(len(data) == nbytes, lambda: f"numpy array of shape {_r(shape)} and dtype {dtype} "
          f"needs {nbytes} bytes of data, found {len(data)}")
    # a private copy: numpy points the array into the bytes it is given, and the pickle memo
    # could hand the same bytes to a second array or a dict key
    arr.__setstate__((1, shape, dtype, fortran, bytes(memoryview(data))))
    _want(arr.shape == shape and arr.dtype in (dtype, dtype.newbyteorder("="))
          and is_plain_dtype(arr.dtype) and arr.nbytes == nbytes,
          lambda: f"numpy made an array of shape {arr.shape} and dtype {arr.dtype} from it")


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    # numpy 2 and recent 1.x write (spec, False, True), older numpy (spec, 0, 1).
    _want(isinstance(spec, str) and spec in PLAIN_DTYPES,
          lambda: f"refusing numpy.dtype({_r(spec)}): only plain bool, integer, float and "
          "complex dtypes are data here (no structured, subarray, object, void, string or "
          "datetime dtypes)")
    _want(type(align) in (bool, int) and align == 0 and type(copy) in (bool, int)
          and copy in (0, 1), lambda: f"numpy.dtype called with unexpected arguments "
          f"{_r(align)}, {_r(copy)}")
    return np.dtype(spec, copy=True)  # never a shared singleton: BUILD follows


def _build_dtype(dt: np.dtype, state: Any) -> None:
    """Accept exactly what numpy 1.x and 2.x write for a plain dtype:
    (3, byteorder, None, None, None, -1, -1, 0), byteorder '|' for one-byte dtypes (bool,
    int8, uint8) and '<' or '>' for the others. Anything else (fields, subarray, element size,
    alignment, flags such as 'holds objects') could make numpy read and write outside an
    array's memory."""
    orders = ("|",) if dt.itemsize == 1 else ("<", ">")
    _want(type(state) is tuple and len(state) == 8 and _is(state[0], int, 3)
          and _is(state[1], str, *orders) and all(v is None for v in state[2:5])
          and all(_is(v, int) for v in state[5:]) and state[5:] == (-1, -1, 0),
          lambda: f"refusing numpy dtype state {_r(state)} for {dt}: numpy writes (3, "
          f"{' or '.join(map(repr, orders))}, None, None, None, -1, -1, 0) for it; structured, "
          f"subarray and object dtypes are not data here")
    want = dt.newbyteorder(state[1])
    dt.__setstate__(state)
    _want(is_plain_dtype(dt) and dt == want, lambda: f"numpy made dtype {dt} from this state")


def _scalar(dtype: Any, data: Any = None) -> np.generic:
    _want(is_plain_dtype(dtype) and isinstance(data, (bytes, str)),
          "numpy scalar called with unexpected arguments")
    raw = data.encode("latin1") if isinstance(data, str) else data  # str: a Python 2 pickle
    _want(len(raw) == dtype.itemsize,
          lambda: f"numpy scalar of {dtype} with {len(raw)} bytes of data")
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
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): Restricted("numpy.dtype", _dtype, build=_build_dtype)}
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2 / numpy 1
        table[(module, "_reconstruct")] = Restricted(f"{module}._reconstruct", _reconstruct,
                                                     build=_build_ndarray)
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


def _scan(f: BinaryIO, path: str, expected: str, holds: str, allow_calls: bool) -> None:
    """Check every opcode before unpickling."""
    allowed = DATA_OPCODES | CALL_OPCODES if allow_calls else DATA_OPCODES
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
            pos = f.tell()
    except FormatError:
        raise
    except Exception as e:  # noqa: BLE001 - genops raises ValueError and friends on garbage
        raise FormatError(path, pos, f"expected {expected}, found an opcode that does not "
                          f"decode (truncated or corrupt file?): {e}") from None


def _nth_offset(f: BinaryIO, start: int, names: frozenset[str], index: int) -> int | None:
    """Byte offset of the index-th (from 0) opcode named in `names` (the stream was scanned)."""
    try:
        f.seek(start)
        for op, _, pos in pickletools.genops(f):
            if op.name in names:
                if index == 0:
                    return pos
                index -= 1
    except Exception:  # noqa: BLE001 - only for an error message
        pass
    return None


_OPCODE_NAMES = {op.code.encode("latin1")[0]: op.name for op in pickletools.opcodes}
_REDUCE, _BUILD = frozenset({"REDUCE"}), frozenset({"BUILD"})


class _Unpickler(pickle._Unpickler):  # the pure-Python one: its REDUCE and BUILD are ours
    dispatch = {code: fn for code, fn in pickle._Unpickler.dispatch.items()
                if _OPCODE_NAMES.get(code) in DATA_OPCODES | CALL_OPCODES}

    def __init__(self, f: BinaryIO, path: str, holds: str, allowed: Mapping[tuple[str, str], Any],
                 encoding: str):
        super().__init__(f, encoding=encoding)
        self._f, self._start = f, f.tell()
        self._path, self._holds, self._allowed = path, holds, allowed
        self._counts = {_GLOBAL_OPCODES: 0, _REDUCE: 0, _BUILD: 0}
        self._pending: dict[int, tuple[Any, Callable[[Any, Any], None]]] = {}  # awaiting BUILD

    def _next(self, names: frozenset[str]) -> int:
        index = self._counts[names]
        self._counts[names] = index + 1
        return index

    def _error(self, names: frozenset[str], index: int, reason: str) -> FormatError:
        return FormatError(self._path, _nth_offset(self._f, self._start, names, index), reason)

    def find_class(self, module: str, name: str) -> Any:
        index = self._next(_GLOBAL_OPCODES)
        found = self._allowed.get((_PY2_MODULES.get(module, module), name))
        if found is None:
            raise self._error(_GLOBAL_OPCODES, index, f"refusing to load global {module}."
                              f"{name}: {self._holds} (nothing from the file was executed)")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise FormatError(self._path, None, "refusing a persistent id: not allowed here")

    def load_reduce(self) -> None:
        index = self._next(_REDUCE)
        args = self.stack.pop()
        func = self.stack[-1]
        if not isinstance(func, Restricted) or type(args) is not tuple:
            raise self._error(_REDUCE, index, f"refusing to call a {type(func).__name__} "
                              f"from the file: {self._holds}")
        self._refuse_unbuilt(_REDUCE, index, args)
        try:
            result = func(*args)
        except Exception as e:  # noqa: BLE001 - the stand-ins' checks, or what they call
            raise self._error(_REDUCE, index, str(e) if isinstance(e, pickle.UnpicklingError)
                              else f"{func.qualname} failed ({type(e).__name__}: {e})") from None
        if func.build is not None:
            self._pending[id(result)] = (result, func.build)
        self.stack[-1] = result

    def _refuse_unbuilt(self, opcode: Any, index: int, items: tuple) -> None:
        """A dtype used before its own BUILD could be changed under the finished array."""
        for x in items:
            pending = self._pending.get(id(x))
            if pending is not None and pending[0] is x:
                raise self._error(opcode, index, f"refusing to use a {type(x).__name__} "
                                  f"before its state is set (numpy never writes that); "
                                  f"{self._holds}")

    def load_build(self) -> None:
        index = self._next(_BUILD)
        state = self.stack.pop()
        inst = self.stack[-1]
        inst_and_build = self._pending.pop(id(inst), None)
        if inst_and_build is None or inst_and_build[0] is not inst:
            what = inst.qualname if isinstance(inst, Restricted) \
                else f"{type(inst).__module__}.{type(inst).__qualname__}"
            raise self._error(_BUILD, index, f"refusing pickle BUILD (setting the state) of a "
                              f"{what}: numpy writes it only once on each array and dtype it "
                              f"pickles; {self._holds}")
        self._refuse_unbuilt(_BUILD, index, state if type(state) is tuple else (state,))
        try:
            inst_and_build[1](inst, state)
        except Exception as e:  # noqa: BLE001 - our checks, or numpy refusing the state
            raise self._error(_BUILD, index, str(e) if isinstance(e, pickle.UnpicklingError)
                              else f"numpy refused the state {_r(state)} of a "
                              f"{type(inst).__name__} ({type(e).__name__}: {e})") from None

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.BUILD[0]] = load_build


class _Bounded:
    """A seekable binary file whose reads never ask for more than what is left in it: a
    length field in the file (BINBYTES8 of 2**40 bytes) cannot make a read allocate more
    than the file's size."""

    def __init__(self, f: BinaryIO):
        self._f = f
        here = f.tell()
        self._end = f.seek(0, 2)
        f.seek(here)

    def _left(self, n: int | None) -> int:
        left = max(0, self._end - self._f.tell())
        return left if n is None or n < 0 else min(n, left)

    def read(self, n: int | None = -1) -> bytes:
        return self._f.read(self._left(n))

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        return self._f.readinto(view[:self._left(len(view))])

    def readline(self, n: int | None = -1) -> bytes:
        return self._f.readline(self._left(n))

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)


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
    f = _Bounded(f)  # type: ignore[assignment]
    start = f.tell()
    _scan(f, path, expected, holds, allow_calls=bool(allowed))
    f.seek(start)
    try:
        return _Unpickler(f, path, holds, allowed, encoding).load()
    except FormatError:
        raise
    except Exception as e:  # noqa: BLE001 - unpickling garbage raises almost anything
        raise FormatError(path, f.tell(), f"expected {expected}, found data that does not "
                          f"unpickle ({type(e).__name__}: {e}); reading stopped here") from None
