"""program_to_text against Paddle 3.3.1's `print(program)` (legacy IR).

The reference is Paddle itself: the fixtures' inference_program.txt, a hand-built ProgramDesc
covering every AttrType and var kind whose expected text was printed by Paddle 3.3.1, and, with
real Paddle installed (`interop`), programs built by Paddle and printed by it.
"""
from __future__ import annotations

import contextlib
import difflib
import math
import re
from pathlib import Path

import pytest

from tostatic.dialects import program as P
from tostatic.serialization.program_text import (
    extra_attrs,
    block_to_text,
    op_to_text,
    program_to_text,
    var_to_text,
)
from tostatic.serialization import framework_pb2 as pb
from tostatic.serialization.program_desc import from_program_desc, load_program

from conftest import FIXTURE_NAMES as TEXT_FIXTURES  # each has an inference_program.txt
from conftest import FIXTURES


def assert_same_text(got: str, want: str) -> None:
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            "paddle", "tostatic"))
        pytest.fail(f"text differs from Paddle's:\n{diff or repr((want[-20:], got[-20:]))}")


def ours(data: bytes, parameters=None) -> str:
    return program_to_text(from_program_desc(pb.ProgramDesc.FromString(data)), parameters)


# ------------------------------------------------------------------------------ fixtures


@pytest.mark.parametrize("name", TEXT_FIXTURES)
def test_fixture_inference_program_text(name):
    # The files hold what `print(program)` wrote: str(program) (each block followed by "\n")
    # plus print's own newline, hence the blank last line.
    want = (FIXTURES / name / "inference_program.txt").read_text(encoding="utf-8")
    got = program_to_text(load_program(FIXTURES / name / "model.pdmodel"))
    assert_same_text(got + "\n", want)


# ------------------------------------------------------------- every attr type / var kind


