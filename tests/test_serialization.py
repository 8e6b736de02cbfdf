"""File formats: .pdmodel (ProgramDesc), .pdiparams (save_combine), .pdiparams.info (pickle).

Byte-exact round trips on the Paddle 3.3.1 fixtures, errors that name file and offset on
truncated/corrupted files, atomic writes, and (marked `interop`) real Paddle reading the same
parameter files and a .pdmodel we wrote.
"""
from __future__ import annotations

import copyreg
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tostatic.serialization import FormatError
from tostatic.serialization import framework_pb2 as pb
from tostatic.serialization.pdiparams import BFLOAT16_RAW, iter_records, load_combine, save_combine
from tostatic.serialization.pdiparams_info import load_info, save_info
from tostatic.serialization.program_desc import (
    from_program_desc,
    load_program,
    save_program,
    to_program_desc,
)

from conftest import FIXTURE_NAMES as FIXTURES
from conftest import FIXTURES as ROOT
from conftest import FIXTURES_WITH_INFO as WITH_INFO
from conftest import FIXTURES_WITH_PARAMS as WITH_PARAMS


def meta(name: str) -> dict:
    return json.loads((ROOT / name / "meta.json").read_text())


# ============================================================================ .pdmodel


@pytest.mark.parametrize("name", FIXTURES)
def test_pdmodel_roundtrip_is_byte_identical(name, tmp_path):
    path = ROOT / name / "model.pdmodel"
    data = path.read_bytes()
    program = load_program(path)
    assert to_program_desc(program).SerializeToString() == data
    save_program(tmp_path / "m.pdmodel", program)
    assert (tmp_path / "m.pdmodel").read_bytes() == data
    m = meta(name)
    assert len(program.blocks) == m["num_blocks"]
    assert sum(len(b.ops) for b in program.blocks) == m["num_ops"]
    assert sorted({o.op_type for b in program.blocks for o in b.ops}) == m["op_types"]


@pytest.mark.parametrize("name", FIXTURES)
def test_pdmodel_feeds_and_fetches_match_meta(name):
    program = load_program(ROOT / name / "model.pdmodel")
    block = program.blocks[0]
    feeds = sorted((o for o in block.ops if o.op_type == "feed"), key=lambda o: o.attr("col"))
    fetches = sorted((o for o in block.ops if o.op_type == "fetch"), key=lambda o: o.attr("col"))
    m = meta(name)
    for ops, slot, want in ((feeds, "Out", m["feeds"]), (fetches, "X", m["fetches"])):
        got = []
        for o in ops:
            (var_name,) = o.output(slot) if slot == "Out" else o.input(slot)
            v = block.var(var_name)
            got.append({"name": var_name, "dtype": v.dtype.name, "shape": list(v.shape)})
        assert got == want
    persistable = sorted(v.var_name for v in block.vars if v.persistable
                         and v.var_type not in ("FEED_MINIBATCH", "FETCH_LIST"))
    assert persistable == m["persistables"]


def _top_level_boundaries(data: bytes) -> set[int]:
    """Offsets where a top-level field ends (cutting there leaves a well-formed message)."""
    out, pos = {0}, 0
    while pos < len(data):
        pos += 1  # every ProgramDesc tag is one byte
        n = shift = 0
        while True:
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        pos += n
        out.add(pos)
    return out


@pytest.mark.parametrize("name", ["simple_net", "control_flow"])
def test_truncated_pdmodel_names_file_and_offset(name, tmp_path):
    data = (ROOT / name / "model.pdmodel").read_bytes()
    bad = tmp_path / "model.pdmodel"
    boundaries = _top_level_boundaries(data)
    cuts = [c for c in (1, 2, 3, 17, 100, len(data) // 3, len(data) // 2, len(data) - 1)
            if c not in boundaries]
    assert len(cuts) >= 6
    for cut in cuts:
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError) as e:
            load_program(bad)
        assert e.value.path == str(bad) and str(bad) in str(e.value)
        assert isinstance(e.value.offset, int) and 0 <= e.value.offset <= cut
        assert f"byte offset {e.value.offset}" in str(e.value)
        assert "truncated" in str(e.value)


