"""`paddle.save` / `paddle.load` for dygraph objects (the format: serialization/state_dict.py).

`save` is a `functools.singledispatch` on the saved object's type, so that other kinds of
object get their own writer without touching this one; e.g. a static Program will be written
as `.pdmodel` bytes by `@save.register(Program) def _(program, path, protocol=4, **configs)`.
The default writes Tensors and containers of them as paddle.save's pickle, atomically.
`load` reads paddle.save pickles; a file that is no pickle (a Program's bytes, Paddle's binary
DenseTensor) goes to the first loader added with `register_loader` whose sniff accepts it.
"""
from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from tostatic.frontend.nn.layer import Layer
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ir import dtypes
from tostatic.runtime.scope import DenseTensor
from tostatic.serialization import FormatError, atomic_write
from tostatic.serialization import state_dict as _format

__all__ = ["load", "register_loader", "save"]

_SAVE_CONFIGS = ("use_binary_format", "pickle_protocol", "safetensors")
_LOAD_CONFIGS = ("model_filename", "params_filename", "keep_name_table", "return_numpy",
                 "safetensors")
_PICKLE_START = b"\x80"  # PROTO: paddle.save pickles always start with it (protocol >= 2)
_LOADERS: list[tuple[Callable[[bytes], bool], Callable[..., Any]]] = []


def register_loader(sniff: Callable[[bytes], bool], loader: Callable[..., Any]) -> None:
    """Let `load` read another kind of file: `sniff(first 16 bytes)` says whether `loader`
    (called as loader(path_or_buffer, **configs)) reads it. Pickles never reach loaders."""
    _LOADERS.append((sniff, loader))


def _check_configs(configs: dict[str, Any], supported: tuple[str, ...], fn: str) -> None:
    for key in configs:
        if key not in supported:
            raise ValueError(f"The additional config ({key}) of `paddle.{fn}` is not supported.")
    if configs.get("safetensors"):
        raise NotImplementedError(f"paddle.{fn}(..., safetensors=True) is not supported by "
                                  "tostatic; use the default pickle format")


def _to_named(seen: dict[int, Any], obj: Any) -> Any:
    """A Tensor as the format sees it. As in Paddle's pickle, one Tensor saved twice is one
    object (memo), and two Tensors are two arrays even if they share data (hence .view())."""
    if isinstance(obj, DenseTensor):  # a static program's state: saved as plain arrays
        return np.array(obj)
    if isinstance(obj, Tensor):
        if id(obj) not in seen:
            array = np.asarray(obj.numpy(), order="C").view()
            seen[id(obj)] = _format.NamedArray(obj.name, array)
        return seen[id(obj)]
    if isinstance(obj, Layer):
        raise ValueError("paddle do not support saving `paddle.nn.Layer` object. Save "
                         "layer.state_dict() and restore it with layer.set_state_dict().")
    return obj


@functools.singledispatch
def save(obj: Any, path: str | os.PathLike[str] | BinaryIO, protocol: int = 4,
         **configs: Any) -> None:
    """paddle.save: write a Tensor, a state_dict or nested containers of them to `path`
    (a file, replaced only once fully written, or a binary buffer such as io.BytesIO)."""
    _check_configs(configs, _SAVE_CONFIGS, "save")
    if configs.get("use_binary_format"):
        raise NotImplementedError("paddle.save(..., use_binary_format=True) writes static-graph "
                                  "variables; tostatic writes the pickle format only")
    if configs.get("pickle_protocol") is not None:
        warnings.warn("'pickle_protocol' is a deprecated argument. Please use 'protocol' instead.")
        protocol = configs["pickle_protocol"]
    named = _format.map_leaves(obj, functools.partial(_to_named, {}))
    if isinstance(named, dict) and not named:
        warnings.warn("The input state dict is empty, no need to save.")
    if hasattr(path, "write"):
        _format.dump(named, path, protocol)
        return
    path = os.fspath(path)
    if not os.path.basename(path):
        raise ValueError(f"paddle.save needs a file name, got the directory path {path!r}")
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_write(path) as f:
        _format.dump(named, f, protocol)


def _to_tensor(value: Any) -> Any:
    if not isinstance(value, _format.NamedArray):
        return value
    arr = value.array
    if arr.dtype == np.uint16:
        raise ValueError(f"tensor {value.name or ''!r} holds bfloat16 data (stored as uint16), "
                         "which tostatic's eager Tensor does not support; load with "
                         "return_numpy=True to get the raw bits")
    dtypes.convert_dtype(arr.dtype)  # a clear error for dtypes Paddle has no name for
    return Tensor(np.asarray(arr, order="C"), stop_gradient=True, name=value.name)


def load(path: str | os.PathLike[str] | BinaryIO, **configs: Any) -> Any:
    """paddle.load: read what paddle.save wrote (by Paddle or by tostatic), never running code
    from the file. Tensors by default, named as Paddle names them; numpy arrays with
    return_numpy=True; keep_name_table=True keeps a state dict's name table."""
    _check_configs(configs, _LOAD_CONFIGS, "load")
    if hasattr(path, "read"):
        return _load_from(path, "<in-memory buffer>", configs)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"paddle.load: {path!r} is not a file (tostatic reads files "
                                "written by paddle.save; for jit.save output use paddle.jit.load)")
    with open(path, "rb") as f:
        return _load_from(f, path, configs)


def _load_from(f: BinaryIO, name: str, configs: dict[str, Any]) -> Any:
    start = f.tell()
    head = f.read(16)
    f.seek(start)
    if not head.startswith(_PICKLE_START):
        for sniff, loader in _LOADERS:
            if sniff(head):
                return loader(f if name == "<in-memory buffer>" else name, **configs)
        found = f"{head[:1]!r}" if head else "an empty file"
        raise FormatError(name, start, f"expected a paddle.save pickle (starting with the "
                          f"PROTO opcode 0x80), found {found}")
    raw = _format.load(f, name)
    decoded = _format.decode(raw, return_numpy=bool(configs.get("return_numpy")),
                             keep_name_table=bool(configs.get("keep_name_table")))
    return _format.map_leaves(decoded, _to_tensor)
