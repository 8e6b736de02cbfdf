"""pd.if / pd.while on small hand-built IR: semantics (eager and the execution plan), text
round trip, verifier, and what the passes may and may not do to ops with regions."""
from __future__ import annotations

import io

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Region
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from tostatic.dialects.context import context
from tostatic.ir import dtypes
from tostatic.ir.opdef import Abstract
from tostatic.ops.activation import Relu, Scale
from tostatic.ops.control_flow import If, SelectInput, Undefined, While, region_block
from tostatic.ops.creation import UniformRandom
from tostatic.ops.elementwise import LessThan, Multiply
from tostatic.ops.logical import LogicalNot
from tostatic.passes.base import CompileState
from tostatic.passes.manager import run_pipeline
from tostatic.runtime.plan import ExecutionPlan

from conftest import emit

F2 = Abstract((2,), dtypes.float32).tensor_type()
I1 = Abstract((1,), dtypes.int64).tensor_type()
B0 = Abstract((), dtypes.bool_).tensor_type()
B1 = Abstract((1,), dtypes.bool_).tensor_type()




def function(arg_types, build):
    """A module with one func.func(arg_types) whose body `build(block, args)` fills."""
    block = Block(arg_types=arg_types)
    outs = build(block, list(block.args))
    block.add_op(func.ReturnOp(*outs))
    fn = func.FuncOp("main", (list(arg_types), [v.type for v in outs]), Region(block))
    return ModuleOp([fn])


def run(module, *arrays):
    return ExecutionPlan(module.body.block.first_op, {}).run(list(arrays))


def relu_or_negate(block, args):
    """if c { relu(x) } else { -x }"""
    c, x = args
    then = region_block([F2], lambda b, a: [emit(b, Relu, a[0])])
    other = region_block([F2], lambda b, a: [emit(b, Scale, a[0], scale=-1.0)])
    op = If.new(c, [x], then, other)
    block.add_op(op)
    return list(op.results)


def counting_loop(block, args):
    """i = 0; acc = x; while i < n: i += 1; acc = acc * x  -> (i, acc)"""
    i0, n, x = args
    c0 = emit(block, LessThan, i0, n)

    def body(b, a):
        _, i, acc, n_, x_ = a
        i2 = emit(b, Scale, i, bias=1.0)
        return [emit(b, LessThan, i2, n_), i2, emit(b, Multiply, acc, x_)]

    loop = While.new([c0, i0, x], [n, x], region_block([B1, I1, F2, I1, F2], body), [B1, I1, F2])
    block.add_op(loop)
    return list(loop.results[1:])


X = np.array([-1.5, 2.0], np.float32)


@pytest.mark.parametrize("cond,want", [(True, [0.0, 2.0]), (False, [1.5, -2.0])])
def test_if_runs_the_branch_its_condition_picks(cond, want):
    m = function([B0, F2], relu_or_negate)
    m.verify()
    (got,) = run(m, np.array(cond), X)
    np.testing.assert_array_equal(got, np.array(want, np.float32))
    if_op = next(o for o in m.walk() if isinstance(o, If))
    np.testing.assert_array_equal(if_op.run_eager([np.array(cond), X], {})[0], got)


@pytest.mark.parametrize("n,trips", [(3, 3), (1, 1), (0, 0), (-2, 0)])
def test_while_carries_state_and_may_run_zero_times(n, trips):
    m = function([I1, I1, F2], counting_loop)
    m.verify()
    i, acc = run(m, np.array([0]), np.array([n]), X)
    assert i.tolist() == [trips]
    np.testing.assert_allclose(acc, X ** (trips + 1))
    loop = next(o for o in m.walk() if isinstance(o, While))
    c0 = np.array([0 < n])
    c, i_e, acc_e = loop.run_eager([c0, np.array([0]), X, np.array([n]), X], {})
    assert not c.item() and i_e.tolist() == [trips]
    np.testing.assert_allclose(acc_e, acc)


def test_if_nested_in_a_while_body_runs_each_iteration():
    """while i < n: i += 1; x = relu(x) if flag else -x; flag = not flag."""
    def build(block, args):
        i0, n, x, flag0 = args
        c0 = emit(block, LessThan, i0, n)

        def body(b, a):
            _, i, x_, flag, n_ = a
            i2 = emit(b, Scale, i, bias=1.0)
            picked = relu_or_negate(b, [flag, x_])[0]
            return [emit(b, LessThan, i2, n_), i2, picked, emit(b, LogicalNot, flag)]

        loop = While.new([c0, i0, x, flag0], [n], region_block([B1, I1, F2, B0, I1], body),
                         [B1, I1, F2, B0])
        block.add_op(loop)
        return [loop.results[2]]

    m = function([I1, I1, F2, B0], build)
    m.verify()
    x = np.array([-1.0, 3.0], np.float32)
    ref, flag = x, True
    for _ in range(3):
        ref, flag = (np.maximum(ref, 0) if flag else -ref), not flag
    (got,) = run(m, np.array([0]), np.array([3]), x, np.array(True))
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("build,types", [(relu_or_negate, [B0, F2]),
                                         (counting_loop, [I1, I1, F2])])