def test_pdmodel_cut_in_op_version_map_points_at_that_field(tmp_path):
    data = (ROOT / "simple_net" / "model.pdmodel").read_bytes()
    bad = tmp_path / "m.pdmodel"
    bad.write_bytes(data[:-1])
    with pytest.raises(FormatError) as e:
        load_program(bad)
    start = max(_top_level_boundaries(data) - {len(data)})
    assert e.value.offset == start and "op_version_map" in str(e.value)


def _corrupt(tmp_path, data: bytes) -> FormatError:
    bad = tmp_path / "bad.pdmodel"
    bad.write_bytes(data)
    with pytest.raises(FormatError) as e:
        load_program(bad)
    assert str(bad) in str(e.value)
    return e.value


def test_corrupted_pdmodel_errors(tmp_path):
    data = (ROOT / "simple_net" / "model.pdmodel").read_bytes()
    e = _corrupt(tmp_path, b"\x00" + data[1:])
    assert e.offset == 0 and "field number 0" in e.reason
    e = _corrupt(tmp_path, b"\x0f" + data[1:])
    assert e.offset == 0 and "wire type" in e.reason and "found 7" in e.reason
    e = _corrupt(tmp_path, data[:1] + b"\xff" * 11 + data[12:])
    assert e.offset == 1 and "varint" in e.reason
    # An AttrType enum value Paddle does not have: upb keeps it as an unknown field and
    # reports nothing, the required `type` is then missing; we name the byte.
    i = data.index(b"op_role\x10") + len(b"op_role")
    e = _corrupt(tmp_path, data[:i + 1] + b"\x63" + data[i + 2:])
    assert e.offset == i and "found 99" in e.reason and "AttrType" in e.reason
    # A var name that is not UTF-8.
    i = data.index(b"linear_0.b_0")
    e = _corrupt(tmp_path, data[:i] + b"\xff" + data[i + 1:])
    assert "UTF-8" in e.reason and 0 < e.offset < i
    # A required field missing (the var name), built with our own pb.
    d = pb.ProgramDesc.FromString(data)
    d.blocks[0].vars[2].ClearField("name")
    e = _corrupt(tmp_path, d.SerializePartialToString())
    assert "missing required field 'name'" in e.reason and "vars[2]" in e.reason
    assert e.offset > 0
    # Decodes, but not as a program.
    d = pb.ProgramDesc.FromString(data)
    d.blocks[0].idx = 5
    e = _corrupt(tmp_path, d.SerializeToString())
    assert e.offset == 0 and "idx" in e.reason
    d = pb.ProgramDesc.FromString(data)
    d.blocks[0].ops[1].inputs.add(parameter="X")
    e = _corrupt(tmp_path, d.SerializeToString())
    assert "duplicate input slot 'X'" in e.reason and e.offset > 0


def test_not_a_program_desc(tmp_path):
    e = _corrupt(tmp_path, b"")
    assert e.offset == 0 and "empty file" in e.reason
    e = _corrupt(tmp_path, b"\x22\x02\x08\x01")  # a lone Version message: no blocks
    assert "no" in e.reason and "block" in e.reason
    e = _corrupt(tmp_path, (ROOT / "mlp" / "model.pdiparams").read_bytes())
    assert e.offset == 0 and ".pdiparams" in e.reason
    e = _corrupt(tmp_path, b'{"base_code": {"magic": "pir"}, "program": {}}')
    assert "JSON" in e.reason
    e = _corrupt(tmp_path, b"\x0b" * 5000)  # start-group tags nested past protobuf's limit
    assert e.offset == 101 and "nest" in e.reason


