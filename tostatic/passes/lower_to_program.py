"""lower-to-program: the `pd` function becomes a `program.program` Paddle can read as it is."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import SSAValue

from tostatic.dialects.program import BlockOp, OpOp, ProgramOp, VarOp
from tostatic.frontend.tracing import LOC_ATTR, NAMES_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import Abstract, Fixed, FromInputs, Legacy, PdOp, group_inputs
from tostatic.ops.core import (
    ASSIGN_VALUE_SLOTS,
    Capture,
    Constant,
    Persistable,
    dense_to_array,
)
from tostatic.ops.creation import Full
from tostatic.passes.base import CompilePass, CompileState, entry, register
from tostatic.serialization.paddle_version import OP_VERSION_MAP, PADDLE_VERSION

INPUT_NAME_ATTR = "pd.name"  # func argument attribute: the feed variable's name

# Attributes every legacy op carries; ops without an extra-attr map keep two more.
COMMON_ATTRS = {"op_device": ("STRING", ""), "op_namescope": ("STRING", "/"),
                "op_role": ("INT", 0), "op_role_var": ("STRINGS", [])}


def common_attrs(keeps_extra: bool, location: str | None) -> dict[str, tuple[str, Any]]:
    attrs = dict(COMMON_ATTRS)
    if keeps_extra:
        attrs["op_callstack"] = ("STRINGS", [f'  File "{location}"'] if location else [])
        attrs["with_quant_attr"] = ("BOOLEAN", False)
    return attrs


def result_var_fields(name: str, cls: type[PdOp]) -> dict[str, Any]:
    """The VarDesc fields Paddle gives an op's output variable (lowering and static mode)."""
    # Paddle's operators (`x + y`) make `tmp_N` vars without a persistable field
    fields: dict[str, Any] = {} if re.fullmatch(r"tmp_\d+", name) else {"persistable": False}
    if cls.PADDLE is None or cls.PADDLE.out_lod_level or cls is Constant:
        fields["lod_level"] = 0
    return fields


def input_names(fn: func.FuncOp) -> list[str]:
    names = []
    for i, _ in enumerate(fn.body.block.args):
        attrs = fn.arg_attrs.data[i].data if fn.arg_attrs else {}
        name = attrs.get(INPUT_NAME_ATTR)
        names.append(name.data if isinstance(name, StringAttr) else f"feed_{i}")
    return names


class _Names:
    """SSA value -> Paddle variable name, keeping the names tracing chose where they are free."""

    def __init__(self) -> None:
        self.of: dict[SSAValue, str] = {}
        self.taken: set[str] = set()
        self._tmp = 0

    def claim(self, value: SSAValue, wanted: str | None) -> str:
        self.of[value] = name = self.reserve(wanted)
        return name

    def reserve(self, wanted: str | None) -> str:
        name = wanted if wanted and wanted not in self.taken else self.fresh()
        self.taken.add(name)
        return name

    def fresh(self) -> str:
        while f"tmp_{self._tmp}" in self.taken:
            self._tmp += 1
        name = f"tmp_{self._tmp}"
        self.taken.add(name)
        return name


def legacy_attrs(spec: Legacy, values: dict[str, Any],
                 inputs: list[Abstract]) -> dict[str, tuple[str, Any]]:
    """The legacy op's attributes from a pd op's attribute values, as its `Legacy` spec says."""
    attrs: dict[str, tuple[str, Any]] = {}
    for key, a in spec.attrs.items():
        if isinstance(a, Fixed):
            attrs[key] = (a.attr_type, a.value)
        elif isinstance(a, FromInputs):
            attrs[key] = (a.attr_type, a.compute(*inputs))
        else:
            v = values[a.source]
            attrs[key] = (a.attr_type, a.convert(v) if a.convert else _plain(v))
    return attrs


