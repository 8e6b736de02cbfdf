"""Ops that make new tensors from other tensors' shapes or values: fill_any_like (a constant
of x's shape), range (start, end, step given as tensors, as paddle.arange writes them),
fill_constant with its shape given by tensors, and fill_constant_batch_size_like."""
from __future__ import annotations

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, DTYPE, FLOAT, INT, INTS, STR, attr
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, Fixed, From, FromInputs, Legacy, PdOp, pd_op
from tostatic.ops.attr_checks import written


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
    NONDIFF = True

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
    NONDIFF = True

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


# --- fill_constant with its shape from tensors, and fill_constant_batch_size_like ---------------

def _fill_dtype() -> From:
    return From("INT", "dtype", lambda d: d.var_type, lambda n: dtypes.BY_VAR_TYPE[n])


def _filled(shape: tuple[int, ...], value: float, dtype: dtypes.DType, str_value: str,
            what: str) -> np.ndarray:
    """fill_constant's kernel: str_value (when given) is the value, read as a double."""
    if any(d < 0 for d in shape):
        raise ShapeError(f"{what}: shape {list(shape)} has a negative size")
    return np.full(shape, float(str_value) if str_value else value, dtype=dtype.numpy)


def _fill_legacy(inputs: dict[str, str], shape: From | FromInputs,
                 optional: tuple[str, ...]) -> Legacy:
    return Legacy("fill_constant", inputs, {"Out": 0},
                  {"shape": shape, "value": From("FLOAT", "value"), "dtype": _fill_dtype(),
                   "str_value": From("STRING", "str_value"),
                   "force_cpu": From("BOOLEAN", "force_cpu"), "place_type": Fixed("INT", -1)},
                  optional_inputs=optional, out_lod_level=False)


FILL_ATTRS = {"value": attr(FLOAT, 0.0), "dtype": attr(DTYPE, "float32"),
              "str_value": attr(STR, ""), "force_cpu": attr(BOOL, False)}


def _check_shape_values(op: str, what: str, a: Abstract) -> None:
    if a.dtype not in (dtypes.int32, dtypes.int64):
        raise ShapeError(f"{op}: {what} must be int32 or int64, got {a.dtype.name}")


@pd_op
class FullFromShapeTensor(PdOp):
    """fill_constant whose shape is the value of a 1-D tensor (ShapeTensor), as
    `paddle.full(paddle.shape(x), v)` writes it: every dim is dynamic."""

    name = "pd.full_from_shape_tensor"
    INPUTS = ("shape",)
    ATTRS = dict(FILL_ATTRS)
    PADDLE = _fill_legacy({"ShapeTensor": "shape"}, written("LONGS", []),
                          ("ShapeTensorList", "ValueTensor"))
    NAME_HINT = "fill_constant"
    NONDIFF = True

    @classmethod
    def infer(cls, shape: Abstract, value: float, dtype: dtypes.DType, str_value: str,
              force_cpu: bool) -> Abstract:
        _check_shape_values(cls.name, "the shape tensor", shape)
        if shape.ndim != 1 or shape.shape[0] < 0:
            raise UnsupportedError(f"{cls.name}: the shape tensor must be 1-D of a known "
                                   f"length (the result's rank), got {list(shape.shape)}")
        return Abstract((-1,) * shape.shape[0], dtypes.convert_dtype(dtype))

    @classmethod
    def eager(cls, shape: np.ndarray, value: float, dtype: dtypes.DType, str_value: str,
              force_cpu: bool) -> np.ndarray:
        return _filled(tuple(int(d) for d in shape.reshape(-1)), value,
                       dtypes.convert_dtype(dtype), str_value, cls.name)


