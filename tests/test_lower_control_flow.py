"""lower-to-program on pd.if / pd.while: the sub-block ops Paddle writes for static.nn.cond and
while_loop, checked against Paddle's own control_flow fixture and, run, against real
paddle.inference and our eager evaluation of the pd function."""
from __future__ import annotations

import re

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Block, Region

from tostatic.dialects.program import ProgramOp
from tostatic.ir import dtypes
from tostatic.ir.opdef import Abstract
from tostatic.ops.activation import Relu, Scale
from tostatic.ops.control_flow import If, Undefined, While, region_block
from tostatic.ops.elementwise import LessThan, Multiply
from tostatic.ops.logical import LogicalNot
from tostatic.passes import raise_control_flow
from tostatic.passes.base import CompileState, entry
from tostatic.ir.attr_keys import INPUT_NAME_ATTR
from tostatic.passes.lower_to_program import lower_function
from tostatic.passes.lowering import hints
from tostatic.passes.manager import run_pipeline
from tostatic.passes.raise_from_program import raise_program
from tostatic.runtime.loaded_model import load_model
from tostatic.runtime.plan import ExecutionPlan
from tostatic.serialization.program_desc import load_program, save_program

import legacy_programs as L
from conftest import (FIXTURES, assert_all_close, describe_program, emit, export_forms,
                      fixture_cases, paddle_predict)

CONTROL_FLOW = FIXTURES / "control_flow"
F23 = Abstract((2, 3), dtypes.float32).tensor_type()
I1 = Abstract((1,), dtypes.int64).tensor_type()
B1 = Abstract((1,), dtypes.bool_).tensor_type()


def lowered_fixture(tmp_path, unfused=False, monkeypatch=None, paddle_form=False):
    """The control_flow fixture raised to pd and lowered again, saved with its params;
    `paddle_form`: without the forms export writes for paddle2onnx (its reduce_all mean
    lists its axes), to compare with Paddle's bytes."""
    if unfused:  # keep conditional_block / select_input as raised, with pd.undefined
        monkeypatch.setattr(raise_control_flow, "fuse_conditional_pairs", lambda block: None)
    module, *_ = raise_program(load_program(CONTROL_FLOW / "model.pdmodel"))
    path = tmp_path / "model.pdmodel"
    with export_forms(enabled=not paddle_form):
        save_program(path, lower_function(entry(module)))
    return path, module


# VarDesc fields lowering derives from the op / the feed as jit.save writes them, where this
# fixture was built by static mode: paddle.full's output has legacy_lod_level, static.data
# marks its feeds need_check_feed and persistable=False
STATIC_MODE_FIELDS = {"x", "n", "fill_constant_1.tmp_0"}


def _described(path):
    """describe_program with each slot's names sorted (Paddle fills while's X / Out from
    Python sets: their order changes with the hash seed) and STATIC_MODE_FIELDS cleared."""
    from tostatic.serialization import framework_pb2 as fpb

    out = describe_program(path)
    prog = fpb.ProgramDesc.FromString(open(path, "rb").read())
    for block in prog.blocks:
        for v in block.vars:
            if v.name in STATIC_MODE_FIELDS:
                v.type.dense_tensor.ClearField("legacy_lod_level")
                v.ClearField("need_check_feed")
                v.ClearField("persistable")
        out[f"vars{block.idx}"] = [v.SerializeToString() for v in block.vars]
        for op in block.ops:
            for slot in (*op.inputs, *op.outputs):
                slot.arguments.sort()
        out[f"slots{block.idx}"] = [[(s.parameter, list(s.arguments))
                                     for s in (*o.inputs, *o.outputs)] for o in block.ops]
        out[f"ops{block.idx}"] = [re.sub(r"(inputs|outputs) \{[^}]*\}", "", text)
                                  for text in out[f"ops{block.idx}"]]
    return out