def legacy_op(cls: type[PdOp], values: dict[str, Any], operand_names: list[str],
              operands: list[Abstract], outs: list[str], extra_outs: list[str],
              location: str | None, keep_extra: bool | None = None,
              overrides: dict[str, tuple[str, Any]] | None = None) -> OpOp:
    """One pd op written as its Paddle legacy op, reading and writing the named variables
    (shared by lowering a traced function and by static mode, which builds op by op).
    `keep_extra`: whether op_callstack/with_quant_attr stay (default: as saved files have
    them; a live static Program keeps them on every op). `overrides` replaces attributes whose
    value depends on which Paddle API wrote the op (fill_constant's str_value)."""
    spec = cls.PADDLE
    assert spec is not None
    grouped = group_inputs(cls.INPUTS, list(operand_names))
    by_input = dict(zip((n.lstrip("*") for n in cls.INPUTS), grouped))
    inputs = {slot: (list(by_input[src.lstrip("*")]) if src.startswith("*")
                     else [by_input[src]]) for slot, src in spec.inputs.items()}
    if spec.optional_inputs_if is None or spec.optional_inputs_if(values):
        inputs.update({slot: [] for slot in spec.optional_inputs})
    outputs = {slot: (outs if idx == "*" else [outs[idx]]) for slot, idx in spec.outputs.items()}
    outputs.update({slot: [name] for slot, name in zip(spec.extra_outputs, extra_outs)})
    attrs = legacy_attrs(spec, values, operands)
    attrs.update(common_attrs(spec.keeps_extra_attrs if keep_extra is None else keep_extra,
                               location))
    attrs.update(overrides or {})
    return OpOp.build(spec.type, inputs, outputs, attrs)


def _constant_op(array: np.ndarray, out: str, keep_extra: bool = False) -> OpOp:
    """A uniform constant is written as pd.full would be; others as assign_value."""
    from tostatic.ir import dtypes

    d = dtypes.convert_dtype(array.dtype)
    flat = array.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        spec = Full.PADDLE
        values = Full.normalize_attrs({"shape": array.shape, "value": float(flat[0]), "dtype": d})
        attrs = legacy_attrs(spec, values, [])
        return OpOp.build(spec.type, {}, {"Out": [out]},
                          {**attrs, **common_attrs(keep_extra, None)})
    if d.name not in ASSIGN_VALUE_SLOTS:
        raise UnsupportedError(f"lower-to-program: constants of dtype {d.name} cannot be "
                               f"written as assign_value")
    scalars = [bool(v) if d is dtypes.bool_ else v for v in flat.tolist()]
    return OpOp.build("assign_value", {}, {"Out": [out]}, {
        "dtype": ("INT", d.var_type), "shape": ("INTS", list(array.shape)),
        "values": ("SCALARS", scalars), **common_attrs(True, None)})


@dataclass
class LoweredBlock:
    """A traced function as one block's variables (in creation order) and legacy ops."""

    variables: dict[str, tuple[Abstract, dict[str, Any]]]  # name -> (type, VarOp fields)
    ops: list[OpOp]
    feeds: list[str]
    fetches: list[str]
    parameters: dict[str, bool]  # parameter name -> trainable


def lower_function(fn: func.FuncOp) -> ProgramOp:
    """Build the ProgramDesc mirror of one traced function (block 0, feeds and fetches)."""
    lowered = lower_block(fn)
    variables = [VarOp.build(n, "DENSE_TENSOR", ab.dtype, list(ab.shape), **kw)
                 for n, (ab, kw) in sorted(lowered.variables.items())]
    return inference_program(variables, lowered.ops, lowered.feeds, lowered.fetches)


