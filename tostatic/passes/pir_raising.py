"""How one PIR op is raised into `pd` ops: what raise_from_pir.py (the walk over the program)
and pir_ops.py (the table of PIR ops) share.

A PIR value id is bound, in the scope of the block being raised, to an `Entry`:
- an SSA value of the `pd` function;
- a `Const`: a literal from pd_op.full / full_int_array / assign_value. It becomes a pd op only
  where a tensor is needed (`materialize`); where the op wants an attribute (reshape's shape,
  scale's scale, the axis of concat) its value is read instead, as Paddle's legacy ops held it;
- a list of entries: a PIR vector (builtin.combine, split's result);
- `Missing`: a PIR result tostatic's op has no counterpart of (batch_norm's reserve_space):
  reading one is an error naming both ops.

Beside them `sym` keeps what is known statically of small int vectors built from shapes
(pd_op.shape64 -> slice -> stack, the dynamic-batch reshape of a Transformer): each element an
int, a `Dim` (dim `axis` of a tensor, unknown until run time) or None, so that reshape can take
such a shape as its attribute (0 copies the input's dim, one -1 is inferred).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, Union

import numpy as np
from xdsl.ir import Block, SSAValue

from tostatic.ir import dtypes
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import REGISTRY, Abstract, From, PdOp
from tostatic.ops.core import Constant, array_to_dense
from tostatic.ops.creation import Full
from tostatic.ops.manipulation import Cast
from tostatic.serialization.pir_json import PirFormatError, PirOp, PirProgram, PirType

# attributes that say nothing about what an op computes in inference
IGNORED_ATTRS = frozenset({"struct_name", "op_role", "op_dist_attr", "place", "op_callstack",
                           "stop_gradient", "persistable", "chunk_id", "op_namescope",
                           "use_cudnn", "use_mkldnn", "mkldnn_data_type", "is_persistable"})


@dataclass(frozen=True)
class Const:
    array: np.ndarray


@dataclass(frozen=True)
class MissingValue:
    origin: str  # "result 5 (reserve_space) of pd_op.batch_norm_ at program...ops[13]"


@dataclass(frozen=True)
class Dim:
    value: SSAValue
    axis: int


@dataclass(frozen=True)
class Sym:
    elems: tuple[int | Dim | None, ...]
    scalar: bool  # a 0-D value (one element)


Entry = Union[SSAValue, Const, MissingValue, list]  # list: a PIR vector of entries


def pir_dtype(name: str, where: str) -> dtypes.DType | None:
    """A PIR DataType name ("float32", "Undefined(ALL_DTYPE)") as our dtype (None: undefined)."""
    if name.startswith("Undefined"):
        return None
    if name not in dtypes.BY_NAME:
        raise UnsupportedError(f"{where}: dtype {name!r} is not supported")
    return dtypes.BY_NAME[name]


def tensor_abstract(t: PirType, where: str) -> Abstract:
    if t.kind != "tensor" or t.dtype is None or t.shape is None:
        raise UnsupportedError(f"{where}: a value of type {t} (not a dense tensor) is not "
                               f"supported")
    d = pir_dtype(t.dtype, where)
    assert d is not None
    return Abstract(tuple(t.shape), d)


@dataclass
class Scope:
    """One block being raised: PIR value id -> entry, and the block receiving pd ops."""

    block: Block
    env: dict[int, Entry] = field(default_factory=dict)
    sym: dict[SSAValue, Sym] = field(default_factory=dict)
    consts: dict[Any, tuple[Const, SSAValue]] = field(default_factory=dict)  # made here


class OpContext:
    """What a rule sees of the PIR op it raises: its operands as entries, tensors or
    constants, its attributes, and `emit` to add pd ops to the current block."""

    def __init__(self, program: PirProgram, op: PirOp, scope: Scope):
        self.program = program
        self.op = op
        self.scope = scope
        self.attrs = dict(op.attrs)

    @property
    def where(self) -> str:
        return f"{self.program.source}: {self.op.path} ({self.op.name})"

    def fail(self, reason: str) -> UnsupportedError:
        return UnsupportedError(f"{self.where}: {reason}")

    # --- operands ----------------------------------------------------------------------

    def entry(self, i: int) -> Entry | None:
        """Operand i's entry; None when the op has no value there (id 0, or fewer operands)."""
        if i >= len(self.op.operands) or self.op.operands[i] == 0:
            return None
        vid = self.op.operands[i]
        if vid not in self.scope.env:
            raise PirFormatError(self.program.source, f"{self.op.path}.I[{i}]",
                                 f"operand {i} of {self.op.name} reads value %{vid}, which no "
                                 f"earlier op of this block or an enclosing one defines")
        e = self.scope.env[vid]
        if isinstance(e, MissingValue):
            raise self.fail(f"operand {i} reads {e.origin}, which tostatic does not compute")
        return e

    def tensor(self, i: int, dtype: dtypes.DType | None = None) -> SSAValue:
        e = self.entry(i)
        if e is None:
            raise self.fail(f"operand {i} is required but the op has none there")
        return self.as_tensor(e, i, dtype)

    def as_tensor(self, e: Entry, i: int, dtype: dtypes.DType | None = None) -> SSAValue:
        if isinstance(e, list):
            raise self.fail(f"operand {i} is a vector of {len(e)} values where a tensor is "
                            f"expected")
        if isinstance(e, Const):
            return self.materialize(e, dtype)
        if isinstance(e, MissingValue):  # inside a vector
            raise self.fail(f"operand {i} reads {e.origin}, which tostatic does not compute")
        assert isinstance(e, SSAValue)
        return e

    def tensors(self, i: int) -> list[SSAValue]:
        """A vector operand (builtin.combine) as its tensors."""
        e = self.entry(i)
        if e is None:
            raise self.fail(f"operand {i} is required but the op has none there")
        if not isinstance(e, list):
            raise self.fail(f"operand {i} is one tensor where a vector (builtin.combine) is "
                            f"expected")
        return [self.as_tensor(x, i) for x in e]

    def is_null(self, i: int) -> bool:
        return self.entry(i) is None

    def known(self, i: int) -> Sym | None:
        """What is statically known of operand i as a small vector or scalar."""
        e = self.entry(i)
        if isinstance(e, Const):
            a = e.array
            if a.ndim <= 1 and a.size <= 64:
                return Sym(tuple(a.reshape(-1).tolist()), a.ndim == 0)
            return None
        if isinstance(e, list):
            elems: list[int | Dim | None] = []
            for x in e:
                s = self._known_entry(x)
                elems += list(s.elems) if s else [None]
            return Sym(tuple(elems), False)
        if isinstance(e, SSAValue):
            return self.scope.sym.get(e)
        return None

    def _known_entry(self, e: Entry) -> Sym | None:
        if isinstance(e, Const):
            return Sym((e.array.reshape(-1).tolist()[0],), True) if e.array.size == 1 else None
        return self.scope.sym.get(e) if isinstance(e, SSAValue) else None

    def const(self, i: int, what: str) -> np.ndarray:
        """Operand i's value, which tostatic needs at load time (an attribute of the pd op)."""
        e = self.entry(i)
        if isinstance(e, Const):
            return e.array
        k = self.known(i)
        if k is not None and all(isinstance(x, (int, float, bool)) and x is not None
                                 for x in k.elems):
            return np.array(k.elems).reshape(() if k.scalar else (-1,))
        raise self.fail(f"operand {i} ({what}) is computed when the program runs; tostatic "
                        f"needs it constant (a full / full_int_array) to raise this op")

    def set_known(self, value: SSAValue, sym: Sym) -> None:
        self.scope.sym[value] = sym

    # --- emitting ------------------------------------------------------------------------

    def emit(self, cls: type[PdOp] | str, operands: Sequence[SSAValue],
             attrs: dict[str, Any]) -> list[SSAValue]:
        if isinstance(cls, str):
            cls = REGISTRY[cls]
        try:
            attrs = cls.normalize_attrs(attrs)
            results = cls.infer_results([Abstract.of_value(v) for v in operands], attrs)
        except (ShapeError, UnsupportedError, TypeError, ValueError) as e:
            raise type(e)(f"{e} (raising {self.where})") from None
        op = cls.make(list(operands), attrs, [r.tensor_type() for r in results])
        self.scope.block.add_op(op)
        return list(op.results)

    def materialize(self, c: Const, dtype: dtypes.DType | None = None) -> SSAValue:
        """A Const as a pd op in this block (once per block): pd.full when uniform, as
        Paddle's fill_constant, else a pd.constant literal."""
        a = c.array if dtype is None else c.array.astype(dtype.numpy)
        key = (id(c), None if dtype is None else dtype.name)
        if key in self.scope.consts:
            return self.scope.consts[key][1]
        d = dtypes.convert_dtype(a.dtype)
        flat = a.reshape(-1)
        uniform = flat.size > 0 and bool((flat == flat[0]).all())
        if uniform and not (d.name == "int64" and abs(int(flat[0])) > 2 ** 53):
            v = self.emit(Full, [], {"shape": tuple(a.shape), "value": float(flat[0].real),
                                     "dtype": d})[0]
        else:
            op = Constant.make([], {"value": array_to_dense(a)},
                               [Abstract.of_array(a).tensor_type()])
            self.scope.block.add_op(op)
            v = op.results[0]
        self.scope.consts[key] = (c, v)  # holding c keeps its id from being reused
        return v

    def cast_to(self, v: SSAValue, want: PirType) -> SSAValue:
        """`v` with the dtype the file declares for it (Paddle's shape64 is int64, our shape
        int32): a pd.cast where they differ."""
        if want.kind != "tensor" or want.dtype is None:
            return v
        d = pir_dtype(want.dtype, self.where)
        if d is None or Abstract.of_value(v).dtype == d:
            return v
        return self.emit(Cast, [v], {"dtype": d})[0]


