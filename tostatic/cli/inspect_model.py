"""Show what a model holds, without running it: its inputs and outputs (names, dtypes, shapes;
-1 is any size), the op types it uses and how often (and which of them tostatic cannot run),
its parameters (count and bytes), its format and the Paddle version that wrote it, and a
content hash (sha256 of the model file's sha256 followed by a digest of the params file's
records' CRC-32s, serialization/artifact.py), and whether it
matches the one recorded when tostatic saved the files (the `.tostatic-manifest` sidecar).

MODEL is a model file (.pdmodel), its prefix (what jit.save was given) or a directory.

examples:
  tostatic inspect out/model
  tostatic inspect model.pdmodel --program         # Paddle's print(program) text
  tostatic inspect model.pdmodel --dot model.dot   # then: dot -Tsvg model.dot > model.svg
  tostatic inspect model.pdmodel --json | jq .inputs
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections import Counter
from typing import Any

import numpy as np

from tostatic.cli.common import fmt_bytes, fmt_shape, table
from tostatic.cli.dot import program_to_dot
from tostatic.cli.model_files import ModelFiles, read_program, resolve
from tostatic.dialects.program import ProgramOp, VarOp
from tostatic.ir.opdef import LEGACY
from tostatic.passes.raising import BLOCK_OP_RAISERS
from tostatic.serialization.program_text import program_to_text
from tostatic.serialization import FormatError
from tostatic.serialization.artifact import (MANIFEST_SUFFIX, content_hash, read_manifest,
                                             records_digest)
from tostatic.serialization.pdiparams import record_checksums

# ops every reader handles itself (feed/fetch are the program's interface)
_ALWAYS_READ = frozenset({"feed", "fetch", "assign_value"})


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file, prefix or directory")
    p.add_argument("--params", help="the params file, when it is not MODEL's prefix + "
                   ".pdiparams")
    p.add_argument("--program", action="store_true", help="print Paddle's program text "
                   "(as print(program) does) instead of the summary")
    p.add_argument("--dot", metavar="FILE", help="write the graph in Graphviz's dot language "
                   "('-': stdout)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def supported_op_types() -> frozenset[str]:
    """The Paddle op types tostatic reads and runs."""
    return frozenset(LEGACY) | frozenset(BLOCK_OP_RAISERS) | _ALWAYS_READ


def _var_entry(var: VarOp | None, name: str) -> dict[str, Any]:
    dtype = var.dtype.name if var is not None and var.dtype is not None else None
    shape = list(var.shape) if var is not None and var.shape is not None else None
    return {"name": name, "dtype": dtype, "shape": shape}


def interface(program: ProgramOp, op_type: str, slot: str, out: bool) -> list[dict[str, Any]]:
    block = program.blocks[0]
    ops = sorted((o for o in block.ops if o.op_type == op_type), key=lambda o: o.attr("col"))
    names = [(o.output(slot) if out else o.input(slot))[0] for o in ops]
    return [_var_entry(block.var(n), n) for n in names]


def _version(code: int | None) -> str | None:
    if not code:
        return None
    return f"{code // 1000000}.{code // 1000 % 1000}.{code % 1000}"


def _file_entry(path: str, records: bool = False) -> dict[str, Any]:
    """Size and sha256 of a file; for a params file (`records`) also the digest of its
    records' CRC-32s (None if it does not parse as records) the content hash takes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    size = os.path.getsize(path)
    entry = {"path": path, "bytes": size, "sha256": digest.hexdigest()}
    if records:
        try:
            entry["digest"] = records_digest(size, [[None, off, crc] for off, crc
                                                    in record_checksums(path)])
        except FormatError:
            entry["digest"] = None
    return entry


def _content_hash(entries: dict[str, dict[str, Any]]) -> str | None:
    """sha256 of the model file's sha256 then the params file's records digest: what a
    tostatic save records in its manifest (serialization/artifact.py)."""
    params = entries.get("params")
    if params is not None and params["digest"] is None:
        return None  # the params file is not a sequence of records
    return content_hash(entries["model"], params)


