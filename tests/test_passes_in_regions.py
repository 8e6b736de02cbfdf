"""The optimisation passes work inside the regions of pd.if / pd.while: textual IR through
`tostatic opt` and the pass manager, with hand-computed expectations, and the program gives
the same numbers before and after."""
from __future__ import annotations

import numpy as np
import pytest
from xdsl.irdl import region_def
from xdsl.traits import (IsolatedFromAbove, MemoryEffect, Pure, RecursiveMemoryEffect,
                         get_effects, is_side_effect_free)

from tostatic.cli import main as cli
from tostatic.dialects.context import parse_ir
from tostatic.ops.control_flow import If, While
from tostatic.ops.core import Constant, dense_to_array
from tostatic.passes.base import entry
from tostatic.passes.manager import PassManager
from tostatic.runtime.plan import ExecutionPlan

F2 = "tensor<2xf32>"
S = "tensor<f32>"
B = "tensor<i1>"


def run(module, *arrays):
    return ExecutionPlan(entry(module), {}).run([np.asarray(a) for a in arrays])


def optimise(text: str, pipeline: str):
    module = parse_ir(text)
    PassManager(pipeline, verify="each").run(module)
    return module


def names(block) -> list[str]:
    return [op.name for op in block.ops]


def region_op(module, cls):
    (op,) = [o for o in module.walk() if isinstance(o, cls)]
    return op


def value_of(v) -> np.ndarray:
    assert isinstance(v.owner, Constant), v.owner.name
    return dense_to_array(v.owner.attr_values()["value"])


# if c: (x * ((1 + [2, 3]) * k)) else: x - k   with k = [10, 20] defined outside
IF_TEXT = f"""func.func @main(%c: {B}, %x: {F2}) -> {F2} {{
  %k = "pd.constant"() <{{value = dense<[10.0, 20.0]> : {F2}}}> : () -> {F2}
  %r = "pd.if"(%c, %x, %k) ({{
  ^bb0(%a: {F2}, %ka: {F2}):
    %dead = "pd.relu"(%a) : ({F2}) -> {F2}
    %one = "pd.constant"() <{{value = dense<1.0> : {F2}}}> : () -> {F2}
    %two = "pd.constant"() <{{value = dense<[2.0, 3.0]> : {F2}}}> : () -> {F2}
    %s = "pd.add"(%one, %two) : ({F2}, {F2}) -> {F2}
    %t = "pd.multiply"(%s, %ka) : ({F2}, {F2}) -> {F2}
    %y = "pd.multiply"(%a, %t) : ({F2}, {F2}) -> {F2}
    "pd.yield"(%y) : ({F2}) -> ()
  }}, {{
  ^bb1(%b: {F2}, %kb: {F2}):
    %z = "pd.subtract"(%b, %kb) : ({F2}, {F2}) -> {F2}
    "pd.yield"(%z) : ({F2}) -> ()
  }}) : ({B}, {F2}, {F2}) -> {F2}
  func.return %r : {F2}
}}"""


def test_opt_folds_and_drops_dead_ops_inside_an_if(tmp_path, capsys):
    src = tmp_path / "if.mlir"
    src.write_text(IF_TEXT)
    assert cli(["opt", str(src), "--pipeline", "constant-folding,dead-op-elimination"]) == 0
    m = parse_ir(capsys.readouterr().out)
    op = region_op(m, If)
    then, other = op.regions[0].block, op.regions[1].block
    # relu is dead; 1 + [2, 3] = [3, 4], and * k (an argument holding [10, 20]) = [30, 80]
    assert names(then) == ["pd.constant", "pd.multiply", "pd.yield"]
    np.testing.assert_array_equal(value_of(then.first_op.results[0]), [30.0, 80.0])
    assert names(other) == ["pd.subtract", "pd.yield"]  # x - k: x is not known
    assert names(entry(m).body.block) == ["pd.constant", "pd.if", "func.return"]  # k stays
    x = np.array([1.0, 2.0], np.float32)
    before = parse_ir(IF_TEXT)
    for c, want in ((True, [30.0, 160.0]), (False, [-9.0, -18.0])):
        np.testing.assert_array_equal(run(before, np.array(c), x)[0], want)
        np.testing.assert_array_equal(run(m, np.array(c), x)[0], want)


