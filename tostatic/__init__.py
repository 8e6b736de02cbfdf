"""tostatic: eager Paddle-style models compiled to Paddle inference files and run natively.

`import tostatic as paddle` gives the subset of Paddle's API that tostatic implements.

The package imports nothing up front (PEP 562, as numpy and scipy do for their subpackages):
a name is imported when first read (`paddle.nn`, `paddle.to_tensor`, `from tostatic import
jit`). A deployed model's process needs only `tostatic.inference` and the runtime: it does not
pay for the dygraph front end, capture (jit.save) or the training API; a process building
models imports those on their first use, as before.
"""
from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

__version__ = "0.1.0"

# subpackages and modules, imported when their name is first read
_SUBMODULES = frozenset((
    "inference", "jit", "nn", "static", "utils", "vision", "io", "metric", "optimizer",
    "regularizer", "autograd", "linalg", "tensor"))
# module -> "name name=attribute ...": the names `tostatic.<name>` gives, from where
_FROM = {
    "tostatic.frontend.capture.compile": "compile",
    "tostatic.frontend.static.mode": "disable_static enable_static in_dynamic_mode",
    "tostatic.frontend.tensor.math": (
        "abs add arange bmm cast ceil clip divide einsum equal erf exp expand_as floor "
        "floor_divide full_like gather_nd greater_equal greater_than index_select is_tensor "
        "less_equal less_than log log1p logical_and logical_not logical_or logical_xor matmul "
        "maximum minimum mod multiply normal not_equal ones ones_like pow rand randint randn "
        "relu remainder reshape round rsqrt scale seed sigmoid sign sqrt square subtract "
        "take_along_axis tanh transpose tril triu uniform zeros zeros_like"),
    "tostatic.frontend.tensor.accumulate": "add_n assign full increment to_tensor",
    "tostatic.frontend.tensor.manipulation": (
        "chunk concat expand flatten flip gather meshgrid shape slice split squeeze stack "
        "tile unsqueeze"),
    "tostatic.frontend.tensor.search": "argmax argsort sort topk where",
    "tostatic.frontend.tensor.linalg": "norm",
    "tostatic.frontend.nn.param_attr": "ParamAttr",
    "tostatic.frontend.tensor.reduction": "cumsum max mean min prod sum",
    "tostatic.frontend.tensor.selecting": "broadcast_tensors index_put masked_select nonzero",
    "tostatic.frontend.nn.io": "load save",
    "tostatic.frontend.tensor.tensor": "Parameter Tensor",
    "tostatic.frontend.tensor.repr": "set_printoptions",
    "tostatic.frontend.tensor.autograd": "grad",
    "tostatic.frontend.tensor.grad_mode": "enable_grad is_grad_enabled no_grad set_grad_enabled",
    "tostatic.ir.dtypes": (
        "bfloat16 bool=bool_ complex128 complex64 float16 float32 float64 int16 int32 int64 "
        "int8 uint8"),
}
_NAMES = {name: (module, attr) for module, spec in _FROM.items()
          for name, _, attr in (item.partition("=") for item in spec.split())
          for attr in (attr or name,)}


def __getattr__(name: str) -> _Any:
    if name in _SUBMODULES:
        target = (f"tostatic.{name}", None)
    elif name in _NAMES:
        target = _NAMES[name]
    else:
        raise AttributeError(f"module 'tostatic' has no attribute {name!r}")
    from tostatic.runtime.lazy import few_collections

    with few_collections():
        module = _importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value  # the next read is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_NAMES))


def CPUPlace():
    return "Place(cpu)"


def set_device(device: str) -> str:
    if not str(device).startswith("cpu"):
        raise ValueError(f"tostatic runs on the CPU only; got device {device!r}")
    return "cpu"


def get_device() -> str:
    return "cpu"
