"""Fuzz tostatic's file readers with a seeded mutation loop.

    python scripts/fuzz_readers.py [--cases 10000] [--seed 0] [--formats pdmodel,json] [--workers 2]

For each format (`.pdmodel`, `.pdiparams`, `.pdiparams.info`, `.pdparams`, `.pdopt`, Paddle 3
`.json`) it mutates real files (Paddle 3.3.1's in tests/fixtures, and what tostatic writes) by
bytes (truncation, bit flips, insertions, deletions, overwritten integers) and by structure
(absurd dims and sizes, negative lengths, unknown dtype codes and op types, bad block indices,
cycles in sub-block references, deeply nested JSON, pickles calling os.system), loads each in a
worker process and, when it loads, runs it on inputs drawn from its input spec. Per format it
prints: cases, clean errors (a tostatic error naming the file and where in it: a byte
offset, a JSON field path, a block / op / record), loads-and-runs, run errors (a
tostatic error raised by running a model that loaded: should be 0), crashes (the worker died,
MemoryError, RecursionError or peak RSS growth over the bound), hangs (no answer within the
timeout), uncaught (any other exception, or an error that does not name the file or where).
Exit status 1 when crashes, hangs or uncaught are not all 0, or a pickle ran code.

The worker runs under RLIMIT_AS = its size at start + 1 GiB, and a case whose loading raises the
worker's peak RSS by more than 64 MiB + 64 x the file's size counts as a crash.
"""
from __future__ import annotations

import argparse
import collections
import functools
import io
import json
import multiprocessing as mp
import os
import pickle
import random
import re
import resource
import struct
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import tostatic  # noqa: E402
from tostatic.ir.errors import ToStaticError  # noqa: E402
from tostatic.serialization import framework_pb2 as pb  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "paddle-3.3.1")
PIR_FIXTURES = os.path.join(ROOT, "tests", "fixtures", "pir-3.3.1")
FORMATS = ("pdmodel", "pdiparams", "info", "pdparams", "pdopt", "json")
TIMEOUT = 20.0  # seconds per case before it counts as a hang
RSS_SLACK = 64 << 20
RSS_FACTOR = 64
ALL_CATEGORIES = ("clean_error", "loads_and_runs", "run_error", "crash", "hang", "uncaught")


# ----------------------------------------------------------------------------- seeds


class Seed:
    """A file to mutate and the files it goes with (the model for params and so on)."""

    def __init__(self, fmt: str, data: bytes, companions: dict[str, bytes], name: str):
        self.fmt, self.data, self.companions, self.name = fmt, data, companions, name


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _tostatic_pdparams(tmp: str) -> tuple[bytes, bytes]:
    net = tostatic.nn.Sequential(tostatic.nn.Linear(4, 3), tostatic.nn.LayerNorm(3))
    path = os.path.join(tmp, "seed.pdparams")
    tostatic.save(net.state_dict(), path)
    opt = {"linear_0.w_0_moment1_0": tostatic.randn([4, 3]),
           "linear_0.b_0_beta1_pow_acc_0": tostatic.to_tensor(np.array([0.9], np.float32)),
           "LR_Scheduler": {"last_epoch": 3, "last_lr": 0.1},
           "master_weights": {"linear_0.w_0": tostatic.randn([4, 3])}}
    opt_path = os.path.join(tmp, "seed.pdopt")
    tostatic.save(opt, opt_path, protocol=2)
    return _read(path), _read(opt_path)