def test_fixture_lowers_back_to_what_paddle_wrote(tmp_path):
    """Raise then lower keeps Paddle's program: the same blocks, variables (bytes), ops and
    names; only the order inside while's set-built X / Out slots may differ."""
    path, _ = lowered_fixture(tmp_path, paddle_form=True)
    ours, paddles = _described(path), _described(CONTROL_FLOW / "model.pdmodel")
    assert ours == paddles


def test_unfused_form_with_undefined_writes_lone_conditional_blocks(tmp_path, monkeypatch):
    """pd.ifs that yield pd.undefined on their else side become one conditional_block each
    (no select_input of their own): again exactly Paddle's program."""
    path, module = lowered_fixture(tmp_path, unfused=True, monkeypatch=monkeypatch,
                                   paddle_form=True)
    assert "pd.undefined" in {o.name for o in module.walk()}
    ours, paddles = _described(path), _described(CONTROL_FLOW / "model.pdmodel")
    assert ours == paddles


@pytest.mark.parametrize("unfused", [False, True])
def test_lowered_fixture_runs_natively_on_both_branches(tmp_path, monkeypatch, unfused):
    path, _ = lowered_fixture(tmp_path, unfused, monkeypatch)
    model = load_model(str(path), str(CONTROL_FLOW / "model.pdiparams"))
    for _, feeds, expected in fixture_cases("control_flow"):
        assert_all_close(model.run([feeds[n] for n in model.feed_names]), expected)


@pytest.mark.interop
@pytest.mark.parametrize("unfused", [False, True])
def test_lowered_fixture_runs_in_real_paddle_on_both_branches(tmp_path, monkeypatch,
                                                              real_paddle, unfused):
    path, _ = lowered_fixture(tmp_path, unfused, monkeypatch)
    for _, feeds, expected in fixture_cases("control_flow"):
        assert_all_close(paddle_predict(path, CONTROL_FLOW / "model.pdiparams", feeds), expected)


@pytest.mark.interop
def test_load_export_pipelines_round_trip_through_the_command_line(tmp_path, real_paddle):
    """`tostatic opt model.mlir --pipeline load,export`: raise, optimize, lower."""
    from tostatic.cli import main as cli
    from tostatic.dialects.context import parse_ir
    from tostatic.ir.text import print_ir

    src, out = tmp_path / "in.mlir", tmp_path / "out.mlir"
    src.write_text(print_ir(ModuleOp([load_program(CONTROL_FLOW / "model.pdmodel")])))
    assert cli(["opt", str(src), "--pipeline", "load,export", "-o", str(out)]) == 0
    program = next(o for o in parse_ir(out.read_text()).walk() if isinstance(o, ProgramOp))
    program.detach()
    save_program(tmp_path / "m.pdmodel", program)
    for _, feeds, expected in fixture_cases("control_flow"):
        got = paddle_predict(tmp_path / "m.pdmodel", CONTROL_FLOW / "model.pdiparams", feeds)
        assert_all_close(got, expected)


def test_raised_lowered_program_raises_again_to_the_same_function(tmp_path):
    path, first = lowered_fixture(tmp_path)
    again, *_ = raise_program(load_program(path))
    assert _skeleton(again) == _skeleton(first)
    model = load_model(str(path), str(CONTROL_FLOW / "model.pdiparams"))
    for _, feeds, expected in fixture_cases("control_flow"):
        assert_all_close(model.run([feeds[n] for n in model.feed_names]), expected)


def _skeleton(module):
    """Op names, nesting and variable names: what raising makes of a program."""
    return [(o.name, hints(o)) for o in entry(module).walk()]


# --- hand-built pd functions -------------------------------------------------------------------



def function(inputs, build):
    """func.func over named inputs [(name, type)]; `build(block, args)` returns its results."""
    block = Block(arg_types=[t for _, t in inputs])
    outs = build(block, list(block.args))
    block.add_op(func.ReturnOp(*outs))
    fn = func.FuncOp("main", ([t for _, t in inputs], [v.type for v in outs]), Region(block))
    fn.arg_attrs = ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(n)})
                              for n, _ in inputs])
    module = ModuleOp([fn])
    module.verify()
    return module