# ---------------------------------------------------------------------------------------------
# table-driven raising
# ---------------------------------------------------------------------------------------------

Raise = Callable[[OpContext], list[Entry]]


@dataclass(frozen=True)
class Rule:
    """One PIR op as one pd op. `inputs` names each PIR operand: a pd input ("x"), a vector
    for a variadic pd input ("*xs"), "=attr" for an operand whose constant value is the pd
    attribute `attr`, "" for one that must be absent (id 0). `attrs` maps PIR attribute names
    to pd ones (None: dropped); other PIR attributes go to the pd attribute the op's Legacy
    mapping reads from the legacy attribute of that name, or to the pd attribute of that name.
    `results`: per PIR result, the pd result index (None: no counterpart); "*" makes the
    one PIR result the vector of all pd results."""

    pd: str
    inputs: tuple[str, ...]
    attrs: dict[str, str | None] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    results: tuple[int | None, ...] | str | None = None

    def __call__(self, ctx: OpContext) -> list[Entry]:
        cls = REGISTRY[self.pd]
        op = ctx.op
        if len(op.operands) > len(self.inputs):
            raise ctx.fail(f"has {len(op.operands)} operands, tostatic reads "
                           f"{len(self.inputs)}")
        given: dict[str, list[SSAValue]] = {}
        attrs = dict(self.fixed)
        for i, spec in enumerate(self.inputs):
            if spec == "":
                if not ctx.is_null(i):
                    raise ctx.fail(f"operand {i} is given; tostatic supports this op only "
                                   f"without it")
            elif spec.startswith("="):
                name = spec[1:]
                if not ctx.is_null(i):  # absent: the pd attribute's default
                    attrs[name] = convert_attr(cls, name, ctx.const(i, name), ctx)
            elif spec.startswith("*"):
                given[spec[1:]] = ctx.tensors(i)
            else:
                given[spec] = [ctx.tensor(i)]
        attrs.update(pd_attrs(cls, self.attrs, ctx))
        flat: list[SSAValue] = []
        for name in cls.INPUTS:
            flat += given.get(name.lstrip("*"), [])
        outs = ctx.emit(cls, flat, attrs)
        return bind_results(ctx, outs, self.results)


