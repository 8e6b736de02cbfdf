"""The pure rules of window and slice ops (convolution paddings and output sizes, pooling
windows, slice bounds) and layer norm's forms, below the op classes: the runtime's bound
kernels use them where no op class is loaded (a warm start, runtime/warm_start.py, imports
no xDSL). The ops (ops/conv.py, ops/pooling.py, ops/indexing.py, ops/layer_norm.py) take
them from here: one definition."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir.errors import ShapeError, UnsupportedError

# data_format values -> channel last? ('AnyLayout' is what Paddle 1.x wrote; it means NCHW)
DATA_FORMATS = {"NCHW": False, "NHWC": True, "AnyLayout": False}
PADDING_ALGORITHMS = ("EXPLICIT", "SAME", "VALID")


def check_choice(op: str, name: str, value: Any, allowed: Any) -> None:
    """UnsupportedError naming the op, the attribute and the value it cannot take."""
    if value not in allowed:
        raise UnsupportedError(f"{op}: {name}={value!r} is not supported "
                               f"(supported: {', '.join(map(repr, allowed))})")


def pair(op: str, name: str, values: tuple[int, ...]) -> tuple[int, int]:
    if len(values) == 1:
        return values[0], values[0]
    if len(values) != 2:
        raise ShapeError(f"{op}: {name} needs 2 values (height, width), got {list(values)}")
    return values[0], values[1]


def explicit_pads(op: str, paddings: tuple[int, ...]) -> tuple[tuple[int, int], tuple[int, int]]:
    """2 values -> symmetric (h, w); 4 values -> [top, bottom, left, right]."""
    p = list(paddings)
    if len(p) == 2:
        pads = ((p[0], p[0]), (p[1], p[1]))
    elif len(p) == 4:
        pads = ((p[0], p[1]), (p[2], p[3]))
    else:
        raise ShapeError(f"{op}: paddings needs 2 or 4 values, got {p}")
    if min(p) < 0:
        raise ShapeError(f"{op}: paddings must not be negative, got {p}")
    return pads


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """Paddle's 'SAME': the output has ceil(size / stride) elements, the padding split with the
    smaller half first."""
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def resolve_pads(op: str, sizes: tuple[int, int], ksize: tuple[int, int],
                 strides: tuple[int, int], paddings: tuple[int, ...], algorithm: str,
                 dilations: tuple[int, int]
                 ) -> tuple[list[tuple[int, int] | None], tuple[int, int]]:
    """Per spatial dim (pad_before, pad_after) -- None where SAME meets a dynamic size --
    and the dilations as Paddle's UpdatePaddingAndDilation leaves them."""
    check_choice(op, "padding_algorithm", algorithm, PADDING_ALGORITHMS)
    if algorithm == "SAME":
        return ([None if n < 0 else same_pads(n, k, s)
                 for n, k, s in zip(sizes, ksize, strides)], (1, 1))
    if algorithm == "VALID":
        return [(0, 0), (0, 0)], dilations
    return list(explicit_pads(op, paddings)), dilations


def conv_out(op: str, size: int, k: int, s: int, pad: tuple[int, int] | None, d: int) -> int:
    if size < 0:
        return -1
    if pad is None:  # SAME
        return (size + s - 1) // s
    span = d * (k - 1) + 1
    out = (size + pad[0] + pad[1] - span) // s + 1 if size + pad[0] + pad[1] >= span else 0
    if out <= 0:
        raise ShapeError(f"{op}: input size {size} with padding {list(pad)} is smaller than the "
                         f"dilated filter ({span})")
    return out


POOLING_TYPES = ("max", "avg")
FLT_MAX = float(np.finfo(np.float32).max)  # Paddle's MaxPool starts from -FLT_MAX


class _Dim:
    """The windows of one spatial dim: what the kernel and shape inference both need."""

    def __init__(self, op: str, size: int, k: int, stride: int, pads: tuple[int, int] | None,
                 ceil_mode: bool, adaptive_avg: bool, fixed_out: int | None):
        self.size, self.k, self.stride = size, k, stride
        self.pad = pads[0] if pads else 0
        self.adaptive = adaptive_avg
        if adaptive_avg or fixed_out is not None:
            self.out = k if fixed_out is None else fixed_out
            return
        if size < 0 or pads is None:
            self.out = -1
            return
        num = size - k + pads[0] + pads[1] + (stride - 1 if ceil_mode else 0)
        self.out = int(num / stride) + 1  # C++ division truncates toward zero
        if self.out <= 0:
            raise ShapeError(f"{op}: input size {size} with paddings {list(pads)} leaves no "
                             f"room for a {k}-wide window")

    def windows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, end) clipped to the input, and the unclipped (non-exclusive) size."""
        o = np.arange(self.out)
        if self.adaptive:
            start = (o * self.size) // self.out
            end = -((-(o + 1) * self.size) // self.out)
            return start, end, end - start
        start = o * self.stride - self.pad
        end = np.minimum(start + self.k, self.size + self.pad)
        return np.maximum(start, 0), np.minimum(end, self.size), end - start


def pool_dims(op: str, sizes: tuple[int, int], ksize: tuple[int, ...],
              strides: tuple[int, ...], paddings: tuple[int, ...], ceil_mode: bool,
              pooling_type: str, global_pooling: bool, adaptive: bool,
              padding_algorithm: str) -> list[_Dim]:
    check_choice(op, "pooling_type", pooling_type, POOLING_TYPES)
    check_choice(op, "padding_algorithm", padding_algorithm, PADDING_ALGORITHMS)
    ks, st = pair(op, "ksize", ksize), pair(op, "strides", strides)
    if min(st) <= 0:
        raise ShapeError(f"{op}: strides must be positive, got {list(strides)}")
    if global_pooling:
        return [_Dim(op, n, n, s, (0, 0), False, False, 1) for n, s in zip(sizes, st)]
    if min(ks) <= 0:
        raise ShapeError(f"{op}: ksize must be positive, got {list(ksize)}")
    if adaptive:
        if pooling_type == "max":  # Paddle's kernel: plain max pooling, `ksize` outputs
            return [_Dim(op, n, k, s, (0, 0), False, False, k) for n, k, s in zip(sizes, ks, st)]
        # windows that tile the input evenly are plain strided windows (the faster path)
        return [_Dim(op, n, n // k, n // k, (0, 0), False, False, k) if n > 0 and n % k == 0
                else _Dim(op, n, k, 1, (0, 0), False, True, None) for n, k in zip(sizes, ks)]
    pads, _ = resolve_pads(op, sizes, ks, st, paddings, padding_algorithm, (1, 1))
    return [_Dim(op, n, k, s, p, ceil_mode, False, None)
            for n, k, s, p in zip(sizes, ks, st, pads)]


def slice_bounds(dim: int, start: int, end: int) -> tuple[int, int]:
    """Paddle's rule (step 1): negative bounds count from the end, then both clamp to
    [0, dim]; an end before the start gives an empty slice."""
    s = start + dim if start < 0 else start
    e = end + dim if end < 0 else end
    s = min(max(s, 0), dim)
    e = min(max(e, 0), dim)
    return s, max(e, s)


# layer norm's four ops (ops/layer_norm.py) by the weights they take (Paddle's optional
# Scale and Bias)
LAYER_NORM_WEIGHTS: dict[str, tuple[str, ...]] = {
    "pd.layer_norm": ("scale", "bias"), "pd.layer_norm_scale_only": ("scale",),
    "pd.layer_norm_bias_only": ("bias",), "pd.layer_norm_plain": (),
}
