"""canonicalize: each rule fires where it is right, and only there."""
from __future__ import annotations

import re
import numpy as np
import pytest
from xdsl.parser import Parser

from tostatic.dialects.context import context
from tostatic.frontend.capture.tracing import LOC_ATTR, NAMES_ATTR
from tostatic.passes.base import entry
from tostatic.passes.canonicalize import canonicalize


def run(ir: str):
    module = Parser(context(), ir).parse_module()
    canonicalize(module)
    module.verify()
    return module


def returned(module) -> list[str]:
    """What the function returns, as the names of the ops making it (or `arg` for inputs)."""
    ret = entry(module).body.block.last_op
    return [v.owner.name if hasattr(v.owner, "name") else "arg" for v in ret.operands]


def returns_input(module) -> bool:
    fn = entry(module)
    return list(fn.body.block.last_op.operands) == list(fn.body.block.args)[:1]


def fn(body: str, arg: str = "tensor<?x3xf32>", ret: str = "tensor<?x3xf32>") -> str:
    return f"""func.func @forward(%x: {arg}) -> {ret} {{
{body}
}}"""


ZERO = '"pd.full"() <{shape = array<i64: 1>, value = 0.0 : f64, dtype = "float32"}> : () -> tensor<1xf32>'
ONE = '"pd.constant"() <{value = dense<1.0> : tensor<3xf32>}> : () -> tensor<3xf32>'


@pytest.mark.parametrize("op,lit,order", [
    ("pd.add", ZERO, "x,c"), ("pd.add", ZERO, "c,x"), ("pd.subtract", ZERO, "x,c"),
    ("pd.multiply", ONE, "x,c"), ("pd.multiply", ONE, "c,x"), ("pd.divide", ONE, "x,c"),
    ("pd.pow", ONE, "x,c"),
])
def test_binary_with_identity_literal_becomes_its_operand(op, lit, order):
    a, b = ("%x", "%c") if order == "x,c" else ("%c", "%x")
    lt = lit.rsplit(": () -> ", 1)[1]
    ta, tb = ("tensor<?x3xf32>", lt) if order == "x,c" else (lt, "tensor<?x3xf32>")
    m = run(fn(f"""  %c = {lit}
  %y = "{op}"({a}, {b}) {{pd.names = ["tmp_0"]}} : ({ta}, {tb}) -> tensor<?x3xf32>
  func.return %y : tensor<?x3xf32>"""))
    assert returns_input(m)


@pytest.mark.parametrize("body", [
    # 0 - x is not x
    f'%c = {ZERO}\n %y = "pd.subtract"(%c, %x) : (tensor<1xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>',
    # 1 / x is not x
    f'%c = {ONE}\n %y = "pd.divide"(%c, %x) : (tensor<3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>',
    # x + 2
    '%c = "pd.full"() <{shape = array<i64: 1>, value = 2.0 : f64, dtype = "float32"}> : () -> tensor<1xf32>\n'
    ' %y = "pd.add"(%x, %c) : (tensor<?x3xf32>, tensor<1xf32>) -> tensor<?x3xf32>',
    # not all elements are 1
    '%c = "pd.constant"() <{value = dense<[1.0, 2.0, 1.0]> : tensor<3xf32>}> : () -> tensor<3xf32>\n'
    ' %y = "pd.multiply"(%x, %c) : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>',
    # a parameter that happens to hold zeros is not a literal
    '%c = "pd.persistable"() <{var_name = "w"}> : () -> tensor<3xf32>\n'
    ' %y = "pd.add"(%x, %c) : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>',
    '%c = "pd.capture"() <{index = 0 : i64}> : () -> tensor<3xf32>\n'
    ' %y = "pd.add"(%x, %c) : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>',
    # scale that does something
    '%y = "pd.scale"(%x) <{scale = 1.0 : f64, bias = 1.0 : f64}> : (tensor<?x3xf32>) -> tensor<?x3xf32>',
    # a random op is never a literal, even as zeros' neighbour
    '%c = "pd.uniform"() <{shape = array<i64: 3>, min = 0.0 : f64, max = 0.0 : f64}> : () -> tensor<3xf32>\n'
    ' %y = "pd.add"(%x, %c) : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>',
])
def test_what_must_stay(body):
    m = run(fn(f"  {body}\n  func.return %y : tensor<?x3xf32>"))
    assert returned(m) == [re.search(r'%y = "(pd\.\w+)"', body).group(1)]  # %y's own op