def test_region_ops_print_and_parse_back(build, types):
    m = function(types, build)
    buf = io.StringIO()
    Printer(stream=buf, print_generic_format=True).print_op(m)
    parsed = Parser(context(), buf.getvalue()).parse_module()
    parsed.verify()
    again = io.StringIO()
    Printer(stream=again, print_generic_format=True).print_op(parsed)
    assert again.getvalue() == buf.getvalue()
    assert '"pd.yield"' in buf.getvalue()


def test_verifier_names_what_is_wrong():
    with pytest.raises(VerifyException, match="condition must be a one-element bool"):
        function([F2, F2], lambda b, a: relu_or_negate(b, [a[1], a[1]])).verify()

    def yields_two(block, args):
        then = region_block([F2], lambda b, a: [a[0], a[0]])
        other = region_block([F2], lambda b, a: [a[0]])
        op = If.new(args[0], [args[1]], then, other)
        block.add_op(op)
        return list(op.results)
    with pytest.raises(VerifyException, match="then region yields 2 values"):
        function([B0, F2], yields_two).verify()

    def reads_from_above(block, args):  # regions are isolated: outer values must be operands
        then = region_block([F2], lambda b, a: [emit(b, Relu, args[1])])
        other = region_block([F2], lambda b, a: [a[0]])
        op = If.new(args[0], [args[1]], then, other)
        block.add_op(op)
        return list(op.results)
    with pytest.raises(VerifyException):
        function([B0, F2], reads_from_above).verify()


def test_select_input_and_undefined():
    """The faithful form: an output no branch wrote is pd.undefined; select_input skips it."""
    def build(block, args):
        mask, x = args
        undef = Undefined.make([], {}, [F2])
        block.add_op(undef)
        return [emit(block, SelectInput, mask, undef.results[0], x)]

    m = function([Abstract((), dtypes.int32).tensor_type(), F2], build)
    m.verify()
    (got,) = run(m, np.array(1, np.int32), X)
    np.testing.assert_array_equal(got, X)


def _op_names(m):
    return [o.name for o in m.body.block.first_op.body.block.ops]


def test_dead_op_elimination_drops_unused_pure_ifs_but_keeps_effectful_loops():
    def build(block, args):
        c, x = args
        relu_or_negate(block, [c, x])  # result unused and pure: dead

        def body(b, a):  # runs once: x * uniform noise, a result nobody reads
            return [emit(b, LogicalNot, a[0]),
                    emit(b, Multiply, a[1],
                         emit(b, UniformRandom, shape=(2,), dtype=dtypes.float32))]
        loop = While.new([c, x], [], region_block([B0, F2], body), [B0, F2])
        block.add_op(loop)
        return [x]

    m = function([B0, F2], build)
    loop = next(o for o in m.walk() if isinstance(o, While))
    assert loop.EFFECTS and not next(o for o in m.walk() if isinstance(o, If)).EFFECTS
    run_pipeline(m, CompileState(), "dead-op-elimination")
    assert _op_names(m) == ["pd.while", "func.return"]


def test_cse_never_merges_ifs_whose_regions_differ():
    def build(block, args):
        c, x = args
        a = relu_or_negate(block, [c, x])[0]
        then = region_block([F2], lambda b, v: [emit(b, Scale, v[0], scale=3.0)])
        other = region_block([F2], lambda b, v: [emit(b, Scale, v[0], scale=-1.0)])
        op = If.new(c, [x], then, other)
        block.add_op(op)
        return [a, op.results[0]]

    m = function([B0, F2], build)
    run_pipeline(m, CompileState(), "cse")
    assert _op_names(m).count("pd.if") == 2
    a, b = run(m, np.array(True), X)
    np.testing.assert_array_equal(a, np.maximum(X, 0))
    np.testing.assert_array_equal(b, X * 3)


def _constants(block, *arrays):
    from tostatic.ops.core import Constant, array_to_dense

    ops = [Constant.make([], {"value": array_to_dense(a)}, [Abstract.of_array(a).tensor_type()])
           for a in arrays]
    block.add_ops(ops)
    return [op.results[0] for op in ops]


def test_constant_folding_evaluates_an_if_of_constants():
    """Regions read only their op's operands, so known operands make a known result."""
    m = function([], lambda b, _: relu_or_negate(b, _constants(b, np.array(True), X)))
    run_pipeline(m, CompileState(), "constant-folding,dead-op-elimination")
    assert _op_names(m) == ["pd.constant", "func.return"]
    np.testing.assert_array_equal(run(m)[0], np.maximum(X, 0))


def test_an_if_that_may_yield_undefined_is_never_folded():
    def build(block, _):
        c, x = _constants(block, np.array(False), X)
        then = region_block([F2], lambda b, a: [emit(b, Relu, a[0])])
        undefined = Undefined.make([], {}, [F2])
        other = region_block([F2], lambda b, a: [b.add_op(undefined) or undefined.results[0]])
        op = If.new(c, [x], then, other)
        block.add_op(op)
        return list(op.results)

    m = function([], build)
    assert next(o for o in m.walk() if isinstance(o, If)).EFFECTS
    run_pipeline(m, CompileState(), "constant-folding")
    assert "pd.if" in _op_names(m)