def _recorded(files: ModelFiles, entries: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The manifest saved beside the model, and whether each file still matches it."""
    if not files.model.endswith(".pdmodel"):
        return None
    prefix = files.model[: -len(".pdmodel")]
    manifest = read_manifest(prefix)
    if manifest is None:
        return None
    recorded = manifest.get("files", {})
    changed = []
    for e in entries.values():
        saved = recorded.get(os.path.basename(e["path"]))
        if isinstance(saved, dict):
            key = "digest" if "digest" in saved else "sha256"  # a params file: its records
            if saved.get(key) != e.get(key) or saved.get("size") != e["bytes"]:
                changed.append(e["path"])
    return {"path": prefix + MANIFEST_SUFFIX, "content_hash": manifest.get("content_hash"),
            "changed_files": changed}


def summary(files: ModelFiles, program: ProgramOp) -> dict[str, Any]:
    ops = Counter(o.op_type for b in program.blocks for o in b.ops)
    params = [v for v in program.blocks[0].vars if v.persistable and v.dtype is not None
              and v.var_type == "DENSE_TENSOR"]
    values = sum(int(np.prod(v.shape or ())) for v in params)
    nbytes = sum(int(np.prod(v.shape or ())) * np.dtype(v.dtype.numpy).itemsize
                 for v in params)
    by_dtype = Counter()
    for v in params:
        by_dtype[v.dtype.name] += int(np.prod(v.shape or ()))
    known = supported_op_types()
    file_entries = {"model": _file_entry(files.model)}
    if files.params:
        file_entries["params"] = _file_entry(files.params, records=True)
    if files.info:
        file_entries["info"] = _file_entry(files.info)
    return {
        "model": files.model,
        "format": files.format.name,
        "format_description": files.format.description,
        "producer": {"name": "paddle", "version": _version(program.version),
                     "version_code": program.version},
        "sha256": _content_hash(file_entries),
        "recorded": _recorded(files, file_entries),
        "files": file_entries,
        "inputs": interface(program, "feed", "Out", out=True),
        "outputs": interface(program, "fetch", "X", out=False),
        "num_blocks": len(program.blocks),
        "num_ops": sum(ops.values()),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "unsupported_ops": sorted(set(ops) - known),
        "parameters": {"tensors": len(params), "values": values, "bytes": nbytes,
                       "by_dtype": dict(by_dtype)},
    }


def _print_summary(s: dict[str, Any]) -> None:
    version = s["producer"]["version"]
    files = s["files"]
    p = s["parameters"]
    print(f"model    {s['model']} ({fmt_bytes(files['model']['bytes'])})")
    params = files.get("params")
    print(f"params   {params['path']} ({fmt_bytes(params['bytes'])})" if params
          else "params   none")
    print(f"format   {s['format_description']}")
    print(f"producer Paddle {version} (the version the file records)" if version
          else "producer unknown (the file records no version)")
    print(f"sha256   {s['sha256'] or 'none: the params file is not a sequence of records'}"
          f"  (content hash: the model file's sha256, then its records' CRC-32s)")
    rec = s.get("recorded")
    if rec:
        same = not rec["changed_files"]  # each file as its manifest entry records it
        print(f"saved    {rec['content_hash']}  (recorded by tostatic: "
              + ("the files are as saved)" if same else
                 f"CHANGED since saved: {', '.join(rec['changed_files']) or 'the files'})"))
    for title, key in (("inputs", "inputs"), ("outputs", "outputs")):
        print(f"\n{title}")
        rows = [[v["name"], v["dtype"] or "?", fmt_shape(v["shape"])] for v in s[key]]
        sys.stdout.write(table(rows) if rows else "  none\n")
    dtypes = ", ".join(f"{k} {n:,}" for k, n in p["by_dtype"].items())
    print(f"\nparameters  {p['tensors']} tensors, {p['values']:,} values, "
          f"{fmt_bytes(p['bytes'])}" + (f" ({dtypes})" if dtypes else ""))
    blocks = f"{s['num_blocks']} block" + ("s" if s["num_blocks"] != 1 else "")
    print(f"\nops  {s['num_ops']} in {blocks}, {len(s['ops'])} types")
    unsupported = set(s["unsupported_ops"])
    sys.stdout.write(table([[t, str(n), "(not supported by tostatic)" if t in unsupported
                             else ""] for t, n in s["ops"].items()]))
    if unsupported:
        print(f"\ntostatic cannot run this model yet: it does not support "
              f"{', '.join(sorted(unsupported))}")


def run(args: argparse.Namespace) -> int:
    files = resolve(args.model, args.params)
    program = read_program(files)
    if args.dot:
        dot = program_to_dot(program, title=os.path.basename(files.model))
        if args.dot == "-":  # the graph alone on stdout
            sys.stdout.write(dot)
            return 0
        with open(args.dot, "w") as f:
            f.write(dot)
        print(f"wrote {args.dot} (render it: dot -Tsvg {args.dot} -o graph.svg)",
              file=sys.stderr)
    if args.program:
        print(program_to_text(program))  # as print(program) in Paddle
    elif args.json:
        print(json.dumps(summary(files, program), indent=2))
    else:
        _print_summary(summary(files, program))
    return 0