def test_no_broadcast_or_dtype_change_is_lost():
    # x: [3] + zeros [2, 3] broadcasts to [2, 3]: the add must stay
    m = run(fn(f"""  %c = "pd.full"() <{{shape = array<i64: 2, 3>, value = 0.0 : f64, dtype = "float32"}}> : () -> tensor<2x3xf32>
  %y = "pd.add"(%x, %c) : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>""", arg="tensor<3xf32>", ret="tensor<2x3xf32>"))
    assert returned(m) == ["pd.add"]
    # x: [?] * ones [3] makes a static [3]: the type differs, so the op stays
    m = run(fn(f"""  %c = {ONE}
  %y = "pd.multiply"(%x, %c) : (tensor<?xf32>, tensor<3xf32>) -> tensor<3xf32>
  func.return %y : tensor<3xf32>""", arg="tensor<?xf32>", ret="tensor<3xf32>"))
    assert returned(m) == ["pd.multiply"]


@pytest.mark.parametrize("op", [
    '"pd.scale"(%x) <{scale = 1.0 : f64, bias = 0.0 : f64}>',
    '"pd.scale"(%x) <{scale = 1.0 : f64, bias = 0.0 : f64, bias_after_scale = false}>',
    '"pd.cast"(%x) <{dtype = "float32"}>',
    '"pd.reshape"(%x) <{shape = array<i64: 0, 3>}>',
    '"pd.reshape"(%x) <{shape = array<i64: -1, 3>}>',
    '"pd.reshape"(%x) <{shape = array<i64: -1, 0>}>',
    '"pd.transpose"(%x) <{perm = array<i64: 0, 1>}>',
    '"pd.transpose"(%x) <{perm = array<i64: -2, -1>}>',
    '"pd.maximum"(%x, %x)',
])
def test_identities_become_their_operand(op):
    n = op.count("%x")
    ins = ", ".join(["tensor<?x3xf32>"] * n)
    m = run(fn(f"  %y = {op} : ({ins}) -> tensor<?x3xf32>\n  func.return %y : tensor<?x3xf32>"))
    assert returns_input(m)


@pytest.mark.parametrize("op,ty", [
    ('"pd.cast"(%x) <{dtype = "float64"}>', "tensor<?x3xf64>"),  # a real cast
    ('"pd.reshape"(%x) <{shape = array<i64: 3, -1>}>', "tensor<3x?xf32>"),  # moves elements
    ('"pd.reshape"(%x) <{shape = array<i64: -1, 1, 3>}>', "tensor<?x1x3xf32>"),
])
def test_non_identities_stay(op, ty):
    m = run(fn(f"  %y = {op} : (tensor<?x3xf32>) -> {ty}\n  func.return %y : {ty}", ret=ty))
    assert not returns_input(m)


def test_reshape_to_own_shape_needs_static_other_dims():
    # [?, ?] -> [-1, 0]: the -1 could only be x's dim if the other dims were known and non-zero
    m = run(fn('  %y = "pd.reshape"(%x) <{shape = array<i64: 0, -1>}> : (tensor<?x?xf32>) -> tensor<?x?xf32>\n'
               '  func.return %y : tensor<?x?xf32>', arg="tensor<?x?xf32>", ret="tensor<?x?xf32>"))
    assert returned(m) == ["pd.reshape"]


