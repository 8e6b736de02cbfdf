"""Conv / matmul epilogues: y = act(y + bias) over a GEMM's output, in place, in one pass
(the bias broadcast along the channel axis). `act` names a pd activation op ("pd.relu",
"pd.relu6", "pd.hardswish", "pd.sigmoid", "pd.swish", ...) whose SCALAR rule, with its
default attributes, is the code; the kernel is the fused elementwise one."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tostatic.codegen.elementwise import ElementwiseKernel
from tostatic.ir import scalar_expr as se
from tostatic.ir.opdef import REGISTRY
from tostatic.ops.fused import EPILOGUE_ACTIVATIONS, OPERAND_STEPS

_KERNELS: dict[tuple[Any, ...], ElementwiseKernel] = {}


def activation_expr(act: str | None, value: se.Expr, **attrs: Any) -> se.Expr:
    """`act`'s scalar rule applied to `value` (None: the value itself)."""
    if act is None:
        return value
    cls = REGISTRY.get(act)
    if cls is None or cls.SCALAR is None:
        raise se.NotScalar(f"{act} is not an elementwise activation")
    return cls.SCALAR(value, **{**cls.normalize_attrs({}), **attrs})


def bias_act(y: np.ndarray, bias: np.ndarray | None = None, act: str | None = None,
             axis: int = 1, out: np.ndarray | None = None, **attrs: Any) -> np.ndarray:
    """act(y + bias) with `bias` [C] along `axis` of y; written into `out` (y itself for an
    in-place epilogue) when given, contiguous and of y's shape."""
    dtype = y.dtype.name
    x = se.arg(0, dtype)
    operands = [y]
    if bias is not None:
        value = x + se.arg(1, dtype)
        shape = [1] * y.ndim
        shape[axis] = -1
        operands.append(np.asarray(bias, dtype=y.dtype).reshape(shape))
    else:
        value = x
    key = (dtype, bias is not None, act, tuple(sorted(attrs.items())))
    kernel = _KERNELS.get(key)
    if kernel is None:
        expr = activation_expr(act, value, **attrs)
        kernel = _KERNELS[key] = ElementwiseKernel(expr, [dtype] * len(operands))
    return kernel(*operands, out=[out] if out is not None else None)[0]


def chain_expr(epilogue: Sequence[str], dtype: str) -> se.Expr:
    """A fused op's whole `epilogue` (ops/fused.py: bias, add, activations, in order) as one
    scalar expression of the result (arg 0) and the extra operands (args 1, 2, ...)."""
    value, k = se.arg(0, dtype), 0
    for step in epilogue:
        if step in OPERAND_STEPS:
            k += 1
            value = value + se.arg(k, dtype)
        else:
            cls, attrs = EPILOGUE_ACTIVATIONS[step]
            if cls.SCALAR is None:
                raise se.NotScalar(f"{cls.name} has no scalar rule")
            value = cls.SCALAR(value, **cls.normalize_attrs(dict(attrs)))
    return value


def chain_kernel(epilogue: Sequence[str], dtype: str, operands: int) -> ElementwiseKernel:
    """The compiled epilogue: kernel(y, *extras, out=[y]) applies every step in one pass over
    y (extras broadcast against y as numpy would: a bias [N] along y's last dim)."""
    key = ("chain", tuple(epilogue), dtype)
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = ElementwiseKernel(chain_expr(epilogue, dtype),
                                                   [dtype] * (operands + 1))
    return kernel
