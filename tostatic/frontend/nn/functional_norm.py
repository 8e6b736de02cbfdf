"""paddle.nn.functional batch_norm, instance_norm, group_norm (paddle/nn/functional/norm.py,
3.3.1).

batch_norm in training normalises with the batch statistics and updates the running ones in
place, Paddle's way (running = momentum * running + (1 - momentum) * batch, the biased batch
variance): eagerly by writing the op's MeanOut / VarianceOut into the running-stat tensors; in a
traced program by the op itself, which lowering writes into the Mean / Variance variables.
Traced calls name their variables as Paddle's LayerHelper does (SavedMean `batch_norm_0.tmp_0`,
SavedVariance `.tmp_1`, Y `.tmp_2`; group_norm Mean, Variance, Y; instance_norm SavedMean,
SavedVariance, Y).

Unlike Paddle, whose ops take Scale / Bias as optional inputs, tostatic's take them always: a
missing weight is ones and a missing bias zeros (constants in a traced program).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.frontend.nn import naming
from tostatic.frontend.tensor import math
from tostatic.ir import builder as builders
from tostatic.ops import normalization as norm_ops

BATCH_NORM_FORMATS = ("NC", "NCL", "NCHW", "NCDHW", "NLC", "NHWC", "NDHWC")


def _channels(x: Any, layout: str) -> int:
    return x.shape[-1 if layout == "NHWC" and len(x.shape) > 2 else 1]


def _or_constant(t: Any, value: float, size: int, like: Any) -> Any:
    """`t`, or a [size] constant of `like`'s dtype where an optional weight/bias is None."""
    if t is not None:
        return t
    if size < 0:
        raise ValueError(f"a missing weight or bias needs the channel count, which is dynamic "
                         f"in input {like.shape}")
    return math.full([size], value, like.dtype)


def _write_back(running: Any, new: Any) -> None:
    """Store `new` into the eager tensor `running`, in place where its buffer allows."""
    data = running._data
    src = np.asarray(new._data, dtype=data.dtype)
    if data.flags.writeable and data.shape == src.shape:
        np.copyto(data, src)
    else:
        running._data = src.copy()


def batch_norm_op(x: Any, running_mean: Any, running_var: Any, weight: Any, bias: Any,
                  is_test: bool, momentum: float, epsilon: float, data_layout: str,
                  use_global_stats: bool, trainable_statistics: bool, key: str,
                  name: str | None, created: tuple[int | None, ...]) -> list[Any]:
    """Paddle's batch_norm op on (x, Scale, Bias, Mean, Variance); eagerly, writes the new
    running statistics into `running_mean` / `running_var` when the op updates them. Its five
    results: Y, MeanOut, VarianceOut, SavedMean, SavedVariance."""
    c = _channels(x, data_layout)
    weight = _or_constant(weight, 1.0, c, x)
    bias = _or_constant(bias, 0.0, c, x)
    outs = naming.emit(norm_ops.BatchNorm, (x, weight, bias, running_mean, running_var),
                       dict(epsilon=float(epsilon), momentum=float(momentum),
                            data_layout=data_layout, is_test=bool(is_test),
                            use_global_stats=bool(use_global_stats),
                            trainable_statistics=bool(trainable_statistics)),
                       key, name, created)
    updates = not ((is_test and not trainable_statistics) or use_global_stats)
    if updates and builders.current() is None:
        _write_back(running_mean, outs[1])
        _write_back(running_var, outs[2])
    return outs


def batch_norm(x: Any, running_mean: Any, running_var: Any, weight: Any = None,
               bias: Any = None, training: bool = False, momentum: float = 0.9,
               epsilon: float = 1e-05, data_format: str = "NCHW",
               use_global_stats: bool | None = None, name: str | None = None) -> Any:
    """Batch normalisation over every dim but the channels (NC..., or N...C)."""
    if len(x.shape) < 2:
        raise ValueError("input dim must be larger than 1")
    if data_format not in BATCH_NORM_FORMATS:
        raise ValueError("data_format must be one of 'NC', 'NCL', 'NCHW', 'NCDHW', 'NLC', "
                         f"'NHWC', 'NDHWC' but receive {data_format}")
    layout = "NCHW" if data_format[1] == "C" else "NHWC"
    if use_global_stats is None:
        use_global_stats = not training
        trainable_statistics = False
    else:
        trainable_statistics = not use_global_stats
    # Paddle's helper makes SavedMean, SavedVariance, Y, then (training) ReserveSpace
    created = (3, 4, 0, None) if training or trainable_statistics else (3, 4, 0)
    return batch_norm_op(x, running_mean, running_var, weight, bias, not training, momentum,
                         epsilon, layout, use_global_stats, trainable_statistics,
                         "batch_norm", name, created)[0]


def instance_norm(x: Any, running_mean: Any = None, running_var: Any = None,
                  weight: Any = None, bias: Any = None, use_input_stats: bool = True,
                  momentum: float = 0.9, eps: float = 1e-05, data_format: str = "NCHW",
                  name: str | None = None) -> Any:
    """Normalise each (sample, channel) over its spatial dims; [N, C, ...] input. The running
    statistics, use_input_stats and momentum are accepted and unused, as in Paddle."""
    c = x.shape[1]
    if weight is None or bias is None:  # Paddle passes both or neither
        weight = _or_constant(None, 1.0, c, x)
        bias = _or_constant(None, 0.0, c, x)
    outs = naming.emit(norm_ops.InstanceNorm, (x, weight, bias), dict(epsilon=float(eps)),
                       "instance_norm", name, created=(1, 2, 0))
    return outs[0]


def _group_norm(x: Any, num_groups: int, epsilon: float = 1e-05, weight: Any = None,
                bias: Any = None, data_format: str = "NCHW", name: str | None = None) -> Any:
    if data_format not in ("NCL", "NCHW", "NCDHW", "NLC", "NHWC", "NDHWC"):
        raise ValueError("unsupported data layout:" + data_format)
    layout = "NCHW" if data_format[1] == "C" else "NHWC"
    c = _channels(x, layout)
    weight = _or_constant(weight, 1.0, c, x)
    bias = _or_constant(bias, 0.0, c, x)
    outs = naming.emit(norm_ops.GroupNorm, (x, weight, bias),
                       dict(groups=int(num_groups), epsilon=float(epsilon), data_layout=layout),
                       "group_norm", name, created=(1, 2, 0))
    return outs[0]


def group_norm(*args: Any, **kwargs: Any) -> Any:
    """group_norm(x, num_groups, epsilon=1e-05, weight=None, bias=None, data_format='NCHW',
    name=None); also, as Paddle 3.3.1 accepts, the torch order (input, num_groups, weight,
    bias, eps) -- a third positional argument that is not a float is the weight."""
    if len(args) + len(kwargs) < 2:
        raise TypeError(f"Too few arguments in the function call: {len(args)}, {len(kwargs)}.")

    def set_once(key: str, value: Any) -> None:
        if key in kwargs:
            raise TypeError(f"got multiple values for argument '{key}'")
        kwargs[key] = value

    if "input" in kwargs:
        set_once("x", kwargs.pop("input"))
    if "eps" in kwargs:
        set_once("epsilon", kwargs.pop("eps"))
    if len(args) >= 3 and not isinstance(args[2], float):
        for key, value in zip(("weight", "bias", "epsilon"), args[2:]):
            set_once(key, value)
        args = args[:2]
    return _group_norm(*args, **kwargs)


__all__ = ["batch_norm", "group_norm", "instance_norm"]