# acc = x; i = 0; while i < n: acc = acc + 2 * i + step * 2; i = i + 1
# with step = 0.5 and n = 3 loop invariants: acc = x + (0 + 1) + (2 + 1) + (4 + 1) = x + 9
WHILE_TEXT = f"""func.func @main(%x: {F2}) -> {F2} {{
  %i0 = "pd.constant"() <{{value = dense<0.0> : {S}}}> : () -> {S}
  %n = "pd.constant"() <{{value = dense<3.0> : {S}}}> : () -> {S}
  %step = "pd.constant"() <{{value = dense<0.5> : {S}}}> : () -> {S}
  %c0 = "pd.less_than"(%i0, %n) : ({S}, {S}) -> {B}
  %c, %i, %acc = "pd.while"(%c0, %i0, %x, %step, %n) ({{
  ^bb0(%cc: {B}, %ii: {S}, %aa: {F2}, %st: {S}, %nn: {S}):
    %dead = "pd.exp"(%aa) : ({F2}) -> {F2}
    %one = "pd.constant"() <{{value = dense<1.0> : {S}}}> : () -> {S}
    %two = "pd.constant"() <{{value = dense<2.0> : {S}}}> : () -> {S}
    %s2 = "pd.multiply"(%st, %two) : ({S}, {S}) -> {S}
    %i2x = "pd.multiply"(%ii, %two) : ({S}, {S}) -> {S}
    %a1 = "pd.add"(%aa, %i2x) : ({F2}, {S}) -> {F2}
    %a2 = "pd.add"(%a1, %s2) : ({F2}, {S}) -> {F2}
    %inext = "pd.add"(%ii, %one) : ({S}, {S}) -> {S}
    %cnext = "pd.less_than"(%inext, %nn) : ({S}, {S}) -> {B}
    "pd.yield"(%cnext, %inext, %a2) : ({B}, {S}, {F2}) -> ()
  }}) : ({B}, {S}, {F2}, {S}, {S}) -> ({B}, {S}, {F2})
  func.return %acc : {F2}
}}"""


def test_while_folds_loop_invariants_but_never_loop_carried_state():
    m = optimise(WHILE_TEXT, "constant-folding,dead-op-elimination")
    body = region_op(m, While).regions[0].block
    # step * 2 folds (step is an invariant: 0.5 on every run); i * 2 must not (i changes);
    # exp is dead
    assert names(body) == ["pd.constant", "pd.constant", "pd.constant", "pd.multiply",
                           "pd.add", "pd.add", "pd.add", "pd.less_than", "pd.yield"]
    folded = list(body.ops)[2]
    np.testing.assert_array_equal(value_of(folded.results[0]), 1.0)
    # the condition before the loop (0 < 3) folds outside; step, read by no op in the body
    # any more, is no operand of the loop any more, and its constant is gone
    loop = region_op(m, While)
    outer = entry(m).body.block
    assert names(outer) == ["pd.constant", "pd.constant", "pd.constant", "pd.while",
                            "func.return"]
    assert [value_of(v).item() for v in loop.operands if v.owner.parent is outer] == \
        [True, 0.0, 3.0]  # cond, i0, n (x is the function's argument)
    assert [a.name_hint for a in body.args] == ["cc", "ii", "aa", "nn"]
    x = np.array([1.0, -1.0], np.float32)
    np.testing.assert_array_equal(run(parse_ir(WHILE_TEXT), x)[0], x + 9)
    np.testing.assert_array_equal(run(m, x)[0], x + 9)