def relu_or_negate(block, c, x):
    then = region_block([x.type], lambda b, a: [emit(b, Relu, a[0])])
    other = region_block([x.type], lambda b, a: [emit(b, Scale, a[0], scale=-1.0)])
    op = If.new(c, [x], then, other)
    block.add_op(op)
    return op.results[0]


def if_on_feeds(block, args):
    """relu(x) if i < n else -x, and x + 1 (an op after the if)."""
    i, n, x = args
    y = relu_or_negate(block, emit(block, LessThan, i, n), x)
    return [y, emit(block, Scale, y, bias=1.0)]


def counting_loop(block, args):
    """acc = x; while i < n: i += 1; acc *= x. The initial i is a feed and x is both an
    initial value and an invariant: the loop must not write either variable."""
    i0, n, x = args

    def body(b, a):
        _, i, acc, n_, x_ = a
        i2 = emit(b, Scale, i, bias=1.0)
        return [emit(b, LessThan, i2, n_), i2, emit(b, Multiply, acc, x_)]

    loop = While.new([emit(block, LessThan, i0, n), i0, x], [n, x],
                     region_block([B1, I1, F23, I1, F23], body), [B1, I1, F23])
    block.add_op(loop)
    return [loop.results[1], loop.results[2], x]


def if_inside_while(block, args):
    """while i < n: i += 1; x = relu(x) if flag else -x; flag = not flag (flag starts as
    the loop condition: one value as two loop variables)."""
    i0, n, x0 = args
    c0 = emit(block, LessThan, i0, n)
    start = emit(block, Scale, x0, scale=2.0, bias=-3.0)

    def body(b, a):
        _, i, x, flag, n_ = a
        i2 = emit(b, Scale, i, bias=1.0)
        return [emit(b, LessThan, i2, n_), i2, relu_or_negate(b, flag, x),
                emit(b, LogicalNot, flag)]

    loop = While.new([c0, i0, start, c0], [n], region_block([B1, I1, F23, B1, I1], body),
                     [B1, I1, F23, B1])
    block.add_op(loop)
    return [loop.results[2], loop.results[1]]


def swapping_loop(block, args):
    """while i < n: i += 1; (a, b) = (b, a): loop variables moving to other positions (as
    one parallel assignment, the second assign must read a copy of the first one's target),
    and `a`'s initial value read after the loop (so the loop needs a variable of its own)."""
    i0, n, x = args
    a0 = emit(block, Scale, x, scale=1.0)
    b0 = emit(block, Scale, x, scale=0.5)

    def body(b, a):
        _, i, va, vb, n_ = a
        i2 = emit(b, Scale, i, bias=1.0)
        return [emit(b, LessThan, i2, n_), i2, vb, va]

    loop = While.new([emit(block, LessThan, i0, n), i0, a0, b0], [n],
                     region_block([B1, I1, F23, F23, I1], body), [B1, I1, F23, F23])
    block.add_op(loop)
    return [loop.results[2], loop.results[3], emit(block, Scale, a0, scale=3.0)]


def one_sided_if(block, args):
    """if i < n: y = relu(x) (else y is undefined), then y read only where it is defined:
    the result of a raised lone conditional_block, guarded by a second if."""
    i, n, x = args
    c = emit(block, LessThan, i, n)
    then = region_block([F23], lambda b, a: [emit(b, Relu, a[0])])

    def undefined(b, a):
        u = Undefined.make([], {}, [F23])
        b.add_op(u)
        return [u.results[0]]

    first = If.new(c, [x], then, region_block([F23], undefined))
    block.add_op(first)
    guarded = If.new(c, [first.results[0], x],
                     region_block([F23, F23], lambda b, a: [emit(b, Scale, a[0], bias=1.0)]),
                     region_block([F23, F23], lambda b, a: [a[1]]))
    block.add_op(guarded)
    return [guarded.results[0]]


