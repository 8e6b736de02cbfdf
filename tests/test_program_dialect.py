"""The `program` dialect: text round trips, AttrType encodings, builders and accessors."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from xdsl.dialects.builtin import ArrayAttr, FloatAttr, IntegerAttr, StringAttr, i32
from xdsl.utils.exceptions import VerifyException

from tostatic.dialects import program as P
from tostatic.dialects import program_parser as PT
from tostatic.ir import dtypes
from tostatic.serialization import framework_pb2 as pb
from tostatic.serialization.program_desc import from_program_desc, load_program, to_program_desc

from conftest import FIXTURE_NAMES as FIXTURES
from conftest import FIXTURES as ROOT


def roundtrip_text(program: P.ProgramOp) -> P.ProgramOp:
    text = PT.print_program(program)
    again = PT.parse_program(text)
    assert PT.print_program(again) == text
    return again


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_text_roundtrip_keeps_bytes(name):
    data = (ROOT / name / "model.pdmodel").read_bytes()
    program = load_program(ROOT / name / "model.pdmodel")
    program.verify()
    again = roundtrip_text(program)
    again.verify()
    assert to_program_desc(again).SerializeToString() == data


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_text_parses_with_stock_xdsl_parser(name):
    """The fixtures need none of ProgramParser's fixes (ASCII only, no hex floats)."""
    from xdsl.parser import Parser

    text = PT.print_program(load_program(ROOT / name / "model.pdmodel"))
    op = Parser(PT.make_context(), text).parse_op()
    assert isinstance(op, P.ProgramOp) and PT.print_program(op) == text


def test_non_ascii_names_roundtrip():
    var = P.VarOp.build("变量.w_0", dtype="float32", shape=[2])
    op = P.OpOp.build("scale", {"X": ["变量.w_0"], "Ünïcode slot": []}, {"Out": ["ÿ"]},
                      {"ключ": ("STRING", "значение"), "s": ("STRINGS", ["é", "✓"]),
                       "v": ("VARS", ["变量.w_0"])})
    prog = P.ProgramOp.build([P.BlockOp.build(0, -1, [var], [op])])
    back = roundtrip_text(prog)
    assert back.blocks[0].vars[0].var_name == "变量.w_0"
    bop = back.blocks[0].ops[0]
    assert bop.attr("ключ") == "значение" and bop.attr("s") == ["é", "✓"]
    assert bop.input("Ünïcode slot") == [] and bop.output("Out") == ["ÿ"]
    data = to_program_desc(back).SerializeToString()
    assert data == to_program_desc(prog).SerializeToString()
    assert PT.print_program(from_program_desc(pb.ProgramDesc.FromString(data))) == \
        PT.print_program(roundtrip_text(from_program_desc(pb.ProgramDesc.FromString(data))))


def test_simple_net_accessors():
    program = load_program(ROOT / "simple_net" / "model.pdmodel")
    assert program.version == 3003001
    ovm = program.op_version_map
    assert len(ovm) == 76 and ("set_value", 4) in ovm and ("roi_align", 3) in ovm
    (block,) = program.blocks
    assert (block.idx, block.parent_idx, block.forward_block_idx) == (0, -1, None)
    assert [o.op_type for o in block.ops] == [
        "feed", "feed", "matmul_v2", "elementwise_add", "elementwise_add", "fetch"]
    feed_y, feed_x = block.ops[:2]  # prepended: col 1 first
    assert feed_y.attr("col") == 1 and feed_y.attr_type("col") == "INT"
    assert feed_y.input("X") == ["feed"] and feed_y.output("Out") == ["y"]
    mm = block.ops[2]
    assert mm.attr("trans_x") is False and mm.attr_type("trans_y") == "BOOLEAN"
    assert mm.attr("op_role_var") == [] and mm.attr_type("op_role_var") == "STRINGS"
    assert mm.attr("op_namescope") == "/"
    assert mm.input_slots == ["X", "Y"] and mm.input_names == ["x", "linear_0.w_0"]
    with pytest.raises(KeyError, match="no input slot 'Z'"):
        mm.input("Z")
    with pytest.raises(KeyError, match="no attribute"):
        mm.attr("nope")
    w = block.var("linear_0.w_0")
    assert w.var_name == "linear_0.w_0" and w.name == "program.var"
    assert w.dtype is dtypes.float32 and w.shape == (10, 3) and w.persistable
    assert w.lod_level is None and w.persistable_attr is not None and w.stop_gradient is False
    assert w.stop_gradient_attr is None  # cleared by jit.save: absent, not false
    feed = block.var("feed")
    assert feed.var_type == "FEED_MINIBATCH" and feed.dtype is None and feed.shape is None
    y = block.var("y")  # an InputSpec feed: no lod level, need_check_feed unset
    assert y.shape == (3,) and y.lod_level is None and y.need_check_feed is False
    out = block.var("tmp_0")  # op outputs carry legacy_lod_level: 0
    assert out.lod_level == 0 and out.shape == (-1, 3) and out.persistable is False