def all_kinds_desc() -> bytes:
    """A ProgramDesc with every AttrType, odd values and every kind of var (3 blocks)."""
    A = pb.AttrType
    d = pb.ProgramDesc()
    b0, b1, b2 = (d.blocks.add(idx=i, parent_idx=-1 if i == 0 else 0) for i in range(3))
    b2.forward_block_idx = 1

    def var(block, name, kind="DENSE_TENSOR", dtype=5, dims=(2, 3), **flags):
        v = block.vars.add(name=name, **flags)
        v.type.type = pb.VarType.Type.Value(kind)
        if dtype is not None:
            t = {"DENSE_TENSOR": v.type.dense_tensor.tensor,
                 "DENSE_TENSOR_ARRAY": v.type.tensor_array.tensor,
                 "SELECTED_ROWS": v.type.selected_rows}[kind]
            t.data_type = dtype
            t.dims.extend(dims)

    # file order is not print order: Paddle prints vars sorted by name
    var(b0, "x", dims=(-1, 4))
    var(b0, "Éü", dims=())
    var(b0, "w", persistable=True, is_parameter=True, stop_gradient=True)
    var(b0, "persist_tmp", persistable=True, stop_gradient=True)
    var(b0, "arr", "DENSE_TENSOR_ARRAY")
    var(b0, "rows", "SELECTED_ROWS", dtype=22, dims=(7,))
    var(b0, "no_desc", dtype=None)
    var(b0, "two_descs", dtype=6, dims=(5,))  # kept as raw VarType bytes by the dialect
    b0.vars[-1].type.selected_rows.data_type = 2
    for k, (dtype, dims) in enumerate([(0, (1,)), (3, ()), (4, (2, 2)), (36, (3,)), (19, (1,))]):
        var(b0, f"dt{k}", dtype=dtype, dims=dims)
    for kind in ("FEED_MINIBATCH", "FETCH_LIST", "STEP_SCOPES", "READER", "RAW", "STRING",
                 "FEED_LIST", "LOD_RANK_TABLE"):
        var(b0, kind.lower(), kind, dtype=None, persistable=kind.startswith("FE"))
    var(b1, "inner")

    op = b0.ops.add(type="my_op")
    op.outputs.add(parameter="Out", arguments=["x", "w"])
    op.inputs.add(parameter="Y", arguments=["x", "it's"])  # unsorted slots, quoted name
    op.inputs.add(parameter="Empty")

    def attr(name, t, **value):
        a = op.attrs.add(name=name, type=t)
        for field, v in value.items():
            if isinstance(v, list):
                getattr(a, field).extend(v)
            elif isinstance(v, pb.Scalar):
                getattr(a, field).CopyFrom(v)
            else:
                setattr(a, field, v)

    S = pb.Scalar
    attr("op_callstack", A.STRINGS, strings=["  File x.py"])
    attr("i_int", A.INT, i=-3)
    attr("f_float", A.FLOAT, f=0.1)
    attr("f_float_2", A.FLOAT, f=2.0)
    attr("f_float_big", A.FLOAT, f=1e20)
    attr("f_float_inf", A.FLOAT, f=-math.inf)
    attr("f_float_tiny", A.FLOAT, f=1e-7)
    attr("s_str", A.STRING, s="hi 'x'")
    attr("s_str_empty", A.STRING, s="")
    attr("l_ints", A.INTS, ints=[1, -2])
    attr("l_ints_empty", A.INTS)
    attr("l_floats", A.FLOATS, floats=[0.1, 1.0, math.nan])
    attr("l_strings", A.STRINGS, strings=["a", "it's", "ü", "a\nb"])
    attr("b_bool", A.BOOLEAN, b=True)
    attr("b_bools", A.BOOLEANS, bools=[True, False])
    attr("k_block", A.BLOCK, block_idx=1)
    attr("k_blocks", A.BLOCKS, blocks_idx=[1, 2])
    attr("k_blocks_empty", A.BLOCKS)
    attr("n_long", A.LONG, l=2**40)
    attr("n_longs", A.LONGS, longs=[2**40, -1])
    attr("n_float64", A.FLOAT64, float64=0.1)
    attr("n_float64s", A.FLOAT64S, float64s=[0.1, 2.0])
    attr("v_var", A.VAR, var_name="x")
    attr("v_vars", A.VARS, vars_name=["x", "w"])
    attr("v_vars_empty", A.VARS)
    attr("z_scalar_f", A.SCALAR, scalar=S(type=S.FLOAT64, r=1 / 3))
    attr("z_scalar_big", A.SCALAR, scalar=S(type=S.FLOAT64, r=123456789.0))
    attr("z_scalar_nan", A.SCALAR, scalar=S(type=S.FLOAT64, r=-math.nan))
    attr("z_scalar_b", A.SCALAR, scalar=S(type=S.BOOLEAN, b=True))
    attr("z_scalar_i", A.SCALAR, scalar=S(type=S.LONG, i=-2**63))
    attr("z_scalar_c", A.SCALAR, scalar=S(type=S.COMPLEX128, c=pb.Complex(r=0.1, i=-2.0)))
    a = op.attrs.add(name="z_scalars", type=A.SCALARS)
    a.scalars.extend([S(type=S.LONG, i=1), S(type=S.FLOAT64, r=0.5), S(type=S.BOOLEAN, b=False)])

    # op_callstack sorted last: Paddle leaves the separator before it, as with no attrs at all
    op = b0.ops.add(type="callstack_last")
    op.outputs.add(parameter="Out", arguments=["x"])
    op.attrs.add(name="axis", type=A.INT, i=1)
    op.attrs.add(name="op_callstack", type=A.STRINGS, strings=["x"])
    b0.ops.add(type="no_attrs")
    # per-op extra attrs are hidden (conv2d's is_test, the grad op's too; not for the
    # double-grad op that has no extra attrs in Paddle's map)
    for t in ("conv2d", "conv2d_grad", "conv2d_double_grad"):
        op = b1.ops.add(type=t)
        for name in ("groups", "is_test", "use_mkldnn"):
            op.attrs.add(name=name, type=A.INT, i=1)
    return d.SerializeToString()


