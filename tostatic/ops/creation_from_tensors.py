"""Ops that make new tensors from other tensors' shapes or values: fill_any_like (a constant
of x's shape) and range (start, end, step given as tensors, as paddle.arange writes them)."""
from __future__ import annotations

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import DTYPE, FLOAT, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op


@pd_op
class FullLike(PdOp):
    """A tensor of x's shape filled with `value`, as `dtype` (None: x's dtype; the op's -1).
    The value is cast as C casts it: 2.7 -> 2 for integers, nonzero -> True for bool."""

    name = "pd.full_like"
    INPUTS = ("x",)
    ATTRS = {"value": attr(FLOAT, 0.0), "dtype": attr(DTYPE, None)}
    PADDLE = Legacy("fill_any_like", {"X": "x"}, {"Out": 0},
                    {"dtype": From("INT", "dtype", lambda d: -1 if d is None else d.var_type,
                                   lambda n: None if n < 0 else dtypes.BY_VAR_TYPE[n]),
                     "value": From("FLOAT", "value")},
                    keeps_extra_attrs=True)
    NAME_HINT = "full_like"

    @staticmethod
    def infer(x: Abstract, value: float, dtype: dtypes.DType | None) -> Abstract:
        return Abstract(x.shape, x.dtype if dtype is None else dtypes.convert_dtype(dtype))

    @staticmethod
    def eager(x: np.ndarray, value: float, dtype: dtypes.DType | None) -> np.ndarray:
        out = x.dtype if dtype is None else dtypes.convert_dtype(dtype).numpy
        if np.issubdtype(out, np.integer) and np.isfinite(value):
            value = int(value)  # truncation toward zero, as static_cast
        return np.full(x.shape, value, dtype=out)


def range_size(start: np.generic, end: np.generic, step: np.generic) -> int:
    """Paddle's GetSize, in the tensors' own dtype: ceil(|end - start| / |step|)."""
    if step == 0:
        raise ValueError("pd.range: step must not be 0")
    if (start < end and step < 0) or (start > end and step > 0):
        raise ValueError(f"pd.range: step {step} moves away from end {end} (start {start})")
    if isinstance(start, np.integer):
        return int((abs(int(end) - int(start)) + abs(int(step)) - 1) // abs(int(step)))
    return int(np.ceil(np.abs((end - start) / step)))


@pd_op
class Range(PdOp):
    """start, start + step, ... up to (not including) end; start, end and step are 1-element
    tensors of one dtype, the result's. Each value is the previous one plus step in that
    dtype, as Paddle's kernel adds them (so float32 results match it bit for bit)."""

    name = "pd.range"
    INPUTS = ("start", "end", "step")
    PADDLE = Legacy("range", {"End": "end", "Start": "start", "Step": "step"}, {"Out": 0},
                    keeps_extra_attrs=True, out_lod_level=False)
    NAME_HINT = "range"

    @classmethod
    def infer(cls, start: Abstract, end: Abstract, step: Abstract) -> Abstract:
        for name, a in (("start", start), ("end", end), ("step", step)):
            if a.ndim > 1 or (a.ndim == 1 and a.shape[0] not in (1, -1)):
                raise ShapeError(f"{cls.name}: {name} must hold one value, got shape "
                                 f"{list(a.shape)}")
        if len({start.dtype, end.dtype, step.dtype}) > 1:
            raise ShapeError(f"{cls.name}: start, end and step must have one dtype, got "
                             f"{start.dtype.name}, {end.dtype.name}, {step.dtype.name}")
        return Abstract((-1,), start.dtype)

    @staticmethod
    def eager(start: np.ndarray, end: np.ndarray, step: np.ndarray) -> np.ndarray:
        s, e, d = (a.reshape(-1)[0] for a in (start, end, step))
        n = range_size(s, e, d)
        steps = np.full(n, d, dtype=start.dtype)
        if n:
            steps[0] = s
        return np.cumsum(steps, dtype=start.dtype)