def test_control_flow_blocks():
    program = load_program(ROOT / "control_flow" / "model.pdmodel")
    assert [b.parent_idx for b in program.blocks] == [-1, 0, 0, 0]
    while_op = next(o for o in program.blocks[0].ops if o.op_type == "while")
    assert while_op.attr_type("sub_block") == "BLOCK" and while_op.attr("sub_block") == 3
    assert isinstance(while_op.attrs_attr.data["sub_block"], P.BlockRefAttr)
    scopes = program.blocks[0].var(while_op.output("StepScopes")[0])
    assert scopes.var_type == "STEP_SCOPES" and scopes.dtype is None


# ============================================================================ attribute encoding

ALL_TYPES = {
    "INT": [0, -1, 2**31 - 1, -(2**31)],
    "LONG": [0, 2**63 - 1, -(2**63), 2147483648],
    "BOOLEAN": [True, False],
    "FLOAT": [0.0, -0.0, 0.1, 1e-45, 3.4028234663852886e38, math.inf, -math.inf, 1 / 3],
    "FLOAT64": [0.0, -0.0, 0.1, 5e-324, 1.7976931348623157e308, math.inf, 1 / 3, 1e22],
    "STRING": ["", "a", 'quote " backslash \\ newline \n tab \t', "ünïcode ✓", "\x00\x7f"],
    "INTS": [[], [1, -2, 3]],
    "LONGS": [[], [2**40, -1]],
    # inf and values with no short exact decimal form print as hex bits in xDSL dense arrays
    "FLOATS": [[], [0.5, -0.0, 0.1, math.inf, -math.inf, 123456792.0, 1e-45]],
    "FLOAT64S": [[], [0.1, 1e300, -math.inf, 12345678901234568.0, 5e-324]],
    "BOOLEANS": [[], [True, False, True]],
    "STRINGS": [[], ["a", "", "b\"c"]],
    "BLOCK": [0, 3],
    "BLOCKS": [[], [1, 2]],
    "VAR": ["x", "weird name\n"],
    "VARS": [[], ["x", "y"]],
    "SCALAR": [True, False, 0, -5, 2**62, 1.5, -0.0, 1 + 2j, complex(0, -1)],
    "SCALARS": [[], [True, 7, 2.5, 3j]],
}


def _same(a, b) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


@pytest.mark.parametrize("attr_type", sorted(ALL_TYPES))
def test_every_attr_type_roundtrips(attr_type):
    for value in ALL_TYPES[attr_type]:
        attr = P.to_attr(attr_type, value)
        t, back = P.from_attr(attr)
        assert t == attr_type
        if attr_type == "FLOAT":
            value = _f32(value)
        elif attr_type == "FLOATS":
            value = [_f32(v) for v in value]
        assert _same(value, back), (attr_type, value, back)
        # by number too
        assert P.to_attr(P.ATTR_TYPES.index(attr_type), value) == attr


def test_float_nan_keeps_its_bits():
    for t in ("FLOAT", "FLOAT64", "FLOATS", "FLOAT64S"):
        attr = P.to_attr(t, [math.nan, -math.nan] if t.endswith("S") else math.nan)
        op = P.OpOp.build("x", {}, {}, {"v": attr})
        prog = P.ProgramOp.build([P.BlockOp.build(0, -1, [], [op])])
        back = roundtrip_text(prog).blocks[0].ops[0].attrs_attr.data["v"]
        assert back == attr and math.isnan(np.ravel(P.from_attr(back)[1])[0])
        data = to_program_desc(prog).SerializeToString()
        assert to_program_desc(from_program_desc(pb.ProgramDesc.FromString(data))
                               ).SerializeToString() == data