def test_double_negation_and_idempotent_activations():
    m = run(fn("""  %a = "pd.neg"(%x) : (tensor<?x3xf32>) -> tensor<?x3xf32>
  %b = "pd.neg"(%a) : (tensor<?x3xf32>) -> tensor<?x3xf32>
  %c = "pd.relu"(%b) {pd.names = ["relu_0.tmp_0"]} : (tensor<?x3xf32>) -> tensor<?x3xf32>
  %d = "pd.relu"(%c) {pd.names = ["relu_1.tmp_0"]} : (tensor<?x3xf32>) -> tensor<?x3xf32>
  func.return %d : tensor<?x3xf32>"""))
    ret = entry(m).body.block.last_op.operands[0].owner
    assert ret.name == "pd.relu" and ret.operands[0] is entry(m).body.block.args[0]
    assert ret.attributes[NAMES_ATTR].data[0].data == "relu_0.tmp_0"


def test_reshape_of_reshape_is_one_reshape_with_the_outer_names():
    m = run(fn("""  %a = "pd.reshape"(%x) <{shape = array<i64: 2, 3, 4>}> : (tensor<24xf32>) -> tensor<2x3x4xf32>
  %b = "pd.reshape"(%a) <{shape = array<i64: 0, -1>}> {pd.names = ["r.tmp_0", "r.tmp_1"], pd.loc = "m.py:3"} : (tensor<2x3x4xf32>) -> tensor<2x12xf32>
  func.return %b : tensor<2x12xf32>""", arg="tensor<24xf32>", ret="tensor<2x12xf32>"))
    r = entry(m).body.block.last_op.operands[0].owner
    assert r.name == "pd.reshape" and r.operands[0] is entry(m).body.block.args[0]
    assert r.attr_values()["shape"] == (2, -1)  # the 0 spelt out: it meant the middle's dim
    assert [s.data for s in r.attributes[NAMES_ATTR].data] == ["r.tmp_0", "r.tmp_1"]
    assert r.attributes[LOC_ATTR].data == "m.py:3"


def test_reshape_of_reshape_keeps_a_dynamic_copied_dim_and_refuses_an_unknown_one():
    m = run(fn("""  %a = "pd.reshape"(%x) <{shape = array<i64: 0, 3, 2>}> : (tensor<?x6xf32>) -> tensor<?x3x2xf32>
  %b = "pd.reshape"(%a) <{shape = array<i64: 0, 6>}> : (tensor<?x3x2xf32>) -> tensor<?x6xf32>
  func.return %b : tensor<?x6xf32>""", arg="tensor<?x6xf32>", ret="tensor<?x6xf32>"))
    assert returns_input(m)  # reshape(x, [0, 6]) is x itself
    m = run(fn("""  %a = "pd.reshape"(%x) <{shape = array<i64: -1, 3>}> : (tensor<?x6xf32>) -> tensor<?x3xf32>
  %b = "pd.reshape"(%a) <{shape = array<i64: 0, 1, 3>}> : (tensor<?x3xf32>) -> tensor<?x1x3xf32>
  func.return %b : tensor<?x1x3xf32>""", arg="tensor<?x6xf32>", ret="tensor<?x1x3xf32>"))
    b = entry(m).body.block.last_op.operands[0].owner
    assert b.operands[0].owner.name == "pd.reshape"  # the inner one's dim 0 is not x's


def test_transpose_of_transpose_composes_and_cancels():
    m = run(fn("""  %a = "pd.transpose"(%x) <{perm = array<i64: 1, 2, 0>}> : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %b = "pd.transpose"(%a) <{perm = array<i64: 1, 0, 2>}> {pd.names = ["t.tmp_0"]} : (tensor<3x4x2xf32>) -> tensor<4x3x2xf32>
  %c = "pd.transpose"(%a) <{perm = array<i64: 2, 0, 1>}> : (tensor<3x4x2xf32>) -> tensor<2x3x4xf32>
  func.return %b, %c : tensor<4x3x2xf32>, tensor<2x3x4xf32>""",
               arg="tensor<2x3x4xf32>", ret="(tensor<4x3x2xf32>, tensor<2x3x4xf32>)"))
    b, c = entry(m).body.block.last_op.operands
    x = entry(m).body.block.args[0]
    assert b.owner.name == "pd.transpose" and b.owner.operands[0] is x
    assert b.owner.attr_values()["perm"] == (2, 1, 0)
    assert b.owner.attributes[NAMES_ATTR].data[0].data == "t.tmp_0"
    assert c is x
    x_np = np.arange(24).reshape(2, 3, 4)  # the composed perm means what the two did
    np.testing.assert_array_equal(np.transpose(np.transpose(x_np, (1, 2, 0)), (1, 0, 2)),
                                  np.transpose(x_np, (2, 1, 0)))


