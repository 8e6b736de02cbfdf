"""`paddle.save` / `paddle.load` files (.pdparams, .pdopt, .pdtensor): Paddle's pickle format.

Paddle 3.3.1 (python/paddle/framework/io.py) writes one pickle (protocol 2-4, default 4) with
numpy's own ndarray pickling; a Tensor is always stored as `np.array(tensor)` (bfloat16 as its
uint16 bits). Here a `NamedArray(name, array)` stands for a Tensor, so this module needs no
frontend. Two layouts:

* A *state dict* (a dict whose every value is a Tensor or a dict holding no Tensor, as a
  Layer's or optimizer's state_dict) is written as a new plain dict, even from an OrderedDict:
  every Tensor becomes its array under the same key, other values stay, and a last entry
  `"StructuredToParameterName@@"` maps each Tensor's key to its `tensor.name`. Under protocol
  2 and 3, an array over 2**30-1 bytes is flattened into pieces `key@@.0`, `key@@.1`, ... and
  `"UnpackBigParamInfor@@": {key: {"OriginShape": shape, "slices": [piece keys]}}` is added.
* Anything else (a lone Tensor, nested containers, a dict with other values) is pickled as is,
  each Tensor as the tuple `(tensor.name, array)`, written as a `builtins.tuple` call.

`paddle.load` undoes this (`decode`): with a name table, the arrays it names become Tensors with
those names (the table is dropped unless keep_name_table); otherwise, if any `(str, ndarray)`
tuple occurs, each becomes a named Tensor and bare arrays stay arrays; if none does, every
array becomes an unnamed Tensor. `return_numpy=True` gives arrays instead of Tensors.

Reading goes through `safe_pickle` with the data allowlist plus a stand-in for the one other
global Paddle writes: a DenseTensor (static mode) is pickled as `eval('data', {'data': array})`,
which is accepted in exactly that form and returns the array without evaluating anything.
Saving writes only what loading accepts, so every file we write reads back.
"""
from __future__ import annotations

import collections
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from tostatic.serialization import FormatError
from tostatic.serialization.safe_pickle import DATA_GLOBALS, Restricted, is_plain_dtype, safe_load

__all__ = ["NAME_TABLE", "NamedArray", "decode", "dump", "load", "map_leaves"]

NAME_TABLE = "StructuredToParameterName@@"
BIG_PARAM_INFO = "UnpackBigParamInfor@@"  # sic: Paddle's spelling
SPLIT_BYTES = 2**30 - 1  # protocol 2/3: arrays over this many bytes are split (as Paddle)
_MAX_DEPTH = 200  # nesting a file may have; decoding recurses
_EXPECTED = "a paddle.save pickle (protocol 2-4)"
_HOLDS = ("a paddle.save file holds only dicts, lists, tuples, numbers, strings and numpy "
          "arrays, never other objects, classes or functions")


@dataclass(frozen=True, eq=False)
class NamedArray:
    """A Tensor as the format sees it: Paddle's `tensor.name` (None: unnamed) and its data."""

    name: str | None
    array: np.ndarray


# --------------------------------------------------------------------------- walking values

_CONTAINERS = (dict, collections.OrderedDict, list, tuple, set, frozenset)
_SCALARS = (type(None), bool, int, float, complex, str, bytes, bytearray)


