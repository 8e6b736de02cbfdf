"""Every IR stage prints and parses back to itself: each `pd` op, each attribute kind, a traced
model, and a lowered `program` module."""
from __future__ import annotations

import io
import math
import struct

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr, TensorType, f32
from xdsl.ir import Block, Region
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import IsTerminator

from tostatic.dialects.context import context
import tostatic as paddle
from tostatic.dialects import program as P
from tostatic.dialects import program_parser as PT
from tostatic.frontend.capture.static_function import trace
from tostatic.frontend.capture.tracing import LOC_ATTR, NAMES_ATTR
from tostatic.ir import attributes as A
from tostatic.ir import dtypes
from tostatic.ir.opdef import REGISTRY, Abstract
from tostatic.ops.core import Constant, array_to_dense, dense_to_array
from tostatic.passes.base import entry
from tostatic.passes.lower_to_program import lower_function
from tostatic.serialization.program_desc import to_program_desc
from tostatic.static import InputSpec

T23 = TensorType(f32, [2, 3])


def text(op) -> str:
    buf = io.StringIO()
    Printer(stream=buf).print_op(op)
    return buf.getvalue()


def roundtrip(module: ModuleOp, parser=Parser) -> ModuleOp:
    """Print, parse with the pd context, print again: same text; the parsed module verifies."""
    first = text(module)
    parsed = parser(context(), first).parse_module()
    assert text(parsed) == first
    parsed.verify()
    return parsed


# --- every op ---------------------------------------------------------------------------------

# Required attributes that must fit the sample operands (tensor<2x3xf32>); others by kind.
SAMPLE_ATTRS = {
    "pd.reshape": {"shape": (3, 2)},
    "pd.transpose": {"perm": (1, 0)},
    "pd.cast": {"dtype": "int64"},
    "pd.constant": {"value": array_to_dense(np.arange(6, dtype="float32").reshape(2, 3))},
    "pd.arange": {"start": 0.0, "end": 6.0},
}
BY_KIND = {"bool": True, "int": 1, "float": 1.5, "str": "linear_0.w_0", "ints": (2, 3),
           "floats": (0.5, 2.0), "strs": ("a", "b"), "dtype": "float32",
           "dense": array_to_dense(np.array([1.5, 2.0]))}


def sample_op(cls):
    """A plausible instance: required attributes set, optional ones without a default too."""
    n_inputs = sum(2 if name.startswith("*") else 1 for name in cls.INPUTS)
    block = Block(arg_types=[T23] * n_inputs)
    attrs = {k: SAMPLE_ATTRS.get(cls.name, {}).get(k, BY_KIND.get(spec.kind.name))
             for k, spec in cls.ATTRS.items() if spec.required or spec.default is None}
    try:
        full = cls.normalize_attrs(attrs)
        types = [r.tensor_type() for r in
                 cls.infer_results([Abstract.of_type(T23)] * n_inputs, full)]
    except Exception:  # a rule the sample does not fit: the text round trip still counts
        types = [T23] * (1 if cls.NUM_RESULTS is None else cls.NUM_RESULTS)
    op = cls.make(list(block.args), attrs, types)
    block.add_ops([named(op), func.ReturnOp(*op.results)])
    return ModuleOp([func.FuncOp("forward", ([T23] * n_inputs, types), Region(block))])


def named(op):
    n = len(op.results) + (len(op.PADDLE.extra_outputs) if op.PADDLE else 0)
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(f"x_0.tmp_{i}") for i in range(n)])
    op.attributes[LOC_ATTR] = StringAttr("model.py:12")
    return op


def control_flow_sample():
    """pd.if and pd.while (with their pd.yield), which need regions that fit their operands."""
    from tostatic.ops.activation import Relu
    from tostatic.ops.control_flow import If, While, region_block
    from tostatic.ops.logical import LogicalNot

    b1 = TensorType(dtypes.bool_.element_type(), [1])
    block = Block(arg_types=[b1, T23])
    cond, x = block.args

    def relu(b, args):
        b.add_op(named(Relu.make([args[0]], {}, [T23])))
        return [b.last_op.results[0]]

    if_op = named(If.new(cond, [x], region_block([T23], relu),
                         region_block([T23], lambda b, args: [args[0]])))

    def step(b, args):
        b.add_op(named(LogicalNot.make([args[0]], {}, [b1])))
        return [b.last_op.results[0], *relu(b, args[1:])]

    while_op = named(While.new([cond, x], [], region_block([b1, T23], step), [b1, T23]))
    block.add_ops([if_op, while_op, func.ReturnOp(if_op.results[0], while_op.results[1])])
    return ModuleOp([func.FuncOp("forward", ([b1, T23], [T23, T23]), Region(block))])


