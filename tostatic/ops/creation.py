"""Ops that make new tensors from attributes alone."""
from __future__ import annotations

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, DTYPE, FLOAT, INT, INTS, STR, attr
from tostatic.ir.opdef import Abstract, Fixed, From, Legacy, PdOp, pd_op
from tostatic.ops.random import generator


def _dtype_attr() -> From:
    return From("INT", "dtype", lambda d: d.var_type, lambda n: dtypes.BY_VAR_TYPE[n])


def paddle_value_text(value: float | int | bool, dtype: dtypes.DType) -> str:
    """fill_constant's str_value as paddle.full writes it: '5' for integer dtypes (truncated),
    '0.1' / '1.0' (bool too) otherwise. (Initialisers write str(float(value)) for every
    dtype; see static_init.)"""
    if _is_integer(dtype):
        return str(int(value))
    return str(float(value))


def _is_integer(dtype: dtypes.DType) -> bool:
    return np.issubdtype(dtype.numpy, np.integer) if dtype.numpy is not None else False


@pd_op
class Full(PdOp):
    """A tensor of one value: Paddle's fill_constant.

    `str_value` is fill_constant's own text of the value: paddle.full writes it (and then
    the op also has empty ShapeTensor/ShapeTensorList/ValueTensor slots); scalar constants
    leave it empty. When present it is the value, read as a double as Paddle's kernel reads
    it (std::stod), then cast to the dtype."""

    name = "pd.full"
    ATTRS = {"shape": attr(INTS), "value": attr(FLOAT, 0.0), "dtype": attr(DTYPE, "float32"),
             "str_value": attr(STR, ""), "force_cpu": attr(BOOL, False)}
    PADDLE = Legacy("fill_constant", {}, {"Out": 0},
                    {"shape": From("LONGS", "shape"), "value": From("FLOAT", "value"),
                     "dtype": _dtype_attr(), "str_value": From("STRING", "str_value"),
                     "force_cpu": From("BOOLEAN", "force_cpu"),
                     "place_type": Fixed("INT", -1)},
                    optional_inputs=("ShapeTensor", "ShapeTensorList", "ValueTensor"),
                    optional_inputs_if=lambda attrs: attrs["str_value"] != "",
                    out_lod_level=False)
    NAME_HINT = "fill_constant"
    NONDIFF = True

    @staticmethod
    def infer(shape: tuple[int, ...], value: float, dtype: dtypes.DType,
              str_value: str, force_cpu: bool) -> Abstract:
        return Abstract(tuple(shape), dtype)

    @staticmethod
    def eager(shape: tuple[int, ...], value: float, dtype: dtypes.DType,
              str_value: str, force_cpu: bool) -> np.ndarray:
        if str_value:
            value = float(str_value)
        return np.full(shape, value, dtype=dtype.numpy)


def _generator(seed: int) -> np.random.Generator:
    """seed 0: the global generator (paddle.seed); otherwise the op's own, as Paddle does."""
    return generator() if seed == 0 else np.random.default_rng(seed)


@pd_op
class UniformRandom(PdOp):
    """Paddle's uniform_random (what Uniform/Xavier/Kaiming initialisers write)."""

    name = "pd.uniform"
    ATTRS = {"shape": attr(INTS), "min": attr(FLOAT, 0.0), "max": attr(FLOAT, 1.0),
             "dtype": attr(DTYPE, "float32"), "seed": attr(INT, 0)}
    PADDLE = Legacy("uniform_random", {}, {"Out": 0},
                    {"shape": From("LONGS", "shape"), "min": From("FLOAT", "min"),
                     "max": From("FLOAT", "max"), "seed": From("INT", "seed"),
                     "dtype": _dtype_attr(), "diag_num": Fixed("INT", 0),
                     "diag_step": Fixed("INT", 0), "diag_val": Fixed("FLOAT", 1.0)},
                    optional_inputs=("ShapeTensor", "ShapeTensorList"), keeps_extra_attrs=True)
    EFFECTS = True
    NAME_HINT = "uniform_random"
    NONDIFF = True

    @staticmethod
    def infer(shape: tuple[int, ...], min: float, max: float, dtype: dtypes.DType,
              seed: int) -> Abstract:
        return Abstract(tuple(shape), dtype)

    @staticmethod
    def eager(shape: tuple[int, ...], min: float, max: float, dtype: dtypes.DType,
              seed: int) -> np.ndarray:
        return _generator(seed).uniform(min, max, size=shape).astype(dtype.numpy)


@pd_op
class GaussianRandom(PdOp):
    """Paddle's gaussian_random (what Normal/Xavier-normal/Kaiming-normal initialisers write)."""

    name = "pd.gaussian"
    ATTRS = {"shape": attr(INTS), "mean": attr(FLOAT, 0.0), "std": attr(FLOAT, 1.0),
             "dtype": attr(DTYPE, "float32"), "seed": attr(INT, 0)}
    PADDLE = Legacy("gaussian_random", {}, {"Out": 0},
                    {"shape": From("LONGS", "shape"), "mean": From("FLOAT", "mean"),
                     "std": From("FLOAT", "std"), "seed": From("INT", "seed"),
                     "dtype": _dtype_attr()}, keeps_extra_attrs=True)
    EFFECTS = True
    NAME_HINT = "gaussian_random"
    NONDIFF = True

    @staticmethod
    def infer(shape: tuple[int, ...], mean: float, std: float, dtype: dtypes.DType,
              seed: int) -> Abstract:
        return Abstract(tuple(shape), dtype)

    @staticmethod
    def eager(shape: tuple[int, ...], mean: float, std: float, dtype: dtypes.DType,
              seed: int) -> np.ndarray:
        return _generator(seed).normal(mean, std, size=shape).astype(dtype.numpy)