def test_empty_lists_keep_their_type():
    kinds = ["INTS", "LONGS", "FLOATS", "FLOAT64S", "BOOLEANS", "STRINGS", "BLOCKS", "VARS",
             "SCALARS"]
    attrs = [P.to_attr(k, []) for k in kinds]
    assert len(set(attrs)) == len(kinds)
    assert [P.from_attr(a)[0] for a in attrs] == kinds


def test_to_attr_rejects_bad_values():
    with pytest.raises(ValueError, match="out of range"):
        P.to_attr("INT", 2**31)
    with pytest.raises(ValueError, match="out of range"):
        P.to_attr("LONG", 2**63)
    with pytest.raises(TypeError):
        P.to_attr("INT", 1.5)
    with pytest.raises(TypeError):
        P.to_attr("INTS", "abc")
    with pytest.raises(TypeError):
        P.to_attr("STRING", 3)
    with pytest.raises(ValueError, match="unknown AttrType"):
        P.to_attr("COMPLEX", 1)
    with pytest.raises(ValueError, match="not an encoded"):
        P.from_attr(IntegerAttr(1, 16))
    # numpy scalars are fine
    assert P.from_attr(P.to_attr("LONG", np.int64(5))) == ("LONG", 5)
    assert P.from_attr(P.to_attr("FLOAT64S", np.array([1.0, 2.0]))) == ("FLOAT64S", [1.0, 2.0])


def _all_types_program() -> P.ProgramOp:
    attrs = {f"a_{t.lower()}_{i}": P.to_attr(t, v)
             for t, values in ALL_TYPES.items() for i, v in enumerate(values)}
    op = P.OpOp.build("everything", {"X": ["x"], "Empty": []}, {"Out": ["y", "z"]}, attrs,
                      is_target=False)
    sub = P.OpOp.build("noop", {}, {}, {"flag": ("BOOLEAN", True)}, is_target=True)
    vars_ = [
        P.VarOp.build("x", dtype="float32", shape=[-1, 3], persistable=False, lod_level=0,
                      need_check_feed=True, is_parameter=False, stop_gradient=True),
        P.VarOp.build("y", var_type="DENSE_TENSOR_ARRAY", dtype="int64", shape=[], lod_level=2),
        P.VarOp.build("z", var_type="SELECTED_ROWS", dtype=dtypes.bfloat16, shape=[4, 5]),
        P.VarOp.build("u", dtype="UINT16", shape=[2]),
        P.VarOp.build("s", var_type="STEP_SCOPES"),
        P.VarOp.build("n", dtype=np.float16, shape=[1],
                      var_attrs={"k": P.to_attr("INT", 1), "t": P.to_attr("STRING", "v"),
                                 "l": P.to_attr("INTS", [1, 2])}),
    ]
    return P.ProgramOp.build(
        [P.BlockOp.build(0, -1, vars_, [op]),
         P.BlockOp.build(1, 0, [], [sub], forward_block_idx=0)],
        version=0, op_version_map=[("b", 2), ("a", 1)])


