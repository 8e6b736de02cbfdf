"""tostatic: eager Paddle-style models compiled to Paddle inference files and run natively.

`import tostatic as paddle` gives the subset of Paddle's API that tostatic implements.
"""
import gc as _gc

# Importing makes some 200k long-lived objects (xDSL's classes and ours) and no garbage; at the
# usual threshold the collector would walk them ~100 times (45 ms of a process's start). The
# threshold is raised here and put back at the end of this file.
_GC_THRESHOLD = _gc.get_threshold()
_gc.set_threshold(max(100_000, _GC_THRESHOLD[0]), *_GC_THRESHOLD[1:])

from tostatic import inference, jit, nn, static, utils, vision  # noqa: F401
from tostatic import io, metric, optimizer, regularizer  # noqa: F401  (training, issue 14)
from tostatic import autograd  # noqa: F401  (issue 14)
from tostatic import linalg  # noqa: F401
from tostatic.frontend.capture.compile import compile  # noqa: F401
from tostatic.frontend.static.mode import (  # noqa: F401
    disable_static,
    enable_static,
    in_dynamic_mode,
)
from tostatic.frontend.tensor.math import (  # noqa: F401
    abs,
    add,
    arange,
    cast,
    clip,
    divide,
    equal,
    exp,
    floor_divide,
    full,
    full_like,
    greater_equal,
    greater_than,
    is_tensor,
    less_equal,
    less_than,
    matmul,
    maximum,
    minimum,
    mod,
    multiply,
    normal,
    not_equal,
    ones,
    ones_like,
    pow,
    rand,
    randn,
    relu,
    remainder,
    reshape,
    scale,
    seed,
    sigmoid,
    sqrt,
    subtract,
    tanh,
    transpose,
    uniform,
    zeros,
    zeros_like,
)
from tostatic.frontend.tensor.math import (  # noqa: F401  (Transformers and NLP, issue 13)
    bmm,
    einsum,
    erf,
    expand_as,
    gather_nd,
    index_select,
    log,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    rsqrt,
    sign,
    square,
    take_along_axis,
    tril,
    triu,
)
from tostatic.frontend.tensor.math import ceil, floor, log1p, round, sign  # noqa: F401,A004
from tostatic.frontend.tensor.manipulation import flip  # noqa: F401
from tostatic.frontend.tensor.math import randint  # noqa: F401
from tostatic.frontend.tensor.search import argsort, sort  # noqa: F401
from tostatic.frontend.tensor.linalg import norm  # noqa: F401
from tostatic.frontend.nn.param_attr import ParamAttr  # noqa: F401  (paddle.ParamAttr)
from tostatic.frontend.tensor.manipulation import (  # noqa: F401
    chunk,
    concat,
    expand,
    flatten,
    gather,
    meshgrid,
    shape,
    slice,
    split,
    squeeze,
    stack,
    tile,
    unsqueeze,
)
from tostatic.frontend.tensor.reduction import cumsum, max, mean, min, prod, sum  # noqa: F401
from tostatic.frontend.tensor.search import argmax, topk, where  # noqa: F401
from tostatic.frontend.tensor.selecting import (  # noqa: F401  (advanced indexing)
    broadcast_tensors, index_put, masked_select, nonzero)
from tostatic.frontend.nn.io import load, save  # noqa: F401
from tostatic.frontend.tensor.tensor import Parameter, Tensor, to_tensor  # noqa: F401
from tostatic.frontend.tensor.accumulate import (  # noqa: F401,E402  (to_tensor / full: tensors too)
    add_n,
    assign,
    full,
    increment,
    to_tensor,
)
from tostatic import tensor  # noqa: F401,E402
from tostatic.frontend.tensor.repr import set_printoptions  # noqa: F401
from tostatic.frontend.tensor.autograd import grad  # noqa: F401  (autograd, issue 14)
from tostatic.frontend.tensor.grad_mode import (  # noqa: F401
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from tostatic.ir.dtypes import (  # noqa: F401
    bfloat16,
    bool_ as bool,
    complex64,
    complex128,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
)

__version__ = "0.1.0"


def CPUPlace():
    return "Place(cpu)"


def set_device(device: str) -> str:
    if not str(device).startswith("cpu"):
        raise ValueError(f"tostatic runs on the CPU only; got device {device!r}")
    return "cpu"


def get_device() -> str:
    return "cpu"

# ... and those objects go to the oldest generation, which only full collections walk (freeze
# then unfreeze: no walk; not when the program froze objects itself): young, the first
# collections after this walked them all again (~20 ms of a start)
if _gc.get_freeze_count() == 0:
    _gc.freeze()
    _gc.unfreeze()
_gc.set_threshold(*_GC_THRESHOLD)  # (see the top of this file)