@functools.lru_cache(maxsize=1)
def load_seeds() -> dict[str, list[Seed]]:
    seeds: dict[str, list[Seed]] = collections.defaultdict(list)
    for name in sorted(os.listdir(FIXTURES)):
        d = os.path.join(FIXTURES, name)
        files = {ext: _read(os.path.join(d, "model" + ext)) for ext in
                 (".pdmodel", ".pdiparams", ".pdiparams.info")
                 if os.path.exists(os.path.join(d, "model" + ext))}
        seeds["pdmodel"].append(Seed("pdmodel", files[".pdmodel"], files, name))
        if ".pdiparams" in files:
            seeds["pdiparams"].append(Seed("pdiparams", files[".pdiparams"], files, name))
        if ".pdiparams.info" in files:
            seeds["info"].append(Seed("info", files[".pdiparams.info"], files, name))
    for name in sorted(os.listdir(PIR_FIXTURES)):
        if name.endswith(".json"):
            base = os.path.join(PIR_FIXTURES, name[:-5])
            comp = {".json": _read(base + ".json")}
            if os.path.exists(base + ".pdiparams"):
                comp[".pdiparams"] = _read(base + ".pdiparams")
            seeds["json"].append(Seed("json", comp[".json"], comp, name[:-5]))
    with tempfile.TemporaryDirectory() as tmp:
        pdparams, pdopt = _tostatic_pdparams(tmp)
        ref = os.path.join(FIXTURES, "mlp")
        # the same model saved by tostatic: its manifest makes a flipped data bit an error
        layer = tostatic.jit.load(os.path.join(ref, "model"))
        tostatic.jit.save(layer, os.path.join(tmp, "m"))
        own = {ext: _read(os.path.join(tmp, "m" + ext)) for ext in
               (".pdmodel", ".pdiparams", ".pdiparams.info", ".tostatic.json")
               if os.path.exists(os.path.join(tmp, "m" + ext))}
    seeds["pdparams"].append(Seed("pdparams", pdparams, {}, "tostatic"))
    seeds["pdopt"].append(Seed("pdopt", pdopt, {}, "tostatic"))
    seeds["pdiparams"].append(Seed("pdiparams", own[".pdiparams"], own, "tostatic-mlp"))
    seeds["pdmodel"].append(Seed("pdmodel", own[".pdmodel"], own, "tostatic-mlp"))
    return seeds


# ----------------------------------------------------------------------------- mutations

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
               2**40, 2**62, 2**63 - 1, 2**64 - 1]
ABSURD_DIMS = [-1, -2, -(2**31), 0, 2**31, 2**40, 2**62, 2**63 - 1]


