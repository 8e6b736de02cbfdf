"""Inputs for `run` and `bench`: arrays from .npy/.npz files by input name, random ones made
from the model's input spec for the rest."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

from tostatic.cli.common import CliError, fmt_shape, name_value, parse_dims
from tostatic.ir.opdef import Abstract
from tostatic.runtime.loaded_model import LoadedModel


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", action="append", default=[], metavar="NAME=FILE",
                   help="an input from a .npy file (or FILE.npz's array NAME); a bare FILE.npz "
                   "gives every input it has an array for. Repeatable")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=D0,D1,...",
                   type=_shape, help="the shape of a random input (default: the model's, "
                   "any-size dims = --batch for the first, 1 for the others)")
    p.add_argument("--batch", type=int, default=1, help="size of the first any-size dim of "
                   "random inputs (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")


def _shape(text: str) -> tuple[str, list[int]]:
    name, dims = name_value(text)
    shape = parse_dims(dims, f"--shape {text}")
    if None in shape:
        raise argparse.ArgumentTypeError(f"--shape {text}: give every dimension's size")
    return name, [int(d) for d in shape if d is not None]


def describe_inputs(model: LoadedModel) -> str:
    return ", ".join(f"{n} ({a.dtype.name} {fmt_shape(a.shape)})"
                     for n, a in zip(model.feed_names, model.plan.input_abstracts))


def _check_name(model: LoadedModel, name: str) -> None:
    if name not in model.feed_names:
        raise CliError(f"the model has no input {name!r}; its inputs are "
                       f"{describe_inputs(model)}")


def _load_array(path: str, key: str | None) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as e:  # a pickled object array: refused, never unpickled
        raise CliError(f"{path}: cannot read it as a numpy array ({e})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            if key in data.files:
                return data[key]
            if len(data.files) == 1:
                return data[data.files[0]]
            raise CliError(f"{path} has no array named {key!r}; it has {data.files}")
    return data


def _from_files(model: LoadedModel, specs: Sequence[str]) -> dict[str, tuple[np.ndarray, str]]:
    given: dict[str, tuple[np.ndarray, str]] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq:  # FILE.npz: every input it names
            path = spec
            try:
                archive = np.load(path, allow_pickle=False)
            except ValueError as e:
                raise CliError(f"{path}: cannot read it as a numpy .npz ({e})") from None
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise CliError(f"--input {path}: a .npy file needs the input's name "
                               f"(--input NAME={path}); inputs: {describe_inputs(model)}")
            with archive:
                found = [n for n in model.feed_names if n in archive.files]
                if not found:
                    raise CliError(f"{path} has no array named like an input (it has "
                                   f"{archive.files}); inputs: {describe_inputs(model)}")
                for n in found:
                    given[n] = (archive[n], path)
            continue
        _check_name(model, name)
        given[name] = (_load_array(path, name), path)
    return given


def _random(abstract: Abstract, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(abstract.dtype.numpy)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        # 1 is a valid id, index and count in most models; give real ones with --input
        return np.ones(shape, dtype)
    return rng.standard_normal(shape).astype(dtype)


def make_inputs(model: LoadedModel, args: argparse.Namespace,
                quiet: bool = False) -> list[np.ndarray]:
    """The feeds in the model's order: from files, else random of the spec's shape."""
    given = _from_files(model, args.input)
    shapes = {}
    for name, shape in args.shape:
        _check_name(model, name)
        shapes[name] = shape
    rng = np.random.default_rng(args.seed)
    arrays = []
    for name, abstract in zip(model.feed_names, model.plan.input_abstracts):
        if name in given:
            array, path = given[name]
            if array.dtype != np.dtype(abstract.dtype.numpy):
                raise CliError(f"input {name!r} expects dtype {abstract.dtype.name}, but {path} "
                               f"holds {array.dtype} {fmt_shape(array.shape)}; convert it, "
                               f"e.g. np.save(path, a.astype('{abstract.dtype.name}'))")
            arrays.append(array)
            continue
        if name in shapes:
            shape = shapes[name]
        else:
            shape = [(args.batch if i == 0 else 1) if d < 0 else d
                     for i, d in enumerate(abstract.shape)]
        arrays.append(_random(abstract, shape, rng))
        if not quiet:
            print(f"input {name}: random {abstract.dtype.name} {fmt_shape(shape)} "
                  f"(seed {args.seed})", file=sys.stderr)
    return arrays
