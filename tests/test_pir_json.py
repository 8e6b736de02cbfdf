"""serialization/pir_json.py on small programs written here in Paddle's layout (the Paddle-made
files are read in test_pir_models.py): decoding, format detection, and errors that name the
file and the JSON field."""
from __future__ import annotations

import copy
import json

import pytest

from tostatic.serialization import FormatError
from tostatic.serialization.pir_json import (
    PirFormatError,
    RawAttr,
    detect_model_format,
    parse_pir,
)


def _t(dtype, dims):
    return {"#": "0.t_dtensor", "D": [{"#": f"0.t_{dtype}"}, dims, "NCHW", [], 0]}


def _a(name, kind, data):
    return {"N": name, "AT": {"#": kind, "D": data}}


# y = relu(x @ w + b) in the layout Paddle 3.3.1 writes (compressed names, "p" parameters)
PROGRAM = {
    "base_code": {"magic": "pir", "trainable": True, "version": 4},
    "program": {"regions": [{"#": "region_0", "blocks": [{"#": "block_0", "args": [], "ops": [
        {"#": "p", "A": [0, 1, 1, "fc.b_0"], "DA": [], "O": {"%": 1, "TT": _t("f32", [3])},
         "OA": [1, 0, 1], "QA": []},
        {"#": "p", "A": [0, 1, 1, "fc.w_0"], "DA": [], "O": {"%": 2, "TT": _t("f32", [4, 3])},
         "OA": [1, 0, 1], "QA": []},
        {"#": "1.data", "A": [_a("name", "0.a_str", "x"), _a("shape", "1.a_intarray", [-1, 4]),
                              _a("dtype", "1.a_dtype", "float32"),
                              _a("place", "1.a_place", [0, 0, ""])],
         "I": [], "O": [{"%": 3, "TT": _t("f32", [-1, 4])}], "OA": []},
        {"#": "1.matmul", "A": [_a("transpose_x", "0.a_bool", False),
                                _a("transpose_y", "0.a_bool", False),
                                _a("struct_name", "0.a_str", "/Linear/")],
         "I": [{"%": 3}, {"%": 2}], "O": [{"%": 4, "TT": _t("f32", [-1, 3])}], "OA": []},
        {"#": "1.add", "A": [], "I": [{"%": 4}, {"%": 1}],
         "O": [{"%": 5, "TT": _t("f32", [-1, 3])}], "OA": []},
        {"#": "1.scale", "A": [_a("bias", "0.a_f32", 0.0), {"N": "odd", "AT": {
            "#": "0.a_f32", "VD": "-INF"}}], "I": [{"%": 5}, {"%": 0}],
         "O": [{"%": 6, "TT": _t("f32", [-1, 3])}], "OA": []},
        {"#": "0.combine", "A": [], "I": [{"%": 5}, {"%": 6}], "O": [{"%": 7, "TT": {
            "#": "0.t_vec", "D": [_t("f32", [-1, 3]), _t("f32", [-1, 3])]}}]},
        {"#": "1.fetch", "A": [_a("name", "0.a_str", "fetch_name_0"), _a("col", "0.a_i32", 0),
                               _a("mesh", "4.a_process_mesh", [[1], [0], ["x"]])],
         "I": [{"%": 6}], "O": [{"%": 8, "TT": _t("f32", [-1, 3])}], "OA": []},
    ]}]}]},
}


def _bytes(doc) -> bytes:
    return json.dumps(doc).encode()


def _fails(doc, *fragments):
    with pytest.raises(FormatError) as e:
        parse_pir(_bytes(doc), "m.json")
    for f in fragments:
        assert f in str(e.value), str(e.value)
    return e.value


def test_decodes_ops_values_types_and_attributes():
    p = parse_pir(_bytes(PROGRAM), "m.json")
    assert (p.version, p.trainable) == (4, True)
    ops = p.ops()
    assert [o.name for o in ops] == ["builtin.parameter", "builtin.parameter", "pd_op.data",
                                     "pd_op.matmul", "pd_op.add", "pd_op.scale",
                                     "builtin.combine", "pd_op.fetch"]
    w = ops[1]
    assert w.attrs == {"is_distributed": False, "is_parameter": True, "need_clip": True,
                       "parameter_name": "fc.w_0"}
    assert w.result_attrs == {"persistable": True, "stop_gradient": False, "trainable": True}
    assert (w.results[0].id, w.results[0].type.shape, w.results[0].type.dtype) == \
        (2, (4, 3), "float32")
    data = ops[2]
    assert data.attrs["shape"] == [-1, 4] and data.attrs["place"] == (0, 0, "")
    assert ops[5].operands == [5, 0] and ops[5].attrs["odd"] == float("-inf")
    vec = ops[6].results[0].type
    assert vec.kind == "vector" and [e.shape for e in vec.elements] == [(-1, 3), (-1, 3)]
    assert isinstance(ops[7].attrs["mesh"], RawAttr)  # kept, not decoded
    assert ops[3].path == "program.regions[0].blocks[0].ops[3]"
    assert str(ops[3].results[0].type) == "tensor<?x3xfloat32>"


