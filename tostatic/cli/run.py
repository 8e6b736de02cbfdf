"""Run a model natively (no Paddle needed) and print or save its outputs.

Inputs come from .npy / .npz files by name; an input not given is random, made from the
model's input spec (floats normal, integers 1, bools random; any-size dims: --batch for the
first, 1 for the others, or --shape).

examples:
  tostatic run out/model --input x=x.npy --output out.npz
  tostatic run model.pdmodel --input io.npz          # every input the .npz names
  tostatic run model.pdmodel --batch 4               # random inputs
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from tostatic.cli.common import fmt_shape
from tostatic.cli.inputs import add_input_arguments, make_inputs
from tostatic.cli.model_files import load, resolve
from tostatic.serialization import atomic_write


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file, prefix or directory")
    p.add_argument("--params", help="the params file, when it is not MODEL's prefix + "
                   ".pdiparams")
    add_input_arguments(p)
    p.add_argument("-o", "--output", metavar="OUT.npz", help="save the outputs here, by name")
    p.add_argument("-q", "--quiet", action="store_true", help="print no values")


def run(args: argparse.Namespace) -> int:
    model = load(resolve(args.model, args.params))
    feeds = make_inputs(model, args)
    start = time.perf_counter()
    outputs = model.run(feeds)
    elapsed = time.perf_counter() - start
    print(f"ran in {elapsed * 1e3:.3f} ms", file=sys.stderr)
    named = dict(zip(model.fetch_names, (np.asarray(o) for o in outputs)))
    if args.output:
        with atomic_write(args.output) as f:
            np.savez(f, **named)
        print(f"wrote {args.output} ({', '.join(named)})", file=sys.stderr)
    if not args.quiet:
        for name, array in named.items():
            print(f"{name}: {array.dtype} {fmt_shape(array.shape)}")
            print(np.array2string(array, threshold=64, edgeitems=3, precision=6))
    return 0