# Printed by Paddle 3.3.1 for all_kinds_desc() (Program.parse_from_string, then str).
ALL_KINDS_TEXT = """\
{ // block_idx:0  parent_idx:-1  forward_idx:-1  backward_idx:-1
    var arr : DENSE_TENSOR_ARRAY)
    var dt0 : DENSE_TENSOR.shape(1,).dtype(bool).stop_gradient(False)
    var dt1 : DENSE_TENSOR.shape().dtype(int64).stop_gradient(False)
    var dt2 : DENSE_TENSOR.shape(2, 2).dtype(float16).stop_gradient(False)
    var dt3 : DENSE_TENSOR.shape(3,).dtype(UINT16).stop_gradient(False)
    var dt4 : DENSE_TENSOR.shape(1,).dtype(???).stop_gradient(False)
    persist var feed_list : ???)
    persist var feed_minibatch : FEED_MINIBATCH)
    persist var fetch_list : FETCH_LIST)
    var lod_rank_table : ???)
    var no_desc : DENSE_TENSOR.shape().dtype(bool).stop_gradient(False)
    persist var persist_tmp : DENSE_TENSOR.shape(2, 3).dtype(float32).stop_gradient(True)
    var raw : raw)
    var reader : READER)
    var rows : SELECTED_ROWS.shape(7,).dtype(bfloat16).stop_gradient(False)
    var step_scopes : STEP_SCOPES)
    var string : pstring)
    var two_descs : DENSE_TENSOR.shape(5,).dtype(float64).stop_gradient(False)
    persist trainable param w : DENSE_TENSOR.shape(2, 3).dtype(float32).stop_gradient(False)
    var x : DENSE_TENSOR.shape(-1, 4).dtype(float32).stop_gradient(False)
    var Éü : DENSE_TENSOR.shape().dtype(float32).stop_gradient(False)

    {Out=['x', 'w']} = my_op(inputs={Empty=[], Y=['x', "it's"]}, b_bool = True, b_bools = [True, False], f_float = 0.10000000149011612, f_float_2 = 2.0, f_float_big = 1.0000000200408773e+20, f_float_inf = -inf, f_float_tiny = 1.0000000116860974e-07, i_int = -3, k_block = block[1], k_blocks = blocks[1, 2], k_blocks_empty = blocks[], l_floats = [0.10000000149011612, 1.0, nan], l_ints = [1, -2], l_ints_empty = [], l_strings = ['a', "it's", 'ü', 'a\\nb'], n_float64 = 0.1, n_float64s = [0.1, 2.0], n_long = 1099511627776, n_longs = [1099511627776, -1], s_str = hi 'x', s_str_empty = , v_var = Var['x'], v_vars = Vars['x','w'], v_vars_empty = Vars[], z_scalar_b = Scalar(bool(1)), z_scalar_big = Scalar(float64(1.23457e+08)), z_scalar_c = Scalar(complex128(real:0.1 imag:-2)), z_scalar_f = Scalar(float64(0.333333)), z_scalar_i = Scalar(int64(-9223372036854775808)), z_scalar_nan = Scalar(float64(-nan)), z_scalars = [Scalar(int64(1)), Scalar(float64(0.5)), Scalar(bool(0))])
    {Out=['x']} = callstack_last(inputs={}, axis = 1, )
    no_attrs(inputs={}, )
}
{ // block_idx:1  parent_idx:0  forward_idx:-1  backward_idx:2
    var inner : DENSE_TENSOR.shape(2, 3).dtype(float32).stop_gradient(False)

    conv2d(inputs={}, groups = 1)
    conv2d_grad(inputs={}, groups = 1)
    conv2d_double_grad(inputs={}, groups = 1, is_test = 1, use_mkldnn = 1)
}
{ // block_idx:2  parent_idx:0  forward_idx:1  backward_idx:-1

}
"""