def test_save_program_failure_leaves_no_file(tmp_path):
    from tostatic.dialects import program as P
    from tostatic.dialects import program_parser as PT

    bad = P.ProgramOp.build([P.BlockOp.build(0, -1, [P.VarOp.build(
        "feed", var_type="FEED_MINIBATCH", dtype="float32")], [])])
    target = tmp_path / "m.pdmodel"
    target.write_bytes(b"previous")
    with pytest.raises(ValueError):
        save_program(target, bad)
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == ["m.pdmodel"]


def test_from_program_desc_rejects_empty_desc():
    with pytest.raises(ValueError, match="at least one block"):
        from_program_desc(pb.ProgramDesc())


def test_framework_proto_matches_paddle_numbers():
    """Spot-check field numbers/defaults of FORMAT.md §1 (full check: interop test)."""
    f = pb.OpDesc.Attr.DESCRIPTOR.fields_by_name
    assert (f["b"].number, f["scalars"].number, f["float64"].number) == (10, 21, 19)
    assert pb.BlockDesc.DESCRIPTOR.fields_by_name["forward_block_idx"].default_value == -1
    assert pb.VarType.FP8_E4M3FN == 32 and pb.VarType.DENSE_TENSOR == 7
    assert pb.DESCRIPTOR.package == "tostatic.framework.proto"


# ============================================================================ .pdiparams


@pytest.mark.parametrize("name", WITH_PARAMS)
def test_pdiparams_roundtrip_is_byte_identical(name, tmp_path):
    path = ROOT / name / "model.pdiparams"
    names = meta(name)["persistables"]
    arrays = load_combine(path, names)
    assert list(arrays) == names
    save_combine(tmp_path / "p.pdiparams", arrays)
    assert (tmp_path / "p.pdiparams").read_bytes() == path.read_bytes()
    # Shapes and dtypes agree with the VarDescs of the program.
    block = load_program(ROOT / name / "model.pdmodel").blocks[0]
    for n, a in arrays.items():
        v = block.var(n)
        assert a.shape == v.shape and a.dtype == v.dtype.numpy
        assert a.flags.writeable and a.flags.c_contiguous and a.flags.aligned
    # iter_records sees the same arrays, at increasing offsets starting from 0.
    recs = list(iter_records(path))
    assert [r[0] for r in recs][0] == 0
    assert all(a < b for (a, _), (b, _) in zip(recs, recs[1:]))
    for (_, a), n in zip(recs, names, strict=True):
        np.testing.assert_array_equal(a, arrays[n])


def test_pdiparams_record_layout_by_hand():
    """FORMAT.md §2's observed bytes for simple_net's fp32[3] bias, decoded by hand."""
    data = (ROOT / "simple_net" / "model.pdiparams").read_bytes()
    head = bytes.fromhex("00000000" "0000000000000000" "00000000" "04000000" "08051003")
    assert data.startswith(head)
    bias = np.frombuffer(data[len(head):len(head) + 12], "<f4")
    weight_head = bytes.fromhex("00000000" "0000000000000000" "00000000" "06000000" "080510" "0a" "1003")
    assert data[len(head) + 12:].startswith(weight_head)
    weight = np.frombuffer(data[len(head) + 12 + len(weight_head):], "<f4").reshape(10, 3)
    got = load_combine(ROOT / "simple_net" / "model.pdiparams", ["linear_0.b_0", "linear_0.w_0"])
    np.testing.assert_array_equal(got["linear_0.b_0"], bias)
    np.testing.assert_array_equal(got["linear_0.w_0"], weight)
    # The same numbers as the static_fc fixture's file (both seeded identically).
    assert (ROOT / "static_fc" / "model.pdiparams").read_bytes() == data