INPUTS = [("i", I1), ("n", I1), ("x", F23)]
X = np.array([[-1.5, 2.0, 0.25], [3.0, -0.5, 1.0]], np.float32)
CASES = {"if": if_on_feeds, "while": counting_loop, "if_in_while": if_inside_while,
         "swap": swapping_loop, "one_sided_if": one_sided_if}


def _i(k):
    return np.array([k], np.int64)


def _alternate(x, trips):
    """relu on the first trip, negate on the second, ... (flag starts true, then flips)."""
    for k in range(trips):
        x = np.maximum(x, 0) if k % 2 == 0 else -x
    return x


# What each case computes with i = 0, the given n and x = X, in numpy (loops from i = 0 to n
# run max(n, 0) times).
REFERENCE = {
    "if": lambda n: [np.maximum(X, 0), np.maximum(X, 0) + 1] if n > 0 else [-X, -X + 1],
    "while": lambda n: [_i(max(n, 0)), X ** (max(n, 0) + 1), X],
    "if_in_while": lambda n: [_alternate(X * 2 - 3, max(n, 0)), _i(max(n, 0))],
    "swap": lambda n: [X * 0.5, X, X * 3] if n % 2 else [X, X * 0.5, X * 3],
    "one_sided_if": lambda n: [np.maximum(X, 0) + 1 if n > 0 else X],
}


def _feeds(n):
    return {"i": np.array([0]), "n": np.array([n]), "x": X}


def _lower_and_run(tmp_path, build, n):
    """(eager results of the pd function, lowered program's native results, its path)."""
    module = function(INPUTS, build)
    feeds = _feeds(n)
    eager = ExecutionPlan(entry(module), {}).run(list(feeds.values()))
    path = tmp_path / "m.pdmodel"
    save_program(path, lower_function(entry(module)))
    native = load_model(str(path), None).run(list(feeds.values()))
    return eager, native, path


@pytest.mark.parametrize("n", [0, 1, 4])  # n = 0: the if's else branch, loops run zero times
@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_built_control_flow_lowers_and_runs_natively(tmp_path, case, n):
    """The pd function (evaluated by the execution plan) and its lowered program (loaded and
    run natively) both compute what numpy does."""
    eager, native, _ = _lower_and_run(tmp_path, CASES[case], n)
    want = REFERENCE[case](n)
    assert_all_close(eager, want)
    assert_all_close(native, want)


@pytest.mark.interop
@pytest.mark.parametrize("n", [0, 1, 4])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_built_control_flow_matches_real_paddle(tmp_path, real_paddle, case, n):
    _, _, path = _lower_and_run(tmp_path, CASES[case], n)
    assert_all_close(paddle_predict(path, None, _feeds(n)), REFERENCE[case](n))


def test_swapping_loop_copies_its_initial_value():
    """swap's loop body: assigns for i, the copy of a's initial value, a, b, the condition."""
    body = lower_function(entry(function(INPUTS, swapping_loop))).blocks[1]
    assert [o.op_type for o in body.ops].count("assign") == 5


def test_what_the_lowered_ops_are():
    """cond's pattern for an if; for a loop: copies of the initial values it may not write,
    a while whose body assigns back (condition last), STEP_SCOPES in the parent."""
    program = lower_function(entry(function(INPUTS, if_on_feeds)))
    ops = [o.op_type for o in program.blocks[0].ops]
    assert ops[ops.index("conditional_block"):ops.index("select_input") + 1] == [
        "conditional_block", "logical_not", "conditional_block", "cast", "select_input"]
    assert [o.op_type for o in program.blocks[1].ops] == ["relu", "assign"]
    assert [b.parent_idx for b in program.blocks] == [-1, 0, 0]

    program = lower_function(entry(function(INPUTS, counting_loop)))
    block0, body = program.blocks
    loop = next(o for o in block0.ops if o.op_type == "while")
    # i (a feed) and x (also an invariant, and returned) are copied; the condition is not
    assert [o.op_type for o in block0.ops if o.op_type != "feed"][:4] == [
        "less_than", "assign", "assign", "while"]
    assert block0.var(loop.output("StepScopes")[0]).var_type == "STEP_SCOPES"
    assert loop.attr("is_test") is True
    assert [o.op_type for o in body.ops][-3:] == ["assign", "assign", "assign"]
    assert body.ops[-1].output("Out") == loop.input("Condition")
    assert set(loop.output("Out")) == {o.output("Out")[0] for o in body.ops[-3:]}
    assert "x" not in loop.output("Out") and "i" not in loop.output("Out")