def bind_results(ctx: OpContext, outs: list[SSAValue],
                 mapping: tuple[int | None, ...] | str | None) -> list[Entry]:
    op = ctx.op
    if mapping == "*":
        return [list(outs)]
    idx = mapping if mapping is not None else tuple(range(len(op.results)))
    assert not isinstance(idx, str)
    entries: list[Entry] = []
    for k, r in enumerate(op.results):
        j = idx[k] if k < len(idx) else None
        if j is None or j >= len(outs):
            entries.append(MissingValue(f"result {k} of {op.name} at {op.path}"))
        else:
            entries.append(ctx.cast_to(outs[j], r.type))
    return entries


def pd_attrs(cls: type[PdOp], explicit: dict[str, str | None],
             ctx: OpContext) -> dict[str, Any]:
    """The pd attributes of a PIR op's attributes (see Rule)."""
    out: dict[str, Any] = {}
    legacy = cls.PADDLE.attrs if cls.PADDLE else {}
    for name, value in ctx.attrs.items():
        if name in explicit:
            target = explicit[name]
        elif name in IGNORED_ATTRS:
            target = None
        elif isinstance(legacy.get(name), From):
            target = legacy[name].source  # type: ignore[union-attr]
        elif name in cls.ATTRS:
            target = name
        else:
            raise ctx.fail(f"attribute {name}={value!r} is not supported (tostatic's "
                           f"{cls.name} has {sorted(cls.ATTRS)})")
        if target is not None:
            out[target] = convert_attr(cls, target, value, ctx)
    return out


def convert_attr(cls: type[PdOp], name: str, value: Any, ctx: OpContext) -> Any:
    """A PIR attribute value (or a constant operand's array) as pd attribute `name` holds it."""
    spec = cls.ATTRS.get(name)
    if spec is None:
        raise ctx.fail(f"tostatic's {cls.name} has no attribute {name!r}")
    kind = spec.kind.name
    if isinstance(value, np.ndarray):
        value = value.tolist()
    try:
        if kind == "dtype":
            return pir_dtype(value, ctx.where) if isinstance(value, str) else value
        if kind in ("ints", "floats"):
            seq = value if isinstance(value, (list, tuple)) else [value]
            return tuple((int if kind == "ints" else float)(x) for x in seq)
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ctx.fail(f"attribute {name} takes one value, found {value!r}")
            value = value[0]
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            return bool(value)
        if kind == "str":
            return str(value)
    except (TypeError, ValueError):
        raise ctx.fail(f"attribute {name}: cannot read {value!r} as {kind}") from None
    return value