def test_pdiparams_all_dtypes_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "a_f32": rng.standard_normal((2, 3)).astype(np.float32),
        "b_f64": rng.standard_normal(4),
        "c_f16": rng.standard_normal(5).astype(np.float16),
        "d_i64": np.arange(-3, 3, dtype=np.int64).reshape(2, 3),
        "e_i32": np.array([-(2**31), 2**31 - 1], np.int32),
        "f_i16": np.array([-7, 7], np.int16),
        "g_i8": np.array([-128, 127], np.int8),
        "h_u8": np.array([0, 255], np.uint8),
        "i_bool": np.array([[True, False]]),
        "j_c64": np.array([1 + 2j], np.complex64),
        "k_c128": np.array([3 - 4j]),
        "l_scalar": np.float32(2.5),
        "m_empty": np.zeros((0, 4), np.float32),
        "n_bf16": np.array([0x3F80, 0xC000], np.uint16).view(BFLOAT16_RAW),
        "o_noncontig": np.arange(12, dtype=np.float32).reshape(3, 4).T,
        "p_bigendian": np.array([1.5, 2.5], ">f8"),
    }
    path = tmp_path / "all.pdiparams"
    save_combine(path, arrays)
    back = load_combine(path, sorted(arrays))
    for k, a in arrays.items():
        b = back[k]
        assert b.shape == np.shape(a)
        if k == "n_bf16":
            assert b.dtype == np.uint16 and b.dtype.metadata == {"paddle_dtype": "bfloat16"}
        else:
            assert b.dtype == np.asarray(a).dtype.newbyteorder("=")
        np.testing.assert_array_equal(b, a)
    save_combine(tmp_path / "again.pdiparams", back)
    assert (tmp_path / "again.pdiparams").read_bytes() == path.read_bytes()


def test_pdiparams_bf16_record_has_dtype_22(tmp_path):
    save_combine(tmp_path / "b.pdiparams", {"w": np.zeros(2, np.uint16).view(BFLOAT16_RAW)})
    data = (tmp_path / "b.pdiparams").read_bytes()
    assert data[20:24] == b"\x08\x16\x10\x02"  # TensorDesc{data_type: BF16=22, dims: [2]}


def test_save_combine_rejects_unsupported(tmp_path):
    with pytest.raises(TypeError, match="'w'.*uint16"):
        save_combine(tmp_path / "x.pdiparams", {"w": np.zeros(2, np.uint16)})
    with pytest.raises(TypeError, match="'w'"):
        save_combine(tmp_path / "x.pdiparams", {"w": [1.0, 2.0]})
    assert not (tmp_path / "x.pdiparams").exists()
    assert os.listdir(tmp_path) == []


def test_empty_mapping_writes_empty_file(tmp_path):
    save_combine(tmp_path / "e.pdiparams", {})
    assert (tmp_path / "e.pdiparams").read_bytes() == b""
    assert load_combine(tmp_path / "e.pdiparams", []) == {}
    assert list(iter_records(tmp_path / "e.pdiparams")) == []


class _Exploding(dict):
    """A mapping whose third value raises when the writer reaches it."""

    def __getitem__(self, key):
        if key == "c":
            raise RuntimeError("disk on fire")
        return super().__getitem__(key)


def test_save_never_leaves_a_partial_file(tmp_path):
    arrays = _Exploding(a=np.ones(1000, np.float32), b=np.ones(3), c=np.ones(2), d=np.ones(2))
    target = tmp_path / "p.pdiparams"
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_combine(target, arrays)
    assert os.listdir(tmp_path) == []  # no target, no temp file
    target.write_bytes(b"old contents")
    with pytest.raises(RuntimeError):
        save_combine(target, arrays)
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["p.pdiparams"]


def test_saved_file_gets_normal_permissions(tmp_path):
    save_combine(tmp_path / "p.pdiparams", {"w": np.ones(2, np.float32)})
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "p.pdiparams").stat().st_mode & 0o777 == 0o666 & ~umask


def _record_offsets(path: Path) -> list[int]:
    return [off for off, _ in iter_records(path)] + [path.stat().st_size]


