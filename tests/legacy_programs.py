"""Small Paddle legacy programs built by hand (program dialect), for cases no fixture has."""
from __future__ import annotations

from tostatic.dialects import program as P

COMMON = {"op_device": ("STRING", ""), "op_namescope": ("STRING", "/"), "op_role": ("INT", 0),
          "op_role_var": ("STRINGS", [])}


def var(name, dtype="float32", shape=(), **kw):
    return P.VarOp.build(name, dtype=dtype, shape=list(shape), lod_level=0, **kw)


def op(op_type, inputs, outputs, **attrs):
    return P.OpOp.build(op_type, inputs, outputs, {**attrs, **COMMON})


def feed(name, col):
    return op("feed", {"X": ["feed"]}, {"Out": [name]}, col=("INT", col))


def fetch(name, col):
    return op("fetch", {"X": [name]}, {"Out": ["fetch"]}, col=("INT", col))


def scale(x, out, s=1.0, b=0.0):
    return op("scale", {"X": [x], "ScaleTensor": [], "BiasTensor": []}, {"Out": [out]},
              scale=("FLOAT", s), bias=("FLOAT", b), bias_after_scale=("BOOLEAN", True))


def compare(op_type, x, y, out):
    return op(op_type, {"X": [x], "Y": [y]}, {"Out": [out]}, axis=("INT", -1),
              force_cpu=("BOOLEAN", False))


def program(*blocks):
    """blocks: (vars, ops) of block 0, 1, ...; sub-blocks' parent is block 0."""
    io_vars = [P.VarOp.build("feed", var_type="FEED_MINIBATCH", persistable=True),
               P.VarOp.build("fetch", var_type="FETCH_LIST", persistable=True)]
    built = [P.BlockOp.build(i, -1 if i == 0 else 0, vs + (io_vars if i == 0 else []), ops)
             for i, (vs, ops) in enumerate(blocks)]
    return P.ProgramOp.build(built, version=3003001)


def elementwise_add(x_shape, y_shape, axis):
    """out = elementwise_add(x, y, axis)."""
    vs = [var("x", shape=x_shape), var("y", shape=y_shape), var("out", shape=())]
    ops = [feed("y", 1), feed("x", 0),
           op("elementwise_add", {"X": ["x"], "Y": ["y"]}, {"Out": ["out"]}, axis=("INT", axis)),
           fetch("out", 0)]
    return program((vs, ops))


def lone_conditional_block():
    """y = 2x; if mean(x) > 0: y = x + 1. One conditional_block and no select_input: when it
    does not run, y keeps the value it had."""
    vs = [var("x", shape=(-1, 4)), var("m"), var("zero"), var("c", "bool"),
          var("y", shape=(-1, 4)), P.VarOp.build("scope", var_type="STEP_SCOPES")]
    ops = [feed("x", 0),
           op("reduce_mean", {"X": ["x"]}, {"Out": ["m"]}, dim=("INTS", []),
              keep_dim=("BOOLEAN", False), reduce_all=("BOOLEAN", True), in_dtype=("INT", -1),
              out_dtype=("INT", -1)),
           op("fill_constant", {}, {"Out": ["zero"]}, dtype=("INT", 5), shape=("LONGS", []),
              value=("FLOAT", 0.0), str_value=("STRING", ""), force_cpu=("BOOLEAN", False),
              place_type=("INT", -1)),
           compare("greater_than", "m", "zero", "c"),
           scale("x", "y", 2.0),
           op("conditional_block", {"Cond": ["c"], "Input": ["x"]},
              {"Out": ["y"], "Scope": ["scope"]}, sub_block=("BLOCK", 1),
              is_scalar_condition=("BOOLEAN", True)),
           fetch("y", 0)]
    body = ([var("t", shape=(-1, 4))],
            [scale("x", "t", 1.0, 1.0), op("assign", {"X": ["t"]}, {"Out": ["y"]})])
    return program((vs, ops), body)


def transposing_loop():
    """i = 0; while i < n: x = transpose(x); i += 1. x's shape alternates [2, 3] / [3, 2]."""
    vs = [var("x", shape=(2, 3)), var("n", "int64", (1,)), var("i", "int64", (1,)),
          var("c", "bool", (1,)), P.VarOp.build("scopes", var_type="STEP_SCOPES")]
    ops = [feed("n", 1), feed("x", 0),
           op("fill_constant", {}, {"Out": ["i"]}, dtype=("INT", 3), shape=("LONGS", [1]),
              value=("FLOAT", 0.0), str_value=("STRING", "0"), force_cpu=("BOOLEAN", False),
              place_type=("INT", -1)),
           compare("less_than", "i", "n", "c"),
           op("while", {"X": ["x", "i", "n"], "Condition": ["c"]},
              {"Out": ["x", "i", "c"], "StepScopes": ["scopes"]}, sub_block=("BLOCK", 1),
              is_test=("BOOLEAN", True)),
           fetch("x", 0), fetch("i", 1)]
    body = ([var("xt", shape=(3, 2)), var("i2", "int64", (1,)), var("c2", "bool", (1,))],
            [op("transpose2", {"X": ["x"]}, {"Out": ["xt"]}, axis=("INTS", [1, 0])),
             scale("i", "i2", 1.0, 1.0), compare("less_than", "i2", "n", "c2"),
             op("assign", {"X": ["xt"]}, {"Out": ["x"]}),
             op("assign", {"X": ["i2"]}, {"Out": ["i"]}),
             op("assign", {"X": ["c2"]}, {"Out": ["c"]})])
    return program((vs, ops), body)
