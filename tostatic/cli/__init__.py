"""The `tostatic` command (also `python -m tostatic`).

    tostatic export MODULE:FACTORY --input-spec "x:float32[?,3,224,224]" -o PREFIX
    tostatic inspect MODEL [--program] [--dot FILE] [--json]
    tostatic run MODEL [--input x=file.npy] [--output out.npz]
    tostatic bench MODEL [--threads N] [--batch N] [--json]
    tostatic opt FILE [--pipeline P] [--dump SPEC | mlir-opt style flags] [-o OUT]
    tostatic passes

Exit codes: 0 success, 1 an error the user can fix (one message on stderr, no traceback; set
TOSTATIC_TRACEBACK=1 to see one), 2 bad usage (argparse), 3 a bug in tostatic (traceback).

A command is one module of this package with `add_arguments(parser)` and `run(args) -> int`,
listed once in COMMANDS (name, module, one-line help); its module docstring is its --help
description. A new command (`convert`) is a module plus one line here.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Sequence

from tostatic.cli.common import EXIT_BUG, EXIT_OK, EXIT_USER, user_error_message


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # tostatic.cli.<module>: add_arguments(parser), run(args) -> int
    help: str


COMMANDS = (
    Command("export", "export", "trace a Layer made by a Python factory; write Paddle "
            "inference files"),
    Command("inspect", "inspect_model", "show a model's inputs, outputs, ops, parameters "
            "and format"),
    Command("run", "run", "run a model on inputs from .npy/.npz files (or random ones)"),
    Command("bench", "bench", "measure a model's latency and throughput"),
    Command("opt", "opt", "run a pass pipeline on textual IR or a .pdmodel, like mlir-opt"),
    Command("passes", "passes", "list the passes and the named pipelines"),
)


def build_parser() -> argparse.ArgumentParser:
    from tostatic import __version__

    parser = argparse.ArgumentParser(
        prog="tostatic", description="Compile eager Paddle-style models into Paddle "
        "inference files, and inspect, run and benchmark such files natively.",
        epilog="`tostatic COMMAND --help` describes each command. Exit codes: 0 ok, 1 error "
        "(message on stderr), 2 bad usage, 3 a bug in tostatic.")
    parser.add_argument("--version", action="version", version=f"tostatic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        module = importlib.import_module(f"tostatic.cli.{cmd.module}")
        p = sub.add_parser(cmd.name, help=cmd.help, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # bad usage: argparse prints it and exits 2
    prog = f"tostatic {args.command}"
    try:
        return int(args.run(args) or EXIT_OK)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tostatic inspect --program m | head`: the reader has gone
        devnull = os.open(os.devnull, os.O_WRONLY)  # so that the flush at exit cannot fail
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # noqa: BLE001  the one place errors become exit codes
        message = user_error_message(e)
        if message is None:
            traceback.print_exc()
            print(f"{prog}: internal error: {type(e).__name__}: {e}\n"
                  f"  this is a bug in tostatic; please report it with the command line",
                  file=sys.stderr)
            return EXIT_BUG
        if os.environ.get("TOSTATIC_TRACEBACK"):
            traceback.print_exc()
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USER