def test_all_types_survive_protobuf_and_text():
    program = _all_types_program()
    program.verify()
    data = to_program_desc(program).SerializeToString()
    desc = pb.ProgramDesc.FromString(data)
    attrs = {a.name: a for a in desc.blocks[0].ops[0].attrs}
    assert [a.name for a in desc.blocks[0].ops[0].attrs] == sorted(attrs)  # std::map order
    for name, a in attrs.items():
        t = name.split("_")[1].upper()
        assert pb.AttrType.Name(a.type) == t
    assert attrs["a_long_3"].l == 2147483648 and attrs["a_int_2"].i == 2**31 - 1
    assert attrs["a_scalar_7"].scalar.c.i == 2.0
    assert [s.type for s in attrs["a_scalars_1"].scalars] == [1, 2, 3, 4]
    assert [p.parameter for p in desc.blocks[0].ops[0].inputs] == ["Empty", "X"]
    assert desc.blocks[0].ops[0].HasField("is_target") and desc.blocks[1].forward_block_idx == 0
    assert desc.version.version == 0 and desc.HasField("version")
    assert [p.op_name for p in desc.op_version_map.pair] == ["b", "a"]  # file order kept
    y = desc.blocks[0].vars[1].type
    assert y.tensor_array.legacy_lod_level == 2 and y.tensor_array.tensor.data_type == pb.VarType.INT64
    assert desc.blocks[0].vars[2].type.selected_rows.data_type == pb.VarType.BF16
    assert desc.blocks[0].vars[3].type.dense_tensor.tensor.data_type == pb.VarType.UINT16
    assert not desc.blocks[0].vars[1].HasField("persistable")
    x = desc.blocks[0].vars[0]
    assert x.HasField("is_parameter") and not x.is_parameter and x.stop_gradient
    # bytes -> dialect -> text -> dialect -> bytes
    back = roundtrip_text(from_program_desc(desc))
    assert to_program_desc(back).SerializeToString() == data
    # Same content; only the slot/attr order differs (sorted on the way through protobuf).
    before, after = program.blocks[0].ops[0], back.blocks[0].ops[0]
    assert dict(after.attrs_attr.data) == dict(before.attrs_attr.data)
    assert dict(after.inputs_attr.data) == dict(before.inputs_attr.data)
    for a, b in zip(back.blocks[0].vars, program.blocks[0].vars, strict=True):
        assert a.properties == b.properties
    u = back.blocks[0].var("u")
    assert u.dtype_name == "UINT16"
    with pytest.raises(ValueError, match="not supported"):
        u.dtype


def test_unusual_var_types_kept_raw():
    desc = pb.ProgramDesc()
    b = desc.blocks.add(idx=0, parent_idx=-1)
    r = b.vars.add(name="reader")
    r.type.type = pb.VarType.READER
    r.type.reader.dense_tensor.add().tensor.data_type = pb.VarType.FP32
    t = b.vars.add(name="tuple")
    t.type.type = pb.VarType.TUPLE
    t.type.tuple.element_type.extend([pb.VarType.FP32, pb.VarType.INT64])
    odd = b.vars.add(name="feed_with_desc")  # a desc in a field its kind does not use
    odd.type.type = pb.VarType.FEED_MINIBATCH
    odd.type.dense_tensor.tensor.data_type = pb.VarType.FP32
    data = desc.SerializeToString()
    program = from_program_desc(pb.ProgramDesc.FromString(data))
    v = program.blocks[0].vars
    assert [x.raw_type is not None for x in v] == [True, True, True]
    assert pb.VarType.FromString(v[1].raw_type).tuple.element_type == [5, 3]
    assert [x.var_type for x in v] == ["READER", "TUPLE", "FEED_MINIBATCH"]
    assert to_program_desc(roundtrip_text(program)).SerializeToString() == data


def test_builders_validate():
    with pytest.raises(ValueError, match="unknown var_type"):
        P.VarOp.build("x", var_type="TENSOR")
    with pytest.raises(ValueError):
        P.VarOp.build("x", dtype="float128")
    with pytest.raises(TypeError, match="list of variable names"):
        P.OpOp.build("relu", {"X": "x"}, {}, {})
    with pytest.raises(ValueError, match="not an encoded"):
        P.OpOp.build("relu", {}, {}, {"a": ArrayAttr([i32])})
    op = P.OpOp.build("relu", {"X": ["x"]}, {"Out": ["y"]}, {})
    var = P.VarOp.build("x", dtype="float32", shape=[2])
    bad = P.ProgramOp.build([P.BlockOp.build(0, -1, [], [op, var])])
    with pytest.raises(VerifyException, match="after an op"):
        bad.verify()
    bad = P.ProgramOp.build([P.BlockOp.build(1, -1, [], [])])
    with pytest.raises(VerifyException, match="has idx 1"):
        bad.verify()
    shapeless = P.ProgramOp.build([P.BlockOp.build(0, -1, [P.VarOp.build(
        "x", var_type="FEED_MINIBATCH", dtype="float32")], [])])
    with pytest.raises(ValueError, match="no tensor description"):
        to_program_desc(shapeless)


def test_generic_xdsl_build_still_works():
    """Overriding `build` keeps xDSL's keyword form (used by generic tooling)."""
    op = P.VarOp.build(properties={"var_name": StringAttr("v"),
                                   "var_type": StringAttr("DENSE_TENSOR")})
    assert op.var_name == "v" and op.dtype is None
    f = P.to_attr("FLOAT", 0.1)
    assert isinstance(f, FloatAttr) and f.value.data == _f32(0.1)