def _byte_mutation(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(7)
    n = len(b)
    if kind == 0 or n == 0:  # truncate
        return bytes(b[:rng.randrange(n + 1)]) if n else b""
    if kind == 1:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == 2:  # insert random bytes
        i = rng.randrange(n + 1)
        return bytes(b[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + b[i:])
    if kind == 3:  # delete a range
        i = rng.randrange(n)
        return bytes(b[:i] + b[i + rng.randint(1, 32):])
    if kind == 4:  # duplicate a range
        i = rng.randrange(n)
        j = min(n, i + rng.randint(1, 64))
        return bytes(b[:j] + b[i:j] + b[j:])
    if kind == 5:  # overwrite an integer
        width, fmt = rng.choice([(1, "<B"), (4, "<I"), (4, "<i"), (8, "<Q")])
        i = rng.randrange(max(1, n - width + 1))
        value = rng.choice(INTERESTING) % (1 << (8 * width))
        if fmt == "<i":
            value = rng.choice([-1, -2**31, -7, 2**31 - 1])
        b[i:i + width] = struct.pack(fmt, value)
        return bytes(b[:max(n, i + width)])
    b[rng.randrange(n)] = rng.randrange(256)  # one random byte
    return bytes(b)


def _pick(rng: random.Random, items: Any) -> Any:
    return items[rng.randrange(len(items))] if len(items) else None


def _mutate_program(rng: random.Random, data: bytes) -> bytes:
    desc = pb.ProgramDesc()
    desc.ParseFromString(data)
    for _ in range(rng.randint(1, 3)):
        block = _pick(rng, desc.blocks)
        kind = rng.randrange(9)
        if kind == 0 and block.vars:  # absurd dims
            var = _pick(rng, block.vars)
            if var.type.HasField("dense_tensor"):
                dims = var.type.dense_tensor.tensor.dims
                if dims:
                    dims[rng.randrange(len(dims))] = rng.choice(ABSURD_DIMS)
                else:
                    dims.append(rng.choice(ABSURD_DIMS))
        elif kind == 1 and block.vars:  # unknown or other dtype codes
            var = _pick(rng, block.vars)
            if var.type.HasField("dense_tensor"):
                var.type.dense_tensor.tensor.data_type = rng.choice([0, 1, 7, 19, 22, 25, 99])
            else:
                var.type.type = rng.choice([1, 4, 10, 99])
        elif kind == 2 and block.ops:  # unknown op types, or another op's type
            op = _pick(rng, block.ops)
            op.type = rng.choice(["frobnicate", "", "feed", "fetch", "while", "conditional_block",
                                  "relu", "matmul_v2", "reshape2", "conv2d", "\u00e9t\u00e9"])
        elif kind == 3 and block.ops:  # bad block indices and cycles in sub-block references
            op = _pick(rng, block.ops)
            attr = op.attrs.add()
            attr.name, attr.type = "sub_block", pb.AttrType.BLOCK
            attr.block_idx = rng.choice([-1, 0, block.idx, len(desc.blocks), 2**31 - 1])
            if rng.random() < 0.5:
                op.type = rng.choice(["conditional_block", "while"])
        elif kind == 4:  # parent cycles, bad block idx
            b = rng.choice(list(desc.blocks))
            if rng.random() < 0.5:
                b.parent_idx = rng.choice([-2, b.idx, len(desc.blocks), 0])
            else:
                b.idx = rng.choice([-1, 1, 5, 2**31 - 1])
            if rng.random() < 0.3:  # a second block pointing back at the first
                nb = desc.blocks.add()
                nb.idx, nb.parent_idx = len(desc.blocks) - 1, len(desc.blocks) - 1
                op = nb.ops.add()
                op.type = "conditional_block"
                attr = op.attrs.add()
                attr.name, attr.type, attr.block_idx = "sub_block", pb.AttrType.BLOCK, nb.idx
        elif kind == 5 and block.ops:  # reads of variables that do not exist, slots changed
            op = _pick(rng, block.ops)
            slots = list(op.inputs) + list(op.outputs)
            slot = _pick(rng, slots)
            if slot is not None and slot.arguments:
                slot.arguments[0] = rng.choice(["nope", "", slot.arguments[0] * 2])
            elif slot is not None:
                slot.arguments.append("x")
        elif kind == 6 and block.ops:  # remove or duplicate an op
            i = rng.randrange(len(block.ops))
            if rng.random() < 0.5:
                del block.ops[i]
            else:
                block.ops.add().CopyFrom(block.ops[i])
        elif kind == 7 and block.ops:  # attributes of the wrong type or absurd values
            op = _pick(rng, block.ops)
            attr = _pick(rng, op.attrs)
            if attr is not None:
                attr.type = rng.choice([0, 1, 2, 3, 4, 5, 6, 11, 99 % 20])
                attr.i = rng.choice([-1, 2**31 - 1, -(2**31)])
                attr.ints.extend([rng.choice(ABSURD_DIMS[:3]), 2**30])
        elif block.vars:  # persistable flips, names duplicated
            var = _pick(rng, block.vars)
            if rng.random() < 0.5:
                var.persistable = not var.persistable
            else:
                var.name = _pick(rng, block.vars).name
    return desc.SerializeToString()


_U32, _U64, _I32 = struct.Struct("<I"), struct.Struct("<Q"), struct.Struct("<i")


def _records(data: bytes) -> list[tuple[int, int, int, pb.VarType.TensorDesc]]:
    """(record start, desc start, desc end, desc) for each record of a .pdiparams."""
    out, pos = [], 0
    while pos < len(data):
        (dlen,) = _I32.unpack_from(data, pos + 16)
        desc = pb.VarType.TensorDesc()
        desc.ParseFromString(data[pos + 20:pos + 20 + dlen])
        size = int(np.prod(desc.dims, dtype=np.int64)) * {5: 4, 3: 8, 2: 4}.get(desc.data_type, 4)
        out.append((pos, pos + 20, pos + 20 + dlen, desc))
        pos += 20 + dlen + size
    return out


def _mutate_params(rng: random.Random, data: bytes) -> bytes:
    recs = _records(data)
    if not recs:
        return _byte_mutation(rng, data)
    start, dstart, dend, desc = _pick(rng, recs)
    kind = rng.randrange(5)
    b = bytearray(data)
    if kind == 0:  # negative or huge TensorDesc length
        b[dstart - 4:dstart] = _I32.pack(rng.choice([-1, -2**31, 2**31 - 1, 0, dend - dstart + 1]))
        return bytes(b)
    if kind == 1:  # lod_level / versions
        off, width = rng.choice([(start, 4), (start + 4, 8), (start + 12, 4)])
        b[off:off + width] = (_U64 if width == 8 else _U32).pack(rng.choice([1, 2**31, 7]))
        return bytes(b)
    new = pb.VarType.TensorDesc()
    new.CopyFrom(desc)
    if kind == 2:  # absurd dims
        if new.dims:
            new.dims[rng.randrange(len(new.dims))] = rng.choice(ABSURD_DIMS)
        else:
            new.dims.append(rng.choice(ABSURD_DIMS))
    elif kind == 3:  # unknown dtype codes, or another dtype of another size
        new.data_type = rng.choice([0, 1, 2, 3, 4, 6, 7, 19, 20, 22, 23, 99])
    else:  # one more or one fewer dim
        if new.dims and rng.random() < 0.5:
            del new.dims[-1]
        else:
            new.dims.append(rng.choice([1, 2, 3]))
    raw = new.SerializeToString()
    return bytes(b[:dstart - 4]) + _I32.pack(len(raw)) + raw + bytes(b[dend:])


class _Evil:
    def __init__(self, fn: Any, args: tuple):
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return self.fn, self.args


def _evil(rng: random.Random, marker: str) -> Any:
    import builtins
    import subprocess
    return rng.choice([_Evil(os.system, (f"touch {marker}",)),
                       _Evil(builtins.eval, (f"open({marker!r}, 'w')",)),
                       _Evil(subprocess.Popen, (["touch", marker],)),
                       _Evil(builtins.exec, (f"open({marker!r}, 'w')",))])


def _weird_value(rng: random.Random, marker: str) -> Any:
    kind = rng.randrange(9)
    if kind == 0:
        deep: Any = 1
        for _ in range(rng.choice([100, 2000, 50000])):
            deep = [deep]
        return deep
    if kind == 1:
        return 10 ** rng.randint(20, 4000)
    if kind == 2:
        return np.zeros(rng.randint(0, 4), dtype=rng.choice(["float32", "int64", "bool",
                                                             "complex64", "U3", "O", "V4"]))
    if kind == 3:
        return _evil(rng, marker)
    if kind == 4:
        return {"a": {(1, 2): b"\xff" * 8}}
    if kind == 5:
        return float("nan")
    if kind == 6:
        return collections.OrderedDict(x=set([1, 2]))
    if kind == 7:
        return np.dtype([("a", "f4"), ("b", "O")]) if rng.random() < 0.5 else np.dtype("f4")
    return None


def _mutate_pickle(rng: random.Random, data: bytes, seed_data: bytes, marker: str) -> bytes:
    """Unpickle our own seed (trusted), replace a value with something odd, pickle again."""
    if data is not seed_data:  # never unpickle a mutated file here: it may run code
        return _byte_mutation(rng, data)
    obj = pickle.loads(data)  # noqa: S301 - a seed, written by Paddle or tostatic
    proto = data[1] if data[:1] == b"\x80" else 2

    def edit(o: Any) -> Any:
        if isinstance(o, dict) and o:
            key = rng.choice(list(o))
            o = dict(o)
            if rng.random() < 0.3:
                o[rng.choice([1, None, (1,), "k" * 3])] = _weird_value(rng, marker)
            elif isinstance(o[key], dict) and rng.random() < 0.5:
                o[key] = edit(o[key])
            else:
                o[key] = _weird_value(rng, marker)
            return o
        return _weird_value(rng, marker)

    try:
        return pickle.dumps(edit(obj), protocol=min(proto, 4))
    except (RecursionError, pickle.PicklingError, TypeError, ValueError):
        return pickle.dumps(_evil(rng, marker), protocol=2)


def _json_nodes(doc: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    out = [(path, doc)]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_json_nodes(v, path + (k,)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_json_nodes(v, path + (i,)))
    return out


def _mutate_json(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.05:  # deeply nested JSON
        depth = rng.choice([1000, 100000])
        return b'{"base_code": {"magic": "pir", "version": 4}, "program": ' + \
            b"[" * depth + b"]" * depth + b"}"
    doc = json.loads(data)
    nodes = _json_nodes(doc)
    for _ in range(rng.randint(1, 3)):
        path, node = rng.choice(nodes[1:])
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        kind = rng.randrange(10)
        if kind == 0:
            parent[key] = rng.choice([None, True, "x", 1.5, [], {}, -1])
        elif kind == 1 and isinstance(node, int) and not isinstance(node, bool):
            parent[key] = rng.choice(ABSURD_DIMS + [node + 1, -node, 10**30])
        elif kind == 2 and isinstance(node, str):
            parent[key] = rng.choice(["1.frobnicate", "0.t_f99", "9.x", "", node + "x",
                                      "1.while", "1.if", "0.p", "\ud7ff"])
        elif kind == 3 and isinstance(parent, list):
            del parent[key]
        elif kind == 4 and isinstance(parent, list):
            parent.insert(key, parent[key])
        elif kind == 5 and isinstance(parent, dict):
            del parent[key]
        elif kind == 6:
            deep: Any = 0
            for _ in range(rng.choice([40, 200, 5000])):
                deep = [deep]
            parent[key] = deep
        elif kind == 7 and isinstance(node, dict) and "%" in node:  # dangling / swapped ids
            node["%"] = rng.choice([0, 10**6, -5, node["%"] + 1])
        elif kind == 8 and isinstance(node, list) and node and all(
                isinstance(x, int) for x in node):
            node[rng.randrange(len(node))] = rng.choice(ABSURD_DIMS)
        else:
            parent[key] = node if not isinstance(node, (int, float)) else -node
    try:
        text = json.dumps(doc)
    except (RecursionError, ValueError):
        return data[: len(data) // 2]
    return text.encode("utf-8", "surrogatepass")


def mutate(rng: random.Random, seed: Seed, marker: str) -> bytes:
    structured = {"pdmodel": _mutate_program, "pdiparams": _mutate_params, "json": _mutate_json,
                  "info": lambda r, d: _mutate_pickle(r, d, seed.data, marker),
                  "pdparams": lambda r, d: _mutate_pickle(r, d, seed.data, marker),
                  "pdopt": lambda r, d: _mutate_pickle(r, d, seed.data, marker)}[seed.fmt]
    data = seed.data
    for _ in range(rng.choice([1, 1, 1, 2])):
        if rng.random() < 0.5:
            try:
                data = structured(rng, data)
                continue
            except Exception:  # noqa: BLE001 - a previous mutation made it unparsable
                pass
        data = _byte_mutation(rng, data)
    return data


# ----------------------------------------------------------------------------- running


def _inputs(model: Any, rng: np.random.Generator) -> list[np.ndarray]:
    arrays = []
    for spec in model.plan.input_abstracts:
        shape = [1 if d < 0 else d for d in spec.shape]  # 1 broadcasts with any dim
        dt = spec.dtype.numpy
        if dt is None:
            raise ToStaticError(f"input of dtype {spec.dtype.name}")
        if np.issubdtype(dt, np.integer):
            arrays.append(rng.integers(0, 3, size=shape).astype(dt))
        elif dt == np.bool_:
            arrays.append(rng.random(shape) < 0.5)
        else:
            arrays.append(rng.standard_normal(shape).astype(dt))
    return arrays


def _load(fmt: str, path: str, prefix: str) -> tuple[Any, Callable[[], Any] | None]:
    """Load the case; returns (what loaded, a function that runs it or None)."""
    from tostatic.runtime.loaded_model import load_model
    if fmt in ("pdparams", "pdopt"):
        return tostatic.load(path), None
    if fmt == "info":
        layer = tostatic.jit.load(prefix)
        return layer, lambda: layer._model.run(_inputs(layer._model, np.random.default_rng(0)))
    model_file = prefix + (".json" if fmt == "json" else ".pdmodel")
    params = prefix + ".pdiparams"
    model = load_model(model_file, params if os.path.exists(params) else None)
    return model, lambda: model.run(_inputs(model, np.random.default_rng(0)))


_LOCATION = re.compile(r"byte offset \d+|op \d+|block \d+|record \d+|\w\[\d+\]|"
                       r"\bprogram\b|line \d+|tensor '|variable '|input '|sub_block|"
                       r"\bat \[|at the top level|\(key ")


def _located(e: BaseException) -> bool:
    """The error says where: a byte offset, a JSON field path, a block / op / record."""
    if getattr(e, "offset", None) is not None or getattr(e, "field", None):
        return True
    return bool(_LOCATION.search(str(e)))


def _names_file(e: BaseException, path: str) -> bool:
    """The message names the case's file, or the file beside it that the error is about."""
    text = str(e)
    return any(name in text for name in os.listdir(os.path.dirname(path)))


def run_case(fmt: str, seed: Seed, data: bytes, workdir: str) -> tuple[str, str]:
    """Write the case beside its companions, load it, run it: (category, detail)."""
    for name in os.listdir(workdir):
        os.unlink(os.path.join(workdir, name))
    prefix = os.path.join(workdir, "model")
    ext = {"pdmodel": ".pdmodel", "pdiparams": ".pdiparams", "info": ".pdiparams.info",
           "json": ".json", "pdparams": ".pdparams", "pdopt": ".pdopt"}[fmt]
    for cext, cdata in seed.companions.items():
        with open(prefix + cext, "wb") as f:
            f.write(cdata)
    path = prefix + ext
    with open(path, "wb") as f:
        f.write(data)
    try:
        _, runner = _load(fmt, path, prefix)
    except (MemoryError, RecursionError) as e:
        if run_case_raise:
            raise
        return "crash", f"{type(e).__name__} at load: {str(e)[:200]}"
    except ToStaticError as e:
        if type(e).__name__ == "PassFailure":
            return "uncaught", f"PassFailure (a tostatic bug) at load: {str(e)[:300]}"
        if not _names_file(e, path):
            return "uncaught", f"{type(e).__name__} not naming the file: {str(e)[:300]}"
        if not _located(e):
            return "uncaught", f"{type(e).__name__} not saying where: {str(e)[:300]}"
        return "clean_error", type(e).__name__
    except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
        if run_case_raise:
            raise
        return "uncaught", f"{type(e).__name__} at load: {str(e)[:300]}"
    if runner is None:
        return "loads_and_runs", ""
    try:
        runner()
    except (MemoryError, RecursionError) as e:
        return "crash", f"{type(e).__name__} at run: {str(e)[:200]}"
    except ToStaticError as e:
        return "run_error", f"{type(e).__name__} at run: {str(e)[:300]}"
    except Exception as e:  # noqa: BLE001
        return "uncaught", f"{type(e).__name__} at run: {str(e)[:300]}"
    return "loads_and_runs", ""


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _worker(conn: Any, seeds: dict[str, list[Seed]]) -> None:
    limit = _vm_size() + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    workdir = tempfile.mkdtemp(prefix="tostatic-fuzz-")
    import warnings
    warnings.simplefilter("ignore")
    while True:
        msg = conn.recv()
        if msg is None:
            break
        fmt, seed_index, data = msg
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        category, detail = run_case(fmt, seeds[fmt][seed_index], data, workdir)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        if grown > RSS_SLACK + RSS_FACTOR * len(data):
            category, detail = "crash", f"peak RSS grew by {grown >> 20} MiB"
        conn.send((category, detail))


class Pool:
    """Workers forked from this process; a worker that dies or hangs is replaced."""

    def __init__(self, n: int, seeds: dict[str, list[Seed]]):
        self.seeds = seeds
        self.ctx = mp.get_context("fork")
        self.workers = [self._start() for _ in range(n)]

    def _start(self) -> Any:
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker, args=(child, self.seeds), daemon=True)
        p.start()
        child.close()
        return [p, parent, None]  # process, pipe, case in flight

    def run(self, cases: Any, on_result: Callable[[Any, str, str], None]) -> None:
        cases = iter(cases)
        busy = 0
        started: dict[int, float] = {}
        done = False
        while True:
            for i, w in enumerate(self.workers):
                if w[2] is None and not done:
                    case = next(cases, None)
                    if case is None:
                        done = True
                        continue
                    w[2] = case
                    w[1].send((case[0], case[1], case[2]))
                    started[i] = time.monotonic()
                    busy += 1
            if busy == 0:
                break
            for i, w in enumerate(self.workers):
                if w[2] is None:
                    continue
                if w[1].poll(0.005):
                    case = w[2]
                    try:
                        category, detail = w[1].recv()
                        w[2] = None
                    except EOFError:
                        w[0].join()
                        category, detail = "crash", f"worker died (exit code {w[0].exitcode})"
                        self.workers[i] = self._start()
                    on_result(case, category, detail)
                    busy -= 1
                elif not w[0].is_alive():
                    w[0].join()
                    on_result(w[2], "crash", f"worker died (exit code {w[0].exitcode})")
                    self.workers[i] = self._start()
                    busy -= 1
                elif time.monotonic() - started[i] > TIMEOUT:
                    w[0].kill()
                    w[0].join()
                    on_result(w[2], "hang", f"no answer in {TIMEOUT} s")
                    self.workers[i] = self._start()
                    busy -= 1

    def close(self) -> None:
        for p, conn, _ in self.workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()


def fuzz(cases_per_format: int, seed: int, formats: tuple[str, ...], workers: int,
         verbose: bool = False) -> dict[str, collections.Counter]:
    """Run the mutation loop; returns the counts per format (and `examples` of failures)."""
    seeds = load_seeds()
    marker = os.path.join(tempfile.gettempdir(), f"tostatic-fuzz-pwned-{os.getpid()}")
    counts: dict[str, collections.Counter] = {f: collections.Counter() for f in formats}
    examples: dict[str, list[str]] = collections.defaultdict(list)

    def cases() -> Any:
        for fmt in formats:
            rng = random.Random(f"{seed}-{fmt}")
            for k in range(cases_per_format):
                i = rng.randrange(len(seeds[fmt]))
                yield fmt, i, mutate(rng, seeds[fmt][i], marker), k

    def on_result(case: Any, category: str, detail: str) -> None:
        fmt = case[0]
        counts[fmt][category] += 1
        counts[fmt]["cases"] += 1
        if category in ("crash", "hang", "uncaught", "run_error") and len(examples[fmt]) < 8:
            examples[fmt].append(f"{fmt} case {case[3]} (seed {seeds[fmt][case[1]].name}): "
                                 f"{category}: {detail}")
            if verbose:
                print(examples[fmt][-1], file=sys.stderr, flush=True)

    pool = Pool(workers, seeds)
    try:
        pool.run(cases(), on_result)
    finally:
        pool.close()
    if os.path.exists(marker):
        os.unlink(marker)
        for fmt in formats:
            counts[fmt]["code_executed"] += 1
    for fmt in formats:
        counts[fmt]["examples"] = examples[fmt]  # type: ignore[assignment]
    return counts


def report(counts: dict[str, collections.Counter], seconds: float) -> str:
    head = f"{'format':<10}{'cases':>8}{'clean errors':>14}{'loads+runs':>12}{'run errors':>12}" \
           f"{'crashes':>9}{'hangs':>7}{'uncaught':>10}"
    lines = [head]
    for fmt, c in counts.items():
        lines.append(f"{fmt:<10}{c['cases']:>8}{c['clean_error']:>14}{c['loads_and_runs']:>12}"
                     f"{c['run_error']:>12}{c['crash']:>9}{c['hang']:>7}{c['uncaught']:>10}")
    lines.append(f"({seconds:.0f} s)")
    for fmt, c in counts.items():
        if c["code_executed"]:
            lines.append(f"{fmt}: A PICKLE EXECUTED CODE")
        for ex in c["examples"]:
            lines.append("  " + ex)
    return "\n".join(lines)


def failures(counts: dict[str, collections.Counter]) -> int:
    """Crashes, hangs, uncaught errors and code run from a file. (A run error is a tostatic
    error naming the op's failure when a model with dynamic dims meets inputs its ops cannot
    take: counted and shown, not a failure.)"""
    return sum(c[k] for c in counts.values()
               for k in ("crash", "hang", "uncaught", "code_executed"))


def replay(case: str, seed: int) -> int:
    """Rebuild one case and load it in this process (tracebacks shown)."""
    fmt, index = case.split(":")
    seeds = load_seeds()
    rng = random.Random(f"{seed}-{fmt}")
    marker = os.path.join(tempfile.gettempdir(), "tostatic-fuzz-replay")
    for _ in range(int(index) + 1):
        i = rng.randrange(len(seeds[fmt]))
        data = mutate(rng, seeds[fmt][i], marker)
    workdir = tempfile.mkdtemp(prefix="tostatic-fuzz-replay-")
    global run_case_raise
    run_case_raise = True
    print(run_case(fmt, seeds[fmt][i], data, workdir), "in", workdir)
    return 0


run_case_raise = False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10000, help="mutated files per format")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--case", help="FORMAT:INDEX: run that case here, with its traceback")
    args = ap.parse_args(argv)
    if args.case:
        return replay(args.case, args.seed)
    t0 = time.perf_counter()
    counts = fuzz(args.cases, args.seed, tuple(args.formats.split(",")), args.workers,
                  args.verbose)
    print(report(counts, time.perf_counter() - t0))
    return 1 if failures(counts) else 0


if __name__ == "__main__":
    sys.exit(main())