@pytest.mark.parametrize("name", ["simple_net", "small_cnn"])
def test_truncated_pdiparams_names_file_record_and_offset(name, tmp_path):
    src = ROOT / name / "model.pdiparams"
    data = src.read_bytes()
    names = meta(name)["persistables"]
    starts = _record_offsets(src)
    bad = tmp_path / "p.pdiparams"
    for cut in sorted({1, 5, 13, 17, 21, 23, starts[1] + 2, starts[1] + 30, len(data) // 2,
                       len(data) - 1}):
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError) as e:
            load_combine(bad, names)
        err = e.value
        index = max(i for i, s in enumerate(starts) if s <= cut)
        index = min(index, len(names) - 1)
        assert err.path == str(bad) and str(bad) in str(err)
        assert f"record {index} ({names[index]!r})" in str(err), (cut, str(err))
        assert starts[index] <= err.offset <= cut
        assert f"byte offset {err.offset}" in str(err)
        with pytest.raises(FormatError, match=f"record {index}"):
            list(iter_records(bad))


def test_truncated_at_record_boundary(tmp_path):
    src = ROOT / "mlp" / "model.pdiparams"
    names = meta("mlp")["persistables"]
    starts = _record_offsets(src)
    bad = tmp_path / "p.pdiparams"
    bad.write_bytes(src.read_bytes()[:starts[2]])
    with pytest.raises(FormatError) as e:
        load_combine(bad, names)
    assert e.value.offset == starts[2] and "record 2 ('linear_1.b_0')" in str(e.value)
    assert "ends after 2" in str(e.value)
    assert len(list(iter_records(bad))) == 2  # without names, a whole-record cut is invisible


def test_corrupted_pdiparams(tmp_path):
    src = ROOT / "simple_net" / "model.pdiparams"
    data = bytearray(src.read_bytes())
    names = meta("simple_net")["persistables"]
    second = _record_offsets(src)[1]
    bad = tmp_path / "p.pdiparams"

    def check(mutated: bytes, offset: int, *fragments: str) -> None:
        bad.write_bytes(bytes(mutated))
        with pytest.raises(FormatError) as e:
            load_combine(bad, names)
        assert e.value.offset == offset, str(e.value)
        for frag in fragments:
            assert frag in str(e.value)

    d = data.copy(); d[second] = 1
    check(d, second, "record 1 ('linear_0.w_0')", "DenseTensor version 0, found 1")
    d = data.copy(); d[4] = 2
    check(d, 4, "record 0", "lod_level 0", "found 2")
    d = data.copy(); d[12] = 9
    check(d, 12, "tensor version 0, found 9")
    d = data.copy(); d[16:20] = (-4).to_bytes(4, "little", signed=True)
    check(d, 16, "TensorDesc length", "found -4")
    d = data.copy(); d[16:20] = (10**6).to_bytes(4, "little")
    check(d, 16, "TensorDesc length", "found 1000000")
    d = data.copy(); d[21] = 36  # UINT16: a Paddle dtype tostatic has no numpy type for
    check(d, 20, "unsupported data type UINT16")
    d = data.copy(); d[20] = 0xFF  # not a protobuf tag
    check(d, 20, "TensorDesc")
    d = data.copy(); d[23] = 100  # dims [100]: more data than the file holds
    check(d, 24, "expected 400 data bytes", "found only")
    check(bytes(data) + b"\x00", len(data), "after record 1 ('linear_0.w_0')", "1 more bytes")
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="after record 0"):
        load_combine(bad, names[:1])
    with pytest.raises(FormatError, match="no records requested"):
        load_combine(bad, [])
    with pytest.raises(ValueError, match="duplicate"):
        load_combine(bad, [names[0], names[0]])


# ============================================================================ .pdiparams.info