def test_every_attr_type_and_var_kind():
    assert_same_text(ours(all_kinds_desc()), ALL_KINDS_TEXT)


def test_parameters_argument_replaces_is_parameter_bits():
    prog = from_program_desc(pb.ProgramDesc.FromString(all_kinds_desc()))
    text = program_to_text(prog, {"w": False, "persist_tmp": True})
    assert ("    persist param w : DENSE_TENSOR.shape(2, 3).dtype(float32).stop_gradient(True)\n"
            in text)
    assert ("    persist trainable param persist_tmp : DENSE_TENSOR.shape(2, 3).dtype(float32)"
            ".stop_gradient(True)\n" in text)


def test_helpers_build_the_program_text():
    prog = from_program_desc(pb.ProgramDesc.FromString(all_kinds_desc()))
    b0 = prog.block(0)
    assert var_to_text(b0.var("arr")) == "var arr : DENSE_TENSOR_ARRAY)"
    assert b0.var("two_descs").raw_type is not None
    assert op_to_text(b0.ops[2]) == "no_attrs(inputs={}, )"
    assert program_to_text(prog) == "".join(block_to_text(b) + "\n" for b in prog.blocks)
    # a block outside a program has nothing pointing at it
    lone = P.BlockOp.build(0, -1, [P.VarOp.build("v", dtype="int32", shape=[3])],
                           [P.OpOp.build("relu", {"X": ["v"]}, {"Out": ["v"]}, {})])
    assert block_to_text(lone) == (
        "{ // block_idx:0  parent_idx:-1  forward_idx:-1  backward_idx:-1\n"
        "    var v : DENSE_TENSOR.shape(3,).dtype(int32).stop_gradient(False)\n\n"
        "    {Out=['v']} = relu(inputs={X=['v']}, )\n}")


def test_dialect_built_attrs_print_like_loaded_ones():
    op = P.OpOp.build("scale", {"X": ["x"]}, {"Out": ["y"]}, {
        "scale": ("FLOAT", 0.1), "w": ("FLOATS", [0.1]), "s": ("SCALAR", 2.5)})
    assert op_to_text(op) == ("{Out=['y']} = scale(inputs={X=['x']}, "
                              "s = Scalar(float64(2.5)), scale = 0.10000000149011612, "
                              "w = [0.10000000149011612])")


# ----------------------------------------------------------------------- real Paddle


@pytest.fixture
def static_paddle(real_paddle):
    real_paddle.enable_static()
    try:
        yield real_paddle
    finally:
        real_paddle.disable_static()


@pytest.mark.interop
def test_every_attr_type_matches_paddle(static_paddle):
    text = str(static_paddle.static.Program.parse_from_string(all_kinds_desc()))
    assert_same_text(text, ALL_KINDS_TEXT)


@pytest.mark.interop
def test_extra_attr_table_matches_paddle(static_paddle):
    from paddle.base import core, framework

    names = set(framework.OpProtoHolder.instance().op_proto_map)
    for kind in ("phi", "fluid"):
        names |= set(core._get_all_register_op_kernels(kind))
    assert len(names) > 1000
    wrong = {t: (sorted(extra_attrs(t)), sorted(core.get_op_extra_attrs(t)))
             for t in sorted(names) if extra_attrs(t) != set(core.get_op_extra_attrs(t))}
    assert not wrong


@contextlib.contextmanager
def _legacy_logical_not(paddle):
    """static.nn.cond calls paddle.logical_not, which has no old-IR branch in 3.3.1."""
    from paddle.base.layer_helper import LayerHelper

    def logical_not(x, out=None, name=None):
        helper = LayerHelper("logical_not")
        res = helper.create_variable_for_type_inference(dtype=x.dtype)
        helper.append_op(type="logical_not", inputs={"X": [x]}, outputs={"Out": [res]})
        return res

    saved, paddle.logical_not = paddle.logical_not, logical_not
    try:
        yield
    finally:
        paddle.logical_not = saved


