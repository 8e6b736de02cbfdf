"""Paddle 3.x PIR programs (`model.json`, what `paddle.jit.save` writes by default) as plain data.

The file is Paddle's ProgramWriter output (paddle/fluid/pir/serialize_deserialize), with
compact keys:

    {"base_code": {"magic": "pir", "trainable": true, "version": 4},
     "program": {"regions": [{"#": "region_0", "blocks": [{"#": "block_0", "args": [...],
                 "ops": [op, ...]}]}]}}
    op    = {"#": "1.conv2d",              dialect id . op name (0 builtin, 1 pd_op, 2 cf, ...)
             "I": [{"%": 9}, ...],         operands: value ids (0 = no value)
             "O": [{"%": 10, "TT": type}], results: id and type
             "A": [{"N": name, "AT": attr}], attributes ("OA": result attributes
             "regions": [...]}             such as stop_gradient; "DA"/"QA": dist / quant)
    param = {"#": "p", "A": [is_distributed, is_parameter, need_clip, name],
             "O": {"%": 1, "TT": type}, "OA": [persistable, stop_gradient, trainable]}
    type  = {"#": "0.t_dtensor", "D": [{"#": "0.t_f32"}, dims, layout, lod, offset]}
            {"#": "0.t_vec", "D": [type, ...]}
    attr  = {"#": "0.a_i32", "D": 1}; floats that are NaN / inf are {"#": ..., "VD": "NaN"}

Block arguments have negative ids. `read_pir` checks the structure and decodes it into the
dataclasses below; what each op means is the raising pass's business
(passes/raise_from_pir.py). Errors name the file and the JSON field path of the problem
(`program.regions[0].blocks[0].ops[12].O[0].TT`), or the line, column and byte offset for
text that is not JSON at all. Nothing in the file is executed; sizes and nesting are bounded.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tostatic.serialization import FormatError

__all__ = ["PirProgram", "PirRegion", "PirBlock", "PirOp", "PirValue", "PirType", "RawAttr",
           "read_pir", "parse_pir", "detect_model_format", "PirFormatError"]

MAX_BYTES = 1 << 30  # a PIR program of a large model is a few MB; refuse absurd files early
MAX_REGION_DEPTH = 64  # control flow nested deeper than this is not a model
MAX_VALUE_DEPTH = 32  # attribute arrays / vector types within each other

# Paddle's DialectIdMap (schema.cc): the compact id of each dialect in op and type names
DIALECTS = {"0": "builtin", "1": "pd_op", "2": "cf", "3": "custom_op", "4": "dist_op"}
PARAMETER = "p"  # the compressed builtin.parameter op

# element types of tensors ("0.t_f32") -> our dtype names
ELEMENT_TYPES = {"t_bool": "bool", "t_i8": "int8", "t_ui8": "uint8", "t_i16": "int16",
                 "t_i32": "int32", "t_i64": "int64", "t_index": "int64", "t_f16": "float16",
                 "t_bf16": "bfloat16", "t_f32": "float32", "t_f64": "float64",
                 "t_c64": "complex64", "t_c128": "complex128"}
_SPECIAL_FLOATS = {"NaN": float("nan"), "INF": float("inf"), "-INF": float("-inf")}


def _strings(text: str) -> Iterator[tuple[int, str, str | None]]:
    """(index, character, string or None) for each structural character and each string."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            yield i, ch, text[i + 1:j]
            i = j + 1
            continue
        yield i, ch, None
        i += 1


def _duplicate_key(text: str) -> int | None:
    """Byte offset of the first key that its object already has (the text is valid JSON)."""
    stack: list[set[str] | None] = []
    last: str | None = None
    last_at = 0
    for i, ch, string in _strings(text):
        if string is not None:
            last = string
            last_at = i
        elif ch == "{":
            stack.append(set())
        elif ch == "[":
            stack.append(None)
        elif ch in "]}":
            if stack:
                stack.pop()
        elif ch == ":" and stack and stack[-1] is not None and last is not None:
            if last in stack[-1]:
                return len(text[:last_at].encode("utf-8"))
            stack[-1].add(last)
    return None


