"""List every pass with its options and docstring, and the named pipelines."""
from __future__ import annotations

import argparse
import inspect

from tostatic.passes.base import PASSES
from tostatic.passes.pipeline import PIPELINES


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    for name, cls in sorted(PASSES.items()):
        opts = " ".join(f"{k}={v}" for k, v in cls.options.items())
        print(f"{name}{f'  {{{opts}}}' if opts else ''}")
        doc = inspect.cleandoc(cls.__doc__ or "")
        print("".join(f"    {line}\n" for line in doc.splitlines()))
    print("pipelines:")
    for name, text in PIPELINES.items():
        print(f"  {name} = {text}")
    return 0
