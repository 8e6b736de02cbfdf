"""How `pd` ops are written as Paddle legacy ops: what lower-to-program and its control-flow
part share (`Lowering` walks blocks and names variables, `legacy_op` writes one op).

Region ops (pd.if, pd.while) are written by the functions in REGION_LOWERINGS, which
lower_control_flow.py fills; this module knows no control flow itself.

Three modes, one lowering:
- "export" (jit.save): an inference program as Paddle saves one: variables sorted by name,
  feed and fetch ops, each variable with the fields its op gives it.
- "live": the program a live Paddle static Program holds (what static mode prints, runs and
  `paddle.save`s): variables in creation order with the fields Paddle's Python API gave them
  (stop_gradient, need_check_feed, ...), every op with op_callstack/with_quant_attr, no feed or
  fetch ops. The static Program's own table (`VarTable`, in CompileState.variables) gives the
  fields and the creation order of the variables it made; those lowering makes itself (the
  copies and step scopes of control flow) follow Paddle's rules (stop_gradient: an op's outputs
  stop when all its inputs do).
- "save" (static.save_inference_model): the layout of "export" with the fields of "live",
  less the training-only ones (stop_gradient, is_parameter); set-is-test follows, as it
  follows "export".
Export mode alone writes a few ops in another form Paddle reads the same way, where
paddle2onnx fails on Paddle's own (EXPORT_FORMS, lower_export_forms.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, StringAttr
from xdsl.ir import Block, Operation, SSAValue

from tostatic.dialects.program import BlockOp, OpOp, ProgramOp, VarOp, from_attr, outer_uses
from tostatic.ir import dtypes
from tostatic.ir.attr_keys import (
    BLOCK_NAMES_ATTR,
    INPUT_NAME_ATTR,
    LEGACY_ATTRS_ATTR,
    LOC_ATTR,
    NAMES_ATTR,
)
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import Abstract, Fixed, FromInputs, Legacy, PdOp, group_inputs
from tostatic.ops.core import (
    ASSIGN_VALUE_SLOTS,
    Capture,
    Constant,
    Persistable,
    dense_to_array,
)
from tostatic.ops.control_flow import RegionOp, Undefined, Yield
from tostatic.ops.creation import Full
from tostatic.ops.manipulation import Assign
from tostatic.serialization.paddle_version import OP_VERSION_MAP, PADDLE_VERSION

# Attributes every legacy op carries; ops without an extra-attr map keep two more.
COMMON_ATTRS = {"op_device": ("STRING", ""), "op_namescope": ("STRING", "/"),
                "op_role": ("INT", 0), "op_role_var": ("STRINGS", [])}


def common_attrs(keeps_extra: bool, location: str | None) -> dict[str, tuple[str, Any]]:
    attrs = dict(COMMON_ATTRS)
    if keeps_extra:
        attrs["op_callstack"] = ("STRINGS", [f'  File "{location}"'] if location else [])
        attrs["with_quant_attr"] = ("BOOLEAN", False)
    return attrs


def result_var_fields(name: str, cls: type[PdOp], index: int = 0,
                      op: Operation | None = None) -> dict[str, Any]:
    """The VarDesc fields Paddle gives an op's output variable (lowering and static mode);
    `index`: which result of `op` (Paddle declares legacy_lod_level per output)."""
    # Paddle's operators (`x + y`) make `tmp_N` vars, control flow `_generated_var_N` ones
    # and __getitem__ its `x_slice_N` (block.create_var), without a persistable field
    bare = re.fullmatch(r"(tmp|_generated_var)_\d+|.+_(strided_)?slice_\d+", name)
    fields: dict[str, Any] = {} if bare else {"persistable": False}
    if cls.PADDLE is None or cls.PADDLE.lod_level_of(index, op) or cls is Constant:
        fields["lod_level"] = 0
    return fields


def input_names(fn: func.FuncOp) -> list[str]:
    names = []
    for i, _ in enumerate(fn.body.block.args):
        attrs = fn.arg_attrs.data[i].data if fn.arg_attrs else {}
        name = attrs.get(INPUT_NAME_ATTR)
        names.append(name.data if isinstance(name, StringAttr) else f"feed_{i}")
    return names


def output_names(fn: func.FuncOp) -> list[str | None]:
    """The names the function's results had when traced or loaded (`res_attrs` pd.name):
    optimisation may merge or drop the ops that made them, the outputs keep their names."""
    n = len(fn.function_type.outputs.data)
    if not fn.res_attrs:
        return [None] * n
    names = [d.data.get(INPUT_NAME_ATTR) for d in fn.res_attrs.data]
    return [a.data if isinstance(a, StringAttr) else None for a in names]


def name_results(fn: func.FuncOp, names: list[str]) -> None:
    fn.res_attrs = ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(n)}) for n in names])


class _Names:
    """SSA value -> Paddle variable name, keeping the names tracing chose where they are free.
    Names are unique program-wide, sub-blocks included."""

    def __init__(self, hinted: set[str] | None = None) -> None:
        self.of: dict[SSAValue, str] = {}
        self.taken: set[str] = set()
        self.hinted = hinted or set()  # names ops ask for: `generated` leaves them free
        self._tmp = 0
        self._counters: dict[str, int] = {}

    def claim(self, value: SSAValue, wanted: str | None) -> str:
        self.of[value] = name = self.reserve(wanted)
        return name

    def reserve(self, wanted: str | None) -> str:
        name = wanted if wanted and wanted not in self.taken else self.fresh()
        self.taken.add(name)
        return name

    def fresh(self) -> str:
        while f"tmp_{self._tmp}" in self.taken or f"tmp_{self._tmp}" in self.hinted:
            self._tmp += 1
        name = f"tmp_{self._tmp}"
        self.taken.add(name)
        return name

    def generated(self, pattern: str, wanted: str | None = None) -> str:
        """`wanted` if free, else the next free `pattern.format(k)`, as Paddle's unique_name
        numbers `_generated_var_N` / `cast_N.tmp_0` (control-flow lowering only)."""
        if wanted and wanted not in self.taken:
            self.taken.add(wanted)
            return wanted
        k = self._counters.get(pattern, 0)
        while pattern.format(k) in self.taken or pattern.format(k) in self.hinted:
            k += 1
        self._counters[pattern] = k + 1
        name = pattern.format(k)
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
              overrides: dict[str, tuple[str, Any]] | None = None,
              live: bool = True) -> OpOp:
    """One pd op written as its Paddle legacy op, reading and writing the named variables
    (shared by lowering a traced function and by static mode, which builds op by op).
    `keep_extra`: whether op_callstack/with_quant_attr stay (default: as saved files have
    them; a live static Program keeps them on every op). `overrides` replaces attributes whose
    value depends on which Paddle API wrote the op (fill_constant's str_value)."""
    spec = cls.PADDLE
    assert spec is not None
    grouped = group_inputs(cls.INPUTS, list(operand_names))
    by_input = dict(zip((n.lstrip("*") for n in cls.INPUTS), grouped))
    inputs = {slot: ([by_input[n] for n in src] if isinstance(src, tuple)
                     else list(by_input[src.lstrip("*")]) if src.startswith("*")
                     else [by_input[src]]) for slot, src in spec.inputs.items()}
    if spec.optional_inputs_if is None or spec.optional_inputs_if(values):
        inputs.update({slot: [] for slot in spec.optional_inputs})
    outputs = {slot: (outs if idx == "*" else [outs[i] for i in idx] if isinstance(idx, tuple)
                      else [outs[idx]] if outs[idx] is not None else [])
               for slot, idx in spec.outputs.items() if live or slot not in spec.live_outputs}
    for (slot, _, _), name in zip(spec.extra_vars(operands), extra_outs):
        outputs.setdefault(slot, []).append(name)
    attrs = legacy_attrs(spec, values, operands)
    attrs.update(common_attrs(spec.keeps_extra_attrs if keep_extra is None else keep_extra,
                               location))
    attrs.update(overrides or {})
    return OpOp.build(spec.type, inputs, outputs, attrs)


def _unread_optional(op: Operation) -> set[int]:
    """Result indices of `op` written as empty slots (Legacy.optional_outputs nobody reads
    and nobody named: a named one may be fetched)."""
    spec = getattr(op, "PADDLE", None)
    if spec is None or not spec.optional_outputs:
        return set()
    named = hints(op)
    return {idx for slot, idx in spec.outputs.items()
            if slot in spec.optional_outputs and isinstance(idx, int)
            and not op.results[idx].uses and not (idx < len(named) and named[idx])}


def _overrides(op: Operation) -> dict[str, tuple[str, Any]]:
    """Legacy attributes the frontend fixed on the op (which Paddle API wrote it)."""
    if LEGACY_ATTRS_ATTR not in op.attributes:
        return {}
    return {k: from_attr(v) for k, v in op.attributes[LEGACY_ATTRS_ATTR].data.items()}  # type: ignore


def constant_op(array: np.ndarray, out: str, keep_extra: bool = False) -> OpOp:
    """A uniform constant is written as pd.full would be; others as assign_value."""
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


Var = tuple[Abstract | None, dict[str, Any]]  # (type, VarOp fields); None: a STEP_SCOPES var
MODES = ("export", "live", "save")
_TRAINING_ONLY = ("stop_gradient", "is_parameter")


class VarTable(Protocol):
    """What a static Program knows of its variables and the SSA IR does not carry."""

    def var_fields(self, name: str) -> dict[str, Any] | None:
        """The VarOp fields the program declared `name` with (None: a name it did not make)."""

    def var_seq(self, name: str) -> int | None:
        """When the program made `name` (a creation counter), or None."""

    def var_stop(self, name: str) -> bool | None:
        """For a name the program gave a variable Paddle creates itself (a cond's copies):
        its stop_gradient as Paddle set it then, if the program knows it."""


@dataclass
class SubBlock:
    """One Paddle block being written: its variables and ops, in creation order."""

    idx: int
    parent_idx: int
    variables: dict[str, Var] = field(default_factory=dict)
    ops: list[OpOp] = field(default_factory=list)
    order: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # live: creation order

    def declare(self, name: str, ab: Abstract | None, **kw: Any) -> None:
        self.variables[name] = (ab, kw)


def var_op(name: str, var: Var) -> VarOp:
    ab, kw = var
    if ab is None:
        return VarOp.build(name, "STEP_SCOPES", **kw)
    return VarOp.build(name, "DENSE_TENSOR", ab.dtype, list(ab.shape), **kw)


def hints(op: Operation) -> list[str]:
    """The variable names tracing or raising chose for an op's results."""
    if NAMES_ATTR not in op.attributes:
        return []
    return [s.data for s in op.attributes[NAMES_ATTR].data]  # type: ignore[attr-defined]


def block_names(op: Operation) -> dict[str, Any] | None:
    """The names static mode gave the variables around a region op's sub-blocks (strings or
    lists of strings by role), or None for an op static mode did not build."""
    attr = op.attributes.get(BLOCK_NAMES_ATTR)
    if attr is None:
        return None
    return {k: (v.data if isinstance(v, StringAttr) else [s.data for s in v.data])  # type: ignore
            for k, v in attr.data.items()}  # type: ignore[attr-defined]


def _all_hints(op: Operation) -> list[str]:
    names = hints(op)
    for v in (block_names(op) or {}).values():
        names += [v] if isinstance(v, str) else list(v)
    return names


class Lowering:
    """Writes the ops of one function, block by block. What every block shares: the names
    (unique program-wide), the parameters, and the sub-blocks written so far, numbered in
    creation order as Paddle numbers them (a region's nested blocks follow it). `mode` is one
    of MODES (module docstring); `variables` the static Program's VarTable, if any."""

    def __init__(self, fn: func.FuncOp, mode: str = "export",
                 variables: VarTable | None = None):
        if mode not in MODES:
            raise ValueError(f"lower-to-program: mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.live = mode == "live"
        # live programs keep op_callstack/with_quant_attr on every op; saved ones as Paddle
        # saves them (legacy_op's default)
        self.keep_extra: bool | None = True if self.live else None
        self.variables = variables if mode != "export" else None
        self.names = _Names({n for op in fn.walk() for n in _all_hints(op)})
        self.parameters: dict[str, bool] = {}
        self.top = SubBlock(0, -1)
        self.blocks: dict[int, SubBlock] = {0: self.top}
        self.built: dict[int, BlockOp] = {}
        self.next_idx = 1
        # yielded pd.assign results that write an outer variable themselves -> the function
        # naming it (lower_control_flow.lower_region)
        self.redirect: dict[SSAValue, Callable[[], str]] = {}
        self.stop: dict[str, bool] = {}  # live: stop_gradient of the variables lowering made
        self.xshape: dict[SSAValue, str] = {}  # X -> the XShape var written for it (grad ops)
        self._last_seq = -1
        self._count = 0

    # --- variables -------------------------------------------------------------------------
    def fields(self, name: str) -> dict[str, Any] | None:
        return self.variables.var_fields(name) if self.variables is not None else None

    def declare(self, target: SubBlock, name: str, ab: Abstract | None, **kw: Any) -> None:
        """Declare `name` in `target` with the VarOp fields `kw` (those the program declared
        it with, when it made it). In live mode it also takes its place in creation order and
        starts as stop_gradient=False, as Paddle's create_var leaves it."""
        own = self.fields(name)
        if own is not None:
            kw = dict(own)
        elif self.live:
            self.stop.setdefault(name, False)
        target.declare(name, ab, **kw)
        if self.live and name not in target.order:
            seq = self.variables.var_seq(name) if self.variables is not None else None
            if seq is not None:
                self._last_seq = max(self._last_seq, seq)
                target.order[name] = (seq, 0, 0)
            else:  # made here: after what the program made before it
                self._count += 1
                target.order[name] = (self._last_seq, 1, self._count)

    def stop_gradient(self, name: str) -> bool:
        own = self.fields(name)
        if own is not None:
            return bool(own.get("stop_gradient"))
        if self.variables is not None:
            known = self.variables.var_stop(name)
            if known is not None:
                return known
        return self.stop.get(name, False)

    def append(self, target: SubBlock, op: OpOp) -> None:
        """Append `op`; live: Paddle's append_op marks the outputs stop_gradient when every
        input is (conditional_block and while excepted), unless the program says how they
        were when it made them."""
        if self.live and op.op_type not in ("conditional_block", "while"):
            if all(self.stop_gradient(n) for n in op.input_names):
                for n in op.output_names:
                    self.stop[n] = True
        target.ops.append(op)

    def var_ops(self, block: SubBlock) -> list[VarOp]:
        """A block's variables as VarOps: in creation order (live) or by name."""
        if self.live:
            names = sorted(block.variables, key=lambda n: block.order[n])
        else:
            names = sorted(block.variables)
        out = []
        for n in names:
            ab, kw = block.variables[n]
            if self.live and self.fields(n) is None:
                kw = {**kw, "stop_gradient": self.stop_gradient(n)}
            elif self.mode == "save":
                kw = {k: v for k, v in kw.items() if k not in _TRAINING_ONLY}
            out.append(var_op(n, (ab, kw)))
        return out

    def visible(self, block: SubBlock, name: str) -> bool:
        """Whether `name` is declared in `block` or a block around it (Paddle's
        _find_var_recursive)."""
        b: SubBlock | None = block
        while b is not None:
            if name in b.variables:
                return True
            b = self.blocks.get(b.parent_idx)
        return False

    def retype(self, block: SubBlock, name: str, ab: Abstract) -> None:
        """What an op's InferShape does to a variable it writes (assign onto a loop var)."""
        b: SubBlock | None = block
        while b is not None:
            if name in b.variables:
                b.variables[name] = (ab, b.variables[name][1])
                return
            b = self.blocks.get(b.parent_idx)

    # --- ops -------------------------------------------------------------------------------
    def lower_ops(self, block: Block, target: SubBlock) -> Operation | None:
        """Lower every op of `block` into `target`; returns its terminator."""
        for op in block.ops:
            if isinstance(op, (func.ReturnOp, Yield)):
                return op
            self.lower_op(op, target)
        return None

    def name_of(self, value: SSAValue, target: SubBlock, wanted: str | None = None) -> str:
        """The variable holding `value`. A pd.undefined gets a variable no op writes, declared
        where it is first read (regions are isolated, so that is its own block)."""
        name = self.names.of.get(value)
        if name is None and isinstance(value.owner, Undefined):
            name = self.names.claim(value, wanted)
            self.declare(target, name, Abstract.of_value(value), lod_level=0)
        if name is None:
            raise ValueError(f"lower-to-program: {value} is read before any op writes it")
        return name

    def lower_op(self, op: Operation, target: SubBlock) -> None:
        names = self.names
        wanted = hints(op)
        location = op.attributes[LOC_ATTR].data if LOC_ATTR in op.attributes else None
        if isinstance(op, Capture):
            raise ValueError("lower-to-program: run persistable-extraction first "
                             f"(pd.capture of {op.attr_values()['var_name']})")
        if isinstance(op, Persistable):
            values = op.attr_values()
            name = values["var_name"]
            names.claim(op.results[0], name)
            kw: dict[str, Any] = {"persistable": True}
            if values["is_parameter"]:
                self.parameters[name] = values["trainable"]
                if self.live:
                    kw["is_parameter"] = True
            if self.live and self.fields(name) is None:
                self.stop[name] = not (values["is_parameter"] and values["trainable"])
            self.declare(self.top, name, Abstract.of_value(op.results[0]), **kw)
            return
        if isinstance(op, Undefined):
            return  # named when read (name_of)
        if isinstance(op, RegionOp):
            REGION_LOWERINGS[type(op)](self, op, target)
            return
        if op.results and op.results[0] in self.redirect:
            out = self.redirect.pop(op.results[0])()
            names.of[op.results[0]] = out
            self.write(target, Assign, {}, [op.operands[0]], [out], location)
            return
        inputs = [n.lstrip("*") for n in op.INPUTS] if isinstance(op, PdOp) else []
        outs: list[Any] = []
        skip = _unread_optional(op)
        for i, r in enumerate(op.results):
            if i in skip:
                outs.append(None)
                continue
            updated = op.UPDATES.get(i) if isinstance(op, PdOp) else None
            if updated is not None:  # written into the input's own variable, as Paddle wants
                outs.append(self.name_of(op.operands[inputs.index(updated)], target))
                names.of[r] = outs[-1]
                continue
            outs.append(names.claim(r, wanted[i] if i < len(wanted) else None))
            self.declare(target, outs[-1], Abstract.of_value(r),
                         **result_var_fields(outs[-1], type(op), i, op))
        if isinstance(op, Constant):
            const = constant_op(dense_to_array(op.attr_values()["value"]), outs[0],
                                 bool(self.keep_extra))
            for k, v in _overrides(op).items() if self.live else ():  # static mode's
                const.set_attr(k, *v)  # assign under a device guard (saved files clear it)
            self.append(target, const)
            return
        assert isinstance(op, PdOp)
        portable = EXPORT_FORMS.get(type(op)) if self.mode == "export" else None
        if portable is not None and portable(self, op, target, outs, location):
            return
        if op.PADDLE is None:
            raise UnsupportedError(f"lower-to-program: {op.name} has no Paddle legacy op "
                                   f"(made at {location or 'an unknown place'})")
        extras = []
        operand_types = [Abstract.of_value(v) for v in op.operands]
        for k, (slot, ab, fields) in enumerate(op.PADDLE.extra_vars(operand_types)):
            extra = wanted[len(outs) + k] if len(outs) + k < len(wanted) else None
            extras.append(names.reserve(extra))
            self.declare(target, extras[-1], ab, **fields)
            if slot == "XShape" and (self.live or k < len(op.PADDLE.extra_outputs)):
                self.xshape[op.operands[0]] = extras[-1]
        overrides = _overrides(op) or None
        self.append(target, legacy_op(type(op), op.attr_values(),
                                      self.operand_names(op, target),
                                      [Abstract.of_value(v) for v in op.operands], outs,
                                      extras if self.live else extras[:len(op.PADDLE.extra_outputs)],
                                      location, self.keep_extra, overrides, self.live))

    def operand_names(self, op: PdOp, target: SubBlock) -> list[str]:
        """The variables `op` reads; an xshape_inputs slot reads the XShape var of its X."""
        names = [self.name_of(v, target) for v in op.operands]
        spec = op.PADDLE
        if spec is not None and spec.xshape_inputs:
            xs = {spec.inputs[slot] for slot in spec.xshape_inputs}
            for i, (n, v) in enumerate(zip(op.INPUTS, op.operands)):
                if n in xs and v in self.xshape:
                    names[i] = self.xshape[v]
        return names

    def write(self, target: SubBlock, cls: type[PdOp], values: dict[str, Any],
              operands: list[SSAValue | tuple[str, Abstract]], outs: list[str],
              location: str | None) -> None:
        """Append `cls`'s legacy op reading `operands` (values, or (name, type) pairs) and
        writing the existing variables `outs`."""
        pairs = [(self.name_of(v, target), Abstract.of_value(v)) if isinstance(v, SSAValue)
                 else v for v in operands]
        self.append(target, legacy_op(cls, cls.normalize_attrs(values), [n for n, _ in pairs],
                                      [a for _, a in pairs], outs, [], location,
                                      self.keep_extra))

    def new_block(self, parent: SubBlock) -> SubBlock:
        block = SubBlock(self.next_idx, parent.idx)
        self.blocks[block.idx] = block
        self.next_idx += 1
        return block

    def finish(self, block: SubBlock) -> tuple[list[str], list[str]]:
        """Build a written sub-block; returns (outer names it reads, outer names it writes),
        nested blocks included, in order of first use: the slots of the op that runs it."""
        self.built[block.idx] = BlockOp.build(block.idx, block.parent_idx,
                                              self.var_ops(block), block.ops)
        return outer_uses(self.built, block.idx)  # type: ignore[arg-type]  (indexed by idx)


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


# pd region op class -> how it is written (filled by lower_control_flow.py)
REGION_LOWERINGS: dict[type, Callable[[Lowering, Any, SubBlock], None]] = {}

# pd op class -> how export mode writes it where another reader (paddle2onnx) fails on
# Paddle's own form; returns False to keep Paddle's (filled by lower_export_forms.py)
EXPORT_FORMS: dict[type, Callable[[Lowering, Any, SubBlock, list[str], str | None], bool]] = {}
