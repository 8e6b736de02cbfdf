"""The symbolic tensor: `Variable`, and `Parameter` for the weights of a static Program.

One class for both ways of building a program, as in Paddle: a to_static trace (the
Variable is an SSA value of the traced `pd` function; `block` is None) and a static Program
(`block` is the Paddle block that declares it). A static Variable is a Paddle variable, a
name that ops may write more than once (a while_loop writes back onto its loop variables):
its program's builder keeps which SSA value it holds in each region being built, and its
VarDesc fields (stop_gradient, lod_level, ...) live here, where Paddle's Python API keeps
them; `desc` is its VarDesc in the program as lowered.

A Variable that lowering made (the step scopes and copies around a cond) or that a loaded
program declares has no value: it is a view of its VarDesc (`Variable.of_desc`).
"""
from __future__ import annotations

from typing import Any

from xdsl.dialects.builtin import IntegerAttr, i1
from xdsl.ir import SSAValue

from tostatic.dialects.program import VarOp
from tostatic.frontend.tensor.tensor import TensorMethods
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.location import user_location
from tostatic.ir.opdef import Abstract
from tostatic.serialization.program_text import var_to_text


class Variable(TensorMethods):
    """A symbolic tensor: no data while the program is built (an Executor or a compiled
    to_static function computes it)."""

    def __init__(self, name: str, value: SSAValue | None = None, block: Any = None,
                 stop_gradient: bool = True, fields: dict[str, Any] | None = None,
                 desc: VarOp | None = None):
        self.name = name
        self.value = value  # the SSA value that defined it (None: a view of `desc`)
        self.block = block
        self._stop_gradient = stop_gradient
        self._fields = dict(fields or {})  # VarDesc fields: persistable, lod_level, ...
        self._desc = desc

    @classmethod
    def of_desc(cls, block: Any, desc: VarOp) -> "Variable":
        return cls(desc.var_name, block=block, desc=desc)

    def _changed(self) -> None:
        if self.block is not None:
            self.block.program._version += 1

    # --- Paddle's attributes --------------------------------------------------------------
    @property
    def desc(self) -> VarOp | None:
        """Its VarDesc: in the program as lowered now (None while tracing)."""
        if self._desc is not None or self.block is None:
            return self._desc
        return self.block.desc.var(self.name)

    @property
    def abstract(self) -> Abstract:
        if self.value is not None:
            return Abstract.of_value(self.value)
        return Abstract(tuple(self._desc.shape or ()), self._desc.dtype)  # type: ignore

    @property
    def shape(self) -> Any:
        """A tuple in a static Program (Paddle's Variable.shape), a list while tracing."""
        shape = self.abstract.shape
        return tuple(shape) if self.block is not None else list(shape)

    @property
    def dtype(self) -> dtypes.DType:
        return self.abstract.dtype

    @property
    def type(self) -> str:
        return self._desc.var_type if self.value is None else "DENSE_TENSOR"  # type: ignore

    @property
    def lod_level(self) -> int:
        if self.value is None:
            return self._desc.lod_level or 0  # type: ignore[union-attr]
        return self._fields.get("lod_level") or 0

    @property
    def persistable(self) -> bool:
        if self.value is None and self._desc is not None:
            return self._desc.persistable
        return bool(self._fields.get("persistable"))

    @persistable.setter
    def persistable(self, value: bool) -> None:
        if self.value is None and self._desc is not None:
            self._desc.properties["persistable"] = _bool_attr(value)
        self._fields["persistable"] = bool(value)
        self._changed()

    @property
    def stop_gradient(self) -> bool:
        if self.value is None and self._desc is not None:
            return self._desc.stop_gradient
        return self._stop_gradient

    @stop_gradient.setter
    def stop_gradient(self, value: bool) -> None:
        if self.value is None and self._desc is not None:
            self._desc.properties["stop_gradient"] = _bool_attr(value)
        self._stop_gradient = bool(value)
        self._changed()

    def var_fields(self) -> dict[str, Any]:
        """The VarOp fields a static program declares it with."""
        return {**self._fields, "stop_gradient": self._stop_gradient}

    def _var_op(self) -> VarOp:
        if self.value is None:
            return self._desc  # type: ignore[return-value]
        ab = self.abstract
        fields = self.var_fields() if self.block is not None else {
            "stop_gradient": self._stop_gradient}
        return VarOp.build(self.name, "DENSE_TENSOR", ab.dtype, list(ab.shape), **fields)

    def __repr__(self) -> str:
        trainable = getattr(self, "trainable", None)
        return var_to_text(self._var_op(), {} if trainable is None else {self.name: trainable})

    __str__ = __repr__

    # --- what a symbolic tensor cannot do -------------------------------------------------
    def __bool__(self) -> bool:
        if self.block is not None:
            raise UnsupportedError(f"static variable {self.name} has no value at build time; "
                                   f"it cannot be used as a Python bool")
        self._outside_condition("a Python bool (if/while/and/or, bool())")

    def _outside_condition(self, what: str) -> Any:
        raise UnsupportedError(
            f"a symbolic Tensor was used as {what} at {user_location()}; outside a condition "
            f"to_static converts it has no value: use it as the condition of an if / while "
            f"(also inside and / or / not, with bool(), int(), float(), .numpy() there), or "
            f"pick with paddle.where / paddle.static.nn.cond")

    def __float__(self) -> float:
        if self.block is not None:
            raise TypeError(f"static variable {self.name} has no value at build time")
        return self._outside_condition("a Python float (float())")

    def __int__(self) -> int:
        if self.block is not None:
            raise TypeError(f"static variable {self.name} has no value at build time")
        return self._outside_condition("a Python int (int())")

    def _dygraph_only(self, what: str) -> Any:
        raise UnsupportedError(
            f"{what} needs a concrete value, but {self.name} is symbolic while tracing "
            f"(at {user_location()}); keep it outside the function passed to to_static")

    def numpy(self) -> Any:
        if self.block is not None:
            raise TypeError(f"static variable {self.name} has no data; run the program with "
                            f"an Executor and fetch it")
        self._outside_condition("a numpy array (Tensor.numpy())")

    def item(self) -> Any:
        self._dygraph_only("Tensor.item()")

    def __len__(self) -> int:
        d = self.shape[0] if self.shape else None
        if d is None or d < 0:
            self._dygraph_only("len()")
        return d  # type: ignore[return-value]

    __hash__ = object.__hash__


class Parameter(Variable):
    """A persistable, trainable variable of a static Program, created by a layer (fc_0.w_0)."""

    def __init__(self, name: str, value: SSAValue | None = None, block: Any = None,
                 trainable: bool = True, fields: dict[str, Any] | None = None):
        super().__init__(name, value, block, stop_gradient=not trainable,
                         fields={"persistable": True, "is_parameter": True, **(fields or {})})
        self.trainable = trainable

    @classmethod
    def view(cls, block: Any, desc: VarOp, trainable: bool) -> "Parameter":
        """A parameter of a program known only by its desc (a clone)."""
        param = cls(desc.var_name, block=block, trainable=trainable)
        param._desc = desc
        return param


def _bool_attr(value: bool) -> IntegerAttr:
    return IntegerAttr(int(bool(value)), i1)
