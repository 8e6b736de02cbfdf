"""Where values come from: captured eager tensors, persistable variables, constants."""
from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, TensorType
from xdsl.ir import Attribute

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, DENSE, INT, STR, attr
from tostatic.ir.opdef import Abstract, PdOp, pd_op


@pd_op
class Capture(PdOp):
    """An eager tensor the traced function read (a parameter, a buffer or a plain tensor).

    Only a reference: `persistable-extraction` snapshots it into a persistable or a constant,
    so nothing before that pass may treat it as a known value.
    """

    name = "pd.capture"
    NONDIFF = True
    ATTRS = {"index": attr(INT), "kind": attr(STR, "tensor"),
             "structured_name": attr(STR, None), "var_name": attr(STR, None)}

    @staticmethod
    def eager() -> np.ndarray:
        raise RuntimeError("pd.capture has no value until persistable-extraction runs")


@pd_op
class Persistable(PdOp):
    """A named persistable variable whose data lives in the program's weights (.pdiparams)."""

    name = "pd.persistable"
    NONDIFF = True
    ATTRS = {"var_name": attr(STR), "structured_name": attr(STR, None),
             "trainable": attr(BOOL, False), "is_parameter": attr(BOOL, False)}

    @staticmethod
    def eager() -> np.ndarray:
        raise RuntimeError("pd.persistable is read from the weights, not computed")


@pd_op
class Constant(PdOp):
    """A literal tensor stored in the IR itself (small: folding keeps big results out)."""

    name = "pd.constant"
    NONDIFF = True
    ATTRS = {"value": attr(DENSE)}

    @staticmethod
    def infer(value: DenseIntOrFPElementsAttr) -> Abstract:
        return Abstract.of_type(value.type)

    @staticmethod
    def eager(value: DenseIntOrFPElementsAttr) -> np.ndarray:
        return dense_to_array(value)


def array_to_dense(a: np.ndarray) -> Attribute:
    d = dtypes.convert_dtype(a.dtype)
    t = TensorType(d.element_type(), list(a.shape))
    values = a.reshape(-1).tolist()
    if d is dtypes.bool_:
        values = [int(v) for v in values]
    elif d in (dtypes.complex64, dtypes.complex128):
        values = [(v.real, v.imag) for v in values]  # xDSL's complex elements are pairs
    return DenseIntOrFPElementsAttr.from_list(t, values)


def dense_to_array(attr_: DenseIntOrFPElementsAttr) -> np.ndarray:
    ab = Abstract.of_type(attr_.type)
    values = list(attr_.get_values())
    if ab.dtype in (dtypes.complex64, dtypes.complex128):
        values = [complex(*v) for v in values]
    return np.array(values, dtype=ab.dtype.numpy).reshape(ab.shape)


# How Paddle's assign_value stores a literal (lowering and raising of pd.constant read this):
# 3.x writes `values` (SCALARS: float64 / int64 / bool by dtype); older files use these slots.
ASSIGN_VALUE_SLOTS = {"float32": ("fp32_values", "FLOATS"), "int32": ("int32_values", "INTS"),
                      "int64": ("int64_values", "LONGS"), "bool": ("bool_values", "BOOLEANS"),
                      "float64": ("fp64_values", "FLOAT64S")}


@pd_op
class UpdateState(PdOp):
    """Writes `value` into the persistable `ref` (UPDATES), as batch norm writes its running
    statistics: what if-to-select leaves when it inlines a branch that updates state, with
    `value` selected by the condition, so the branch not taken leaves the state alone."""

    name = "pd.update_state"
    NONDIFF = True
    EFFECTS = True  # the write is its purpose: never folded or removed
    INPUTS = ("ref", "value")
    UPDATES = {0: "ref"}

    @staticmethod
    def infer(ref: Abstract, value: Abstract) -> Abstract:
        return ref

    @staticmethod
    def eager(ref: np.ndarray, value: np.ndarray) -> np.ndarray:
        return np.asarray(value, dtype=ref.dtype)