def _too_deep(text: str, limit: int) -> tuple[int, int | None]:
    """(limit, byte offset of the bracket that opens level limit + 1), strings skipped."""
    depth, in_string, escaped = 0, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return limit, len(text[:i].encode("utf-8"))
        elif ch in "]}":
            depth -= 1
    return limit, None


class PirFormatError(FormatError):
    """A PIR .json file that is not what Paddle writes; `field` is the JSON path."""

    def __init__(self, path: str, field_path: str, reason: str):
        self.field = field_path
        super().__init__(path, None, f"{field_path}: {reason}" if field_path else reason)


@dataclass(frozen=True)
class PirType:
    """A value's type: `kind` is "tensor" (dtype name, shape with -1 for dynamic dims),
    "vector" (a list of values: `elements`), "tensor_array", "null" or "other" (`type_id`)."""

    kind: str
    type_id: str
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    elements: tuple["PirType", ...] = ()

    def __str__(self) -> str:
        if self.kind in ("tensor", "tensor_array"):
            dims = "x".join("?" if d < 0 else str(d) for d in self.shape or ())
            return f"{self.kind}<{dims}{'x' if dims else ''}{self.dtype}>"
        if self.kind == "vector":
            return f"vec[{', '.join(map(str, self.elements))}]"
        return self.type_id


@dataclass(frozen=True)
class RawAttr:
    """An attribute of a kind tostatic does not decode (a distributed-training annotation,
    say): kept as it is, so that only an op that needs it fails."""

    type_id: str
    data: Any


@dataclass
class PirValue:
    id: int
    type: PirType


@dataclass
class PirOp:
    """One operation. `name` is the full name (`pd_op.conv2d`, `builtin.parameter`, `cf.yield`),
    `operands` the ids it reads (0: none given), `path` its place in the file."""

    name: str
    operands: list[int]
    results: list[PirValue]
    attrs: dict[str, Any]
    result_attrs: dict[str, Any]
    regions: list["PirRegion"]
    path: str


@dataclass
class PirBlock:
    name: str
    args: list[PirValue]
    ops: list[PirOp]
    path: str


@dataclass
class PirRegion:
    name: str
    blocks: list[PirBlock]
    path: str


@dataclass
class PirProgram:
    source: str  # the file it came from, for messages
    version: int
    trainable: bool
    regions: list[PirRegion] = field(default_factory=list)

    def ops(self) -> list[PirOp]:
        """The top-level ops (block 0 of region 0)."""
        return self.regions[0].blocks[0].ops


# ---------------------------------------------------------------------------------------------
# detecting the format
# ---------------------------------------------------------------------------------------------