def while_grad_sample():
    """pd.while_grad: a loop's body and its backward (here: the cotangent passed through)."""
    from tostatic.ir.attributes import INT, INTS
    from tostatic.ops.control_flow import WhileGrad, region_block
    from tostatic.ops.logical import LogicalNot

    b1 = TensorType(dtypes.bool_.element_type(), [1])
    block = Block(arg_types=[b1, T23, T23])
    cond, x, ct = block.args

    def step(b, args):
        b.add_op(named(LogicalNot.make([args[0]], {}, [b1])))
        return [b.last_op.results[0], args[1]]

    op = named(WhileGrad(operands=[[cond, x, ct]], result_types=[[T23]],
                         regions=[Region(region_block([b1, T23], step)),
                                  Region(region_block([b1, T23, T23], lambda b, a: [a[2]]))],
                         properties={"num_state": INT.to_attr(2), "wrt": INTS.to_attr((1,))}))
    block.add_ops([op, func.ReturnOp(op.results[0])])
    return ModuleOp([func.FuncOp("forward", ([b1, T23, T23], [T23]), Region(block))])


def fused_sample():
    """pd.fused_elementwise holding relu(x + y)."""
    from tostatic.ops.activation import Relu
    from tostatic.ops.control_flow import region_block
    from tostatic.ops.elementwise import Add
    from tostatic.ops.fused_elementwise import FusedElementwise

    def body(b, args):
        b.add_op(named(Add.make(list(args), {}, [T23])))
        b.add_op(named(Relu.make([b.last_op.results[0]], {}, [T23])))
        return [b.last_op.results[0]]

    block = Block(arg_types=[T23, T23])
    fused = named(FusedElementwise.new(list(block.args), region_block([T23, T23], body)))
    block.add_ops([fused, func.ReturnOp(fused.results[0])])
    return ModuleOp([func.FuncOp("forward", ([T23, T23], [T23]), Region(block))])


STRUCTURED = {"pd.if": control_flow_sample, "pd.while": control_flow_sample,
              "pd.yield": control_flow_sample, "pd.while_grad": while_grad_sample,
              "pd.fused_elementwise": fused_sample}  # ops a generic sample cannot build


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_op_prints_and_parses_back(name, tmp_path, capsys):
    cls = REGISTRY[name]
    if name in STRUCTURED:
        module = STRUCTURED[name]()
    elif cls.get_irdl_definition().regions or cls.has_trait(IsTerminator):
        pytest.fail(f"{name} needs regions or a parent: add a sample to STRUCTURED")
    else:
        module = sample_op(cls)
    module.verify()
    parsed = roundtrip(module)
    op = next(o for o in module.walk() if o.name == name)
    back = next(o for o in parsed.walk() if o.name == name)
    assert type(back) is cls
    assert back.properties == op.properties and back.attributes == op.attributes
    assert back.attr_values() == op.attr_values()
    # and through the command line: `tostatic opt` prints what it read (samples need not
    # satisfy every shape rule, so the verifier is off here)
    from tostatic.cli import main as cli
    from tostatic.ir.text import print_ir

    path = tmp_path / "op.mlir"
    path.write_text(print_ir(module, locations=True))
    assert cli(["opt", str(path), "--print-loc", "--no-verify"]) == 0
    assert capsys.readouterr().out == path.read_text()


# --- every attribute kind, edge values included -----------------------------------------------

def bits(x: float) -> bytes:
    return struct.pack("<d", x)


KIND_VALUES = [
    (A.BOOL, [True, False]),
    (A.INT, [0, -1, 2**62]),
    (A.FLOAT, [0.1, -0.0, math.inf, -math.inf, math.nan, 123456792.0, 5e-324, 1e300]),
    (A.STR, ["", "a\"b\\c\n\t", "linear_0.w_0"]),
    (A.INTS, [(), (-1, 0, 3), (2**62, -2**62)]),
    (A.FLOATS, [(), (0.5, -0.0), (math.inf, -math.inf, math.nan, 123456792.0)]),
    (A.STRS, [(), ("a", "", "q\"uote")]),
    (A.DTYPE, [d for d in dtypes.ALL]),
]


@pytest.mark.parametrize("kind,values", KIND_VALUES, ids=[k.name for k, _ in KIND_VALUES])
def test_every_attribute_kind_prints_and_parses_back_exactly(kind, values):
    for v in values:
        a = kind.to_attr(v)
        back = Parser(context(), str(a)).parse_attribute()
        assert str(back) == str(a)
        got = kind.from_attr(back)
        if isinstance(v, float) or kind is A.FLOATS:
            want = v if kind is A.FLOATS else (v,)
            got = got if kind is A.FLOATS else (got,)
            assert [bits(g) for g in got] == [bits(w) for w in want], (v, got)
        else:
            assert got == (tuple(v) if isinstance(v, (list, tuple)) else v)


def dense_samples():
    yield np.array([-np.inf, 0.0, np.inf, np.nan, -0.0, 123456792.0], "float32")
    yield np.array([np.nan, 1e-45, 3.4e38, 0.1], "float32")
    yield np.array([np.inf, -0.0, 5e-324, 0.1], "float64")
    yield np.array([np.inf, 65504, 0.1, -np.nan], "float16")
    yield np.array([[1, 2, 3], [4, 5, 6]], "float32")
    yield np.array([np.iinfo("int64").min, np.iinfo("int64").max], "int64")
    yield np.array([-2**31, 7], "int32")
    yield np.array([0, 255], "uint8")
    yield np.array([-128, 127], "int8")
    yield np.array([-3, 3], "int16")
    yield np.array([True, False, True])
    yield np.array(2.5, "float32")  # rank 0
    yield np.zeros((2, 0, 3), "float32")  # empty, a 0 dim in the type
    yield np.array([1 + 2j, np.inf - 1j], "complex64")
    yield np.array([0.1 + 0.2j], "complex128")


