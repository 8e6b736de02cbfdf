"""The `program` dialect: a one-to-one mirror of Paddle's ProgramDesc protobuf.

It is not SSA. Paddle ops name their variables (`X = ["x"]`), blocks declare variables, and
control-flow ops point at other blocks by index; the dialect keeps exactly that, so that a
`.pdmodel` read into it and written back is byte-identical. Lowering to SSA dialects is a
separate pass. Everything "optional" below means "present in the protobuf or not" (proto2 has
presence), which is what makes the byte-identical round trip possible.

    program.program  {version?, op_version_map?}     one block of program.block
      program.block  {idx, parent_idx, forward_block_idx?}   program.var* then program.op*
        program.var  {var_name, var_type, dtype?, shape?, lod_level?, persistable?, ...}
        program.op   {op_type, inputs, outputs, attrs, is_target?}

Op attribute values carry their Paddle AttrType in their encoding (program_attrs.py:
`to_attr`/`from_attr`); nothing else should build or inspect that encoding directly.

Python accessors shadow property names with plain Python values (`var.shape` is a tuple);
the raw xDSL attributes are the `*_attr` fields. `Operation.name` is xDSL's op name, so a
variable's name is `var.var_name`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xdsl.dialects.builtin import (
    I32,
    I64,
    ArrayAttr,
    BoolAttr,
    DenseArrayBase,
    DictionaryAttr,
    IntegerAttr,
    StringAttr,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Dialect, Region
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    lazy_traits_def,
    opt_prop_def,
    prop_def,
    region_def,
    traits_def,
)
from xdsl.traits import HasParent, NoTerminator
from xdsl.utils.exceptions import VerifyException

from tostatic.dialects.program_attrs import (  # noqa: F401  (the dialect's attributes)
    ATTR_TYPES,
    VAR_TYPE_NAMES,
    VAR_TYPES,
    BlockRefAttr,
    BlockRefsAttr,
    ScalarAttr,
    ScalarsAttr,
    VarRefAttr,
    VarRefsAttr,
    _check_int,
    _check_str,
    _I32_RANGE,
    _I64_RANGE,
    from_attr,
    to_attr,
)
from tostatic.ir import dtypes as _dtypes
from tostatic.ir.attributes import int_array_attr, int_attr
from tostatic.ir.errors import ProgramError

# --------------------------------------------------------------------------------------------
# Small helpers for properties
# --------------------------------------------------------------------------------------------


def _opt_int(attr: IntegerAttr | None) -> int | None:
    return None if attr is None else attr.value.data


def _opt_bool(attr: IntegerAttr | None) -> bool | None:
    return None if attr is None else bool(attr.value.data)


def _i32(value: int | None, what: str) -> IntegerAttr | None:
    return None if value is None else int_attr(_check_int(value, _I32_RANGE, what), i32)


def _bool(value: bool | None) -> IntegerAttr | None:
    return None if value is None else int_attr(int(bool(value)), i1)


def _names_dict(slots: Mapping[str, Sequence[str]], what: str) -> DictionaryAttr:
    out: dict[str, Attribute] = {}
    for slot, names in slots.items():
        if isinstance(names, str):
            raise TypeError(f"{what} slot {slot!r}: expected a list of variable names, got a str")
        out[str(slot)] = ArrayAttr([StringAttr(_check_str(n, f"{what}[{slot!r}]")) for n in names])
    return DictionaryAttr(out)


def _verify_names_dict(d: DictionaryAttr, what: str) -> None:
    for slot, names in d.data.items():
        if not (isinstance(names, ArrayAttr) and all(isinstance(n, StringAttr) for n in names.data)):
            raise VerifyException(f"{what} slot {slot!r} must be an array of strings, got {names}")


# --------------------------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------------------------


@irdl_op_definition
class VarOp(IRDLOperation):
    """A VarDesc: a named variable of a block (a declaration, not an SSA value)."""

    name = "program.var"

    var_name_attr = prop_def(StringAttr, prop_name="var_name")
    var_type_attr = prop_def(StringAttr, prop_name="var_type")
    # The dtype name of tostatic.ir.dtypes, or the VarType enum name for types that table lacks.
    dtype_attr = opt_prop_def(StringAttr, prop_name="dtype")
    shape_attr = opt_prop_def(DenseArrayBase.constr(I64), prop_name="shape")
    lod_level_attr = opt_prop_def(IntegerAttr[I32], prop_name="lod_level")
    persistable_attr = opt_prop_def(BoolAttr, prop_name="persistable")
    need_check_feed_attr = opt_prop_def(BoolAttr, prop_name="need_check_feed")
    is_parameter_attr = opt_prop_def(BoolAttr, prop_name="is_parameter")
    stop_gradient_attr = opt_prop_def(BoolAttr, prop_name="stop_gradient")
    # VarDesc.attrs (rare): name -> INT/STRING/INTS value, in file order.
    var_attrs_attr = opt_prop_def(DictionaryAttr, prop_name="var_attrs")
    # Escape hatch: the serialized VarType, as hex, for kinds the fields above cannot express
    # (READER, TUPLE, or a tensor desc in a field that does not match var_type). When present
    # it is written verbatim and dtype/shape/lod_level are absent. Hex, not BytesAttr: xDSL
    # prints BytesAttr as a string literal that parses back as a StringAttr.
    raw_type_attr = opt_prop_def(StringAttr, prop_name="raw_type")

    traits = lazy_traits_def(lambda: (HasParent(BlockOp),))

    @classmethod
    def build(  # type: ignore[override]
        cls,
        name: str | None = None,
        var_type: str = "DENSE_TENSOR",
        dtype: object = None,
        shape: Sequence[int] | None = None,
        persistable: bool | None = None,
        *,
        lod_level: int | None = None,
        need_check_feed: bool | None = None,
        is_parameter: bool | None = None,
        stop_gradient: bool | None = None,
        var_attrs: Mapping[str, Attribute] | None = None,
        raw_type: bytes | None = None,
        **irdl: Any,
    ) -> VarOp:
        """Build a variable. `dtype` is anything dtypes.convert_dtype accepts, or a VarType name."""
        if irdl or name is None:
            return super().build(**irdl)
        if var_type not in VAR_TYPES:
            raise ValueError(f"unknown var_type {var_type!r}")
        dtype_name = None if dtype is None else _dtype_name(dtype)
        props: dict[str, Attribute | None] = {
            "var_name": StringAttr(_check_str(name, "var name")),
            "var_type": StringAttr(var_type),
            "dtype": None if dtype_name is None else StringAttr(dtype_name),
            "shape": None if shape is None else int_array_attr(
                tuple(_check_int(d, _I64_RANGE, "shape") for d in shape)),
            "lod_level": _i32(lod_level, "lod_level"),
            "persistable": _bool(persistable),
            "need_check_feed": _bool(need_check_feed),
            "is_parameter": _bool(is_parameter),
            "stop_gradient": _bool(stop_gradient),
            "var_attrs": None if var_attrs is None else DictionaryAttr(dict(var_attrs)),
            "raw_type": None if raw_type is None else StringAttr(bytes(raw_type).hex()),
        }
        return super().build(properties={k: v for k, v in props.items() if v is not None})

    @property
    def var_name(self) -> str:
        return self.var_name_attr.data

    @property
    def var_type(self) -> str:
        return self.var_type_attr.data

    @property
    def dtype_name(self) -> str | None:
        return None if self.dtype_attr is None else self.dtype_attr.data

    @property
    def dtype(self) -> _dtypes.DType | None:
        """The element type; ValueError for VarTypes tostatic has no DType for (e.g. UINT16)."""
        if self.dtype_attr is None:
            return None
        name = self.dtype_attr.data
        if name not in _dtypes.BY_NAME:
            raise ValueError(f"variable {self.var_name!r}: dtype {name} is not supported by tostatic")
        return _dtypes.BY_NAME[name]

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self.shape_attr is None else tuple(self.shape_attr.iter_values())

    @property
    def lod_level(self) -> int | None:
        return _opt_int(self.lod_level_attr)

    @property
    def raw_type(self) -> bytes | None:
        """The verbatim VarType bytes, for var kinds without structured fields."""
        return None if self.raw_type_attr is None else bytes.fromhex(self.raw_type_attr.data)

    @property
    def persistable(self) -> bool:
        return bool(_opt_bool(self.persistable_attr))

    @property
    def need_check_feed(self) -> bool:
        return bool(_opt_bool(self.need_check_feed_attr))

    @property
    def is_parameter(self) -> bool:
        return bool(_opt_bool(self.is_parameter_attr))

    @property
    def stop_gradient(self) -> bool:
        return bool(_opt_bool(self.stop_gradient_attr))

    def verify_(self) -> None:
        if self.var_type not in VAR_TYPES:
            raise VerifyException(f"variable {self.var_name!r}: unknown var_type {self.var_type!r}")
        if self.dtype_attr is not None and _dtype_var_type(self.dtype_attr.data) is None:
            raise VerifyException(f"variable {self.var_name!r}: unknown dtype {self.dtype_attr.data!r}")
        if self.dtype_attr is None and (self.shape_attr is not None or self.lod_level_attr is not None):
            raise VerifyException(f"variable {self.var_name!r}: shape/lod_level need a dtype")
        if self.raw_type_attr is not None:
            if self.dtype_attr is not None:
                raise VerifyException(f"variable {self.var_name!r}: raw_type excludes dtype/shape")
            try:
                bytes.fromhex(self.raw_type_attr.data)
            except ValueError:
                raise VerifyException(f"variable {self.var_name!r}: raw_type is not hex") from None
        if self.var_attrs_attr is not None:
            for k, v in self.var_attrs_attr.data.items():
                t, _ = from_attr(v)
                if t not in ("INT", "STRING", "INTS"):
                    raise VerifyException(f"variable {self.var_name!r}: var attr {k!r} has type {t}")


def _dtype_name(dtype: object) -> str:
    """`dtype` property value: a dtypes.py name, or the VarType name where dtypes.py has none."""
    if isinstance(dtype, str) and dtype in VAR_TYPES:  # "FP32", or e.g. "UINT16"
        known = _dtypes.BY_VAR_TYPE.get(VAR_TYPES[dtype])
        return dtype if known is None else known.name
    return _dtypes.convert_dtype(dtype).name


def _dtype_var_type(name: str) -> int | None:
    """VarType number of a dtype property value."""
    if name in _dtypes.BY_NAME:
        return _dtypes.BY_NAME[name].var_type
    n = VAR_TYPES.get(name)
    return n if n is not None and n not in _dtypes.BY_VAR_TYPE else None


def dtype_prop_name(var_type_number: int) -> str:
    """The `dtype` property value for a VarType.Type number (inverse of dtype_var_type)."""
    if var_type_number in _dtypes.BY_VAR_TYPE:
        return _dtypes.BY_VAR_TYPE[var_type_number].name
    if var_type_number in VAR_TYPE_NAMES:
        return VAR_TYPE_NAMES[var_type_number]
    raise ValueError(f"unknown VarType.Type {var_type_number}")


def dtype_var_type(name: str) -> int:
    """VarType.Type number of a `dtype` property value."""
    n = _dtype_var_type(name)
    if n is None:
        raise ValueError(f"unknown dtype {name!r}")
    return n


@irdl_op_definition
class OpOp(IRDLOperation):
    """An OpDesc: a Paddle operator reading and writing named variables."""

    name = "program.op"

    op_type_attr = prop_def(StringAttr, prop_name="op_type")
    inputs_attr = prop_def(DictionaryAttr, prop_name="inputs")
    outputs_attr = prop_def(DictionaryAttr, prop_name="outputs")
    attrs_attr = prop_def(DictionaryAttr, prop_name="attrs")
    is_target_attr = opt_prop_def(BoolAttr, prop_name="is_target")

    traits = lazy_traits_def(lambda: (HasParent(BlockOp),))

    @classmethod
    def build(  # type: ignore[override]
        cls,
        op_type: str | None = None,
        inputs: Mapping[str, Sequence[str]] | None = None,
        outputs: Mapping[str, Sequence[str]] | None = None,
        attrs: Mapping[str, Attribute | tuple[str, Any]] | None = None,
        *,
        is_target: bool | None = None,
        **irdl: Any,
    ) -> OpOp:
        """Build an op. Attr values are encoded attributes or (AttrType, value) pairs."""
        if irdl or op_type is None:
            return super().build(**irdl)
        enc: dict[str, Attribute] = {}
        for k, v in (attrs or {}).items():
            if isinstance(v, tuple):
                v = to_attr(*v)
            from_attr(v)  # reject unencoded values early
            enc[str(k)] = v
        props: dict[str, Attribute] = {
            "op_type": StringAttr(op_type),
            "inputs": _names_dict(inputs or {}, "inputs"),
            "outputs": _names_dict(outputs or {}, "outputs"),
            "attrs": DictionaryAttr(enc),
        }
        if is_target is not None:
            props["is_target"] = int_attr(int(bool(is_target)), i1)
        return super().build(properties=props)

    @property
    def op_type(self) -> str:
        return self.op_type_attr.data

    @property
    def input_slots(self) -> list[str]:
        return list(self.inputs_attr.data)

    @property
    def output_slots(self) -> list[str]:
        return list(self.outputs_attr.data)

    def has_input(self, slot: str) -> bool:
        return slot in self.inputs_attr.data

    def has_output(self, slot: str) -> bool:
        return slot in self.outputs_attr.data

    def input(self, slot: str) -> list[str]:
        """Variable names of an input slot; KeyError if the op has no such slot."""
        return self._names(self.inputs_attr, slot, "input")

    def output(self, slot: str) -> list[str]:
        return self._names(self.outputs_attr, slot, "output")

    def _names(self, d: DictionaryAttr, slot: str, what: str) -> list[str]:
        try:
            arr = d.data[slot]
        except KeyError:
            raise KeyError(f"{self.op_type} op has no {what} slot {slot!r} "
                           f"(has {sorted(d.data)})") from None
        return [s.data for s in arr.data]  # type: ignore[union-attr]

    @property
    def input_names(self) -> list[str]:
        """All input variable names, slot by slot."""
        return [n for s in self.inputs_attr.data for n in self.input(s)]

    @property
    def output_names(self) -> list[str]:
        return [n for s in self.outputs_attr.data for n in self.output(s)]

    @property
    def attr_names(self) -> list[str]:
        return list(self.attrs_attr.data)

    def has_attr(self, name: str) -> bool:
        return name in self.attrs_attr.data

    def set_attr(self, name: str, attr_type: str, value: Any) -> None:
        """Set (or add) one attribute, keeping the others in their order."""
        self.properties["attrs"] = DictionaryAttr({**self.attrs_attr.data,
                                                   name: to_attr(attr_type, value)})

    def attr(self, name: str) -> Any:
        """Python value of an attribute; KeyError if absent."""
        return from_attr(self._attr(name))[1]

    def attr_type(self, name: str) -> str:
        return from_attr(self._attr(name))[0]

    def _attr(self, name: str) -> Attribute:
        try:
            return self.attrs_attr.data[name]
        except KeyError:
            raise KeyError(f"{self.op_type} op has no attribute {name!r}") from None

    @property
    def is_target(self) -> bool:
        return bool(_opt_bool(self.is_target_attr))

    def verify_(self) -> None:
        _verify_names_dict(self.inputs_attr, f"{self.op_type} op inputs")
        _verify_names_dict(self.outputs_attr, f"{self.op_type} op outputs")
        for k, v in self.attrs_attr.data.items():
            try:
                from_attr(v)
            except ValueError as e:
                raise VerifyException(f"{self.op_type} op attribute {k!r}: {e}") from None


@irdl_op_definition
class BlockOp(IRDLOperation):
    """A BlockDesc: variable declarations followed by ops, in file order."""

    name = "program.block"

    idx_attr = prop_def(IntegerAttr[I32], prop_name="idx")
    parent_idx_attr = prop_def(IntegerAttr[I32], prop_name="parent_idx")
    forward_block_idx_attr = opt_prop_def(IntegerAttr[I32], prop_name="forward_block_idx")

    body = region_def("single_block")

    traits = lazy_traits_def(lambda: (HasParent(ProgramOp), NoTerminator()))

    @classmethod
    def build(  # type: ignore[override]
        cls,
        idx: int | None = None,
        parent_idx: int | None = None,
        vars: Iterable[VarOp] = (),
        ops: Iterable[OpOp] = (),
        *,
        forward_block_idx: int | None = None,
        **irdl: Any,
    ) -> BlockOp:
        if irdl or idx is None:
            return super().build(**irdl)
        props: dict[str, Attribute] = {
            "idx": _i32(idx, "idx"),  # type: ignore[dict-item]
            "parent_idx": _i32(-1 if parent_idx is None else parent_idx, "parent_idx"),  # type: ignore[dict-item]
        }
        if forward_block_idx is not None:
            props["forward_block_idx"] = _i32(forward_block_idx, "forward_block_idx")  # type: ignore[assignment]
        return super().build(properties=props, regions=[Region(Block([*vars, *ops]))])

    @property
    def idx(self) -> int:
        return self.idx_attr.value.data

    @property
    def parent_idx(self) -> int:
        return self.parent_idx_attr.value.data

    @property
    def forward_block_idx(self) -> int | None:
        return _opt_int(self.forward_block_idx_attr)

    @property
    def vars(self) -> list[VarOp]:
        return [op for op in self.body.block.ops if isinstance(op, VarOp)]

    @property
    def ops(self) -> list[OpOp]:
        return [op for op in self.body.block.ops if isinstance(op, OpOp)]

    def var(self, name: str) -> VarOp | None:
        """The variable declared in this block under `name`, if any (no parent lookup)."""
        for v in self.vars:
            if v.var_name == name:
                return v
        return None

    def verify_(self) -> None:
        seen_op = False
        for op in self.body.block.ops:
            if isinstance(op, OpOp):
                seen_op = True
            elif isinstance(op, VarOp):
                if seen_op:
                    raise VerifyException(f"block {self.idx}: variable {op.var_name!r} after an op")
            else:
                raise VerifyException(f"block {self.idx}: unexpected {op.name} op")


@irdl_op_definition
class ProgramOp(IRDLOperation):
    """A ProgramDesc: the blocks of one program, block 0 first."""

    name = "program.program"

    version_attr = opt_prop_def(IntegerAttr[I64], prop_name="version")
    # [[op name, version], ...] in file order (Paddle writes its registry in hash order).
    op_version_map_attr = opt_prop_def(ArrayAttr, prop_name="op_version_map")

    body = region_def("single_block")

    traits = traits_def(NoTerminator())

    @classmethod
    def build(  # type: ignore[override]
        cls,
        blocks: Iterable[BlockOp] | None = None,
        version: int | None = None,
        op_version_map: Iterable[tuple[str, int]] | None = None,
        **irdl: Any,
    ) -> ProgramOp:
        if irdl or blocks is None:
            return super().build(**irdl)
        props: dict[str, Attribute] = {}
        if version is not None:
            props["version"] = int_attr(_check_int(version, _I64_RANGE, "version"), i64)
        if op_version_map is not None:
            props["op_version_map"] = ArrayAttr([
                ArrayAttr([StringAttr(_check_str(n, "op name")),
                           int_attr(_check_int(v, _I32_RANGE, "op version"), i32)])
                for n, v in op_version_map])
        return super().build(properties=props, regions=[Region(Block(list(blocks)))])

    @property
    def blocks(self) -> list[BlockOp]:
        return [op for op in self.body.block.ops if isinstance(op, BlockOp)]

    def block(self, idx: int) -> BlockOp:
        return self.blocks[idx]

    @property
    def version(self) -> int | None:
        return _opt_int(self.version_attr)

    @property
    def op_version_map(self) -> list[tuple[str, int]] | None:
        if self.op_version_map_attr is None:
            return None
        return [(p.data[0].data, p.data[1].value.data)  # type: ignore[attr-defined]
                for p in self.op_version_map_attr.data]

    def verify_(self) -> None:
        for i, op in enumerate(self.body.block.ops):
            if not isinstance(op, BlockOp):
                raise VerifyException(f"program.program may only hold program.block, found {op.name}")
            if op.idx != i:
                raise VerifyException(f"block at position {i} has idx {op.idx}")
        if self.op_version_map_attr is not None:
            for p in self.op_version_map_attr.data:
                if not (isinstance(p, ArrayAttr) and len(p.data) == 2
                        and isinstance(p.data[0], StringAttr)
                        and isinstance(p.data[1], IntegerAttr) and p.data[1].type == i32):
                    raise VerifyException(f"op_version_map entries must be [name, i32], got {p}")


def outer_uses(blocks: Sequence[BlockOp], idx: int,
               _outer: frozenset[int] = frozenset()) -> tuple[list[str], list[str]]:
    """(names block `idx` reads, names it writes) that it does not declare itself, in order
    of first use, with what its ops' sub-blocks (`sub_block` attributes) use counted in: what
    a conditional_block or while needs from, and gives back to, the blocks around it.
    A sub-block must be a child of its op's block, and never one of the blocks around it."""
    try:
        if type(idx) is not int or idx < 0 or idx in _outer:
            raise KeyError(idx)
        block = blocks[idx]
    except (IndexError, KeyError):
        raise ProgramError(f"sub_block {idx!r} is not the index of a block, or refers back to "
                           f"a block around it {sorted(_outer)}") from None
    own = {v.var_name for v in block.vars}
    reads: dict[str, None] = {}
    writes: dict[str, None] = {}
    for op in block.ops:
        ins, outs = op.input_names, op.output_names
        if op.has_attr("sub_block"):
            sub = op.attr("sub_block")
            sub_reads, sub_writes = outer_uses(blocks, sub, _outer | {idx})
            ins, outs = ins + sub_reads, outs + sub_writes
        for names, seen in ((ins, reads), (outs, writes)):
            for n in names:
                if n not in own:
                    seen.setdefault(n)
    return list(reads), list(writes)


Program = Dialect(
    "program",
    [ProgramOp, BlockOp, VarOp, OpOp],
    [BlockRefAttr, BlockRefsAttr, VarRefAttr, VarRefsAttr, ScalarAttr, ScalarsAttr],
)