@pytest.mark.parametrize("name", WITH_INFO)
def test_save_info_reproduces_paddle_bytes(name, tmp_path):
    path = ROOT / name / "model.pdiparams.info"
    info = load_info(path)
    assert info == pickle.loads(path.read_bytes())
    assert list(info) == meta(name)["persistables"]
    # Rebuild with fresh, non-shared key strings: pickle memoizes by identity, so a naive
    # pickle.dumps of this dict would differ from Paddle's bytes; save_info must not.
    fresh = {"".join(list(k)): {"".join(list(kk)): v for kk, v in e.items()} for k, e in info.items()}
    assert pickle.dumps(fresh, protocol=2) != path.read_bytes()
    save_info(tmp_path / "i.info", fresh)
    assert (tmp_path / "i.info").read_bytes() == path.read_bytes()


def test_save_info_buffer_without_trainable(tmp_path):
    info = {"w": {"structured_name": "zbuf", "stop_gradient": np.bool_(True)},
            "v": {"stop_gradient": False, "trainable": True}}
    save_info(tmp_path / "i.info", info)
    assert load_info(tmp_path / "i.info") == {
        "w": {"structured_name": "zbuf", "stop_gradient": True},
        "v": {"stop_gradient": False, "trainable": True}}
    with pytest.raises(ValueError, match="unknown keys"):
        save_info(tmp_path / "j.info", {"w": {"stop_gradient": True, "oops": 1}})
    with pytest.raises(TypeError):
        save_info(tmp_path / "j.info", {"w": {"stop_gradient": "yes"}})
    assert not (tmp_path / "j.info").exists()


class _Payload:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_malicious_info_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.pdiparams.info"
    bad.write_bytes(pickle.dumps({"w": {"structured_name": _Payload(str(marker))}}, protocol=2))
    with pytest.raises(FormatError) as e:
        load_info(bad)
    assert str(bad) in str(e.value) and "GLOBAL" in str(e.value)
    assert isinstance(e.value.offset, int)
    assert not marker.exists()
    # The extension registry route, which CPython's C unpickler resolves without find_class.
    copyreg.add_extension("os", "mkdir", 0x7FFFFF01)
    try:
        bad.write_bytes(b"\x80\x02\x84\x01\xff\xff\x7fX" + len(str(marker)).to_bytes(4, "little")
                        + str(marker).encode() + b"\x85R.")
        with pytest.raises(FormatError, match="EXT4"):
            load_info(bad)
        assert not marker.exists()
    finally:
        copyreg.remove_extension("os", "mkdir", 0x7FFFFF01)


def test_truncated_or_wrong_info(tmp_path):
    data = (ROOT / "mlp" / "model.pdiparams.info").read_bytes()
    bad = tmp_path / "model.pdiparams.info"
    for cut in (0, 1, 10, 100, len(data) - 1):
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError) as e:
            load_info(bad)
        assert str(bad) in str(e.value) and e.value.offset is not None and e.value.offset <= cut
    bad.write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(FormatError, match="expected a dict"):
        load_info(bad)


# ============================================================================ real Paddle

