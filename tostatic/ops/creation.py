"""Ops that make new tensors from attributes alone."""
from __future__ import annotations

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import DTYPE, FLOAT, INTS, attr
from tostatic.ir.opdef import Abstract, Fixed, From, Legacy, PdOp, pd_op


@pd_op
class Full(PdOp):
    """A tensor of one value: Paddle's fill_constant."""

    name = "pd.full"
    ATTRS = {"shape": attr(INTS), "value": attr(FLOAT, 0.0), "dtype": attr(DTYPE, "float32")}
    PADDLE = Legacy("fill_constant", {}, {"Out": 0},
                    {"shape": From("LONGS", "shape"), "value": From("FLOAT", "value"),
                     "dtype": From("INT", "dtype", lambda d: d.var_type,
                                   lambda n: dtypes.BY_VAR_TYPE[n]),
                     # Paddle prefers a non-empty str_value over value when it reads the op
                     "str_value": From("STRING", "value", lambda v: "",
                                       lambda s: float(s) if s else None),
                     "force_cpu": Fixed("BOOLEAN", False),
                     "place_type": Fixed("INT", -1)}, out_lod_level=False)
    NAME_HINT = "fill_constant"

    @staticmethod
    def infer(shape: tuple[int, ...], value: float, dtype: dtypes.DType) -> Abstract:
        return Abstract(tuple(shape), dtype)

    @staticmethod
    def eager(shape: tuple[int, ...], value: float, dtype: dtypes.DType) -> np.ndarray:
        return np.full(shape, value, dtype=dtype.numpy)


@pd_op
class Arange(PdOp):
    name = "pd.arange"
    ATTRS = {"start": attr(FLOAT), "end": attr(FLOAT), "step": attr(FLOAT, 1.0),
             "dtype": attr(DTYPE, "int64")}
    NAME_HINT = "range"

    @staticmethod
    def infer(start: float, end: float, step: float, dtype: dtypes.DType) -> Abstract:
        return Abstract((max(0, int(np.ceil((end - start) / step))),), dtype)

    @staticmethod
    def eager(start: float, end: float, step: float, dtype: dtypes.DType) -> np.ndarray:
        return np.arange(start, end, step).astype(dtype.numpy)


@pd_op
class UniformRandom(PdOp):
    name = "pd.uniform"
    ATTRS = {"shape": attr(INTS), "min": attr(FLOAT, 0.0), "max": attr(FLOAT, 1.0),
             "dtype": attr(DTYPE, "float32")}
    EFFECTS = True
    NAME_HINT = "uniform_random"

    @staticmethod
    def infer(shape: tuple[int, ...], min: float, max: float, dtype: dtypes.DType) -> Abstract:
        return Abstract(tuple(shape), dtype)

    @staticmethod
    def eager(shape: tuple[int, ...], min: float, max: float, dtype: dtypes.DType) -> np.ndarray:
        from tostatic.frontend.random import generator

        return generator().uniform(min, max, size=shape).astype(dtype.numpy)


@pd_op
class GaussianRandom(PdOp):
    name = "pd.gaussian"
    ATTRS = {"shape": attr(INTS), "mean": attr(FLOAT, 0.0), "std": attr(FLOAT, 1.0),
             "dtype": attr(DTYPE, "float32")}
    EFFECTS = True
    NAME_HINT = "gaussian_random"

    @staticmethod
    def infer(shape: tuple[int, ...], mean: float, std: float, dtype: dtypes.DType) -> Abstract:
        return Abstract(tuple(shape), dtype)

    @staticmethod
    def eager(shape: tuple[int, ...], mean: float, std: float, dtype: dtypes.DType) -> np.ndarray:
        from tostatic.frontend.random import generator

        return generator().normal(mean, std, size=shape).astype(dtype.numpy)
