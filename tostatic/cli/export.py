"""Export a Layer as Paddle inference files (PREFIX.pdmodel, .pdiparams, .pdiparams.info), as
`paddle.jit.save(factory(), PREFIX, input_spec=[...])` does.

TARGET is MODULE:FACTORY (a module importable from the current directory or PYTHONPATH) or
path/to/file.py:FACTORY; FACTORY is a function or class returning the Layer (called with the
--arg values). The Layer is put in eval mode, given the weights of --state-dict if any, traced
with one --input-spec per forward argument, compiled and written.

examples:
  tostatic export models:resnet18 --input-spec "x:float32[?,3,224,224]" -o out/resnet18
  tostatic export net.py:Net --arg num_classes=10 --state-dict net.pdparams \\
      --input-spec "x:float32[?,784]" -o out/net
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
import warnings
from typing import Any, Callable

import tostatic
from tostatic.cli.common import (
    SPEC_HELP,
    CliError,
    fmt_bytes,
    fmt_shape,
    input_spec,
    name_value,
)
from tostatic.cli.inspect_model import interface
from tostatic.frontend.capture.input_spec import InputSpec
from tostatic.frontend.nn.layer import Layer
from tostatic.ir.errors import ToStaticError
from tostatic.passes.dump import ENV_VAR, DumpOptions
from tostatic.serialization.program_desc import load_program

_PACKAGE_DIR = os.path.dirname(os.path.abspath(tostatic.__file__))


def _spec(text: str) -> InputSpec:
    name, dtype, dims = input_spec(text)
    try:
        return InputSpec(dims, dtype, name)
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"bad input spec {text!r}: {e}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="MODULE:FACTORY or FILE.py:FACTORY")
    p.add_argument("-s", "--input-spec", action="append", type=_spec, required=True,
                   metavar="SPEC", help=f"one per forward argument, in order: {SPEC_HELP}")
    p.add_argument("-o", "--output", required=True, metavar="PREFIX",
                   help="write PREFIX.pdmodel, PREFIX.pdiparams, PREFIX.pdiparams.info")
    p.add_argument("--state-dict", metavar="FILE.pdparams",
                   help="weights saved with paddle.save(layer.state_dict(), FILE)")
    p.add_argument("--arg", action="append", default=[], type=name_value, metavar="NAME=VALUE",
                   help="a keyword argument of FACTORY (a Python literal, else a string)")
    p.add_argument("--dump", metavar="SPEC", help="compiler dump options, as TOSTATIC_DUMP "
                   "(e.g. 'diff', 'after-all', 'folder=DIR')")


def _in_tostatic(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)


def _user_code_error(e: BaseException, what: str) -> BaseException:
    """An exception from the user's code: one line naming it and the user's line. One that
    tostatic raised from inside its own code is left alone (a bug shows its traceback)."""
    if isinstance(e, ToStaticError):  # it names the user's line itself
        return e
    frames = traceback.extract_tb(e.__traceback__)
    if frames and _in_tostatic(frames[-1].filename):
        return e
    user = [f for f in frames if not _in_tostatic(f.filename)
            and "importlib" not in f.filename and not f.filename.startswith("<frozen")]
    where = f" (at {user[-1].filename}:{user[-1].lineno})" if user else ""
    return CliError(f"{what} raised {type(e).__name__}: {e}{where}")


def _import_factory(target: str) -> Callable[..., Any]:
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"TARGET {target!r} should be MODULE:FACTORY or FILE.py:FACTORY")
    if module_name.endswith(".py") or os.sep in module_name:
        if not os.path.isfile(module_name):
            raise CliError(f"{module_name}: no such file")
        directory = os.path.dirname(os.path.abspath(module_name))
        sys.path.insert(0, directory)  # its sibling modules import as when run as a script
        name = os.path.splitext(os.path.basename(module_name))[0]
        spec = importlib.util.spec_from_file_location(name, module_name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        load = lambda: spec.loader.exec_module(module)  # type: ignore[union-attr]  # noqa: E731
    else:
        sys.path.insert(0, os.getcwd())  # as `python -m` does
        module = None
        load = lambda: importlib.import_module(module_name)  # noqa: E731
    try:
        loaded = load()
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise CliError(f"cannot import {module_name!r}: no module named {e.name!r} in the "
                           f"current directory or on PYTHONPATH") from None
        raise _user_code_error(e, f"importing {module_name}") from None
    except Exception as e:  # noqa: BLE001  the user's module failed to import
        raise _user_code_error(e, f"importing {module_name}") from None
    obj: Any = module if module is not None else loaded
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CliError(f"{module_name} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CliError(f"{target} is a {type(obj).__name__}, not a function or class that "
                       f"returns a Layer")
    return obj


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _load_state_dict(layer: Layer, path: str) -> None:
    state = tostatic.load(path)
    if not isinstance(state, dict):
        raise CliError(f"{path} holds a {type(state).__name__}, not a state dict "
                       f"(paddle.save(layer.state_dict(), path))")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported below, all at once
        missing, unexpected = layer.set_state_dict(state)
    if missing or unexpected:
        def some(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
        parts = ([f"the layer's {some(missing)} not in the file"] if missing else []) + \
                ([f"the file's {some(unexpected)} not in the layer"] if unexpected else [])
        raise CliError(f"{path} does not fit the layer: {'; '.join(parts)}")


def _check_arity(layer: Any, specs: list[InputSpec]) -> None:
    """One spec per forward argument: said before tracing, not as a TypeError inside it."""
    forward = layer.forward if isinstance(layer, Layer) else layer
    try:
        params = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):  # no signature to check
        return
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if not len(required) <= len(specs) <= len(positional):
        names = ", ".join(p.name for p in positional)
        count = (f"{len(required)}" if len(required) == len(positional)
                 else f"{len(required)} to {len(positional)}")
        raise CliError(f"{getattr(forward, '__qualname__', 'forward')} takes {count} "
                       f"argument(s) ({names}); got {len(specs)} --input-spec")


def run(args: argparse.Namespace) -> int:
    if args.dump:
        DumpOptions.parse(args.dump)  # a bad spec fails here, before any work
    factory = _import_factory(args.target)
    kwargs = {k: _literal(v) for k, v in args.arg}
    try:
        layer = factory(**kwargs)
    except Exception as e:  # noqa: BLE001
        raise _user_code_error(e, f"{args.target}(...)") from None
    if isinstance(layer, Layer):
        layer.eval()
        if args.state_dict:
            _load_state_dict(layer, args.state_dict)
    elif not callable(layer):
        raise CliError(f"{args.target} returned a {type(layer).__name__}, not a Layer")
    elif args.state_dict:
        raise CliError(f"{args.target} returned a function, which has no state dict to load")
    _check_arity(layer, args.input_spec)
    saved_dump = os.environ.get(ENV_VAR)
    try:
        if args.dump:  # jit.save's pass managers read it (as when the user sets it)
            os.environ[ENV_VAR] = args.dump
        tostatic.jit.save(layer, args.output, input_spec=args.input_spec)
    except Exception as e:  # noqa: BLE001
        raise _user_code_error(e, "tracing the layer's forward") from None
    finally:
        if saved_dump is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved_dump
    written = [args.output + s for s in (".pdmodel", ".pdiparams", ".pdiparams.info")]
    print("wrote " + ", ".join(f"{p} ({fmt_bytes(os.path.getsize(p))})"
                               for p in written if os.path.exists(p)))
    program = load_program(written[0])
    for title, op, slot, out in (("inputs ", "feed", "Out", True),
                                 ("outputs", "fetch", "X", False)):
        entries = interface(program, op, slot, out)
        print(f"{title}  " + ", ".join(f"{v['name']} {v['dtype']} {fmt_shape(v['shape'])}"
                                       for v in entries))
    return 0