@pytest.mark.parametrize("array", list(dense_samples()), ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_constants_print_and_parse_back_bit_for_bit(array):
    block = Block()
    ty = Abstract.of_array(array).tensor_type()
    c = Constant.make([], {"value": array_to_dense(array)}, [ty])
    block.add_ops([c, func.ReturnOp(c.results[0])])
    module = ModuleOp([func.FuncOp("f", ([], [ty]), Region(block))])
    parsed = roundtrip(module)
    back = dense_to_array(entry(parsed).body.block.first_op.attr_values()["value"])
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tobytes() == array.tobytes()


def test_only_inexact_constants_are_written_as_bytes():
    plain = text(Constant.make([], {"value": array_to_dense(np.array([1.5], "float32"))},
                               [TensorType(f32, [1])]))
    assert "dense<1.500000e+00>" in plain and "#pd.dense_bits" not in plain
    inf = text(Constant.make([], {"value": array_to_dense(np.array([np.inf], "float32"))},
                             [TensorType(f32, [1])]))
    assert '#pd.dense_bits<dense<"0x0000807F"> : tensor<1xf32>>' in inf


def test_non_ascii_names_round_trip_with_the_project_parser():
    """xDSL's printer escapes non-ASCII bytes and its stock lexer reads them back as bytes;
    ProgramParser (what tostatic parses with) reads them as the strings they were."""
    from tostatic.ops.core import Persistable

    block = Block()
    op = Persistable.make([], {"var_name": "权重.w_0", "structured_name": "ünï"}, [T23])
    op.attributes[LOC_ATTR] = StringAttr("/home/用户/模型.py:3")
    block.add_ops([op, func.ReturnOp(op.results[0])])
    module = ModuleOp([func.FuncOp("f", ([], [T23]), Region(block))])
    parsed = roundtrip(module, parser=PT.ProgramParser)
    back = entry(parsed).body.block.first_op
    assert back.attr_values()["var_name"] == "权重.w_0"
    assert back.attributes[LOC_ATTR] == StringAttr("/home/用户/模型.py:3")


# --- whole models -----------------------------------------------------------------------------

def small_model():
    layer = paddle.nn.Linear(3, 2)
    mask = paddle.to_tensor([0.0, -np.inf], dtype="float32")

    def fn(x):
        y = paddle.nn.functional.relu(layer(x)) + mask
        return paddle.reshape(y, [-1, 1, 2]) * 2.0, paddle.full([2], 1.5)

    return layer, fn


@pytest.mark.parametrize("pipeline", ["", "default"])
def test_traced_model_round_trips_and_still_runs(pipeline):
    """The module as traced (pd.capture, before any pass) and after the default pipeline both
    print and parse back to themselves; the parsed one compiles (the rest of the pipeline, for
    the captured form) and computes what numpy does."""
    from tostatic.passes.manager import PassManager
    from tostatic.runtime.plan import ExecutionPlan

    layer, fn = small_model()
    cp = trace(fn, [InputSpec([None, 3], "float32", "x")], layer, pipeline=pipeline)
    parsed = roundtrip(cp.module)
    captures = [o for o in parsed.walk() if o.name == "pd.capture"]
    assert len(captures) == (0 if pipeline else 3)  # weight, bias, mask
    if not pipeline:
        PassManager("default").run(parsed, cp.state, first_stage="captured")
    x = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    got = ExecutionPlan(entry(parsed), cp.state.weights, cp.feed_names).run([x])
    w, b = layer.weight.numpy(), layer.bias.numpy()
    y = np.maximum(x @ w + b, 0) + np.array([0.0, -np.inf], "float32")
    assert len(got) == 2
    np.testing.assert_allclose(got[0], y.reshape(-1, 1, 2) * 2.0, rtol=1e-6)
    np.testing.assert_array_equal(got[1], np.full([2], 1.5, "float32"))
    assert (got[0].dtype, got[1].dtype) == (np.float32, np.float32)


def test_lowered_program_round_trips_as_text_and_bytes():
    layer, fn = small_model()
    cp = trace(fn, [InputSpec([None, 3], "float32", "x")], layer)
    program = lower_function(entry(cp.module))
    program.verify()
    first = PT.print_program(program)
    again = PT.parse_program(first)
    again.verify()
    assert PT.print_program(again) == first
    assert PT.print_program(PT.parse_program(PT.print_program(again))) == first
    assert to_program_desc(again).SerializeToString() == \
        to_program_desc(program).SerializeToString()
    # the same module printed in xDSL's default (custom) format parses with the pd context
    roundtrip(ModuleOp([program.clone()]))
