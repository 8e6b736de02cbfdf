"""`.pdiparams.info`: the pickle jit.save writes beside the parameters (FORMAT.md §3).

    {var_name: {'structured_name': str, 'stop_gradient': bool, 'trainable': bool}}

`structured_name` is absent for vars that are not in the Layer's state_dict; `trainable` is
present only for parameters (EagerParamBase), not for buffers.

Reading never runs code from the file: `safe_pickle.safe_load` with no globals allowed refuses,
before unpickling, every opcode that could reach a callable (GLOBAL, STACK_GLOBAL, INST,
EXT1/2/4, REDUCE, BUILD, NEWOBJ, PERSID...), and the result is checked to be plain dicts of
strings and bools.

Writing reproduces Paddle's bytes. Pickle memoizes by object identity, not by value: Paddle
builds every inner dict from the same literal key objects, so from the second entry on the keys
are written as memo references (BINGET), while every var name and structured name is a distinct
object written in full. `save_info` therefore rebuilds the dict with one shared object per key
and a fresh copy of every other string, so the bytes do not depend on how the caller built
its strings.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from tostatic.serialization import FormatError, atomic_write
from tostatic.serialization.safe_pickle import safe_load

__all__ = ["save_info", "load_info", "info_bytes"]

_KEYS = ("structured_name", "stop_gradient", "trainable")  # Paddle's insertion order
_TYPES = {"structured_name": str, "stop_gradient": bool, "trainable": bool}


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


def info_bytes(info: Mapping[str, Mapping[str, Any]]) -> bytes:
    """`info` as Paddle pickles it (protocol 2). Entry order is kept."""
    return pickle.dumps(_normalize(info), protocol=2)


def save_info(path: str | os.PathLike[str], info: Mapping[str, Mapping[str, Any]]) -> None:
    """Write `info` as Paddle does (pickle protocol 2), atomically. Entry order is kept."""
    data = info_bytes(info)
    with atomic_write(path) as f:
        f.write(data)


def load_info(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read a .pdiparams.info without executing anything from it."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        obj = safe_load(f, path, expected="a pickled dict (protocol 2)",
                        holds="a .pdiparams.info holds only dicts of strings and bools, never "
                              "objects, classes or functions")
    if not isinstance(obj, dict):
        raise FormatError(path, 0, f"expected a dict {{var_name: {{...}}}}, found {type(obj).__name__}")
    for var, entry in obj.items():
        if not isinstance(var, str) or not isinstance(entry, dict):
            raise FormatError(path, None, f"at [{var!r:.80}]: expected {{var_name: dict}}, found "
                              f"a {type(entry).__name__} entry")
        for key, value in entry.items():
            want = _TYPES.get(key)
            if not isinstance(key, str) or (want is not None and not isinstance(value, want)) \
                    or not isinstance(value, (str, bool, int, float, type(None))):
                raise FormatError(path, None, f"at [{var!r:.80}][{key!r:.80}]: unexpected value "
                                  f"{value!r:.80}")
    return obj
