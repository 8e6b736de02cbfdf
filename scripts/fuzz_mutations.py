"""The mutations scripts/fuzz_readers.py applies: bytes (truncation, bit flips, insertions,
deletions, duplicated ranges, overwritten integers) and structure, per format (a ProgramDesc's
dims, dtypes, op types, sub-block references and parents; a .pdiparams record's header; a
pickle's values, including calls to os.system and friends; a PIR program's JSON nodes)."""
from __future__ import annotations

import collections
import io
import json
import os
import pickle
import random
import struct
from typing import Any

import numpy as np

from tostatic.serialization import framework_pb2 as pb
from tostatic.serialization import state_dict

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
    obj = state_dict.load(io.BytesIO(data), "<fuzz seed>")  # the readers' restricted unpickler
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


def mutate(rng: random.Random, seed: Any, marker: str) -> bytes:
    """One to two mutations of `seed.data` (a Seed of fuzz_readers), structured or not."""
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