@pd_op
class FullFromShapeList(PdOp):
    """fill_constant whose dims are one-element tensors (ShapeTensorList), as
    `paddle.full([x.shape[0], 3], v)` writes it; `shape` is the compile-time shape Paddle
    writes beside them (-1 where a tensor gives the dim)."""

    name = "pd.full_from_shape_list"
    INPUTS = ("*dims",)
    ATTRS = {"shape": attr(INTS), **FILL_ATTRS}
    PADDLE = _fill_legacy({"ShapeTensorList": "*dims"}, From("LONGS", "shape"),
                          ("ShapeTensor", "ValueTensor"))
    NAME_HINT = "fill_constant"
    NONDIFF = True

    @classmethod
    def infer(cls, dims: list[Abstract], shape: tuple[int, ...], value: float,
              dtype: dtypes.DType, str_value: str, force_cpu: bool) -> Abstract:
        if not dims:
            raise ShapeError(f"{cls.name}: needs at least one dim tensor")
        for i, d in enumerate(dims):
            _check_shape_values(cls.name, f"dim {i}", d)
            if d.shape not in ((), (1,), (-1,)):
                raise ShapeError(f"{cls.name}: dim {i} must hold one value, got shape "
                                 f"{list(d.shape)}")
        known = shape if len(shape) == len(dims) else (-1,) * len(dims)
        return Abstract(tuple(d if d >= 0 else -1 for d in known), dtypes.convert_dtype(dtype))

    @classmethod
    def eager(cls, dims: list[np.ndarray], shape: tuple[int, ...], value: float,
              dtype: dtypes.DType, str_value: str, force_cpu: bool) -> np.ndarray:
        got = tuple(int(d.reshape(-1)[0]) for d in dims)
        if len(shape) == len(got) and any(s >= 0 and s != g for s, g in zip(shape, got)):
            raise ShapeError(f"{cls.name}: the dim tensors give shape {list(got)}, the "
                             f"compile-time shape is {list(shape)}")
        return _filled(got, value, dtypes.convert_dtype(dtype), str_value, cls.name)


@pd_op
class FullBatchSizeLike(PdOp):
    """fill_constant_batch_size_like (older exports): a constant of `shape`, except that dim
    output_dim_idx is x's dim input_dim_idx (the batch size)."""

    name = "pd.full_batch_size_like"
    INPUTS = ("x",)
    ATTRS = {"shape": attr(INTS), "input_dim_idx": attr(INT, 0),
             "output_dim_idx": attr(INT, 0), **FILL_ATTRS}
    PADDLE = Legacy("fill_constant_batch_size_like", {"Input": "x"}, {"Out": 0},
                    {"shape": From("INTS", "shape"), "input_dim_idx": From("INT", "input_dim_idx"),
                     "output_dim_idx": From("INT", "output_dim_idx"),
                     "value": From("FLOAT", "value"), "dtype": _fill_dtype(),
                     "str_value": From("STRING", "str_value"),
                     "force_cpu": From("BOOLEAN", "force_cpu")}, keeps_extra_attrs=True,
                    out_lod_level=False)
    NAME_HINT = "fill_constant_batch_size_like"
    NONDIFF = True

    @classmethod
    def out_shape(cls, x: tuple[int, ...], shape: tuple[int, ...], input_dim_idx: int,
                  output_dim_idx: int) -> tuple[int, ...]:
        if not 0 <= input_dim_idx < len(x) or not 0 <= output_dim_idx < len(shape):
            raise ShapeError(f"{cls.name}: input_dim_idx {input_dim_idx} / output_dim_idx "
                             f"{output_dim_idx} are out of range for input {list(x)} and "
                             f"shape {list(shape)}")
        out = list(shape)
        out[output_dim_idx] = x[input_dim_idx]
        return tuple(out)

    @classmethod
    def infer(cls, x: Abstract, shape: tuple[int, ...], input_dim_idx: int,
              output_dim_idx: int, value: float, dtype: dtypes.DType, str_value: str,
              force_cpu: bool) -> Abstract:
        return Abstract(cls.out_shape(x.shape, shape, input_dim_idx, output_dim_idx),
                        dtypes.convert_dtype(dtype))

    @classmethod
    def eager(cls, x: np.ndarray, shape: tuple[int, ...], input_dim_idx: int,
              output_dim_idx: int, value: float, dtype: dtypes.DType, str_value: str,
              force_cpu: bool) -> np.ndarray:
        return _filled(cls.out_shape(x.shape, shape, input_dim_idx, output_dim_idx), value,
                       dtypes.convert_dtype(dtype), str_value, cls.name)