_INTEROP = textwrap.dedent(r'''
    import json, os, sys, tempfile
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    root, out = sys.argv[2], sys.argv[3]
    from tostatic.dialects import program as P
    from tostatic.dialects import program_parser as PT
    from tostatic.serialization.program_desc import load_program, save_program, from_program_desc
    from tostatic.serialization.pdiparams import load_combine, save_combine
    from tostatic.serialization import framework_pb2 as ours
    import paddle
    import paddle.inference as pi
    from paddle.base.proto import framework_pb2 as theirs
    from google.protobuf import descriptor_pb2

    def fdp(mod):
        d = descriptor_pb2.FileDescriptorProto()
        mod.DESCRIPTOR.CopyToProto(d)
        d.ClearField("name"); d.ClearField("package")
        return str(d).replace("tostatic.framework.proto", "paddle.framework.proto")

    result = {"same_descriptor": fdp(ours) == fdp(theirs), "fixtures": {}}
    tmp = tempfile.mkdtemp()

    def read_with_paddle(params, names, dtypes, shapes):
        """Run a program we wrote: assign every persistable to an output and fetch it."""
        vars_, ops = [], []
        for i, n in enumerate(names):
            vars_ += [P.VarOp.build(n, dtype=dtypes[i], shape=shapes[i], persistable=True),
                      P.VarOp.build(n + ".copy", dtype=dtypes[i], shape=shapes[i])]
            ops.append(P.OpOp.build("assign", {"X": [n]}, {"Out": [n + ".copy"]}, {}))
        vars_.append(P.VarOp.build("fetch", var_type="FETCH_LIST", persistable=True))
        for i, n in enumerate(names):
            ops.append(P.OpOp.build("fetch", {"X": [n + ".copy"]}, {"Out": ["fetch"]},
                                    {"col": ("INT", i)}))
        prog = P.ProgramOp.build([P.BlockOp.build(0, -1, vars_, ops)], version=3003001)
        model = os.path.join(tmp, "m.pdmodel")
        save_program(model, prog)
        cfg = pi.Config(model, params)
        cfg.disable_gpu(); cfg.disable_glog_info()
        pred = pi.create_predictor(cfg)
        pred.run()
        return [pred.get_output_handle(o).copy_to_cpu() for o in pred.get_output_names()]

    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        data = open(os.path.join(d, "model.pdmodel"), "rb").read()
        pdesc = theirs.ProgramDesc.FromString(data)
        r = {"paddle_pb_roundtrip":
             ours.ProgramDesc.FromString(data).SerializeToString() == data
             and from_program_desc(pdesc) is not None
             and PT.print_program(from_program_desc(pdesc)) == PT.print_program(
                 load_program(os.path.join(d, "model.pdmodel")))}
        params = os.path.join(d, "model.pdiparams")
        if os.path.exists(params):
            names = json.load(open(os.path.join(d, "meta.json")))["persistables"]
            mine = load_combine(params, names)
            got = read_with_paddle(params, names, [a.dtype for a in mine.values()],
                                   [a.shape for a in mine.values()])
            r["params_equal"] = all(
                g.dtype == m.dtype and g.shape == m.shape and np.array_equal(g, m)
                for g, m in zip(got, mine.values(), strict=True))
        result["fixtures"][name] = r

    # Our writer, other dtypes, read by Paddle.
    arrays = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.array([1.5, -2.25]),
              "c": np.array([True, False, True]), "d": np.float32(7.5),
              "e": np.array([[1, -2]], np.int32), "f": np.array([0.5, 3], np.float16)}
    params = os.path.join(tmp, "mine.pdiparams")
    save_combine(params, arrays)
    got = read_with_paddle(params, sorted(arrays), [arrays[k].dtype for k in sorted(arrays)],
                           [np.shape(arrays[k]) for k in sorted(arrays)])
    result["ours_read_by_paddle"] = {
        k: bool(g.dtype == np.asarray(arrays[k]).dtype and g.shape == np.shape(arrays[k])
                and np.array_equal(g, arrays[k])) for k, g in zip(sorted(arrays), got)}
    json.dump(result, open(out, "w"))
''')


@pytest.mark.interop
def test_real_paddle_reads_the_same_values(tmp_path, real_paddle):
    # real_paddle, not a bare import: importing paddle here without FLAGS_enable_pir_api=0
    # would put every later interop test of the session in PIR mode
    script = tmp_path / "interop.py"
    script.write_text(_INTEROP)
    out = tmp_path / "result.json"
    env = dict(os.environ, FLAGS_enable_pir_api="0", GLOG_minloglevel="2",
               CUDA_VISIBLE_DEVICES="")
    repo = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, str(script), repo, str(ROOT), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["same_descriptor"], "framework.proto differs from paddle's descriptor"
    assert set(result["fixtures"]) == set(FIXTURES)
    for name, r in result["fixtures"].items():
        assert r["paddle_pb_roundtrip"], name
        if name in WITH_PARAMS:
            assert r["params_equal"], name
    assert result["ours_read_by_paddle"] == {k: True for k in "abcdef"}, \
        result["ours_read_by_paddle"]