def test_a_loop_of_known_values_folds_whole():
    text = WHILE_TEXT.replace(f"%x: {F2}) -> {F2} {{", f") -> {F2} {{\n"
                              f'  %x = "pd.constant"() <{{value = dense<[1.0, -1.0]> : {F2}}}>'
                              f" : () -> {F2}")
    m = optimise(text, "constant-folding,dead-op-elimination")
    assert names(entry(m).body.block) == ["pd.constant", "func.return"]
    np.testing.assert_array_equal(run(m)[0], [10.0, 8.0])


def test_canonicalize_reads_literals_through_region_arguments_too():
    """x * k with k = 1 outside the if: the branch returns x itself (as constant-folding
    reads the same argument as known); a loop-carried 1 is no literal."""
    text = f"""func.func @main(%c: {B}, %x: {F2}) -> {F2} {{
  %k = "pd.full"() <{{shape = array<i64: 2>, value = 1.0 : f64}}> : () -> {F2}
  %r = "pd.if"(%c, %x, %k) ({{
  ^bb0(%a: {F2}, %ka: {F2}):
    %y = "pd.multiply"(%a, %ka) : ({F2}, {F2}) -> {F2}
    %z = "pd.add"(%y, %y) : ({F2}, {F2}) -> {F2}
    "pd.yield"(%z) : ({F2}) -> ()
  }}, {{
  ^bb1(%b: {F2}, %kb: {F2}):
    %n1 = "pd.neg"(%b) : ({F2}) -> {F2}
    %n2 = "pd.neg"(%n1) : ({F2}) -> {F2}
    "pd.yield"(%n2) : ({F2}) -> ()
  }}) : ({B}, {F2}, {F2}) -> {F2}
  func.return %r : {F2}
}}"""
    m = optimise(text, "canonicalize,dead-op-elimination")
    op = region_op(m, If)
    then, other = op.regions[0].block, op.regions[1].block
    assert names(then) == ["pd.add", "pd.yield"]
    assert list(then.first_op.operands) == [then.args[0], then.args[0]]  # x + x
    assert names(other) == ["pd.yield"] and other.last_op.operands[0] is other.args[0]
    x = np.array([1.5, -2.0], np.float32)
    for c, want in ((True, 2 * x), (False, x)):
        np.testing.assert_array_equal(run(parse_ir(text), np.array(c), x)[0], want)
        np.testing.assert_array_equal(run(m, np.array(c), x)[0], want)

    # in a loop: an invariant 1 is a literal, a loop-carried value that starts at 1 is not
    loop_text = f"""func.func @main(%x: {F2}) -> {F2} {{
  %one = "pd.full"() <{{shape = array<i64: 2>, value = 1.0 : f64}}> : () -> {F2}
  %t = "pd.constant"() <{{value = dense<true> : {B}}}> : () -> {B}
  %c, %v = "pd.while"(%t, %one, %x, %one) ({{
  ^bb0(%cc: {B}, %vv: {F2}, %xx: {F2}, %o: {F2}):
    %y = "pd.multiply"(%xx, %vv) : ({F2}, {F2}) -> {F2}
    %z = "pd.multiply"(%y, %o) : ({F2}, {F2}) -> {F2}
    %f = "pd.logical_not"(%cc) : ({B}) -> {B}
    "pd.yield"(%f, %z) : ({B}, {F2}) -> ()
  }}) : ({B}, {F2}, {F2}, {F2}) -> ({B}, {F2})
  func.return %v : {F2}
}}"""
    loop = optimise(loop_text, "canonicalize")
    body = region_op(loop, While).regions[0].block
    assert names(body) == ["pd.multiply", "pd.logical_not", "pd.yield"]
    assert list(body.first_op.operands) == [body.args[2], body.args[1]]  # x * v stays
    assert body.last_op.operands[1] is body.first_op.results[0]  # (x * v) * 1 -> x * v
    np.testing.assert_array_equal(run(loop, x)[0], x)