def detect_model_format(path: str | os.PathLike[str]) -> str:
    """"pir-json" for a PIR .json program, "program-desc" for anything else (a legacy
    .pdmodel, whose reader then says what is wrong): by content, not by the file's name."""
    with open(path, "rb") as f:
        head = f.read(64)
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    # a ProgramDesc starts with field 1 (blocks, wire type 2): byte 0x0A, never "{"
    return "pir-json" if head.startswith(b"{") else "program-desc"


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def read_pir(path: str | os.PathLike[str]) -> PirProgram:
    """Read and check a PIR .json program; errors name the file and the field."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise FormatError(path, None, f"{size} bytes is more than the {MAX_BYTES} a PIR "
                          f"program may have here")
    with open(path, "rb") as f:
        return parse_pir(f.read(), path)


def parse_pir(data: bytes, path: str = "<bytes>") -> PirProgram:
    if not data.strip():
        raise FormatError(path, 0, "expected a PIR program (JSON), found an empty file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FormatError(path, e.start, f"expected a PIR program (UTF-8 JSON), found a byte "
                          f"that is not UTF-8 ({data[e.start:e.start + 1]!r})") from None
    try:
        doc = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        offset = len(text[:e.pos].encode("utf-8"))
        end = " (the file ends early: truncated?)" if e.pos >= len(text.rstrip()) else ""
        raise FormatError(path, offset, f"not valid JSON at line {e.lineno} column {e.colno}: "
                          f"{e.msg}{end}") from None
    except _DuplicateKey as e:
        raise FormatError(path, _duplicate_key(text), f"JSON object has the key "
                          f"{e.args[0]!r} twice") from None
    except ValueError as e:  # a bare NaN / Infinity, which Paddle never writes
        raise FormatError(path, None, f"not valid JSON: {e}") from None
    except RecursionError:
        depth, offset = _too_deep(text, 500)
        raise FormatError(path, offset, f"JSON nested more than {depth} levels deep") from None
    try:
        return _Reader(path).program(doc)
    except RecursionError:  # a last resort: the walk bounds every nesting itself
        raise FormatError(path, None, "program nested too deeply") from None


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Reader:
    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, reason: str) -> PirFormatError:
        return PirFormatError(self.path, where, reason)

    # --- typed access ------------------------------------------------------------------

    def obj(self, v: Any, where: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(where, f"expected an object, found {_what(v)}")
        return v

    def arr(self, v: Any, where: str) -> list[Any]:
        if not isinstance(v, list):
            raise self.fail(where, f"expected an array, found {_what(v)}")
        return v

    def key(self, d: dict[str, Any], k: str, where: str) -> Any:
        if k not in d:
            raise self.fail(where, f"missing key {k!r} (has {sorted(d)})")
        return d[k]

    def int_(self, v: Any, where: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(where, f"expected an integer, found {_what(v)}")
        return v

    def str_(self, v: Any, where: str) -> str:
        if not isinstance(v, str):
            raise self.fail(where, f"expected a string, found {_what(v)}")
        return v

    # --- structure ---------------------------------------------------------------------

    def program(self, doc: Any) -> PirProgram:
        doc = self.obj(doc, "")
        base = self.obj(self.key(doc, "base_code", "(top level)"), "base_code")
        magic = self.key(base, "magic", "base_code")
        if magic != "pir":
            raise self.fail("base_code.magic", f"expected \"pir\", found {_what(magic)}: "
                            f"this is not a Paddle PIR program")
        version = self.int_(self.key(base, "version", "base_code"), "base_code.version")
        trainable = base.get("trainable", False)
        if not isinstance(trainable, bool):
            raise self.fail("base_code.trainable", f"expected true or false, found "
                            f"{_what(trainable)}")
        prog = self.obj(self.key(doc, "program", "(top level)"), "program")
        regions = self.arr(self.key(prog, "regions", "program"), "program.regions")
        out = PirProgram(self.path, version, trainable,
                         [self.region(r, f"program.regions[{i}]", 0)
                          for i, r in enumerate(regions)])
        if not out.regions or not out.regions[0].blocks:
            raise self.fail("program.regions", "the program has no top-level block")
        return out

    def region(self, r: Any, where: str, depth: int) -> PirRegion:
        if depth > MAX_REGION_DEPTH:
            raise self.fail(where, f"regions nested more than {MAX_REGION_DEPTH} deep")
        r = self.obj(r, where)
        blocks = self.arr(self.key(r, "blocks", where), f"{where}.blocks")
        return PirRegion(str(r.get("#", "")),
                         [self.block(b, f"{where}.blocks[{i}]", depth)
                          for i, b in enumerate(blocks)], where)

    def block(self, b: Any, where: str, depth: int) -> PirBlock:
        b = self.obj(b, where)
        args = self.arr(b.get("args", []), f"{where}.args")
        ops = self.arr(self.key(b, "ops", where), f"{where}.ops")
        values = [self.value(a, f"{where}.args[{i}]", "#") for i, a in enumerate(args)]
        for i, v in enumerate(values):
            if v.id >= 0:
                raise self.fail(f"{where}.args[{i}]", f"a block argument has a negative id, "
                                f"found {v.id}")
        return PirBlock(str(b.get("#", "")), values,
                        [self.op(o, f"{where}.ops[{i}]", depth) for i, o in enumerate(ops)],
                        where)

    def value(self, v: Any, where: str, id_key: str = "%") -> PirValue:
        v = self.obj(v, where)
        vid = self.int_(self.key(v, id_key, where), f"{where}.{id_key}")
        return PirValue(vid, self.type_(self.key(v, "TT", where), f"{where}.TT"))

    def op(self, o: Any, where: str, depth: int) -> PirOp:
        o = self.obj(o, where)
        short = self.str_(self.key(o, "#", where), f"{where}.#")
        if short == PARAMETER:
            return self.parameter(o, where)
        dialect, dot, rest = short.partition(".")
        if not dot or not rest:
            raise self.fail(f"{where}.#", f"expected an op name like \"1.conv2d\", found "
                            f"{short!r}")
        if dialect in DIALECTS:
            name = f"{DIALECTS[dialect]}.{rest}"
        elif dialect in DIALECTS.values():
            name = short  # written uncompressed
        else:
            raise self.fail(f"{where}.#", f"unknown dialect id {dialect!r} in op name {short!r}"
                            f" (known: {', '.join(f'{k} {v}' for k, v in DIALECTS.items())})")
        operands = [self.int_(self.key(self.obj(x, f"{where}.I[{i}]"), "%", f"{where}.I[{i}]"),
                              f"{where}.I[{i}].%")
                    for i, x in enumerate(self.arr(o.get("I", []), f"{where}.I"))]
        results = [self.value(x, f"{where}.O[{i}]")
                   for i, x in enumerate(self.arr(o.get("O", []), f"{where}.O"))]
        for i, r in enumerate(results):
            if r.id <= 0:
                raise self.fail(f"{where}.O[{i}].%", f"a result id is positive, found {r.id}")
        attrs = self.named_attrs(o.get("A", []), f"{where}.A")
        result_attrs = self.named_attrs(o.get("OA", []), f"{where}.OA")
        regions = [self.region(r, f"{where}.regions[{i}]", depth + 1)
                   for i, r in enumerate(self.arr(o.get("regions", []), f"{where}.regions"))]
        return PirOp(name, operands, results, attrs, result_attrs, regions, where)

    def parameter(self, o: dict[str, Any], where: str) -> PirOp:
        """The compressed builtin.parameter: positional attributes (ir_serialize.cc)."""
        a = self.arr(self.key(o, "A", where), f"{where}.A")
        if len(a) != 4:
            raise self.fail(f"{where}.A", f"a parameter has 4 attributes (is_distributed, "
                            f"is_parameter, need_clip, name), found {len(a)}")
        flags = [self.int_(x, f"{where}.A[{i}]") for i, x in enumerate(a[:3])]
        name = self.str_(a[3], f"{where}.A[3]")
        if not name:
            raise self.fail(f"{where}.A[3]", "a parameter needs a name")
        oa = self.arr(o.get("OA", [1, 1, 1]), f"{where}.OA")
        if len(oa) != 3:
            raise self.fail(f"{where}.OA", f"a parameter has 3 result attributes (persistable,"
                            f" stop_gradient, trainable), found {len(oa)}")
        persistable, stop_gradient, trainable = (
            bool(self.int_(x, f"{where}.OA[{i}]")) for i, x in enumerate(oa))
        result = self.value(self.key(o, "O", where), f"{where}.O")
        return PirOp("builtin.parameter", [], [result],
                     {"is_distributed": bool(flags[0]), "is_parameter": bool(flags[1]),
                      "need_clip": bool(flags[2]), "parameter_name": name},
                     {"persistable": persistable, "stop_gradient": stop_gradient,
                      "trainable": trainable}, [], where)

    def named_attrs(self, v: Any, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, a in enumerate(self.arr(v, where)):
            w = f"{where}[{i}]"
            a = self.obj(a, w)
            name = self.str_(self.key(a, "N", w), f"{w}.N")
            if name in out:
                raise self.fail(f"{w}.N", f"attribute {name!r} given twice")
            out[name] = self.attr(self.key(a, "AT", w), f"{w}.AT")
        return out

    # --- types and attributes ----------------------------------------------------------

    def type_(self, t: Any, where: str, depth: int = 0) -> PirType:
        if depth > MAX_VALUE_DEPTH:
            raise self.fail(where, f"types nested more than {MAX_VALUE_DEPTH} deep")
        t = self.obj(t, where)
        tid = self.str_(self.key(t, "#", where), f"{where}.#")
        if tid == "NULL":
            return PirType("null", tid)
        _, _, kind = tid.partition(".")
        if kind in ELEMENT_TYPES:  # a scalar element type used as a type
            return PirType("other", tid, ELEMENT_TYPES[kind])
        if kind in ("t_dtensor", "t_dtensor_array"):
            d = self.arr(self.key(t, "D", where), f"{where}.D")
            if len(d) < 2:
                raise self.fail(f"{where}.D", f"a tensor type holds [dtype, dims, ...], found "
                                f"{len(d)} entries")
            elem = self.type_(d[0], f"{where}.D[0]", depth + 1)
            if elem.kind != "other" or elem.dtype is None:
                raise self.fail(f"{where}.D[0]", f"expected an element type like 0.t_f32, "
                                f"found {elem.type_id}")
            dims = tuple(self.int_(x, f"{where}.D[1][{i}]")
                         for i, x in enumerate(self.arr(d[1], f"{where}.D[1]")))
            dims = tuple(-1 if x < 0 else x for x in dims)  # Paddle writes -1, rarely -4 etc.
            return PirType("tensor" if kind == "t_dtensor" else "tensor_array", tid,
                           elem.dtype, dims)
        if kind == "t_vec":
            d = self.arr(self.key(t, "D", where), f"{where}.D")
            return PirType("vector", tid, elements=tuple(
                self.type_(x, f"{where}.D[{i}]", depth + 1) for i, x in enumerate(d)))
        return PirType("other", tid)

    def attr(self, a: Any, where: str, depth: int = 0) -> Any:
        if depth > MAX_VALUE_DEPTH:
            raise self.fail(where, f"attributes nested more than {MAX_VALUE_DEPTH} deep")
        a = self.obj(a, where)
        tid = self.str_(self.key(a, "#", where), f"{where}.#")
        if tid == "NULL":
            return None
        _, _, kind = tid.partition(".")
        if "VD" in a and kind in ("a_f32", "a_f64"):
            if a["VD"] not in _SPECIAL_FLOATS:
                raise self.fail(f"{where}.VD", f"expected NaN, INF or -INF, found "
                                f"{_what(a['VD'])}")
            return _SPECIAL_FLOATS[a["VD"]]
        d = self.key(a, "D", where)
        w = f"{where}.D"
        if kind == "a_bool":
            if not isinstance(d, bool):
                raise self.fail(w, f"expected true or false, found {_what(d)}")
            return d
        if kind in ("a_i32", "a_i64", "a_index"):
            return self.int_(d, w)
        if kind in ("a_f32", "a_f64"):
            if isinstance(d, bool) or not isinstance(d, (int, float)):
                raise self.fail(w, f"expected a number, found {_what(d)}")
            return float(d)
        if kind in ("a_str", "a_tensorname", "a_dtype", "a_layout"):
            return self.str_(d, w)
        if kind == "a_array":
            return [self.attr(x, f"{w}[{i}]", depth + 1) for i, x in enumerate(self.arr(d, w))]
        if kind == "a_intarray":
            return [self.int_(x, f"{w}[{i}]") for i, x in enumerate(self.arr(d, w))]
        if kind in ("a_c64", "a_c128"):
            d = self.arr(d, w)
            if len(d) != 2 or not all(isinstance(x, (int, float)) for x in d):
                raise self.fail(w, "a complex number is [real, imag]")
            return complex(d[0], d[1])
        if kind == "a_scalar":
            return self.scalar(d, w)
        if kind == "a_type":
            return self.type_(d, w, depth + 1)
        if kind == "a_place":
            return tuple(self.arr(d, w))
        return RawAttr(tid, d)

    def scalar(self, d: Any, where: str) -> Any:
        d = self.arr(d, where)
        if not d or not isinstance(d[0], str):
            raise self.fail(where, "a scalar is [dtype, value...]")
        dtype, values = d[0], d[1:]
        if dtype.startswith("complex"):
            if len(values) != 2:
                raise self.fail(where, "a complex scalar is [dtype, real, imag]")
            return complex(values[0], values[1])
        if len(values) != 1 or isinstance(values[0], (list, dict)) or values[0] is None:
            raise self.fail(where, f"a scalar is [dtype, value], found {d!r}")
        v = values[0]
        if dtype == "bool":
            return bool(v)
        if dtype.startswith(("int", "uint")):
            return int(v)
        return float(v)


def _what(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return f"the number {v}"
    if isinstance(v, str):
        return f"the string {v[:40]!r}"
    if isinstance(v, list):
        return f"an array of {len(v)}"
    return "an object"