def test_format_is_detected_by_content(tmp_path):
    (tmp_path / "a.pdmodel").write_bytes(b"\n" + _bytes(PROGRAM))  # JSON under any name
    (tmp_path / "b.json").write_bytes(b"\x0a\x02\x08\x00")  # a ProgramDesc's first bytes
    (tmp_path / "c.json").write_bytes(b"\xef\xbb\xbf  " + _bytes(PROGRAM))
    assert detect_model_format(tmp_path / "a.pdmodel") == "pir-json"
    assert detect_model_format(tmp_path / "b.json") == "program-desc"
    assert detect_model_format(tmp_path / "c.json") == "pir-json"


def test_truncated_file_names_line_column_and_offset():
    data = _bytes(PROGRAM)
    with pytest.raises(FormatError) as e:
        parse_pir(data[:300], "m.json")
    assert e.value.path == "m.json" and e.value.offset == 300
    assert "not valid JSON at line 1 column 301" in str(e.value)
    assert "truncated" in str(e.value)


def test_not_utf8_and_empty():
    with pytest.raises(FormatError, match="empty file"):
        parse_pir(b"  \n", "m.json")
    e = _fails({}, "(top level): missing key 'base_code'")
    assert isinstance(e, PirFormatError) and e.field == "(top level)"
    with pytest.raises(FormatError, match="byte offset 2: .*not UTF-8"):
        parse_pir(b'{"\xff": 1}', "m.json")


def test_wrong_magic_and_version():
    doc = copy.deepcopy(PROGRAM)
    doc["base_code"]["magic"] = "onnx"
    _fails(doc, 'm.json: base_code.magic: expected "pir", found the string \'onnx\'')
    doc = copy.deepcopy(PROGRAM)
    doc["base_code"]["version"] = "4"
    _fails(doc, "base_code.version: expected an integer")


@pytest.mark.parametrize("edit, where, what", [
    (lambda ops: ops[3]["O"][0]["TT"]["D"].__setitem__(1, "wide"),
     "ops[3].O[0].TT.D[1]", "expected an array, found the string 'wide'"),
    (lambda ops: ops[3]["I"][1].pop("%"), "ops[3].I[1]", "missing key '%'"),
    (lambda ops: ops[4].__setitem__("#", "7.add"), "ops[4].#", "unknown dialect id '7'"),
    (lambda ops: ops[4].__setitem__("#", "add"), "ops[4].#",
     'expected an op name like "1.conv2d", found \'add\''),
    (lambda ops: ops[0]["A"].pop(), "ops[0].A", "a parameter has 4 attributes"),
    (lambda ops: ops[3]["A"][0]["AT"].__setitem__("D", 1), "ops[3].A[0].AT.D",
     "expected true or false, found the number 1"),
    (lambda ops: ops[5]["A"][1]["AT"].__setitem__("VD", "nan"), "ops[5].A[1].AT.VD",
     "expected NaN, INF or -INF"),
    (lambda ops: ops[2]["O"][0]["TT"]["D"][0].__setitem__("#", "0.t_dtensor"),
     "ops[2].O[0].TT.D[0]", "missing key 'D'"),
    (lambda ops: ops[4]["O"][0].__setitem__("%", -4), "ops[4].O[0].%",
     "a result id is positive"),
])
def test_malformed_fields_are_named_by_path(edit, where, what):
    doc = copy.deepcopy(PROGRAM)
    edit(doc["program"]["regions"][0]["blocks"][0]["ops"])
    _fails(doc, f"m.json: program.regions[0].blocks[0].{where}: {what}")


def test_duplicate_keys_bare_nan_and_deep_nesting():
    text = _bytes(PROGRAM).replace(b'"version": 4', b'"version": 4, "version": 5')
    with pytest.raises(FormatError, match="key 'version' twice"):
        parse_pir(text, "m.json")
    with pytest.raises(FormatError, match="NaN is not JSON"):
        parse_pir(_bytes(PROGRAM).replace(b'"version": 4', b'"version": NaN'), "m.json")
    with pytest.raises(FormatError, match="m.json at byte offset 505: JSON nested more than "
                                          "500 levels deep"):
        parse_pir(b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}", "m.json")


def test_attributes_nested_too_deep():
    doc = copy.deepcopy(PROGRAM)
    doc["program"]["regions"][0]["blocks"][0]["ops"][3]["A"].append(
        {"N": "deep", "AT": "PLACEHOLDER"})
    n = 40
    deep = '{"#": "0.a_array", "D": [' * n + '{"#": "0.a_bool", "D": true}' + "]}" * n
    text = _bytes(doc).replace(b'"PLACEHOLDER"', deep.encode())
    with pytest.raises(FormatError, match=r"ops\[3\]\.A\[3\]\.AT(\.D\[0\])+: attributes nested "
                       r"more than 32 deep"):
        parse_pir(text, "m.json")


def test_regions_nested_too_deep():
    inner = {"#": "1.if", "I": [], "O": [], "A": [], "regions": []}
    doc = copy.deepcopy(PROGRAM)
    node = inner
    for _ in range(70):
        child = {"#": "1.if", "I": [], "O": [], "A": [], "regions": []}
        node["regions"] = [{"#": "r", "blocks": [{"#": "b", "args": [], "ops": [child]}]}]
        node = child
    doc["program"]["regions"][0]["blocks"][0]["ops"].append(inner)
    _fails(doc, "regions nested more than 64 deep")