def test_if_inside_while_nests_its_blocks_in_the_body():
    """Blocks numbered in creation order (the loop body, then the if's two blocks inside it);
    the if's STEP_SCOPES and copies live in the body, what it reads is part of while's X."""
    program = lower_function(entry(function(INPUTS, if_inside_while)))
    assert [(b.idx, b.parent_idx) for b in program.blocks] == [(0, -1), (1, 0), (2, 1), (3, 1)]
    body = program.blocks[1]
    branches = [o for o in body.ops if o.has_attr("sub_block")]
    assert [o.op_type for o in branches] == ["conditional_block", "conditional_block"]
    assert all(body.var(o.output("Scope")[0]).var_type == "STEP_SCOPES" for o in branches)
    assert all(body.var(o.output("Out")[0]) is not None for o in branches)
    loop = next(o for o in program.blocks[0].ops if o.op_type == "while")
    assert branches[0].input("Input") and set(branches[0].input("Input")) <= set(loop.input("X"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_lowered_hand_built_program_raises_to_an_equivalent_function(tmp_path, case):
    _, _, path = _lower_and_run(tmp_path, CASES[case], 2)
    module, *_ = raise_program(load_program(path))
    module.verify()
    for n in (0, 2, 3):
        again = ExecutionPlan(entry(module), {}).run(list(_feeds(n).values()))
        assert_all_close(again, REFERENCE[case](n))


@pytest.mark.interop
@pytest.mark.parametrize("program,feeds", [
    (L.lone_conditional_block, [{"x": X[:, :2].repeat(2, 1)}, {"x": -X[:, :2].repeat(2, 1)}]),
    (L.transposing_loop, [{"x": X, "n": np.array([k])} for k in (0, 1, 2)]),
])
def test_hand_written_paddle_programs_survive_raise_and_lower(tmp_path, real_paddle, program,
                                                              feeds):
    """A lone conditional_block (its else keeps the previous value) and a loop over a fed
    variable whose shape changes, raised and lowered: the same results as Paddle's run of the
    original."""
    original = tmp_path / "original.pdmodel"
    save_program(original, program())
    module, *_ = raise_program(load_program(original))
    path = tmp_path / "lowered.pdmodel"
    save_program(path, lower_function(entry(module)))
    for f in feeds:
        want = paddle_predict(original, None, f)
        for got in (load_model(str(path), None).run(list(f.values())),
                    paddle_predict(path, None, f)):
            assert_all_close(got, want)


def test_programs_without_regions_lower_as_before():
    """No sub-block, no STEP_SCOPES: the region-less path is the one
    test_export_matches_paddle checks byte for byte."""
    module = function(INPUTS, lambda b, a: [emit(b, Scale, a[2], scale=2.0)])
    program = lower_function(entry(module))
    assert len(program.blocks) == 1
    assert all(v.var_type != "STEP_SCOPES" for v in program.blocks[0].vars)


def test_pipelines_with_regions_still_lower(tmp_path):
    """The export pipeline (canonicalize, folding, CSE, DCE) before lowering."""
    module = function(INPUTS, if_inside_while)
    run_pipeline(module, CompileState(), "default,lower-to-program")
    program = next(o for o in module.body.block.ops if isinstance(o, ProgramOp))
    path = tmp_path / "m.pdmodel"
    program.detach()
    save_program(path, program)
    feeds = list(_feeds(3).values())
    assert_all_close(load_model(str(path), None).run(feeds), REFERENCE["if_in_while"](3))
