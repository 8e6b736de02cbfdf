"""`.pdmodel` <-> the `program` dialect (FORMAT.md §1 and §4).

`from_program_desc` and `to_program_desc` are exact inverses on what Paddle writes: a file read
into the dialect and written back is byte-identical. What makes that work:
- proto2 presence is mirrored by optional properties (an explicit `persistable: false` is kept);
- OpDesc slots and attrs are written sorted by name, as Paddle's std::map does (a file with
  another order is normalised); vars, ops, blocks and op_version_map keep file order;
- a VarType the dialect fields cannot express (READER, TUPLE, ...) is kept as raw bytes.
Not preserved: unknown fields from newer Paddle versions, values stored in an OpDesc.Attr field
that does not match its AttrType, an empty `Version` message (read as version 0), and unusual
encodings (packed repeated fields); Paddle writes none of these.

Decoding errors name the file and a byte offset. protobuf's DecodeError has no offset (and upb
does not even reject missing required fields), so on failure the wire format is walked here,
recursing into the known nested messages, to find the first bad byte.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError

from tostatic.dialects import program as P
from tostatic.ir.errors import ToStaticError
from tostatic.serialization import FormatError, atomic_write
from tostatic.serialization import framework_pb2 as pb

__all__ = ["from_program_desc", "to_program_desc", "load_program", "save_program",
           "ProgramDescError"]


class ProgramDescError(ToStaticError, ValueError):
    """A ProgramDesc that decodes but is not a valid program; `path` locates the message."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path or 'ProgramDesc'}: {reason}")


# VarType kind -> the VarType field holding its tensor description.
_DENSE_DESC = {"DENSE_TENSOR": "dense_tensor", "DENSE_TENSOR_ARRAY": "tensor_array"}
_PLAIN_DESC = {"SELECTED_ROWS": "selected_rows", "STRING": "string", "STRINGS": "strings",
               "VOCAB": "vocab", "SPARSE_COO": "sparse_coo", "SPARSE_CSR": "sparse_csr"}

# AttrType -> OpDesc.Attr field holding the value.
_ATTR_FIELD = {
    "INT": "i", "FLOAT": "f", "STRING": "s", "INTS": "ints", "FLOATS": "floats",
    "STRINGS": "strings", "BOOLEAN": "b", "BOOLEANS": "bools", "BLOCK": "block_idx",
    "LONG": "l", "BLOCKS": "blocks_idx", "LONGS": "longs", "FLOAT64S": "float64s",
    "VAR": "var_name", "VARS": "vars_name", "FLOAT64": "float64", "SCALAR": "scalar",
    "SCALARS": "scalars",
}
_VAR_ATTR_FIELD = {"INT": "i", "STRING": "s", "INTS": "ints"}


# ============================================================================ protobuf -> dialect


def _text(value: str | bytes, path: str) -> str:
    # upb hands back bytes for a proto2 string that is not valid UTF-8.
    if isinstance(value, bytes):
        raise ProgramDescError(path, f"expected UTF-8 text, found bytes {value[:40]!r}")
    return value


def _scalar_to_py(s: Any) -> bool | int | float | complex:
    kind = pb.Scalar.Type.Name(s.type)
    if kind == "BOOLEAN":
        return bool(s.b)
    if kind == "LONG":
        return int(s.i)
    if kind == "FLOAT64":
        return float(s.r)
    return complex(s.c.r, s.c.i)


def _attr_value(a: Any, t: str, path: str) -> Any:
    v = getattr(a, _ATTR_FIELD[t])
    if t in ("STRING", "VAR"):
        return _text(v, path)
    if t in ("STRINGS", "VARS"):
        return [_text(x, f"{path}.{_ATTR_FIELD[t]}[{i}]") for i, x in enumerate(v)]
    if t == "SCALAR":
        return P.ScalarAttr.from_python(_scalar_to_py(v))
    if t == "SCALARS":
        return [_scalar_to_py(x) for x in v]
    if t in ("INTS", "FLOATS", "BOOLEANS", "BLOCKS", "LONGS", "FLOAT64S"):
        return list(v)
    return v