# dead region ops: an unused pure if goes whole; a loop holding a random draw stays (and
# loses its own dead ops); an if holding an if holding a random draw stays too
EFFECTS_TEXT = f"""func.func @main(%c: {B}, %x: {F2}) -> {F2} {{
  %unused = "pd.if"(%c, %x, %c) ({{
  ^bb0(%a: {F2}, %ca: {B}):
    %inner = "pd.if"(%ca, %a) ({{
    ^bb1(%a2: {F2}):
      %r2 = "pd.relu"(%a2) : ({F2}) -> {F2}
      "pd.yield"(%r2) : ({F2}) -> ()
    }}, {{
    ^bb2(%b2: {F2}):
      "pd.yield"(%b2) : ({F2}) -> ()
    }}) : ({B}, {F2}) -> {F2}
    "pd.yield"(%inner) : ({F2}) -> ()
  }}, {{
  ^bb3(%b: {F2}, %cb: {B}):
    "pd.yield"(%b) : ({F2}) -> ()
  }}) : ({B}, {F2}, {B}) -> {F2}
  %noisy = "pd.if"(%c, %x, %c) ({{
  ^bb4(%a: {F2}, %ca: {B}):
    %inner = "pd.if"(%ca, %a) ({{
    ^bb5(%a2: {F2}):
      %u = "pd.uniform"() <{{shape = array<i64: 2>}}> : () -> {F2}
      "pd.yield"(%u) : ({F2}) -> ()
    }}, {{
    ^bb6(%b2: {F2}):
      "pd.yield"(%b2) : ({F2}) -> ()
    }}) : ({B}, {F2}) -> {F2}
    %d = "pd.relu"(%a) : ({F2}) -> {F2}
    "pd.yield"(%inner) : ({F2}) -> ()
  }}, {{
  ^bb7(%b: {F2}, %cb: {B}):
    "pd.yield"(%b) : ({F2}) -> ()
  }}) : ({B}, {F2}, {B}) -> {F2}
  %cl, %xl = "pd.while"(%c, %x) ({{
  ^bb8(%cc: {B}, %xx: {F2}):
    %g = "pd.gaussian"() <{{shape = array<i64: 2>}}> : () -> {F2}
    %dd = "pd.exp"(%g) : ({F2}) -> {F2}
    %no = "pd.logical_not"(%cc) : ({B}) -> {B}
    "pd.yield"(%no, %xx) : ({B}, {F2}) -> ()
  }}) : ({B}, {F2}) -> ({B}, {F2})
  func.return %x : {F2}
}}"""


def test_dead_region_ops_go_unless_an_op_inside_has_effects():
    m = parse_ir(EFFECTS_TEXT)
    unused, noisy = [op for op in entry(m).body.block.ops if isinstance(op, If)]
    loop = region_op(m, While)
    # the effects as xDSL reads them: RecursiveMemoryEffect over the ops inside
    assert is_side_effect_free(unused)
    assert get_effects(noisy) is None and get_effects(loop) is None
    assert noisy.EFFECTS and loop.EFFECTS and not unused.EFFECTS
    PassManager("dead-op-elimination", verify="each").run(m)
    assert names(entry(m).body.block) == ["pd.if", "pd.while", "func.return"]
    assert noisy.parent is not None and loop.parent is not None
    then = noisy.regions[0].block
    assert names(then) == ["pd.if", "pd.yield"]  # its dead relu went, the nested if stays
    assert names(loop.regions[0].block) == ["pd.gaussian", "pd.logical_not", "pd.yield"]
    x = np.array([1.0, 2.0], np.float32)
    np.testing.assert_array_equal(run(m, np.array(True), x)[0], x)


