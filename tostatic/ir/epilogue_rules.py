"""The steps a fused op's epilogue may hold (ops/fused.py) and the scalar rules of its
activations, below the op classes: codegen's epilogue kernels build their expression from
these where no op class is loaded (a warm start, runtime/warm_start.py, imports no xDSL).
The activation ops (ops/activation.py) take their SCALAR rule from here and
ops/fused.py its EPILOGUE_ACTIVATIONS table: one definition."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tostatic.ir import scalar_expr as se

OPERAND_STEPS = ("bias", "add")


def relu(x: se.Expr) -> se.Expr:
    return se.maximum(x, 0)


def sigmoid(x: se.Expr) -> se.Expr:
    return 1 / (1 + se.exp(-x))


def gelu(x: se.Expr, approximate: bool) -> se.Expr:
    if approximate:
        return 0.5 * x * (1 + se.tanh(float(np.sqrt(2.0 / np.pi)) * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1 + se.erf(x * float(1 / np.sqrt(2.0))))


def relu6(x: se.Expr) -> se.Expr:
    return se.minimum(se.maximum(x, 0), 6)


def hardswish(x: se.Expr, threshold: float, scale: float, offset: float) -> se.Expr:
    return x * se.minimum(se.maximum(x + 3, 0), 6) / 6  # Paddle's kernel: always 6, 6, 3


def swish(x: se.Expr) -> se.Expr:
    return x / (1 + se.exp(-x))


# epilogue step -> (the pd op it stands for, the attributes that op must have, its rule)
EPILOGUE_STEPS: dict[str, tuple[str, dict[str, Any], Callable[..., se.Expr]]] = {
    "relu": ("pd.relu", {}, relu),
    "relu6": ("pd.relu6", {}, relu6),
    "hardswish": ("pd.hardswish", {"threshold": 6.0, "scale": 6.0, "offset": 3.0}, hardswish),
    "sigmoid": ("pd.sigmoid", {}, sigmoid),
    "tanh": ("pd.tanh", {}, se.tanh),
    "gelu": ("pd.gelu", {"approximate": False}, gelu),
    "gelu_tanh": ("pd.gelu", {"approximate": True}, gelu),
    "silu": ("pd.silu", {}, swish),
    "swish": ("pd.swish", {}, swish),
}


def step_expr(step: str, value: se.Expr) -> se.Expr:
    """An activation step applied to `value` (KeyError for an unknown step)."""
    _, attrs, rule = EPILOGUE_STEPS[step]
    return rule(value, **attrs)


def chain_expr(epilogue: Sequence[str], dtype: str) -> se.Expr:
    """A fused op's whole `epilogue` (bias, add, activations, in order) as one scalar
    expression of the result (arg 0) and the extra operands (args 1, 2, ...)."""
    value, k = se.arg(0, dtype), 0
    for step in epilogue:
        if step in OPERAND_STEPS:
            k += 1
            value = value + se.arg(k, dtype)
        else:
            value = step_expr(step, value)
    return value


def epilogue_expr(steps: Sequence[str], dtype: str) -> tuple[se.Expr, tuple[str, ...]]:
    """A fused op's epilogue as one expression (chain_expr) and the kinds of its extra
    operands ("bias": one value per output channel, "add": a same-shaped tensor)."""
    return chain_expr(steps, dtype), tuple(s for s in steps if s in OPERAND_STEPS)
