"""The `tostatic` command.

    tostatic opt FILE [--pipeline P] [--dump SPEC | mlir-opt style flags] [-o OUT]
    tostatic convert MODEL -o PREFIX [--params FILE]
    tostatic passes

`opt` reads textual IR (`pd` or `program` dialect), runs a pipeline and prints the result,
like mlir-opt. Without --pipeline it runs the `// pipeline:` line of a reproducer file.
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Sequence

# mlir-opt flag -> dump spec item ({} takes the flag's value)
_DUMP_FLAGS = {
    "--print-ir-before-all": "before-all", "--print-ir-after-all": "after-all",
    "--print-ir-before": "before={}", "--print-ir-after": "after={}",
    "--print-ir-after-change": "after-change", "--print-ir-after-failure": "after-failure",
    "--dump-folder": "folder={}", "--timing": "timings", "--print-loc": "locations",
}


def _opt(args: argparse.Namespace) -> int:
    from xdsl.utils.exceptions import ParseError

    from tostatic.ir.errors import ToStaticError
    from tostatic.dialects.context import parse_ir
    from tostatic.ir.text import print_ir
    from tostatic.passes.dump import DumpOptions
    from tostatic.passes.manager import PassManager

    text = sys.stdin.read() if args.file == "-" else open(args.file).read()
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
    try:
        module = parse_ir(text, args.file)
        PassManager(pipeline, dump, verify="off" if args.no_verify else "each").run(module)
    except (ToStaticError, ValueError, ParseError) as e:
        print(f"tostatic opt: error: {e}", file=sys.stderr)
        return 1
    out = print_ir(module, dump.locations)
    if args.output:
        with open(args.output, "w") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    return 0


def _convert(args: argparse.Namespace) -> int:
    from tostatic.frontend.capture.convert import convert
    from tostatic.ir.errors import ToStaticError

    try:
        done = convert(args.model, args.output, args.params)
    except (ToStaticError, ValueError, OSError) as e:
        print(f"tostatic convert: error: {e}", file=sys.stderr)
        return 1
    written = [f for f in (done.model_file, done.params_file, done.info_file) if f]
    print(f"read {done.source} ({done.source_format}); inputs {done.inputs}, "
          f"outputs {done.outputs}")
    print("wrote " + ", ".join(written))
    return 0


def _passes(args: argparse.Namespace) -> int:
    import inspect

    from tostatic.passes.base import PASSES
    from tostatic.passes.pipeline import PIPELINES

    for name, cls in sorted(PASSES.items()):
        opts = " ".join(f"{k}={v}" for k, v in cls.options.items())
        print(f"{name}{f'  {{{opts}}}' if opts else ''}")
        doc = inspect.cleandoc(cls.__doc__ or "")
        print("".join(f"    {line}\n" for line in doc.splitlines()))
    print("pipelines:")
    for name, text in PIPELINES.items():
        print(f"  {name} = {text}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tostatic")
    sub = parser.add_subparsers(dest="command", required=True)
    opt = sub.add_parser("opt", help="run a pass pipeline on a textual IR file")
    opt.add_argument("file", help="IR file ('-' for stdin)")
    opt.add_argument("-p", "--pipeline", help="e.g. 'cse,dead-op-elimination' or 'default'")
    opt.add_argument("--dump", help="dump options, e.g. 'after-change,timings'")
    opt.add_argument("-o", "--output", help="write the result here instead of stdout")
    opt.add_argument("--no-verify", action="store_true", help="skip the verifier between passes")
    for flag, item in _DUMP_FLAGS.items():
        if "{}" in item:
            opt.add_argument(flag, metavar="PASSES" if "print" in flag else "DIR")
        else:
            opt.add_argument(flag, action="store_true")
    opt.set_defaults(run=_opt)
    conv = sub.add_parser("convert", help="write a model (Paddle 3.x .json or .pdmodel) as "
                          "legacy .pdmodel / .pdiparams / .pdiparams.info")
    conv.add_argument("model", help="model.json, model.pdmodel or their prefix")
    conv.add_argument("-o", "--output", required=True, help="prefix of the files to write")
    conv.add_argument("--params", help="the .pdiparams (default: beside the model)")
    conv.set_defaults(run=_convert)
    sub.add_parser("passes", help="list passes and named pipelines").set_defaults(run=_passes)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