def test_effects_are_declared_by_the_effects_flag_alone():
    """pd_op turns EFFECTS into xDSL traits: Pure without, unknown effects with, also for an
    op defined after the dialect (as new ops are)."""
    from tostatic.ir.opdef import REGISTRY, Abstract, EffectsOfInstance, PdOp, pd_op
    from tostatic.ops.control_flow import RegionOp, Undefined, Yield
    from tostatic.ops.creation import GaussianRandom, UniformRandom
    from tostatic.ops.elementwise import Add

    assert Add.has_trait(Pure) and Yield.has_trait(Pure)  # a terminator stays all the same
    for cls in (UniformRandom, GaussianRandom, Undefined):
        assert not cls.has_trait(Pure)
    for name, cls in REGISTRY.items():  # the flag passes read and the trait xDSL reads agree
        effects = cls.get_traits_of_type(MemoryEffect)
        if isinstance(cls.EFFECTS, bool):
            assert effects == ([] if cls.EFFECTS else [Pure()]), name
        else:  # a property: the op decides
            assert effects == ([RecursiveMemoryEffect()] if issubclass(cls, RegionOp)
                               else [EffectsOfInstance()]), name

    @pd_op
    class Draw(PdOp):
        name = "test.draw"
        EFFECTS = True
        infer = staticmethod(lambda: Abstract((2,), None))
        eager = staticmethod(lambda: np.random.rand(2))

    @pd_op
    class Twice(PdOp):
        name = "test.twice"
        INPUTS = ("x",)
        infer = staticmethod(lambda x: x)
        eager = staticmethod(lambda x: 2 * x)

    @pd_op
    class Noisy(RegionOp):  # an op with regions that has effects of its own
        name = "test.noisy"
        INPUTS = ("*args",)
        EFFECTS = True
        body = region_def("single_block")

    try:
        assert not Draw.get_traits_of_type(MemoryEffect) and Twice.has_trait(Pure)
        assert not Noisy.get_traits_of_type(MemoryEffect)
        assert Noisy.has_trait(IsolatedFromAbove)  # what it declares itself stays
    finally:
        for name in ("test.draw", "test.twice", "test.noisy"):
            REGISTRY.pop(name)


@pytest.mark.parametrize("pipeline", ["default", "canonicalize,constant-folding,cse,"
                                      "dead-op-elimination,canonicalize,dead-op-elimination"])
def test_every_pass_together_keeps_the_numbers(pipeline):
    for text, args in ((IF_TEXT, (np.array(True), np.array([1.0, 2.0], np.float32))),
                       (IF_TEXT, (np.array(False), np.array([1.0, 2.0], np.float32))),
                       (WHILE_TEXT, (np.array([3.0, 4.0], np.float32),))):
        want = run(parse_ir(text), *args)
        got = run(optimise(text, pipeline), *args)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_cse_and_max_see_arguments_holding_one_value_as_one():
    """if c: relu(a) + relu(b) with a and b both x: one relu, and max(a, b) is a; in a loop,
    two invariants holding x are one value too, but a loop-carried value that starts as x
    is not x."""
    text = f"""func.func @main(%c: {B}, %x: {F2}) -> ({F2}, {F2}) {{
  %r = "pd.if"(%c, %x, %x) ({{
  ^bb0(%a: {F2}, %b: {F2}):
    %ra = "pd.relu"(%a) : ({F2}) -> {F2}
    %rb = "pd.relu"(%b) : ({F2}) -> {F2}
    %s = "pd.add"(%ra, %rb) : ({F2}, {F2}) -> {F2}
    "pd.yield"(%s) : ({F2}) -> ()
  }}, {{
  ^bb1(%a1: {F2}, %b1: {F2}):
    %m = "pd.maximum"(%a1, %b1) : ({F2}, {F2}) -> {F2}
    "pd.yield"(%m) : ({F2}) -> ()
  }}) : ({B}, {F2}, {F2}) -> {F2}
  %cl, %v = "pd.while"(%c, %x, %x, %x) ({{
  ^bb2(%cc: {B}, %vv: {F2}, %i1: {F2}, %i2: {F2}):
    %e1 = "pd.exp"(%i1) : ({F2}) -> {F2}
    %e2 = "pd.exp"(%i2) : ({F2}) -> {F2}
    %ev = "pd.exp"(%vv) : ({F2}) -> {F2}
    %t = "pd.add"(%e1, %e2) : ({F2}, {F2}) -> {F2}
    %u = "pd.add"(%t, %ev) : ({F2}, {F2}) -> {F2}
    %f = "pd.logical_not"(%cc) : ({B}) -> {B}
    "pd.yield"(%f, %u) : ({B}, {F2}) -> ()
  }}) : ({B}, {F2}, {F2}, {F2}) -> ({B}, {F2})
  func.return %r, %v : {F2}, {F2}
}}"""
    m = optimise(text, "cse,canonicalize")
    op = region_op(m, If)
    then, other = op.regions[0].block, op.regions[1].block
    assert names(then) == ["pd.relu", "pd.add", "pd.yield"]
    assert names(other) == ["pd.yield"] and other.last_op.operands[0] is other.args[0]
    body = region_op(m, While).regions[0].block
    assert names(body).count("pd.exp") == 2  # exp(i1) = exp(i2), exp(v) apart
    x = np.array([0.5, -1.0], np.float32)
    for c in (True, False):
        want = run(parse_ir(text), np.array(c), x)
        got = run(m, np.array(c), x)
        np.testing.assert_allclose(want[0], 2 * np.maximum(x, 0) if c else x)
        np.testing.assert_allclose(want[1], 3 * np.exp(x) if c else x, rtol=1e-6)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("text", [IF_TEXT, EFFECTS_TEXT], ids=["if", "effects"])