def _names(entries: Iterable[Any], path: str, what: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, e in enumerate(entries):
        p = f"{path}.{what}[{k}]"
        slot = _text(e.parameter, p)
        if slot in out:
            raise ProgramDescError(p, f"duplicate {what[:-1]} slot {slot!r}")
        out[slot] = [_text(x, f"{p}.arguments[{j}]") for j, x in enumerate(e.arguments)]
    return out


def _op_from_pb(o: Any, path: str) -> P.OpOp:
    attrs: dict[str, Any] = {}
    for k, a in enumerate(o.attrs):
        p = f"{path}.attrs[{k}]"
        name = _text(a.name, p)
        t = P.ATTR_TYPES[a.type]
        value = P.to_attr(t, _attr_value(a, t, p))
        if name in attrs:
            # Paddle's live programs write reshape2's mkldnn_data_type and use_quantizer
            # twice, equal; a second, different value is an error
            if attrs[name] != value:
                raise ProgramDescError(p, f"duplicate attribute {name!r} with another value")
            continue
        attrs[name] = value
    return P.OpOp.build(
        _text(o.type, path), _names(o.inputs, path, "inputs"), _names(o.outputs, path, "outputs"),
        attrs, is_target=o.is_target if o.HasField("is_target") else None)


def _var_type_from_pb(vt: Any, path: str) -> dict[str, Any]:
    """Keyword arguments of VarOp.build describing a VarType (structured, or raw bytes)."""
    kind = P.VAR_TYPE_NAMES[vt.type]
    fields = [f.name for f, _ in vt.ListFields() if f.name != "type"]
    kw: dict[str, Any] = {"var_type": kind}
    if not fields:
        return kw
    field = _DENSE_DESC.get(kind) or _PLAIN_DESC.get(kind)
    if fields == [field]:
        sub = getattr(vt, field)
        tensor = sub.tensor if kind in _DENSE_DESC else sub
        kw["dtype"] = P.dtype_prop_name(tensor.data_type)
        kw["shape"] = list(tensor.dims)
        if kind in _DENSE_DESC and sub.HasField("legacy_lod_level"):
            kw["lod_level"] = sub.legacy_lod_level
        if _var_type_to_pb(kw).SerializeToString() == vt.SerializeToString():
            return kw
    return {"var_type": kind, "raw_type": vt.SerializeToString()}


def _var_from_pb(v: Any, path: str) -> P.VarOp:
    kw = _var_type_from_pb(v.type, f"{path}.type")
    for flag in ("persistable", "need_check_feed", "is_parameter", "stop_gradient"):
        if v.HasField(flag):
            kw[flag] = getattr(v, flag)
    if len(v.attrs):
        va: dict[str, Any] = {}
        for k, a in enumerate(v.attrs):
            p = f"{path}.attrs[{k}]"
            t = P.ATTR_TYPES[a.type]
            if t not in _VAR_ATTR_FIELD:
                raise ProgramDescError(p, f"expected a VarDesc attr of type INT, STRING or INTS, "
                                       f"found {t}")
            val = getattr(a, _VAR_ATTR_FIELD[t])
            va[_text(a.name, p)] = P.to_attr(t, list(val) if t == "INTS" else _text(val, p)
                                             if t == "STRING" else val)
        kw["var_attrs"] = va
    return P.VarOp.build(_text(v.name, path), **kw)


def from_program_desc(desc: Any) -> P.ProgramOp:
    """A framework_pb2.ProgramDesc (ours, or paddle's: same wire format) as a program.program."""
    if not isinstance(desc, pb.ProgramDesc):  # e.g. paddle's own framework_pb2 message
        other = pb.ProgramDesc()
        other.ParseFromString(desc.SerializeToString())
        desc = other
    n = len(desc.blocks)
    if n == 0:
        raise ProgramDescError("", "expected at least one block (a ProgramDesc always has "
                               "block 0), found none: not a ProgramDesc?")
    blocks = []
    for i, b in enumerate(desc.blocks):
        path = f"blocks[{i}]"
        if b.idx != i:
            raise ProgramDescError(path, f"expected block idx {i} (blocks are stored in index "
                                   f"order), found {b.idx}")
        if not (-1 <= b.parent_idx < n) or b.parent_idx == i:
            raise ProgramDescError(path, f"expected parent_idx in [-1, {n}) other than {i}, "
                                   f"found {b.parent_idx}")
        blocks.append(P.BlockOp.build(
            b.idx, b.parent_idx,
            [_var_from_pb(v, f"{path}.vars[{k}]") for k, v in enumerate(b.vars)],
            [_op_from_pb(o, f"{path}.ops[{k}]") for k, o in enumerate(b.ops)],
            forward_block_idx=b.forward_block_idx if b.HasField("forward_block_idx") else None))
    ovm = None
    if desc.HasField("op_version_map"):
        ovm = [(_text(p.op_name, f"op_version_map.pair[{k}]"), p.op_version.version)
               for k, p in enumerate(desc.op_version_map.pair)]
    return P.ProgramOp.build(
        blocks, version=desc.version.version if desc.HasField("version") else None,
        op_version_map=ovm)


# ============================================================================ dialect -> protobuf


def _scalar_to_pb(value: bool | int | float | complex, out: Any) -> None:
    if isinstance(value, bool):
        out.type, out.b = pb.Scalar.BOOLEAN, value
    elif isinstance(value, int):
        out.type, out.i = pb.Scalar.LONG, value
    elif isinstance(value, float):
        out.type, out.r = pb.Scalar.FLOAT64, value
    else:
        out.type = pb.Scalar.COMPLEX128
        out.c.r, out.c.i = value.real, value.imag


def _attr_to_pb(name: str, attr: Any, out: Any) -> None:
    t, value = P.from_attr(attr)
    out.name = name
    out.type = pb.AttrType.Value(t)
    field = _ATTR_FIELD[t]
    if t == "SCALAR":
        _scalar_to_pb(value, out.scalar)
    elif t == "SCALARS":
        for v in value:
            _scalar_to_pb(v, out.scalars.add())
    elif isinstance(value, list):
        getattr(out, field).extend(value)
    else:
        setattr(out, field, value)


def _var_type_to_pb(kw: dict[str, Any]) -> Any:
    vt = pb.VarType(type=P.VAR_TYPES[kw["var_type"]])
    if kw.get("dtype") is None:
        return vt
    kind = kw["var_type"]
    if kind in _DENSE_DESC:
        sub = getattr(vt, _DENSE_DESC[kind])
        tensor = sub.tensor
        if kw.get("lod_level") is not None:
            sub.legacy_lod_level = kw["lod_level"]
    elif kind in _PLAIN_DESC:
        tensor = getattr(vt, _PLAIN_DESC[kind])
    else:
        raise ValueError(f"variable of type {kind} has no tensor description, but a dtype is set")
    tensor.data_type = P.dtype_var_type(kw["dtype"])
    tensor.dims.extend(kw.get("shape") or ())
    return vt


def _var_to_pb(v: P.VarOp, out: Any) -> None:
    out.name = v.var_name
    if v.raw_type_attr is not None:
        out.type.ParseFromString(v.raw_type)
    else:
        out.type.CopyFrom(_var_type_to_pb({
            "var_type": v.var_type, "dtype": v.dtype_name,
            "shape": v.shape, "lod_level": v.lod_level}))
    for flag in ("persistable", "need_check_feed", "is_parameter", "stop_gradient"):
        a = getattr(v, f"{flag}_attr")
        if a is not None:
            setattr(out, flag, bool(a.value.data))
    if v.var_attrs_attr is not None:
        for name, attr in v.var_attrs_attr.data.items():
            t, value = P.from_attr(attr)
            a = out.attrs.add(name=name, type=pb.AttrType.Value(t))
            if t == "INTS":
                a.ints.extend(value)
            else:
                setattr(a, _VAR_ATTR_FIELD[t], value)


def _op_to_pb(o: P.OpOp, out: Any) -> None:
    out.type = o.op_type
    for slots, dest in ((o.inputs_attr, out.inputs), (o.outputs_attr, out.outputs)):
        for slot in sorted(slots.data):  # std::map order; str order == UTF-8 byte order
            dest.add(parameter=slot, arguments=[s.data for s in slots.data[slot].data])
    for name in sorted(o.attrs_attr.data):
        _attr_to_pb(name, o.attrs_attr.data[name], out.attrs.add())
    if o.is_target_attr is not None:
        out.is_target = bool(o.is_target_attr.value.data)


def to_program_desc(program: P.ProgramOp) -> Any:
    """The framework_pb2.ProgramDesc of a program.program."""
    desc = pb.ProgramDesc()
    for block in program.blocks:
        b = desc.blocks.add(idx=block.idx, parent_idx=block.parent_idx)
        if block.forward_block_idx is not None:
            b.forward_block_idx = block.forward_block_idx
        for v in block.vars:
            _var_to_pb(v, b.vars.add())
        for o in block.ops:
            _op_to_pb(o, b.ops.add())
    if program.version is not None:
        desc.version.version = program.version
    ovm = program.op_version_map
    if ovm is not None:
        desc.op_version_map.SetInParent()
        for name, version in ovm:
            desc.op_version_map.pair.add(op_name=name).op_version.version = version
    return desc


# ============================================================================ files


def save_program(path: str | os.PathLike[str], program: P.ProgramOp) -> None:
    """Write a program as a .pdmodel, atomically."""
    data = to_program_desc(program).SerializeToString()
    with atomic_write(path) as f:
        f.write(data)


def load_program(path: str | os.PathLike[str]) -> P.ProgramOp:
    """Read a .pdmodel; errors name the file and the byte offset of the problem."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        return parse_program_bytes(f.read(), path)


def parse_program_bytes(data: bytes, path: str = "<bytes>") -> P.ProgramOp:
    """A ProgramDesc from bytes; `path` names the source in errors."""
    if not data:
        raise FormatError(path, 0, "expected a ProgramDesc protobuf, found an empty file")
    desc = pb.ProgramDesc()
    try:
        desc.ParseFromString(data)
        decoded = True
    except DecodeError as e:
        decoded, why = False, str(e)
    if not decoded:
        err = _find_wire_error(data)
        hint = _hint(data)
        if err is None:
            raise FormatError(path, None, f"expected a ProgramDesc protobuf; protobuf could not "
                              f"decode it ({why}) and the failing offset was not found{hint}")
        raise FormatError(path, err[0], err[1] + hint)
    missing = desc.FindInitializationErrors()
    if missing:
        offset, reason = _explain_missing(data, missing[0])
        raise FormatError(path, offset, reason + _hint(data))
    try:
        return from_program_desc(desc)
    except ProgramDescError as e:
        offset = _locate(data, e.path)[0] if e.path else 0
        raise FormatError(path, offset, f"{e.path or 'ProgramDesc'}: {e.reason}{_hint(data)}") from None


def _hint(data: bytes) -> str:
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        return " (this looks like JSON, e.g. a PIR .json program, not a legacy .pdmodel)"
    if data[:2] == b"\x80\x02" or data[:4] == b"\x00\x00\x00\x00":
        return " (this looks like a .pdiparams.info pickle or a .pdiparams file)"
    return ""


# ============================================================================ wire-format walker


class _WireError(Exception):
    def __init__(self, offset: int, reason: str):
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


def _region(start: int, end: int, total: int, where: str) -> str:
    return "the file" if (start == 0 and end == total) else f"{where} (bytes {start}..{end})"


def _varint(data: bytes, pos: int, end: int, what: str, region: str) -> tuple[int, int]:
    start, result, shift = pos, 0, 0
    while True:
        if pos >= end:
            raise _WireError(start, f"expected a varint ({what}), found the end of {region} "
                             f"after {pos - start} byte(s); truncated?")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError(start, f"expected a varint of at most 10 bytes ({what}), found a "
                             "longer one")


def _is_repeated(field: FieldDescriptor) -> bool:
    # `label` is gone in protobuf 7; `is_repeated` is missing from old releases.
    flag = getattr(field, "is_repeated", None)
    return flag if isinstance(flag, bool) else field.label == FieldDescriptor.LABEL_REPEATED


_MAX_DEPTH = 100  # protobuf's own recursion limit


def _walk(data: bytes, start: int, end: int, desc: Descriptor | None, where: str,
          group: int | None = None, depth: int = 0) -> int:
    """Check one message's fields; recurse into known sub-messages. Returns the end position."""
    if depth > _MAX_DEPTH:
        raise _WireError(start, f"expected at most {_MAX_DEPTH} levels of nested messages or "
                         "groups, found deeper nesting here")
    region = _region(start, end, len(data), where)
    pos = start
    counts: dict[int, int] = {}
    while pos < end:
        tag_off = pos
        tag, pos = _varint(data, pos, end, f"field tag in {where}", region)
        num, wt = tag >> 3, tag & 7
        if num == 0:
            raise _WireError(tag_off, f"expected a field tag in {where}, found {tag:#x} "
                             "(field number 0 is invalid)")
        field = desc.fields_by_number.get(num) if desc is not None else None
        name = f"{where}.{field.name}" if field is not None else f"{where} field {num}"
        if field is not None and _is_repeated(field):
            name += f"[{counts.get(num, 0)}]"
            counts[num] = counts.get(num, 0) + 1
        if wt == 0:
            _, pos = _varint(data, pos, end, f"value of {name}", region)
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            if end - pos < n:
                raise _WireError(tag_off, f"expected {n} bytes for {name}, found only "
                                 f"{end - pos} before the end of {region}; truncated?")
            pos += n
        elif wt == 2:
            n, pos = _varint(data, pos, end, f"length of {name}", region)
            if n > end - pos:
                raise _WireError(tag_off, f"{name} (field {num}) declares {n} bytes, but only "
                                 f"{end - pos} remain in {region}; truncated?")
            if field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
                _walk(data, pos, pos + n, field.message_type, name, depth=depth + 1)
            elif field is not None and _is_repeated(field) and \
                    field.type not in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
                _walk_packed(data, pos, pos + n, field, name)
            pos += n
        elif wt == 3:
            pos = _walk(data, pos, end, None, f"{name} (group)", group=num, depth=depth + 1)
        elif wt == 4:
            if group == num:
                return pos
            raise _WireError(tag_off, f"expected a field tag in {where}, found an end-group tag "
                             f"for field {num} with no matching start-group")
        else:
            raise _WireError(tag_off, f"expected wire type 0, 1, 2, 3, 4 or 5 in the tag of "
                             f"{name}, found {wt}")
    if group is not None:
        raise _WireError(start, f"expected an end-group tag for {where}, found the end of "
                         f"{region}; truncated?")
    return pos


def _walk_packed(data: bytes, start: int, end: int, field: FieldDescriptor, name: str) -> None:
    size = {FieldDescriptor.TYPE_DOUBLE: 8, FieldDescriptor.TYPE_FLOAT: 4,
            FieldDescriptor.TYPE_FIXED64: 8, FieldDescriptor.TYPE_FIXED32: 4,
            FieldDescriptor.TYPE_SFIXED64: 8, FieldDescriptor.TYPE_SFIXED32: 4}.get(field.type)
    if size is not None:
        if (end - start) % size:
            raise _WireError(start, f"expected packed {name} to be a multiple of {size} bytes, "
                             f"found {end - start}")
        return
    pos = start
    while pos < end:
        _, pos = _varint(data, pos, end, f"packed element of {name}", f"{name} (bytes {start}..{end})")


def _find_wire_error(data: bytes) -> tuple[int, str] | None:
    try:
        _walk(data, 0, len(data), pb.ProgramDesc.DESCRIPTOR, "ProgramDesc")
    except _WireError as e:
        return e.offset, e.reason
    return None


_STEP = re.compile(r"(\w+)(?:\[(\d+)\])?")


def _fields(data: bytes, start: int, end: int) -> Iterable[tuple[int, int, int, int, int]]:
    """(tag offset, field number, wire type, value start, value end) of well-formed fields."""
    pos = start
    while pos < end:
        tag_off = pos
        tag, pos = _varint(data, pos, end, "tag", "message")
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            vstart = pos
            _, pos = _varint(data, pos, end, "value", "message")
            yield tag_off, num, wt, vstart, pos
        elif wt == 2:
            n, pos = _varint(data, pos, end, "length", "message")
            yield tag_off, num, wt, pos, pos + n
            pos += n
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            yield tag_off, num, wt, pos, pos + n
            pos += n
        else:  # groups: only reachable in unknown fields, which paths never name
            pos = _walk(data, pos, end, None, "group", group=num) if wt == 3 else end


def _locate(data: bytes, path: str) -> tuple[int, int, int, Descriptor]:
    """(tag offset, content start, content end, descriptor) of the message a path names,
    e.g. "blocks[0].ops[3]"; the empty path is the whole ProgramDesc."""
    desc: Descriptor = pb.ProgramDesc.DESCRIPTOR
    tag_off, start, end = 0, 0, len(data)
    for m in _STEP.finditer(path):
        field = desc.fields_by_name[m.group(1)]
        want = int(m.group(2) or 0)
        seen = -1
        for t, num, wt, vs, ve in _fields(data, start, end):
            if num == field.number and wt == 2:
                seen += 1
                if seen == want:
                    tag_off, start, end = t, vs, ve
                    break
        else:
            raise LookupError(path)
        if field.message_type is None:
            break
        desc = field.message_type
    return tag_off, start, end, desc


def _explain_missing(data: bytes, missing: str) -> tuple[int | None, str]:
    """Offset and text for one FindInitializationErrors() entry like 'blocks[0].vars[1].name'."""
    parent, _, field_name = missing.rpartition(".")
    try:
        tag_off, start, end, desc = _locate(data, parent)
    except (LookupError, _WireError):
        return None, f"{missing}: required field is missing"
    where = f"ProgramDesc.{parent}" if parent else "ProgramDesc"
    field = desc.fields_by_name[field_name]
    if field.enum_type is not None:
        for t, num, wt, vs, _ in _fields(data, start, end):
            if num == field.number and wt == 0:
                value = _varint(data, vs, end, "", "")[0]
                names = ", ".join(f"{v.name}={v.number}" for v in field.enum_type.values)
                return t, (f"{where}.{field_name}: expected a {field.enum_type.name} value "
                           f"({names}), found {value}")
    return tag_off, (f"{where} (starting at this offset) is missing required field "
                     f"'{field_name}' (field {field.number}) of {desc.name}")
