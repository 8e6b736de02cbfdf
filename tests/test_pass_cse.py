"""cse: equal pure ops merge; effects, different attributes and region scoping keep them apart."""
from __future__ import annotations

from xdsl.parser import Parser

from tostatic.dialects.context import context
from tostatic.frontend.capture.tracing import NAMES_ATTR
from tostatic.passes.base import entry
from tostatic.passes.cse import cse


def run(ir: str):
    module = Parser(context(), ir).parse_module()
    cse(module)
    module.verify()
    return module


def fn(body: str, results: str) -> str:
    n = results.count("tensor<")
    return f"""func.func @forward(%x: tensor<?x3xf32>, %w: tensor<3x3xf32>) -> ({results}) {{
{body}
}}""" if n > 1 else f"""func.func @forward(%x: tensor<?x3xf32>, %w: tensor<3x3xf32>) -> {results} {{
{body}
}}"""


def ops(module) -> list[str]:
    return [op.name for op in entry(module).body.block.ops]


def ret(module):
    return list(entry(module).body.block.last_op.operands)


T = "tensor<?x3xf32>"


def test_equal_ops_merge_into_the_first_whatever_their_names_and_lines():
    m = run(fn(f"""  %a = "pd.matmul"(%x, %w) {{pd.names = ["mm_0.tmp_0"], pd.loc = "m.py:1"}} : ({T}, tensor<3x3xf32>) -> {T}
  %b = "pd.matmul"(%x, %w) {{pd.names = ["mm_1.tmp_0"], pd.loc = "m.py:2"}} : ({T}, tensor<3x3xf32>) -> {T}
  %c = "pd.relu"(%a) : ({T}) -> {T}
  %d = "pd.relu"(%b) : ({T}) -> {T}
  func.return %c, %d : {T}, {T}""", f"{T}, {T}"))
    assert ops(m) == ["pd.matmul", "pd.relu", "func.return"]  # chains merge in one sweep
    c, d = ret(m)
    assert c is d
    mm = c.owner.operands[0].owner
    assert mm.attributes[NAMES_ATTR].data[0].data == "mm_0.tmp_0"


def test_different_properties_operands_or_order_stay_apart():
    m = run(fn(f"""  %a = "pd.matmul"(%x, %w) <{{transpose_y = true}}> : ({T}, tensor<3x3xf32>) -> {T}
  %b = "pd.matmul"(%x, %w) : ({T}, tensor<3x3xf32>) -> {T}
  %c = "pd.scale"(%x) <{{scale = 2.0 : f64}}> : ({T}) -> {T}
  %d = "pd.scale"(%x) <{{scale = 3.0 : f64}}> : ({T}) -> {T}
  %e = "pd.subtract"(%c, %d) : ({T}, {T}) -> {T}
  %f = "pd.subtract"(%d, %c) : ({T}, {T}) -> {T}
  func.return %a, %b, %e, %f : {T}, {T}, {T}, {T}""", f"{T}, {T}, {T}, {T}"))
    assert len(set(ret(m))) == 4


def test_other_discardable_attributes_do_count():
    m = run(fn(f"""  %a = "pd.relu"(%x) {{custom = 1 : i64}} : ({T}) -> {T}
  %b = "pd.relu"(%x) {{custom = 2 : i64}} : ({T}) -> {T}
  func.return %a, %b : {T}, {T}""", f"{T}, {T}"))
    assert len(set(ret(m))) == 2


def test_effects_never_merge():
    m = run(fn("""  %a = "pd.uniform"() <{shape = array<i64: 3>}> : () -> tensor<3xf32>
  %b = "pd.uniform"() <{shape = array<i64: 3>}> : () -> tensor<3xf32>
  %c = "pd.gaussian"() <{shape = array<i64: 3>}> : () -> tensor<3xf32>
  %d = "pd.gaussian"() <{shape = array<i64: 3>}> : () -> tensor<3xf32>
  func.return %a, %b, %c, %d : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>""",
               "tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>"))
    assert len(set(ret(m))) == 4


def test_parameters_merge_only_when_they_are_the_same_variable():
    m = run(fn("""  %a = "pd.persistable"() <{var_name = "w_0"}> : () -> tensor<3xf32>
  %b = "pd.persistable"() <{var_name = "w_1"}> : () -> tensor<3xf32>
  %c = "pd.persistable"() <{var_name = "w_0"}> : () -> tensor<3xf32>
  %d = "pd.capture"() <{index = 0 : i64}> : () -> tensor<3xf32>
  %e = "pd.capture"() <{index = 1 : i64}> : () -> tensor<3xf32>
  func.return %a, %b, %c, %d, %e : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>""",
               "tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>"))
    a, b, c, d, e = ret(m)
    assert a is c and len({a, b, d, e}) == 4