def test_one_backward_sweep_removes_what_xdsls_liveness_dce_removes(text):
    """dead-op-elimination is one backward sweep (enough for single-block regions); xDSL's
    region_dce iterates liveness to a fixed point: on our IR they agree (where no region
    argument falls unused: region_dce keeps those, and what feeds them)."""
    from xdsl.transforms.dead_code_elimination import region_dce

    from tostatic.ir.text import print_ir

    ours = optimise(text, "constant-folding")
    theirs = ours.clone()
    PassManager("dead-op-elimination", verify="each").run(ours)
    region_dce(theirs.body)
    assert print_ir(ours) == print_ir(theirs)
    assert print_ir(ours) != print_ir(optimise(text, "constant-folding"))  # it did remove


def test_region_arguments_nobody_reads_go_with_their_operands():
    """if c (p, q, r): p is read by neither region, q by one; while (state v; invariants
    s, t): s is read by no op of the body, t is. p and s go, with what computed them;
    loop-carried state stays even when unread."""
    text = f"""func.func @main(%c: {B}, %x: {F2}) -> ({F2}, {F2}) {{
  %p = "pd.relu"(%x) : ({F2}) -> {F2}
  %q = "pd.exp"(%x) : ({F2}) -> {F2}
  %r = "pd.if"(%c, %p, %q, %x) ({{
  ^bb0(%p1: {F2}, %q1: {F2}, %x1: {F2}):
    %d = "pd.add"(%p1, %x1) : ({F2}, {F2}) -> {F2}
    "pd.yield"(%x1) : ({F2}) -> ()
  }}, {{
  ^bb1(%p2: {F2}, %q2: {F2}, %x2: {F2}):
    "pd.yield"(%q2) : ({F2}) -> ()
  }}) : ({B}, {F2}, {F2}, {F2}) -> {F2}
  %s = "pd.sigmoid"(%x) : ({F2}) -> {F2}
  %cl, %v, %w = "pd.while"(%c, %x, %x, %s, %x) ({{
  ^bb2(%cc: {B}, %vv: {F2}, %ww: {F2}, %ss: {F2}, %tt: {F2}):
    %f = "pd.logical_not"(%cc) : ({B}) -> {B}
    %v2 = "pd.add"(%vv, %tt) : ({F2}, {F2}) -> {F2}
    "pd.yield"(%f, %v2, %ww) : ({B}, {F2}, {F2}) -> ()
  }}) : ({B}, {F2}, {F2}, {F2}, {F2}) -> ({B}, {F2}, {F2})
  func.return %r, %v : {F2}, {F2}
}}"""
    m = optimise(text, "dead-op-elimination")
    outer = entry(m).body.block
    assert names(outer) == ["pd.exp", "pd.if", "pd.while", "func.return"]
    args = entry(m).body.block.args
    if_op, loop = region_op(m, If), region_op(m, While)
    assert list(if_op.operands) == [args[0], outer.first_op.results[0], args[1]]
    assert [len(r.block.args) for r in if_op.regions] == [2, 2]
    assert names(if_op.regions[0].block) == ["pd.yield"]  # the dead add went first
    assert list(loop.operands) == [args[0], args[1], args[1], args[1]]  # c, v, w; t
    assert [a.name_hint for a in loop.body.block.args] == ["cc", "vv", "ww", "tt"]
    x = np.array([0.5, -1.0], np.float32)
    for c in (True, False):
        want = run(parse_ir(text), np.array(c), x)
        np.testing.assert_allclose(want[0], x if c else np.exp(x))
        np.testing.assert_allclose(want[1], 2 * x if c else x)
        for g, w in zip(run(m, np.array(c), x), want, strict=True):
            np.testing.assert_array_equal(g, w)


