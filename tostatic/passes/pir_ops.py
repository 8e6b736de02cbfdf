"""The PIR ops tostatic raises, and how: `PIR_OPS` maps a PIR op name to a `Rule` (one pd op,
operands and attributes renamed; pir_raising.py) or to a function of the op's context.

Operand order is Paddle's op YAML (`op.get_input_names()` in Paddle's Python API): e.g.
batch_norm_ reads (x, mean, variance, scale, bias) where our pd.batch_norm takes
(x, scale, bias, mean, variance). PIR passes many attributes of the legacy ops as operands
made by pd_op.full / full_int_array (reshape's shape, scale's scale, concat's axis): "=attr"
reads them as constants. An in-place variant (`relu_`, `batch_norm_`) raises as its op; SSA
results make the difference moot.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from xdsl.ir import SSAValue

from tostatic.ir.opdef import REGISTRY, Abstract
from tostatic.ops.core import array_to_dense
from tostatic.ops.runtime_bounds import CLIP_OPS, SLICE_OPS
from tostatic.passes.pir_raising import (
    Const,
    Dim,
    Entry,
    MissingValue,
    OpContext,
    Raise,
    Rule,
    Sym,
    bind_results,
    pd_attrs,
    pir_dtype,
)


def _binary(pd: str) -> Rule:
    return Rule(pd, ("x", "y"), fixed={"axis": -1})


def _unary(pd: str, **attrs: str | None) -> Rule:
    return Rule(pd, ("x",), attrs)


def _reduce(pd: str, **attrs: str | None) -> Raise:
    """mean / sum / max / min / prod (x, axis): an empty axis list reduces everything, and
    is written as every axis with reduce_all (paddle2onnx cannot read an empty dim list in
    a while loop's sub-block)."""
    def run(ctx: OpContext) -> list[Entry]:
        x = ctx.tensor(0)
        axis = tuple(int(a) for a in ctx.const(1, "axis").reshape(-1))
        every = not axis
        if every:
            axis = tuple(range(Abstract.of_value(x).ndim))
        out = pd_attrs(REGISTRY[pd], {"keepdim": "keepdim", **attrs}, ctx)
        res = ctx.emit(pd, [x], {**out, "axis": axis, "reduce_all": every})
        return bind_results(ctx, res, None)
    return run


# --- literals ---------------------------------------------------------------------------------

def _full(ctx: OpContext) -> list[Entry]:
    d = pir_dtype(ctx.attrs["dtype"], ctx.where)
    if d is None or d.numpy is None:
        raise ctx.fail(f"dtype {ctx.attrs['dtype']} is not supported")
    value = ctx.attrs["value"]
    return [Const(np.full(tuple(ctx.attrs["shape"]), value, dtype=d.numpy))]


def _full_int_array(ctx: OpContext) -> list[Entry]:
    d = pir_dtype(ctx.attrs.get("dtype", "int64"), ctx.where)
    assert d is not None and d.numpy is not None
    return [Const(np.array(ctx.attrs["value"], dtype=d.numpy).reshape(-1))]


def _assign_value(ctx: OpContext) -> list[Entry]:
    d = pir_dtype(ctx.attrs["dtype"], ctx.where)
    if d is None or d.numpy is None:
        raise ctx.fail(f"dtype {ctx.attrs['dtype']} is not supported")
    values = ctx.attrs["values"]
    shape = tuple(ctx.attrs["shape"])
    if int(np.prod(shape)) != len(values):
        raise ctx.fail(f"{len(values)} values do not fill the shape {list(shape)}")
    return [Const(np.array(values).astype(d.numpy).reshape(shape))]


def _full_with_tensor(ctx: OpContext) -> list[Entry]:
    """full_with_tensor(value, shape): paddle.full / zeros with a shape from tensors; a shape
    known while loading is a literal, else fill_constant's ShapeTensorList or ShapeTensor."""
    d = pir_dtype(ctx.attrs["dtype"], ctx.where)
    if d is None or d.numpy is None:
        raise ctx.fail(f"dtype {ctx.attrs['dtype']} is not supported")
    value = float(ctx.const(0, "value").reshape(-1)[0])
    known = ctx.known(1)
    if known is not None and all(isinstance(e, int) and e >= 0 for e in known.elems):
        return [Const(np.full(tuple(known.elems), value, dtype=d.numpy))]
    attrs = {"value": value, "dtype": d}
    e = ctx.entry(1)
    if isinstance(e, list):
        dims = [ctx.as_tensor(x, 1) for x in e]
        shape = tuple(x if isinstance(x, int) and x >= 0 else -1
                      for x in (known.elems if known else [None] * len(dims)))
        out = ctx.emit("pd.full_from_shape_list", dims, {**attrs, "shape": shape})
    else:
        out = ctx.emit("pd.full_from_shape_tensor", [ctx.tensor(1)], attrs)
    return bind_results(ctx, out, None)


def _arange(ctx: OpContext) -> list[Entry]:
    want = ctx.op.results[0].type
    d = pir_dtype(want.dtype or "float32", ctx.where)
    assert d is not None
    args = [ctx.tensor(i, d) for i in range(3)]  # literals made in the result's dtype
    args = [v if Abstract.of_value(v).dtype == d else ctx.emit("pd.cast", [v], {"dtype": d})[0]
            for v in args]  # run-time bounds (a length read from a shape) cast to it
    return bind_results(ctx, ctx.emit("pd.range", args, {}), None)


# --- shapes known while loading -------------------------------------------------------------

def _shape(ctx: OpContext) -> list[Entry]:
    x = ctx.tensor(0)
    out = ctx.cast_to(ctx.emit("pd.shape", [x], {})[0], ctx.op.results[0].type)
    shape = Abstract.of_value(x).shape
    ctx.set_known(out, Sym(tuple(d if d >= 0 else Dim(x, i) for i, d in enumerate(shape)),
                           False))
    return [out]


def _slice(ctx: OpContext) -> list[Entry]:
    starts, ends = _constant(ctx, 1), _constant(ctx, 2)
    if starts is None or ends is None:
        return _slice_at_run_time(ctx, starts, ends)
    res = Rule("pd.slice", ("x", "=starts", "=ends"), {"infer_flags": None})(ctx)
    known = ctx.known(0)
    axes, decrease = ctx.attrs.get("axes", []), ctx.attrs.get("decrease_axis", [])
    if known is not None and not known.scalar and list(axes) == [0] and isinstance(res[0],
                                                                                  SSAValue):
        n = len(known.elems)
        start, end = (int(ctx.const(i, "").reshape(-1)[0]) for i in (1, 2))
        part = known.elems[slice(*slice(start, end).indices(n))]
        ctx.set_known(res[0], Sym(tuple(part), bool(decrease) and len(part) == 1))
    return res


def _slice_at_run_time(ctx: OpContext, starts: np.ndarray | None,
                       ends: np.ndarray | None) -> list[Entry]:
    """slice whose starts or ends are computed when the program runs (x[:, n:]): those read
    from one int64 tensor, as legacy slice's StartsTensor / EndsTensor (infer_flags -1)."""
    axes = tuple(int(a) for a in ctx.attrs.get("axes", ()))
    attrs: dict[str, Any] = {"axes": axes, "infer_flags": (-1,) * len(axes),
                             "decrease_axis": tuple(ctx.attrs.get("decrease_axis", ()))}
    operands, forms = [ctx.tensor(0)], []
    for i, side, value in ((1, "starts", starts), (2, "ends", ends)):
        if value is None:
            operands.append(_int_vector(ctx, i))
            forms.append("tensor")
            attrs[side] = ()
        else:
            attrs[side] = tuple(int(v) for v in value.reshape(-1))
            forms.append("attr")
    return bind_results(ctx, ctx.emit(SLICE_OPS[(forms[0], forms[1])], operands, attrs), None)


def _stack_or_concat(pd: str, inputs: tuple[str, ...]) -> Raise:
    def run(ctx: OpContext) -> list[Entry]:
        res = Rule(pd, inputs)(ctx)
        k = ctx.known(0)
        if k is not None and isinstance(res[0], SSAValue) and len(k.elems) <= 64:
            ctx.set_known(res[0], Sym(k.elems, False))
        return res
    return run


def _constant(ctx: OpContext, i: int) -> np.ndarray | None:
    """Operand i's value when it is known while loading, else None."""
    e = ctx.entry(i)
    if isinstance(e, Const):
        return e.array
    k = ctx.known(i)
    if k is not None and all(isinstance(x, (int, float, bool)) for x in k.elems):
        return np.array(k.elems)
    return None


FLT_MAX = float(np.finfo(np.float32).max)  # clip's bounds when a tensor gives them


def _clip(ctx: OpContext) -> list[Entry]:
    """clip(x, min, max): constant bounds as pd.clip's attributes; a bound computed when the
    program runs (paddle.clip(x, x.min())) read from its tensor, as legacy clip's Min / Max."""
    attrs = {"min": -FLT_MAX, "max": FLT_MAX}
    tensors: dict[str, SSAValue] = {}
    for i, name in ((1, "min"), (2, "max")):
        if ctx.is_null(i):
            continue
        value = _constant(ctx, i)
        if value is None:
            tensors[name] = ctx.tensor(i)
        else:
            attrs[name] = float(value.reshape(-1)[0])
    if not tensors:
        return Rule("pd.clip", ("x", "=min", "=max"))(ctx)
    out = ctx.emit(CLIP_OPS[tuple(tensors)], [ctx.tensor(0), *tensors.values()], attrs)
    return bind_results(ctx, out, None)


def _cast(ctx: OpContext) -> list[Entry]:
    res = Rule("pd.cast", ("x",))(ctx)
    k = ctx.known(0)
    if k is not None and isinstance(res[0], SSAValue):
        ctx.set_known(res[0], k)
    return res


def _reshape(ctx: OpContext) -> list[Entry]:
    """reshape(x, shape): the shape as the attribute Paddle's reshape2 holds where it is known
    while loading (a dim read from x's own shape at the same position is 0, copy; one dim
    unknown until run time is -1); otherwise the shape tensor itself (reshape2's Shape)."""
    x = ctx.tensor(0)
    known = ctx.known(1)
    if known is not None:
        shape: list[int] = []
        for i, e in enumerate(known.elems):
            if isinstance(e, Dim) and e.value is x and e.axis == i:
                shape.append(0)
            elif isinstance(e, int) and not isinstance(e, bool):
                shape.append(e)
            else:
                shape.append(-1)
        if shape.count(-1) <= 1:
            return bind_results(ctx, ctx.emit("pd.reshape", [x], {"shape": tuple(shape)}),
                                (0, None))
    return bind_results(ctx, ctx.emit("pd.reshape_from_shape_tensor", [x, _int_vector(ctx, 1)],
                                      {}), (0, None))


def _int_vector(ctx: OpContext, i: int) -> SSAValue:
    """An IntArray operand (a 1-D tensor, or a vector of one-element tensors) as one 1-D
    int64 tensor."""
    e = ctx.entry(i)
    if not isinstance(e, list):
        v = ctx.tensor(i)
        return v if Abstract.of_value(v).dtype.name == "int64" else ctx.emit(
            "pd.cast", [v], {"dtype": "int64"})[0]
    parts = []
    for x in ctx.tensors(i):
        if Abstract.of_value(x).dtype.name != "int64":
            x = ctx.emit("pd.cast", [x], {"dtype": "int64"})[0]
        if Abstract.of_value(x).ndim == 0:
            x = ctx.emit("pd.unsqueeze", [x], {"axes": (0,)})[0]
        parts.append(x)
    return ctx.emit("pd.concat", parts, {"axis": 0})[0]


# --- ops with a special shape ------------------------------------------------------------------

def _pow(ctx: OpContext) -> list[Entry]:
    x = ctx.tensor(0)
    d = Abstract.of_value(x).dtype
    assert d.numpy is not None
    y = ctx.materialize(Const(np.array(ctx.attrs.get("y", 1.0), dtype=d.numpy)))
    return bind_results(ctx, ctx.emit("pd.pow", [x, y], {"axis": -1}), None)


def _layer_norm(ctx: OpContext) -> list[Entry]:
    has_scale, has_bias = not ctx.is_null(1), not ctx.is_null(2)
    pd = {(True, True): "pd.layer_norm", (False, False): "pd.layer_norm_plain",
          (True, False): "pd.layer_norm_scale_only",
          (False, True): "pd.layer_norm_bias_only"}[(has_scale, has_bias)]
    operands = [ctx.tensor(0)] + [ctx.tensor(i) for i, h in ((1, has_scale), (2, has_bias))
                                  if h]
    return bind_results(ctx, ctx.emit(pd, operands, pd_attrs(REGISTRY[pd], {}, ctx)), None)


def _interp(method: str) -> Raise:
    """*_interp(x, out_size, size_tensor, scale_tensor): sizes from attributes, or from the
    one tensor operand given (our three forms of each interp op)."""
    def run(ctx: OpContext) -> list[Entry]:
        given = [i for i in (1, 2, 3) if not ctx.is_null(i)]
        if len(given) > 1:
            raise ctx.fail("only one of out_size, size_tensor and scale_tensor may be given")
        pd = f"pd.{method}_interp" + {1: "", 2: "_sizes", 3: "_scale"}[given[0] if given
                                                                        else 1]
        extra: list[SSAValue] = []
        if given:
            i = given[0]
            extra = ctx.tensors(i) if isinstance(ctx.entry(i), list) else [ctx.tensor(i)]
        attrs = pd_attrs(REGISTRY[pd], {"data_format": "data_layout"}, ctx)
        return bind_results(ctx, ctx.emit(pd, [ctx.tensor(0), *extra], attrs), None)
    return run


def _tril_triu(lower: bool) -> Raise:
    def run(ctx: OpContext) -> list[Entry]:
        attrs = {"diagonal": int(ctx.attrs.get("diagonal", 0)), "lower": lower}
        return bind_results(ctx, ctx.emit("pd.tril_triu", [ctx.tensor(0)], attrs), None)
    return run


def _increment(ctx: OpContext) -> list[Entry]:
    attrs = {"scale": 1.0, "bias": float(ctx.attrs.get("value", 1.0)), "bias_after_scale": True}
    return bind_results(ctx, ctx.emit("pd.scale", [ctx.tensor(0)], attrs), None)


def _rnn(ctx: OpContext) -> list[Entry]:
    """rnn(x, pre_state, weight_list, sequence_length, dropout_state_in): our four forms by
    mode (LSTM has two states) and whether lengths are given; the dropout state (read only
    when training) and the reserve space have no counterpart."""
    lstm = ctx.attrs.get("mode") == "LSTM"
    with_lengths = not ctx.is_null(3)
    pd = ("pd.lstm" if lstm else "pd.rnn") + ("_with_lengths" if with_lengths else "")
    states = ctx.tensors(1)
    operands = [ctx.tensor(0), *states, *ctx.tensors(2)]
    if with_lengths:
        operands.append(ctx.tensor(3))
    attrs = pd_attrs(REGISTRY[pd], {"mode": None} if lstm else {}, ctx)
    outs = ctx.emit(pd, operands, attrs)
    op = ctx.op
    return [outs[0], MissingValue(f"result 1 (dropout_state_out) of {op.name} at {op.path}"),
            list(outs[1:1 + len(states)]),
            MissingValue(f"result 3 (reserve) of {op.name} at {op.path}")]


def _set_value(ctx: OpContext) -> list[Entry]:
    """set_value_(x, starts, ends, steps): the literal (flat scalars, reshaped to `shape`)
    kept as the dense attribute pd.set_value holds, as its legacy raising reads it."""
    values = ctx.attrs.pop("values", None)
    if not isinstance(values, list) or not values:
        raise ctx.fail("set_value needs its values (a list of scalars)")
    attrs = pd_attrs(REGISTRY["pd.set_value"], {}, ctx)
    for i, name in ((1, "starts"), (2, "ends"), (3, "steps")):
        attrs[name] = tuple(int(v) for v in ctx.const(i, name).reshape(-1))
    attrs["values"] = array_to_dense(np.asarray(values))
    return bind_results(ctx, ctx.emit("pd.set_value", [ctx.tensor(0)], attrs), None)


def _same(ctx: OpContext) -> list[Entry]:
    """Ops that hand their first operand on (assign_out_: the value written into a buffer,
    memcpy between devices)."""
    return [ctx.tensor(0)] + [ctx.tensor(0)] * (len(ctx.op.results) - 1)


# --- the table -------------------------------------------------------------------------------

PIR_OPS: dict[str, Rule | Raise] = {
    # literals and shapes
    "pd_op.full": _full, "pd_op.full_int_array": _full_int_array,
    "pd_op.assign_value": _assign_value, "pd_op.assign_value_": _assign_value,
    "pd_op.arange": _arange, "pd_op.shape": _shape, "pd_op.shape64": _shape,
    "pd_op.full_like": Rule("pd.full_like", ("x", "=value")),
    "pd_op.full_with_tensor": _full_with_tensor,
    # elementwise
    **{f"pd_op.{n}": _binary(f"pd.{n}") for n in (
        "add", "subtract", "multiply", "divide", "maximum", "minimum", "remainder",
        "floor_divide", "equal", "not_equal", "greater_than", "greater_equal", "less_than",
        "less_equal")},
    "pd_op.elementwise_pow": _binary("pd.pow"),
    "pd_op.pow": _pow,
    **{f"pd_op.{n}": Rule(f"pd.{n}", ("x", "y")) for n in (
        "logical_and", "logical_or", "logical_xor")},
    **{f"pd_op.{n}": _unary(f"pd.{n}") for n in (
        "relu", "relu6", "sigmoid", "tanh", "abs", "exp", "sqrt", "rsqrt", "log", "erf",
        "square", "silu", "swish", "hardswish", "logical_not", "assign", "gelu", "softmax",
        "log_softmax", "elu", "hardsigmoid")},
    "pd_op.leaky_relu": _unary("pd.leaky_relu", negative_slope="alpha"),
    "pd_op.scale": Rule("pd.scale", ("x", "=scale")),
    "pd_op.clip": _clip,
    "pd_op.where": Rule("pd.where", ("condition", "x", "y")),
    "pd_op.increment": _increment,
    "pd_op.cast": _cast,
    # linear algebra, convolution, normalization, pooling
    "pd_op.matmul": Rule("pd.matmul", ("x", "y")),
    "pd_op.bmm": Rule("pd.bmm", ("x", "y")),
    "pd_op.einsum": Rule("pd.einsum", ("*operands",), results=(0, None, None)),
    "pd_op.conv2d": Rule("pd.conv2d", ("x", "weight")),
    "pd_op.depthwise_conv2d": Rule("pd.depthwise_conv2d", ("x", "weight")),
    "pd_op.conv2d_transpose": Rule("pd.conv2d_transpose", ("x", "weight", "=output_size")),
    "pd_op.depthwise_conv2d_transpose": Rule("pd.depthwise_conv2d_transpose",
                                             ("x", "weight", "=output_size")),
    "pd_op.batch_norm": Rule("pd.batch_norm", ("x", "mean", "variance", "scale", "bias"),
                             {"data_format": "data_layout"}, results=(0, 1, 2, 3, 4, None)),
    "pd_op.sync_batch_norm": Rule("pd.batch_norm", ("x", "mean", "variance", "scale", "bias"),
                                  {"data_format": "data_layout"},
                                  results=(0, 1, 2, 3, 4, None)),  # one device: batch_norm
    "pd_op.layer_norm": _layer_norm,
    "pd_op.group_norm": Rule("pd.group_norm", ("x", "scale", "bias"),
                             {"data_format": "data_layout"}),
    "pd_op.instance_norm": Rule("pd.instance_norm", ("x", "scale", "bias")),
    "pd_op.pool2d": Rule("pd.pool2d", ("x", "=ksize")),
    "pd_op.rnn": _rnn,
    "pd_op.max_pool2d_with_index": Rule("pd.max_pool2d_with_index", ("x",),
                                        {"kernel_size": "ksize"}),
    "pd_op.prelu": Rule("pd.prelu", ("x", "alpha")),
    "pd_op.dropout": Rule("pd.dropout", ("x", "", "=dropout_prob"),
                          {"mode": "dropout_implementation"}),
    **{f"pd_op.{m}_interp": _interp(m) for m in ("nearest", "bilinear", "bicubic", "linear",
                                                 "trilinear")},
    "pd_op.pad3d": Rule("pd.pad3d", ("x", "=paddings"), {"pad_value": "value"}),
    "pd_op.pad": Rule("pd.pad", ("x", "=pad_value")),
    "pd_op.grid_sample": Rule("pd.grid_sample", ("x", "grid")),
    "pd_op.affine_grid": Rule("pd.affine_grid", ("theta", "=output_shape")),
    # shape manipulation
    "pd_op.reshape": _reshape,
    "pd_op.flatten": Rule("pd.flatten", ("x",), results=(0, None)),
    "pd_op.transpose": Rule("pd.transpose", ("x",)),
    "pd_op.squeeze": Rule("pd.squeeze", ("x", "=axes"), results=(0, None)),
    "pd_op.unsqueeze": Rule("pd.unsqueeze", ("x", "=axes"), results=(0, None)),
    "pd_op.concat": _stack_or_concat("pd.concat", ("*xs", "=axis")),
    "pd_op.stack": _stack_or_concat("pd.stack", ("*xs",)),
    "pd_op.split": Rule("pd.split", ("x", "=sections", "=axis"), results="*"),
    "pd_op.split_with_num": Rule("pd.split", ("x", "=axis"), results="*"),
    "pd_op.slice": _slice,
    "pd_op.strided_slice": Rule("pd.strided_slice", ("x", "=starts", "=ends", "=strides")),
    "pd_op.tile": Rule("pd.tile", ("x", "=repeat_times")),
    "pd_op.expand": Rule("pd.expand", ("x", "=shape")),
    "pd_op.expand_as": Rule("pd.expand_as", ("x", "y"), {"target_shape": None}),
    "pd_op.meshgrid": Rule("pd.meshgrid", ("*xs",), results="*"),
    "pd_op.set_value": _set_value,
    "pd_op.set_value_with_tensor": Rule("pd.set_value_tensor",
                                        ("x", "value", "=starts", "=ends", "=steps")),
    # reductions and search
    "pd_op.mean": _reduce("pd.mean"), "pd_op.max": _reduce("pd.max"),
    "pd_op.min": _reduce("pd.min"), "pd_op.prod": _reduce("pd.prod"),
    "pd_op.sum": _reduce("pd.sum", dtype="dtype"),
    "pd_op.argmax": Rule("pd.argmax", ("x", "=axis")),
    "pd_op.topk": Rule("pd.topk", ("x", "=k")),
    "pd_op.cumsum": Rule("pd.cumsum", ("x", "=axis")),
    "pd_op.tril": _tril_triu(True), "pd_op.triu": _tril_triu(False),
    # indexing
    "pd_op.embedding": Rule("pd.lookup_table_v2", ("ids", "w"), {"sparse": None}),
    "pd_op.gather": Rule("pd.gather", ("x", "index", "=axis")),
    "pd_op.gather_nd": Rule("pd.gather_nd", ("x", "index")),
    "pd_op.index_select": Rule("pd.index_select", ("x", "index"), {"axis": "dim"}),
    "pd_op.take_along_axis": Rule("pd.take_along_axis", ("x", "index")),
    "pd_op.one_hot": Rule("pd.one_hot", ("x", "=depth")),
    "pd_op.cross_entropy_with_softmax": Rule("pd.softmax_with_cross_entropy",
                                             ("logits", "label")),
    # rounding, sorting, norms, rearranging (issue 16)
    **{f"pd_op.{n}": _unary(f"pd.{n}") for n in ("floor", "ceil", "sign", "log1p", "round",
                                                  "flip", "p_norm", "pixel_shuffle")},
    "pd_op.nonzero": Rule("pd.where_index", ("condition",)),
    "pd_op.argsort": Rule("pd.argsort", ("x",)),
    # random: the shape a constant (full_int_array), uniform's bounds constants too
    "pd_op.uniform": Rule("pd.uniform", ("=shape", "=min", "=max"), {"place": None}),
    "pd_op.gaussian": Rule("pd.gaussian", ("=shape",), {"place": None}),
    "pd_op.randint": Rule("pd.randint", ("=shape",), {"place": None}),
    # no-ops for inference
    "pd_op.assign_out_": _same, "pd_op.memcpy_h2d": _same, "pd_op.memcpy_d2h": _same,
}


def rule_for(name: str) -> Rule | Raise | None:
    """The rule of a PIR op; an in-place variant (`relu_`) uses its op's."""
    if name in PIR_OPS:
        return PIR_OPS[name]
    if name.endswith("_") and name[:-1] in PIR_OPS:
        return PIR_OPS[name[:-1]]
    return None


def supported_ops() -> list[str]:
    """The PIR op names tostatic raises (besides data, fetch, parameters, control flow and
    the builtin vector ops the walker handles itself)."""
    return sorted(PIR_OPS)