def lower_block(fn: func.FuncOp, keep_extra: bool | None = None) -> LoweredBlock:
    """The variables and legacy ops of one traced function; `keep_extra` as in legacy_op."""
    names = _Names()
    var_decls: dict[str, tuple[Abstract, dict[str, Any]]] = {}
    ops: list[OpOp] = []
    parameters: dict[str, bool] = {}
    block = fn.body.block

    def declare(name: str, ab: Abstract, **kw: Any) -> None:
        var_decls[name] = (ab, kw)

    feeds = input_names(fn)
    for arg, name in zip(block.args, feeds):
        names.claim(arg, name)
        declare(name, Abstract.of_value(arg))

    fetches: list[str] = []
    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            fetches = [names.of[v] for v in op.operands]
            continue
        wanted = [s.data for s in op.attributes[NAMES_ATTR].data] if NAMES_ATTR in op.attributes else []
        location = op.attributes[LOC_ATTR].data if LOC_ATTR in op.attributes else None
        if isinstance(op, Capture):
            raise ValueError("lower-to-program: run persistable-extraction first "
                             f"(pd.capture of {op.attr_values()['var_name']})")
        if isinstance(op, Persistable):
            values = op.attr_values()
            name = values["var_name"]
            names.claim(op.results[0], name)
            declare(name, Abstract.of_value(op.results[0]), persistable=True)
            if values["is_parameter"]:
                parameters[name] = values["trainable"]
            continue
        outs = [names.claim(r, wanted[i] if i < len(wanted) else None)
                for i, r in enumerate(op.results)]
        for r, n in zip(op.results, outs):
            declare(n, Abstract.of_value(r), **result_var_fields(n, type(op)))
        if isinstance(op, Constant):
            ops.append(_constant_op(dense_to_array(op.attr_values()["value"]), outs[0],
                                    bool(keep_extra)))
            continue
        assert isinstance(op, PdOp)
        if op.PADDLE is None:
            raise UnsupportedError(f"lower-to-program: {op.name} has no Paddle legacy op "
                                   f"(made at {location or 'an unknown place'})")
        extras = []
        for k, _ in enumerate(op.PADDLE.extra_outputs):
            extra = wanted[len(outs) + k] if len(outs) + k < len(wanted) else None
            extras.append(names.reserve(extra))
            x_ab = Abstract.of_value(op.operands[0])
            declare(extras[-1], Abstract((0,) + x_ab.shape, x_ab.dtype), persistable=False,
                    lod_level=0)
        ops.append(legacy_op(type(op), op.attr_values(), [names.of[v] for v in op.operands],
                             [Abstract.of_value(v) for v in op.operands], outs, extras,
                             location, keep_extra))
    return LoweredBlock(var_decls, ops, feeds, fetches, parameters)


def inference_program(variables: list[VarOp], ops: list[OpOp], feeds: list[str],
                      fetches: list[str]) -> ProgramOp:
    """Block 0 as Paddle saves an inference model: the variables (sorted by the caller), then
    feed ops (last column first), the ops, and fetch ops."""
    feed_ops = [OpOp.build("feed", {"X": ["feed"]}, {"Out": [name]},
                           {"col": ("INT", col), **common_attrs(True, None)})
                for col, name in reversed(list(enumerate(feeds)))]
    fetch_ops = [OpOp.build("fetch", {"X": [name]}, {"Out": ["fetch"]},
                            {"col": ("INT", col), **common_attrs(True, None)})
                 for col, name in enumerate(fetches)]
    variables = variables + [VarOp.build("feed", "FEED_MINIBATCH", persistable=True),
                             VarOp.build("fetch", "FETCH_LIST", persistable=True)]
    block0 = BlockOp.build(0, -1, variables, feed_ops + ops + fetch_ops)
    return ProgramOp.build([block0], version=PADDLE_VERSION, op_version_map=OP_VERSION_MAP)


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@register
class LowerToProgram(CompilePass):
    """Replace the module's `pd` function by the `program.program` Paddle would have saved for
    it: Paddle's variable names (`linear_0.tmp_0`, `tmp_3`), each pd op as its legacy op with
    every attribute Paddle requires, persistables as persistable vars, and feed/fetch ops."""

    name = "lower-to-program"
    changes_dialect = True

    def apply(self, module: ModuleOp, state: CompileState) -> None:
        fn = entry(module)
        program = lower_function(fn)
        module.body.block.insert_op_before(program, fn)
        module.body.block.erase_op(fn)
