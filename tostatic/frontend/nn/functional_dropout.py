"""paddle.nn.functional.dropout (paddle/nn/functional/common.py, 3.3.1).

axis=None writes Paddle's dropout op (mode 'downscale_in_infer' is the op's
'downgrade_in_infer'); p == 0 returns x itself. With `axis`, Paddle drops whole slices (one
random draw per index of the given axes): in training x (scaled by 1 / (1 - p) for
'upscale_in_train') times a cast uniform >= p mask; in evaluation x, or x * (1 - p) for
'downscale_in_infer'. Random draws come from tostatic's generator (paddle.seed), so they
match Paddle's in distribution, not bit for bit.
"""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn import naming
from tostatic.frontend.tensor import math
from tostatic.ir.errors import UnsupportedError
from tostatic.ops.dropout import Dropout

MODES = ("downscale_in_infer", "upscale_in_train")


def dropout(x: Any, p: float = 0.5, axis: Any = None, training: bool = True,
            inplace: bool = False, mode: str = "upscale_in_train",
            name: str | None = None) -> Any:
    """Zero each element (or slice along `axis`) with probability p while training."""
    if not isinstance(p, (float, int)) or isinstance(p, bool):
        raise TypeError("p argument should be a number (a Tensor p is not supported)")
    if p == 0:
        return x
    if p < 0 or p > 1:
        raise ValueError("p argument should between 0 and 1")
    if mode not in MODES:
        raise ValueError("mode argument should be 'downscale_in_infer' or 'upscale_in_train'")
    if axis and not isinstance(axis, (int, list, tuple)):
        raise TypeError("datatype of axis argument should be int or list")
    if axis is None:
        implementation = "downgrade_in_infer" if mode == "downscale_in_infer" else mode
        outs = naming.emit(Dropout, (x,), dict(dropout_prob=float(p), is_test=not training,
                                               dropout_implementation=implementation),
                           "dropout", name)
        return outs[0]
    if inplace:
        raise NotImplementedError("inplace not supported for dropout_nd yet")
    keep_prob = 1 - p
    if not training:
        return math.scale(x, scale=keep_prob) if mode == "downscale_in_infer" else x
    if p == 1.0:
        return math.scale(x, scale=0.0)
    drop_axes = [axis] if isinstance(axis, int) else list(axis)
    shape = x.shape
    if min(drop_axes) < 0 or max(drop_axes) > len(shape) - 1:
        raise ValueError("axis value should be greater than or equal to 0 and less than "
                         f"dimensions of x:{len(shape)}, but get axis value:{max(drop_axes)} ")
    if len(drop_axes) > len(shape):
        raise ValueError(f"length of axis should not be greater than dimensions of x:"
                         f"{len(shape)}, but get length of axis: {len(drop_axes)}")
    mask_shape = [1] * len(shape)
    for i in drop_axes:
        if shape[i] < 0:
            raise UnsupportedError(f"dropout(axis={axis}) in training needs axis {i} of the "
                                   f"input {shape} to be static")
        mask_shape[i] = shape[i]
    scaled = math.scale(x, scale=1 / keep_prob) if mode == "upscale_in_train" else x
    random = math.uniform(mask_shape, dtype="float32", min=0.0, max=1.0)
    keep = math.greater_equal(random, math.full([1], float(p), "float32"))
    return math.multiply(math.cast(scaled, x.dtype), math.cast(keep, x.dtype))


__all__ = ["dropout"]
