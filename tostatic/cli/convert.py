"""Convert a model to Paddle's legacy inference files: PREFIX.pdmodel, .pdiparams and
.pdiparams.info, which Paddle Inference 3.3.1 and older deployment tools (OpenVINO's Paddle
reader, paddle2onnx, Paddle-Lite, FastDeploy) read.

MODEL is usually what Paddle 3's `paddle.jit.save` writes by default: a PIR program
(`model.json`) with its `model.pdiparams`; a legacy `.pdmodel` is read too (and written again
as tostatic's jit.save writes it). The format is read from the content, not the name. An op
tostatic cannot convert is named with its place in the file.

examples:
  tostatic convert inference.json -o legacy/inference
  tostatic convert out/model -o legacy/model            # out/model.json + .pdiparams
"""
from __future__ import annotations

import argparse
import sys

from tostatic.cli.model_files import resolve
from tostatic.frontend.capture.convert import convert


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file (.json or .pdmodel), prefix or "
                   "directory")
    p.add_argument("-o", "--output", required=True, metavar="PREFIX",
                   help="write PREFIX.pdmodel, PREFIX.pdiparams, PREFIX.pdiparams.info")
    p.add_argument("--params", help="the params file, when it is not MODEL's prefix + "
                   ".pdiparams")


def run(args: argparse.Namespace) -> int:
    files = resolve(args.model, args.params)
    done = convert(files.model, args.output, files.params)
    print(f"read {files.model} ({files.format.description}): inputs "
          f"{', '.join(done.inputs)}; outputs {', '.join(done.outputs)}", file=sys.stderr)
    for path in (done.model_file, done.params_file, done.info_file):
        if path:
            print(path)
    return 0
