"""`.pdiparams.info`: the pickle jit.save writes beside the parameters (FORMAT.md §3).

    {var_name: {'structured_name': str, 'stop_gradient': bool, 'trainable': bool}}

`structured_name` is absent for vars that are not in the Layer's state_dict; `trainable` is
present only for parameters (EagerParamBase), not for buffers.

Reading never runs code from the file. The opcode stream is checked first against an allowlist
(containers, strings, numbers, bools, memo): anything that could reach a callable (GLOBAL,
STACK_GLOBAL, INST, EXT1/2/4, REDUCE, BUILD, NEWOBJ, PERSID...) is refused before unpickling.
The allowlist matters: CPython's C unpickler resolves EXT codes through copyreg without calling
an overridden find_class. The unpickler itself then resolves no globals (find_class always
refuses), and the result is checked to be plain dicts of strings and bools.

Writing reproduces Paddle's bytes. Pickle memoizes by object identity, not by value: Paddle
builds every inner dict from the same literal key objects, so from the second entry on the keys
are written as memo references (BINGET), while every var name and structured name is a distinct
object written in full. `save_info` therefore rebuilds the dict with one shared object per key
and a fresh copy of every other string, so the bytes do not depend on how the caller built
its strings.
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
from collections.abc import Mapping
from typing import Any

import numpy as np

from tostatic.serialization import FormatError, atomic_write

__all__ = ["save_info", "load_info"]

_KEYS = ("structured_name", "stop_gradient", "trainable")  # Paddle's insertion order
_TYPES = {"structured_name": str, "stop_gradient": bool, "trainable": bool}

# The only opcodes a dict of str/bool (or any plain container of scalars) can need.
_SAFE_OPCODES = frozenset("""
    PROTO FRAME STOP MARK POP POP_MARK DUP
    EMPTY_DICT DICT SETITEM SETITEMS EMPTY_LIST LIST APPEND APPENDS
    EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_SET ADDITEMS FROZENSET
    NONE NEWTRUE NEWFALSE INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT
    STRING BINSTRING SHORT_BINSTRING UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8
    BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8
    PUT BINPUT LONG_BINPUT GET BINGET LONG_BINGET MEMOIZE
""".split())


def _fresh(s: str) -> str:
    """A new str object equal to s (CPython shares only the empty and 1-char latin-1 strings,
    exactly as it would for Paddle's strings)."""
    return str(s).encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")


def _normalize(info: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for var, entry in info.items():
        if not isinstance(var, str):
            raise TypeError(f"pdiparams.info keys must be variable names (str), got {var!r}")
        if not isinstance(entry, Mapping):
            raise TypeError(f"pdiparams.info[{var!r}] must be a dict, got {type(entry).__name__}")
        unknown = set(entry) - set(_KEYS)
        if unknown:
            raise ValueError(f"pdiparams.info[{var!r}] has unknown keys {sorted(unknown)}; "
                             f"Paddle writes only {list(_KEYS)}")
        if "stop_gradient" not in entry:
            raise ValueError(f"pdiparams.info[{var!r}] lacks 'stop_gradient' (Paddle always writes it)")
        d: dict[str, Any] = {}
        for key in _KEYS:
            if key not in entry:
                continue
            value = entry[key]
            if key == "structured_name":
                if not isinstance(value, str):
                    raise TypeError(f"pdiparams.info[{var!r}]['structured_name'] must be a str")
                d[key] = _fresh(value)
            else:
                if not isinstance(value, (bool, np.bool_)):
                    raise TypeError(f"pdiparams.info[{var!r}][{key!r}] must be a bool, got {value!r}")
                d[key] = bool(value)
        out[_fresh(var)] = d
    return out


def save_info(path: str | os.PathLike[str], info: Mapping[str, Mapping[str, Any]]) -> None:
    """Write `info` as Paddle does (pickle protocol 2), atomically. Entry order is kept."""
    data = pickle.dumps(_normalize(info), protocol=2)
    with atomic_write(path) as f:
        f.write(data)


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: a .pdiparams.info holds only dicts, "
            "strings and bools, never classes or functions")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent id: not allowed in a .pdiparams.info")


def _check_opcodes(path: str, data: bytes) -> None:
    """Refuse, by offset, the first opcode outside the allowlist or where the stream breaks."""
    stream = io.BytesIO(data)
    pos = 0  # start of the opcode being decoded
    try:
        for op, arg, p in pickletools.genops(stream):
            pos = p if p is not None else pos
            if op.name not in _SAFE_OPCODES:
                shown = "" if arg is None else f" {arg!r}"
                raise FormatError(path, pos, f"refusing pickle opcode {op.name}{shown}: a "
                                  ".pdiparams.info holds only dicts of strings and bools, never "
                                  "objects, classes or functions (the file was not unpickled)")
            pos = stream.tell()
    except FormatError:
        raise
    except Exception as e:  # noqa: BLE001 - genops raises ValueError and friends on garbage
        raise FormatError(path, pos, f"expected a pickled dict (protocol 2), found an opcode "
                          f"that does not decode: {e}") from None


def load_info(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read a .pdiparams.info without executing anything from it."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise FormatError(path, 0, "expected a pickled dict (protocol 2), found an empty file")
    _check_opcodes(path, data)
    try:
        obj = _NoGlobalsUnpickler(io.BytesIO(data)).load()
    except Exception as e:  # noqa: BLE001 - unpickling garbage raises almost anything
        raise FormatError(path, None, f"expected a pickled dict (protocol 2), found data that "
                          f"does not unpickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise FormatError(path, 0, f"expected a dict {{var_name: {{...}}}}, found {type(obj).__name__}")
    for var, entry in obj.items():
        if not isinstance(var, str) or not isinstance(entry, dict):
            raise FormatError(path, None, f"expected {{var_name: dict}}, found entry {var!r}: "
                              f"{type(entry).__name__}")
        for key, value in entry.items():
            want = _TYPES.get(key)
            if not isinstance(key, str) or (want is not None and not isinstance(value, want)) \
                    or not isinstance(value, (str, bool, int, float, type(None))):
                raise FormatError(path, None, f"entry {var!r}: unexpected {key!r}: {value!r}")
    return obj