def test_equal_constants_merge():
    m = run(fn("""  %a = "pd.constant"() <{value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>}> : () -> tensor<3xf32>
  %b = "pd.constant"() <{value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>}> : () -> tensor<3xf32>
  %c = "pd.constant"() <{value = dense<[1.0, 2.0, 4.0]> : tensor<3xf32>}> : () -> tensor<3xf32>
  func.return %a, %b, %c : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>""",
               "tensor<3xf32>, tensor<3xf32>, tensor<3xf32>"))
    a, b, c = ret(m)
    assert a is b and a is not c


IF_MODULE = """func.func @forward(%c: tensor<1xi1>, %x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) {
  %outer = "pd.relu"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %r = "pd.if"(%c, %x) ({
  ^bb0(%a: tensor<3xf32>):
    %t1 = "pd.relu"(%a) : (tensor<3xf32>) -> tensor<3xf32>
    %t2 = "pd.relu"(%a) : (tensor<3xf32>) -> tensor<3xf32>
    %t3 = "pd.add"(%t1, %t2) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
    "pd.yield"(%t3) : (tensor<3xf32>) -> ()
  }, {
  ^bb1(%b: tensor<3xf32>):
    %e1 = "pd.relu"(%b) : (tensor<3xf32>) -> tensor<3xf32>
    "pd.yield"(%e1) : (tensor<3xf32>) -> ()
  }) : (tensor<1xi1>, tensor<3xf32>) -> tensor<3xf32>
  %after = "pd.relu"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  func.return %outer, %r, %after : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
}"""


def test_regions_are_scoped():
    from tostatic.ops.control_flow import If

    m = run(IF_MODULE)
    block = entry(m).body.block
    outer, r, after = block.last_op.operands
    assert after is outer  # outside, before and after the region: merged
    (if_op,) = [op for op in block.ops if isinstance(op, If)]
    then_ops = [op.name for op in if_op.regions[0].block.ops]
    else_ops = [op.name for op in if_op.regions[1].block.ops]
    assert then_ops == ["pd.relu", "pd.add", "pd.yield"]  # merged inside its own region
    assert else_ops == ["pd.relu", "pd.yield"]  # never merged with the then region's relu
    assert len(list(if_op.regions[1].block.ops)) == 2


def test_an_op_outside_never_reuses_one_inside_a_region():
    text = IF_MODULE.replace('%outer = "pd.relu"(%x) : (tensor<3xf32>) -> tensor<3xf32>\n', "")
    text = text.replace("func.return %outer, %r, %after", "func.return %after, %r, %after")
    m = run(text)
    block = entry(m).body.block
    after = block.last_op.operands[0]
    assert after.owner.parent_block() is block


def test_ops_in_a_non_isolated_region_reuse_dominating_ops():
    """A region that may read outer values (not IsolatedFromAbove) sees the ops before it."""
    from xdsl.dialects import func
    from xdsl.dialects.builtin import ModuleOp, TensorType, f32
    from xdsl.ir import Block, Region
    from xdsl.irdl import IRDLOperation, irdl_op_definition, region_def

    from tostatic.ops.activation import Relu

    @irdl_op_definition
    class Wrapper(IRDLOperation):  # a stand-in for a region op that is not isolated
        name = "test.wrapper"
        body = region_def()

    t = TensorType(f32, [3])
    block = Block(arg_types=[t])
    (x,) = block.args
    outer = Relu.make([x], {}, [t])
    inner_block = Block()
    inner = Relu.make([x], {}, [t])
    inner_user = Relu.make([inner.results[0]], {}, [t])
    inner_block.add_ops([inner, inner_user])
    wrapper = Wrapper.create(regions=[Region(inner_block)])
    after = Relu.make([x], {}, [t])
    block.add_ops([outer, wrapper, after, func.ReturnOp(outer.results[0], after.results[0])])
    module = ModuleOp([func.FuncOp("f", ([t], [t, t]), Region(block))])
    cse(module)
    assert inner_user.operands[0] is outer.results[0]  # the inner relu reused the outer one
    assert [op.name for op in inner_block.ops] == ["pd.relu"]
    assert block.last_op.operands[1] is outer.results[0]


def test_runs_by_name_in_a_pipeline():
    """`cse` in a pipeline string is this pass: two equal relus become one, two uniform
    draws stay two."""
    from tostatic.passes.base import CompileState
    from tostatic.passes.manager import run_pipeline

    m = Parser(context(), fn(f"""  %a = "pd.relu"(%x) : ({T}) -> {T}
  %b = "pd.relu"(%x) : ({T}) -> {T}
  %r = "pd.uniform"() <{{shape = array<i64: 3>}}> : () -> tensor<3xf32>
  %s = "pd.uniform"() <{{shape = array<i64: 3>}}> : () -> tensor<3xf32>
  func.return %a, %b, %r, %s : {T}, {T}, tensor<3xf32>, tensor<3xf32>""",
                             f"{T}, {T}, tensor<3xf32>, tensor<3xf32>")).parse_module()
    run_pipeline(m, CompileState(), "cse")
    assert ops(m) == ["pd.relu", "pd.uniform", "pd.uniform", "func.return"]
    a, b, r, s = ret(m)
    assert a is b and r is not s