def map_leaves(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """Rebuild obj's containers (exact dict, OrderedDict, list, tuple, set, frozenset) with
    `fn` applied to every other value; dict keys are kept. A container holding itself raises."""
    active: set[int] = set()

    def walk(o: Any) -> Any:
        kind = type(o)
        if kind not in _CONTAINERS:
            return fn(o)
        if id(o) in active:
            raise ValueError(f"a {kind.__name__} that contains itself cannot be saved")
        active.add(id(o))
        try:
            if kind in (dict, collections.OrderedDict):
                return kind((k, walk(v)) for k, v in o.items())
            return kind(walk(v) for v in o)
        finally:
            active.discard(id(o))

    return walk(obj)


def _is_data_leaf(o: Any) -> bool:
    """What loading accepts: numpy arrays, scalars and dtypes only of the plain dtypes."""
    if isinstance(o, (np.ndarray, np.generic)):
        return is_plain_dtype(o.dtype)
    return type(o) in _SCALARS or is_plain_dtype(o)


def _children(o: Any) -> list[Any]:
    if type(o) in (dict, collections.OrderedDict):
        return [x for kv in o.items() for x in kv]
    return list(o)


def _first_unsupported(obj: Any, allow_named: bool) -> tuple[str, str] | None:
    """(where, what) of the first value the format cannot hold, else None. Iterative, so a
    hostile file cannot exhaust the stack; refuses cycles, nesting over _MAX_DEPTH, and
    containers shared so often (pickle's memo makes that cheap) that walking the value as a
    tree, as loading does, would take far longer than reading the file."""
    stack: list[tuple[Any, str, int, bool]] = [(obj, "", 0, False)]
    active: set[int] = set()
    tree_size: dict[int, int] = {}  # id of a checked container -> its size walked as a tree
    edges = 0
    while stack:
        o, where, depth, leaving = stack.pop()
        kind = type(o)
        if leaving:
            active.discard(id(o))
            tree_size[id(o)] = 1 + sum(tree_size.get(id(c), 1) for c in _children(o))
            continue
        if kind not in _CONTAINERS:
            if isinstance(o, NamedArray) and allow_named:
                o = o.array
            if not _is_data_leaf(o):
                what = f"a numpy array of dtype {o.dtype}" if isinstance(o, np.ndarray) \
                    else f"the global {o.qualname} as a value" if isinstance(o, Restricted) \
                    else f"a {kind.__module__}.{kind.__qualname__}"
                return where or "the top level", what
            continue
        if id(o) in active:
            return where or "the top level", f"a {kind.__name__} that contains itself"
        if id(o) in tree_size:
            continue
        if depth >= _MAX_DEPTH:
            return where, f"containers nested deeper than {_MAX_DEPTH}"
        active.add(id(o))
        stack.append((o, where, depth, True))
        if kind in (dict, collections.OrderedDict):
            for k, v in o.items():
                stack.append((k, f"{where} (key {k!r:.60})", depth + 1, False))
                stack.append((v, f"{where}[{k!r:.60}]", depth + 1, False))
            edges += 2 * len(o)
        else:
            stack.extend((v, f"{where}[{i}]", depth + 1, False) for i, v in enumerate(o))
            edges += len(o)
    if tree_size.get(id(obj), 1) > 16 * (len(tree_size) + edges) + 1_000_000:
        return "the top level", "containers shared so often that the value, walked as a tree, " \
            f"has {tree_size[id(obj)]} nodes"
    return None


# --------------------------------------------------------------------------- saving

def _named_arrays(obj: Any) -> list[NamedArray]:
    out: list[NamedArray] = []
    map_leaves(obj, lambda o: out.append(o) if isinstance(o, NamedArray) else None)
    return out


def _is_state_dict(obj: Any) -> bool:
    """Paddle's `_is_state_dict`: a dict of Tensors and of dicts that hold no Tensor."""
    if not isinstance(obj, dict):
        return False
    for value in obj.values():
        if isinstance(value, dict):
            if _named_arrays(value):
                return False
        elif not isinstance(value, NamedArray):
            return False
    return True


def _split_big_arrays(saved: dict, protocol: int, max_bytes: int) -> dict:
    """Paddle's `_unpack_saved_dict`: pickle protocols 2 and 3 cannot write 4 GB objects."""
    if protocol >= 4:
        return saved
    info: dict[str, dict[str, Any]] = {}
    for key, value in list(saved.items()):
        if not isinstance(value, np.ndarray):
            continue
        per_piece = int(max_bytes / value.dtype.itemsize)
        if value.size <= per_piece:
            continue
        flat = value.reshape(-1)
        slices = [f"{key}@@.{i}" for i in range(-(-value.size // per_piece))]
        info[key] = {"OriginShape": value.shape, "slices": slices}
        del saved[key]
        for i, piece in enumerate(slices):
            saved[piece] = flat[i * per_piece:(i + 1) * per_piece]
    if info:
        saved[BIG_PARAM_INFO] = info
    return saved


def _encode_state_dict(obj: dict, protocol: int, max_bytes: int) -> dict:
    """Paddle's `_build_saved_state_dict`: arrays under their keys, then the name table."""
    saved: dict[Any, Any] = {}
    names: dict[Any, Any] = {}
    for key, value in obj.items():
        if isinstance(value, NamedArray):
            saved[key] = value.array
            names[key] = value.name
        else:
            saved[key] = value
    saved[NAME_TABLE] = names
    return _split_big_arrays(saved, protocol, max_bytes)


def _reduce_named(t: NamedArray) -> tuple:
    return (tuple, ((t.name, t.array),))  # what Paddle's reduce_varbase returns


def dump(obj: Any, f: BinaryIO, protocol: int = 4, *, max_bytes: int = SPLIT_BYTES) -> None:
    """Pickle obj (NamedArray for every Tensor) to f exactly as paddle.save lays it out."""
    if type(protocol) is not int or not 2 <= protocol <= 4:
        raise ValueError(f"Expected 1<'protocol'<5, but received protocol={protocol!r}")
    bad = _first_unsupported(obj, allow_named=True)
    if bad is not None:
        where, what = bad
        raise TypeError(f"paddle.save cannot write {what} (at {where}): {_HOLDS}. Save a "
                        "Layer's or optimizer's state_dict(), not the object itself.")
    if _is_state_dict(obj):
        obj = _encode_state_dict(obj, protocol, max_bytes)
    pickler = pickle.Pickler(f, protocol)
    pickler.dispatch_table = {NamedArray: _reduce_named}
    pickler.dump(obj)


# --------------------------------------------------------------------------- loading

def _dense_tensor(expr: Any, scope: Any = None, *rest: Any) -> np.ndarray:
    """Stand-in for `eval` in Paddle's DenseTensor pickles: accepts only eval('data', {'data':
    array}) and returns the array. Nothing is evaluated."""
    if expr != "data" or rest or type(scope) is not dict or list(scope) != ["data"] \
            or not isinstance(scope["data"], np.ndarray):
        raise pickle.UnpicklingError("refusing builtins.eval: Paddle writes it only as "
                                     "eval('data', {'data': array}) for a DenseTensor")
    return scope["data"]


_GLOBALS = {**DATA_GLOBALS, ("builtins", "eval"): Restricted("builtins.eval", _dense_tensor)}


def _join_big_arrays(path: str, obj: dict) -> dict:
    """Paddle's `_pack_loaded_dict`: reassemble arrays split under protocol 2/3."""
    info = obj.pop(BIG_PARAM_INFO)
    try:
        for key, entry in info.items():
            pieces = [obj.pop(p) for p in entry["slices"]]
            obj[key] = np.concatenate(pieces).reshape(entry["OriginShape"])
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise FormatError(path, None, f"{BIG_PARAM_INFO} does not describe the split arrays "
                          f"in this file ({type(e).__name__}: {e})") from None
    return obj


def load(f: BinaryIO, path: str) -> Any:
    """Unpickle a paddle.save file safely; arrays split for protocol 2/3 are joined again."""
    obj = safe_load(f, path, expected=_EXPECTED, holds=_HOLDS, allowed_globals=_GLOBALS,
                    encoding="latin1")  # latin1: as paddle.load, for Python 2 era files
    bad = _first_unsupported(obj, allow_named=False)
    if bad is not None:
        where, what = bad
        raise FormatError(path, None, f"expected {_EXPECTED}, found {what} at {where}")
    if isinstance(obj, dict):
        if BIG_PARAM_INFO in obj:
            obj = _join_big_arrays(path, obj)
        table = obj.get(NAME_TABLE)
        if NAME_TABLE in obj and (not isinstance(table, dict)
                                  or not all(isinstance(n, str) for n in table.values())):
            raise FormatError(path, None, f"at [{NAME_TABLE!r}]: expected {NAME_TABLE} to map "
                              f"keys to tensor names (str), found {table!r:.200}")
    return obj


def _is_named_tuple(o: Any) -> bool:
    return type(o) is tuple and len(o) == 2 and isinstance(o[0], str) \
        and isinstance(o[1], np.ndarray)


def _convert(obj: Any, match: Callable[[Any], bool], fn: Callable[[Any], Any]) -> Any:
    """Paddle's `_parse_every_object` (sets and frozensets cannot hold arrays: kept as is)."""
    if match(obj):
        return fn(obj)
    kind = type(obj)
    if kind in (dict, collections.OrderedDict):
        return kind((k, _convert(v, match, fn)) for k, v in obj.items())
    if kind in (list, tuple):
        return kind(_convert(v, match, fn) for v in obj)
    return obj


def _contains(obj: Any, match: Callable[[Any], bool]) -> bool:
    """Paddle's `_contain_x` (dicts, lists and tuples; not sets)."""
    if match(obj):
        return True
    if type(obj) in (dict, collections.OrderedDict):
        return any(_contains(v, match) for v in obj.values())
    if type(obj) in (list, tuple):
        return any(_contains(v, match) for v in obj)
    return False


def decode(obj: Any, *, return_numpy: bool = False, keep_name_table: bool = False) -> Any:
    """What paddle.load returns for `load`'s result, with NamedArray where it makes a Tensor."""
    if isinstance(obj, dict) and NAME_TABLE in obj:
        for key, name in obj[NAME_TABLE].items():
            if isinstance(obj.get(key), np.ndarray) and not return_numpy:
                obj[key] = NamedArray(name, obj[key])
        if not keep_name_table:
            del obj[NAME_TABLE]
        return obj
    if _contains(obj, _is_named_tuple):  # tensors saved outside a state dict
        return _convert(obj, _is_named_tuple,
                        lambda t: t[1] if return_numpy else NamedArray(t[0], t[1]))
    return _convert(obj, lambda o: isinstance(o, np.ndarray),
                    lambda a: a if return_numpy else NamedArray(None, a))