def _build_cnn(paddle):
    """INT FLOAT STRING INTS FLOATS BOOLEAN, ops with extra attrs, non-trainable params."""
    import paddle.nn.functional as F

    x = paddle.static.data("x", [None, 3, 8, 8], "float32")
    y = paddle.static.nn.conv2d(x, 4, 3, padding=1)
    y = paddle.static.nn.batch_norm(y)
    y = F.dropout(F.max_pool2d(y, 2), 0.3)
    y = F.interpolate(F.softmax(y), scale_factor=[2.0, 1.5], mode="bilinear")
    return [paddle.static.nn.fc(y, 5)]


def _build_constants(paddle):
    """LONGS (fill_constant, gaussian_random shape), SCALARS (assign_value, set_value), LONG."""
    import numpy as np

    a = paddle.assign(np.array([[1.0, 2.5]], dtype="float32"))
    b = paddle.assign(np.array([1, -2], dtype="int64"))
    c = paddle.assign(np.array([True, False]))
    z = paddle.static.setitem(paddle.zeros([3, 4]), 1, 2.0)
    return [a, b, c, z, paddle.full([2, 3], 1.5), paddle.randn([2, 3]), paddle.eye(3, 4)]


def _build_training(paddle):
    """Backward and optimizer ops: grad ops' extra attrs, op_role, non-empty op_role_var."""
    x = paddle.static.data("x", [None, 4], "float32")
    ids = paddle.static.data("ids", [None, 2], "int64")
    e = paddle.static.nn.embedding(ids, (10, 4), padding_idx=0)
    loss = paddle.mean(paddle.static.nn.fc(x, 2)) + paddle.mean(e)
    paddle.optimizer.SGD(0.1).minimize(loss)
    return [loss]


def _build_control_flow(paddle):
    """BLOCK attrs, sub-blocks, STEP_SCOPES vars (cond and while_loop)."""
    import paddle.nn.functional as F

    with _legacy_logical_not(paddle):
        x = paddle.static.data("x", [None, 4], "float32")
        n = paddle.static.data("n", [1], "int64")
        y = paddle.static.nn.fc(x, 4)
        out = paddle.static.nn.cond(paddle.mean(x) > 0.0, lambda: F.relu(y) * 2.0,
                                    lambda: y - 1.0)
        i = paddle.full([1], 0, "int64")
        i, acc = paddle.static.nn.while_loop(lambda i, acc: i < n,
                                             lambda i, acc: [i + 1, acc * 0.5 + y], [i, out])
    return [acc, i]


def _build_pylayer(paddle):
    """BLOCKS (pylayer's forward/backward blocks), forward_idx/backward_idx."""
    x = paddle.static.data("x", [None, 4], "float32")
    x.stop_gradient = False
    y = paddle.static.nn.static_pylayer(lambda t: t * 2.0, [x], backward_fn=lambda g: g * 2.0)
    paddle.static.append_backward(paddle.mean(y))
    return [y]


def _build_appended_ops(paddle):
    """VAR, VARS, BOOLEANS, FLOAT64, FLOAT64S: attrs only reachable through append_op."""
    from paddle.base.layer_helper import LayerHelper

    x = paddle.static.data("x", [2, 4], "float32")
    x4 = paddle.static.data("x4", [1, 1, 4, 4], "float32")
    helper = LayerHelper("appended")
    new = helper.create_variable_for_type_inference
    out, mask, s, shared, v, r = (new("float32"), new("uint8"), new("float32"), new("float32"),
                                  new("float32"), new("float32"))
    block = x.block
    block.append_op(type="dropout", inputs={"X": [x]}, outputs={"Out": [out], "Mask": [mask]},
                    attrs={"dropout_prob": paddle.full([1], 0.25), "is_test": True})
    dims = [paddle.full([1], 0, "int64"), paddle.full([1], 1, "int64")]
    block.append_op(type="reduce_sum", inputs={"X": [x]}, outputs={"Out": [s]},
                    attrs={"dim": dims})
    block.append_op(type="share_buffer", inputs={"X": [x, out]},
                    outputs={"Out": [shared, out], "XOut": [out, shared]},
                    attrs={"share_dims_and_dtype": [True, False]})
    block.append_op(type="var", inputs={"x": [x]}, outputs={"out": [v]},
                    attrs={"correction": 0.1, "axis": [1]})
    block.append_op(type="interp_antialias", inputs={"x": [x4]}, outputs={"output": [r]},
                    attrs={"scale": [2.0, 0.1], "interp_method": "bilinear"})
    return [out, s, v, r]