def test_ops_in_nested_regions_are_simplified_too():
    from xdsl.dialects import func

    m = run("""builtin.module {
  func.func @outer(%x: tensor<3xf32>) -> tensor<3xf32> {
    func.return %x : tensor<3xf32>
  }
  func.func @inner(%x: tensor<3xf32>) -> tensor<3xf32> {
    %y = "pd.scale"(%x) <{scale = 1.0 : f64, bias = 0.0 : f64}> : (tensor<3xf32>) -> tensor<3xf32>
    func.return %y : tensor<3xf32>
  }
}""")
    fns = [op for op in m.walk() if isinstance(op, func.FuncOp)]
    assert [[op.name for op in f.body.block.ops] for f in fns] == [["func.return"]] * 2


def test_unused_ops_and_effects_stay_for_dead_op_elimination():
    m = run(fn(f"""  %r = "pd.uniform"() <{{shape = array<i64: 3>}}> : () -> tensor<3xf32>
  %s = "pd.scale"(%r) <{{scale = 1.0 : f64, bias = 0.0 : f64}}> : (tensor<3xf32>) -> tensor<3xf32>
  %c = {ZERO}
  %y = "pd.add"(%x, %c) : (tensor<?x3xf32>, tensor<1xf32>) -> tensor<?x3xf32>
  func.return %y : tensor<?x3xf32>"""))
    names = [op.name for op in entry(m).body.block.ops]
    assert names == ["pd.uniform", "pd.full", "func.return"]


def test_canonicalized_function_result_still_lowers_and_runs():
    """When an input replaces a function result, the outputs still keep their traced names:
    lowering assigns the feed to them (predictors look outputs up by name)."""
    import tostatic as paddle
    from tostatic.frontend.capture.static_function import trace
    from tostatic.static import InputSpec

    def f(x):
        return x * 1.0, paddle.transpose(paddle.transpose(x, [1, 0]), [1, 0]) + 0.0

    cp = trace(f, [InputSpec([None, 3], "float32", "x")],
               pipeline="persistable-extraction,canonicalize,dead-op-elimination")
    assert [op.name for op in entry(cp.module).body.block.ops] == ["func.return"]
    x = np.random.rand(2, 3).astype("float32")
    a, b = cp.plan().run([x])
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(b, x)
    from tostatic.passes.lower_to_program import lower_function

    block = lower_function(entry(cp.module)).blocks[0]
    assert [o.op_type for o in block.ops] == ["feed", "assign", "assign", "fetch", "fetch"]
    assert [o.input("X") for o in block.ops[1:3]] == [["x"], ["x"]]
    outs = [o.output("Out")[0] for o in block.ops[1:3]]
    assert len(set(outs)) == 2 and [o.input("X")[0] for o in block.ops[3:]] == outs


def test_runs_by_name_in_a_pipeline():
    """`canonicalize` in a pipeline string is this pass: x * 1 returns x; the multiply is
    replaced, the literal it no longer reads stays for dead-op-elimination."""
    from tostatic.passes.base import CompileState
    from tostatic.passes.manager import run_pipeline

    m = Parser(context(), fn(f"""  %c = {ONE}
  %y = "pd.multiply"(%x, %c) : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  func.return %y : tensor<?x3xf32>""")).parse_module()
    run_pipeline(m, CompileState(), "canonicalize")
    assert returns_input(m)
    assert [op.name for op in entry(m).body.block.ops] == ["pd.constant", "func.return"]
