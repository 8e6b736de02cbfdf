"""Finding a model's files from what the user typed, and reading them.

MODEL on the command line is a file (`model.pdmodel`, `model.json`), a prefix (`out/model`,
as jit.save takes it) or a directory holding one model. The format is decided by the file's
content, never its name (a legacy `.pdmodel` is protobuf, a Paddle 3 PIR program is JSON), and
each format has one entry in FORMATS: how to recognise it and how to read its program into the
`program` dialect. Running goes through the runtime's own loader (`load_model`), which every
other entry point (jit.load, paddle.inference) shares.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, NoReturn

from tostatic.cli.common import CliError
from tostatic.dialects.program import ProgramOp
from tostatic.runtime.loaded_model import LoadedModel, load_model
from tostatic.serialization.program_desc import load_program


def _is_json(head: bytes) -> bool:
    return head.lstrip()[:1] == b"{"


def _is_params(head: bytes) -> bool:
    # .pdiparams: uint32 0, uint64 lod level, uint32 0, ...; .pdiparams.info: a pickle
    return head[:4] == b"\0\0\0\0" or head[:1] == b"\x80"


def _pir_json_not_yet(path: str, params: str | None = None) -> NoReturn:
    raise CliError(f"{path} is a Paddle 3 PIR program (.json); this version of tostatic reads "
                   f"legacy .pdmodel files only. With Paddle, save the model in the legacy "
                   f"format (FLAGS_enable_pir_api=0 before `import paddle`, then jit.save)")


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    sniff: Callable[[bytes], bool]  # the file's first bytes -> is it this format?
    read_program: Callable[[str], ProgramOp]  # model file -> its program, nothing run
    load: Callable[[str, "str | None"], LoadedModel]  # (model, params) -> ready to run


# Tried in order; the legacy ProgramDesc (protobuf, no magic number) is the fallback.
FORMATS = (
    Format("pir-json", "Paddle 3 PIR program (JSON)", _is_json, _pir_json_not_yet,
           _pir_json_not_yet),
    Format("pdmodel", "Paddle legacy ProgramDesc (protobuf)", lambda head: True, load_program,
           load_model),
)
SUFFIXES = (".pdmodel", ".json")
PARAMS_SUFFIX = ".pdiparams"


@dataclass(frozen=True)
class ModelFiles:
    model: str
    params: str | None  # None: the model has no params file beside it
    format: Format

    @property
    def info(self) -> str | None:
        info = self.params + ".info" if self.params else None
        return info if info and os.path.exists(info) else None


def head_of(path: str, n: int = 64) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def sniff(path: str) -> Format:
    head = head_of(path)
    if _is_params(head) and not path.endswith(SUFFIXES):
        raise CliError(f"{path} looks like a parameters file (.pdiparams or .pdiparams.info), "
                       f"not a program; give the model file (.pdmodel) or its prefix")
    return next(f for f in FORMATS if f.sniff(head))


def _in_directory(path: str) -> str:
    found = sorted(n for n in os.listdir(path) if n.endswith(SUFFIXES)
                   and os.path.isfile(os.path.join(path, n)))
    if len(found) > 1:  # prefer the usual names, then the legacy format
        found = ([n for n in found if n.rsplit(".", 1)[0] in ("model", "inference")] or found)
        found = [n for n in found if n.endswith(".pdmodel")] or found
    if len(found) != 1:
        what = "no model (.pdmodel or .json)" if not found else f"several models {found}"
        raise CliError(f"directory {path} holds {what}; give the model file or its prefix")
    return os.path.join(path, found[0])


def resolve(path: str, params: str | None = None) -> ModelFiles:
    """The model file, its params file and format, from a file, prefix or directory."""
    if os.path.isdir(path):
        model = _in_directory(path)
    elif os.path.isfile(path):
        model = path
    else:
        model = next((path + s for s in SUFFIXES if os.path.isfile(path + s)), "")
        if not model:
            raise CliError(f"no model at {path!r} (no such file, and no "
                           f"{' or '.join(repr(path + s) for s in SUFFIXES)})")
    fmt = sniff(model)
    if params is None:
        stem = next((model[:-len(s)] for s in SUFFIXES if model.endswith(s)), model)
        params = stem + PARAMS_SUFFIX if os.path.isfile(stem + PARAMS_SUFFIX) else None
    elif not os.path.isfile(params):
        raise CliError(f"params file {params!r} does not exist")
    return ModelFiles(model, params, fmt)


def read_program(files: ModelFiles) -> ProgramOp:
    """The model's program, as the `program` dialect (no raising, no weights read)."""
    return files.format.read_program(files.model)


def load(files: ModelFiles) -> LoadedModel:
    """The model, raised and planned, ready to run (the runtime's loader)."""
    try:
        return files.format.load(files.model, files.params)
    except FileNotFoundError as e:
        if files.params is None and os.path.isfile(files.model):  # the weights are missing
            stem = next((files.model[:-len(s)] for s in SUFFIXES if files.model.endswith(s)),
                        files.model)
            raise CliError(f"{files.model} has parameters, but there is no params file "
                           f"{stem + PARAMS_SUFFIX!r} beside it; give it with --params FILE"
                           ) from None
        raise