BUILDERS = {f.__name__[len("_build_"):]: f for f in (
    _build_cnn, _build_constants, _build_training, _build_control_flow, _build_pylayer,
    _build_appended_ops)}


def _build(paddle, name):
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard():
        fetch = BUILDERS[name](paddle)
    return main, startup, fetch


def _vars_sorted(text: str) -> str:
    """A live program prints vars in creation order; a desc has none (Paddle sorts by name)."""
    def sort_block(m: re.Match[str]) -> str:
        lines = m.group(2).splitlines(True)
        return m.group(1) + "".join(sorted(lines, key=lambda s: s.split(" : ")[0].split()[-1]
                                           .encode()))
    return re.sub(r"(\{ // block_idx:[^\n]*\n)((?:    [^\n]*\n)*?)(?=\n)", sort_block, text)


@pytest.mark.interop
@pytest.mark.parametrize("name", list(BUILDERS))
def test_matches_paddle_for_desc_bytes(static_paddle, name):
    paddle = static_paddle
    main, _, _ = _build(paddle, name)
    data = main.desc.serialize_to_string()
    # Paddle's own text for the same desc: what a ProgramOp is
    assert_same_text(ours(data), str(paddle.static.Program.parse_from_string(data)))


@pytest.mark.interop
@pytest.mark.parametrize("name", list(BUILDERS))
def test_parameters_argument_matches_live_program(static_paddle, name):
    paddle = static_paddle
    main, _, _ = _build(paddle, name)
    params = {p.name: p.trainable for p in main.all_parameters()}
    text = ours(main.desc.serialize_to_string(), params)
    assert_same_text(text, _vars_sorted(str(main)))
    if name == "cnn":  # batch_norm's running mean/variance are non-trainable Parameters
        assert "    persist param batch_norm_0.w_1 : " in text


@pytest.mark.interop
@pytest.mark.parametrize("name", ["cnn", "constants", "control_flow"])
def test_matches_paddle_for_saved_inference_model(static_paddle, tmp_path, name):
    paddle = static_paddle
    main, startup, fetch = _build(paddle, name)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    feeds = [main.global_block().var(n) for n in ("x", "n") if main.global_block().has_var(n)]
    prefix = str(tmp_path / "m")
    paddle.static.save_inference_model(prefix, feeds, fetch, exe, program=main)
    data = Path(prefix + ".pdmodel").read_bytes()
    want = str(paddle.static.Program.parse_from_string(data))
    assert "persist var" in want and " param " not in want  # is_parameter is not saved
    assert_same_text(program_to_text(load_program(prefix + ".pdmodel")), want)


@pytest.mark.interop
def test_built_programs_cover_every_attr_type(static_paddle):
    seen, forward_links = set(), 0
    for name in BUILDERS:
        main, _, _ = _build(static_paddle, name)
        prog = from_program_desc(pb.ProgramDesc.FromString(main.desc.serialize_to_string()))
        seen |= {op.attr_type(a) for b in prog.blocks for op in b.ops for a in op.attr_names}
        forward_links += sum(b.forward_block_idx is not None for b in prog.blocks)
    # No 3.3.1 op has a SCALAR attr; all_kinds_desc covers it (and the other odd cases).
    assert set(P.ATTR_TYPES) - seen == {"SCALAR"}
    assert forward_links  # pylayer's backward block: forward_idx / backward_idx