@pytest.mark.interop
@pytest.mark.parametrize("case", ["if-true", "if-false", "while"])
def test_optimised_regions_lower_and_run_in_real_paddle(tmp_path, real_paddle, case):
    """What the default pipeline leaves of a region lowers to sub-blocks paddle.inference
    runs with the hand-computed results. (A loop invariant left as an operand that its body
    no longer reads would lower to a fill_constant nothing reads, on which Paddle 3.3.1's
    inference analysis crashes: dead-op-elimination drops such operands.)"""
    from conftest import paddle_predict

    from tostatic.dialects.program import ProgramOp
    from tostatic.serialization.program_desc import save_program

    x = np.array([1.0, 2.0], np.float32)
    text, feeds, want = {
        "if-true": (IF_TEXT, [np.array(True), x], [30.0, 160.0]),
        "if-false": (IF_TEXT, [np.array(False), x], [-9.0, -18.0]),
        "while": (WHILE_TEXT, [x], x + 9),
    }[case]
    m = optimise(text, "default,lower-to-program")
    (program,) = [op for op in m.body.block.ops if isinstance(op, ProgramOp)]
    program.detach()
    save_program(tmp_path / "m.pdmodel", program)
    got = paddle_predict(tmp_path / "m.pdmodel", None,
                         {f"feed_{i}": a for i, a in enumerate(feeds)})
    assert len(got) == 1
    np.testing.assert_array_equal(got[0], want)


def test_an_op_whose_attributes_decide_its_effects():
    """pd.dropout has effects in training only (its EFFECTS is a property): an unused
    training dropout stays (it draws from the generator), an unused is_test one goes."""
    text = f"""func.func @main(%x: {F2}) -> {F2} {{
  %a, %am = "pd.dropout"(%x) <{{is_test = false}}> : ({F2}) -> ({F2}, tensor<2xui8>)
  %b, %bm = "pd.dropout"(%x) <{{is_test = true}}> : ({F2}) -> ({F2}, tensor<2xui8>)
  func.return %x : {F2}
}}"""
    m = parse_ir(text)
    train, infer = [op for op in entry(m).body.block.ops if op.name == "pd.dropout"]
    assert train.EFFECTS and get_effects(train) is None
    assert not infer.EFFECTS and is_side_effect_free(infer)
    PassManager("dead-op-elimination", verify="each").run(m)
    assert [op for op in entry(m).body.block.ops if op.name == "pd.dropout"] == [train]
