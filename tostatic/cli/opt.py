"""Run a pass pipeline on textual IR (`pd` or `program` dialect) and print the result, like
mlir-opt. FILE may also be a model (a binary .pdmodel): its program is read into the `program`
dialect first, so `tostatic opt model.pdmodel --pipeline load` prints it raised to `pd`.

Without --pipeline, the pipeline is the file's `// pipeline:` line: reproducers, dumped stages
and dump-folder files carry the passes that run on them next, so `tostatic opt FILE` replays.

examples:
  tostatic opt stage.mlir --pipeline 'cse,dead-op-elimination' --dump diff
  tostatic opt model.pdmodel --pipeline load --print-ir-after-all
  tostatic opt 03_cse.mlir          # continue the compilation the dump came from
"""
from __future__ import annotations

import argparse
import os
import re
import sys

from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import ParseError

from tostatic.cli.common import CliError
from tostatic.cli.model_files import ModelFiles, read_program, sniff
from tostatic.dialects.context import parse_ir
from tostatic.ir.text import print_ir
from tostatic.passes.dump import DumpOptions
from tostatic.passes.manager import PassManager

# mlir-opt flag -> dump spec item ({} takes the flag's value)
_DUMP_FLAGS = {
    "--print-ir-before-all": "before-all", "--print-ir-after-all": "after-all",
    "--print-ir-before": "before={}", "--print-ir-after": "after={}",
    "--print-ir-after-change": "after-change", "--print-ir-after-failure": "after-failure",
    "--print-ir-diff": "diff", "--dump-folder": "folder={}", "--timing": "timings",
    "--print-loc": "locations",
}
_IR_START = ('"builtin.module"', "builtin.module", "//", "module")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="IR file, or a .pdmodel ('-' reads IR from stdin)")
    p.add_argument("-p", "--pipeline", help="e.g. 'cse,dead-op-elimination' or 'default' "
                   "(`tostatic passes` lists them); default: the file's `// pipeline:` line")
    p.add_argument("--dump", metavar="SPEC", help="dump options, e.g. 'diff', "
                   "'after-change,timings' (as TOSTATIC_DUMP; see README)")
    p.add_argument("-o", "--output", help="write the result here instead of stdout")
    p.add_argument("--no-verify", action="store_true", help="skip the verifier between passes")
    for flag, item in _DUMP_FLAGS.items():
        if "{}" in item:
            p.add_argument(flag, metavar="PASSES" if "print" in flag else "DIR",
                           help=f"dump item {item.format('...')}")
        else:
            p.add_argument(flag, action="store_true", help=f"dump item {item}")


def read_module(path: str) -> tuple[ModuleOp, str]:
    """The module in FILE and the text it came from ('' for a model file)."""
    if path == "-":
        text = sys.stdin.read()
        return parse_ir(text, "<stdin>"), text
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory; give an IR file or a .pdmodel")
    with open(path, "rb") as f:  # a missing file: FileNotFoundError, reported by name
        data = f.read()
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    ir_error: ParseError | None = None
    if text is not None and not text.lstrip().startswith("{"):
        try:
            return parse_ir(text, path), text
        except ParseError as e:
            if text.lstrip().startswith(_IR_START):
                raise
            ir_error = e  # maybe a .pdmodel that happens to be valid UTF-8: try that too
    fmt = sniff(path)  # binary (or JSON): a model file
    try:
        program = read_program(ModelFiles(path, None, fmt))
    except ValueError as e:
        if ir_error is not None:  # text that is neither IR nor a program: the IR's error
            raise ir_error from None
        raise CliError(f"{path} is neither textual IR nor a model this version reads: {e}") \
            from None
    return ModuleOp([program]), ""


def run(args: argparse.Namespace) -> int:
    module, text = read_module(args.file)
    pipeline = args.pipeline
    if pipeline is None:
        m = re.search(r"^// pipeline: (.*)$", text, re.MULTILINE)
        pipeline = m.group(1).strip() if m else ""
    items = [args.dump] if args.dump else []
    for flag, item in _DUMP_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value:
            items.append(item.format(value.replace(",", "+") if isinstance(value, str) else ""))
    dump = DumpOptions.parse(",".join(items))
    PassManager(pipeline, dump, verify="off" if args.no_verify else "each").run(module)
    out = print_ir(module, dump.locations)
    if args.output:
        with open(args.output, "w") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    return 0
