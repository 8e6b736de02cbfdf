"""Python operators and Paddle's Tensor methods, installed on `TensorMethods` (eager Tensors
and symbolic Variables alike) as thin calls of the public functions in math.py.

Installing them here, rather than defining them in tensor.py, keeps the Tensor class below
the functions that use it: tensor.py knows nothing of math.py.
"""
from __future__ import annotations

from typing import Any, Callable

from tostatic.frontend.tensor import indexing, manipulation, math, reduction, search
from tostatic.frontend.tensor.tensor import Tensor, TensorMethods


def _binary(kind: str, reverse: bool = False) -> Callable[[Any, Any], Any]:
    """`x <op> y` as Paddle writes it (see math.binary_operator)."""
    def op(self: Any, other: Any) -> Any:
        return math.binary_operator(kind, self, other, reverse=reverse)
    return op


OPERATORS: dict[str, Callable[..., Any]] = {
    "__add__": _binary("add"), "__radd__": _binary("add", reverse=True),
    "__sub__": _binary("subtract"), "__rsub__": _binary("subtract", reverse=True),
    "__mul__": _binary("multiply"), "__rmul__": _binary("multiply", reverse=True),
    "__truediv__": _binary("divide"), "__rtruediv__": _binary("divide", reverse=True),
    "__floordiv__": _binary("floor_divide"), "__rfloordiv__": _binary("floor_divide", reverse=True),
    "__mod__": _binary("remainder"), "__pow__": _binary("pow"),
    "__lt__": _binary("less_than"), "__le__": _binary("less_equal"),
    "__gt__": _binary("greater_than"), "__ge__": _binary("greater_equal"),
    "__matmul__": lambda self, other: math.matmul(self, other),
    "__neg__": lambda self: math.scale(self, -1.0),
}

METHODS: dict[str, Callable[..., Any]] = {
    "matmul": lambda self, y, transpose_x=False, transpose_y=False:
        math.matmul(self, y, transpose_x, transpose_y),
    "reshape": lambda self, shape, name=None: math.reshape(self, shape),
    "transpose": lambda self, perm, name=None: math.transpose(self, perm),
    "astype": lambda self, dtype: math.cast(self, dtype),
    "cast": lambda self, dtype: math.cast(self, dtype),
    "__getitem__": indexing.getitem,
    "__setitem__": indexing.setitem,
    # rows along dim 0; len() refuses a dynamic dim (iterating through __getitem__ alone
    # would never stop on one)
    "__iter__": lambda self: (self[i] for i in range(len(self))),
    # the public functions whose first argument is the tensor, with Paddle's signatures
    **{name: getattr(module, name) for module, names in (
        (math, ("abs", "clip", "exp", "sigmoid", "sqrt", "tanh")),
        (manipulation, ("chunk", "expand", "flatten", "gather", "split", "squeeze", "tile",
                        "unsqueeze")),
        (reduction, ("cumsum", "max", "mean", "min", "prod", "sum")),
        (search, ("argmax", "topk"))) for name in names},
    "slice": lambda self, axes, starts, ends: manipulation.slice(self, axes, starts, ends),
    "where": lambda self, x=None, y=None, name=None: search.where(self, x, y, name),
}

# eager tensors compare elementwise, as Paddle's do (symbolic ones keep identity: they are
# dict keys while tracing)
EAGER_ONLY: dict[str, Callable[..., Any]] = {
    "__eq__": _binary("equal"), "__ne__": _binary("not_equal"),
}

for _name, _fn in {**OPERATORS, **METHODS}.items():
    setattr(TensorMethods, _name, _fn)
for _name, _fn in EAGER_ONLY.items():
    setattr(Tensor, _name, _fn)
