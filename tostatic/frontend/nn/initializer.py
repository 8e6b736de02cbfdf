"""paddle.nn.initializer: fill a parameter in place, drawing from the global generator.

The formulas (fans, limits, standard deviations) are Paddle's (paddle/nn/initializer/*.py);
the random streams are numpy's, so values match Paddle in distribution, not bit for bit.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tostatic.ops import random as _random
from tostatic.ir import dtypes


class Initializer:
    """Base class: `init(param)` overwrites `param` with new values (Paddle returns None)."""

    def __init__(self) -> None:
        pass

    def __call__(self, param: Any, block: Any = None) -> None:
        return self.forward(param, block)

    def forward(self, param: Any, block: Any = None) -> None:
        _fill(param, self._generate(list(param.shape), _np_dtype(param)))

    def _generate(self, shape: list[int], dtype: np.dtype) -> np.ndarray:
        raise NotImplementedError

    def _compute_fans(self, var: Any) -> tuple[int, int]:
        """Paddle's rule: [] → 1/1; [n] → n/n; [in, out] → in/out;
        conv [out_c, in_c, *k] → in_c*prod(k) / out_c*prod(k)."""
        shape = list(var.shape) if not isinstance(var, (list, tuple)) else list(var)
        if not shape:
            return 1, 1
        if len(shape) == 1:
            return shape[0], shape[0]
        if len(shape) == 2:
            return shape[0], shape[1]
        receptive_field_size = int(np.prod(shape[2:]))
        return shape[1] * receptive_field_size, shape[0] * receptive_field_size

    def __repr__(self) -> str:
        fields = ", ".join(f"{k.lstrip('_')}={v!r}" for k, v in vars(self).items()
                           if not isinstance(v, np.ndarray))
        return f"{type(self).__name__}({fields})"


def _np_dtype(param: Any) -> np.dtype:
    data = getattr(param, "_data", None)
    if isinstance(data, np.ndarray):
        return data.dtype
    return dtypes.convert_dtype(param.dtype).numpy


def _fill(param: Any, value: np.ndarray) -> None:
    arr = np.ascontiguousarray(np.asarray(value).astype(_np_dtype(param), copy=False))
    param._data = arr


def _gen() -> np.random.Generator:
    return _random.generator()  # looked up each time: paddle.seed replaces the generator


def _sample(dist: tuple[str, float, float], shape: list[int]) -> np.ndarray:
    kind, a, b = dist
    return _gen().uniform(a, b, size=shape) if kind == "uniform" else _gen().normal(a, b, size=shape)


# --------------------------------------------------------------------------------------------
class ConstantInitializer(Initializer):
    def __init__(self, value: float = 0.0, force_cpu: bool = False) -> None:
        assert value is not None
        super().__init__()
        self._value = value
        self._force_cpu = force_cpu

    def _generate(self, shape, dtype):
        return np.full(shape, self._value, dtype=dtype)


class Constant(ConstantInitializer):
    def __init__(self, value: float = 0.0) -> None:
        if value is None:
            raise ValueError("value must not be none.")
        super().__init__(value=value, force_cpu=False)


class UniformInitializer(Initializer):
    def __init__(self, low: float = -1.0, high: float = 1.0, seed: int = 0, diag_num: int = 0,
                 diag_step: int = 0, diag_val: float = 1.0) -> None:
        assert low is not None and high is not None and seed is not None
        assert high >= low
        if diag_num > 0 or diag_step > 0:
            assert diag_num > 0 and diag_step > 0
        super().__init__()
        self._low = low
        self._high = high
        self._seed = seed
        self._diag_num = diag_num
        self._diag_step = diag_step
        self._diag_val = diag_val

    def _generate(self, shape, dtype):
        out = _gen().uniform(self._low, self._high, size=shape)
        if self._diag_num > 0:  # uniform_random's diag_* attributes: flat positions i*step
            flat = out.reshape(-1)
            for i in range(self._diag_num):
                flat[i * self._diag_step] = self._diag_val
        return out


class Uniform(UniformInitializer):
    def __init__(self, low: float = -1.0, high: float = 1.0, name: str | None = None) -> None:
        assert low is not None, "low should not be None"
        assert high is not None, "high should not be None"
        assert high >= low, "high should greater or equal than low"
        super().__init__(low=low, high=high, seed=0, diag_num=0, diag_step=0, diag_val=1.0)


class NormalInitializer(Initializer):
    def __init__(self, loc: float = 0.0, scale: float = 1.0, seed: int = 0) -> None:
        assert loc is not None and scale is not None and seed is not None
        super().__init__()
        self._mean = loc
        self._std_dev = scale
        self._seed = seed

    def _generate(self, shape, dtype):
        return _gen().normal(self._mean, self._std_dev, size=shape)


class Normal(NormalInitializer):
    def __init__(self, mean: float = 0.0, std: float = 1.0, name: str | None = None) -> None:
        assert mean is not None, "mean should not be None"
        assert std is not None, "std should not be None"
        super().__init__(loc=mean, scale=std, seed=0)


class TruncatedNormalInitializer(Initializer):
    """Normal(mean, std) restricted to [a, b]; a and b are absolute cut-offs, as in Paddle 3."""

    def __init__(self, loc: float = 0.0, scale: float = 1.0, seed: int = 0, a: float = -2.0,
                 b: float = 2.0) -> None:
        assert None not in (loc, scale, seed, a, b)
        super().__init__()
        self._mean = loc
        self._std_dev = scale
        self._seed = seed
        self._a = a
        self._b = b

    def _generate(self, shape, dtype):
        gen = _gen()
        out = gen.normal(self._mean, self._std_dev, size=shape)
        for _ in range(100):  # rejection sampling; each round redraws only the outliers
            bad = (out < self._a) | (out > self._b)
            if not bad.any():
                break
            out[bad] = gen.normal(self._mean, self._std_dev, size=int(bad.sum()))
        return np.clip(out, self._a, self._b)


class TruncatedNormal(TruncatedNormalInitializer):
    def __init__(self, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                 name: str | None = None) -> None:
        super().__init__(loc=mean, scale=std, seed=0, a=a, b=b)


class XavierInitializer(Initializer):
    """Uniform in ±gain*sqrt(6/(fan_in+fan_out)), or Normal with
    std gain*sqrt(2/(fan_in+fan_out))."""

    def __init__(self, uniform: bool = True, fan_in: float | None = None,
                 fan_out: float | None = None, seed: int = 0, gain: float = 1.0) -> None:
        assert uniform is not None and seed is not None
        super().__init__()
        self._uniform = uniform
        self._fan_in = fan_in
        self._fan_out = fan_out
        self._seed = seed
        self._gain = gain

    def distribution(self, shape: list[int]) -> tuple[str, float, float]:
        """("uniform", low, high) or ("normal", mean, std): what eager and static share."""
        f_in, f_out = self._compute_fans(shape)
        fan_in = f_in if self._fan_in is None else self._fan_in
        fan_out = f_out if self._fan_out is None else self._fan_out
        if self._uniform:
            limit = 0.0 if 0 in (fan_in, fan_out) else \
                self._gain * math.sqrt(6.0 / float(fan_in + fan_out))
            return "uniform", -limit, limit
        std = 0.0 if 0 in (fan_in, fan_out) else \
            self._gain * math.sqrt(2.0 / float(fan_in + fan_out))
        return "normal", 0.0, std

    def forward(self, param, block=None):
        _fill(param, _sample(self.distribution(list(param.shape)), list(param.shape)))


class XavierNormal(XavierInitializer):
    def __init__(self, fan_in: float | None = None, fan_out: float | None = None,
                 gain: float = 1.0, name: str | None = None) -> None:
        super().__init__(uniform=False, fan_in=fan_in, fan_out=fan_out, seed=0, gain=gain)


class XavierUniform(XavierInitializer):
    def __init__(self, fan_in: float | None = None, fan_out: float | None = None,
                 gain: float = 1.0, name: str | None = None) -> None:
        super().__init__(uniform=True, fan_in=fan_in, fan_out=fan_out, seed=0, gain=gain)


class MSRAInitializer(Initializer):
    """Kaiming: uniform ±gain*sqrt(3/fan), normal std gain/sqrt(fan); fan = fan_in or fan_out."""

    def __init__(self, uniform: bool = True, fan_in: float | None = None, seed: int = 0,
                 negative_slope: float = 0, nonlinearity: str = "relu",
                 mode: str = "fan_in") -> None:
        assert uniform is not None and seed is not None
        super().__init__()
        self._uniform = uniform
        self._fan_in = fan_in
        self._seed = seed
        self._negative_slope = negative_slope
        self._nonlinearity = nonlinearity
        self._mode = mode
        if self._mode not in ("fan_in", "fan_out"):
            raise ValueError("The mode of KaimingNormal/KaimingUniform should be 'fan_in' or "
                             f"'fan_out', but received {self._mode}.")
        if self._mode == "fan_out" and self._fan_in is not None:
            raise ValueError("The mode of KaimingNormal/KaimingUniform is 'fan_out', "
                             "but fan_in is set. Please set fan_in to None.")

    def distribution(self, shape: list[int]) -> tuple[str, float, float]:
        f_in, f_out = self._compute_fans(shape)
        if self._mode == "fan_in":
            fan = f_in if self._fan_in is None else self._fan_in
        else:
            fan = f_out
        gain = calculate_gain(self._nonlinearity, self._negative_slope)
        if self._uniform:
            limit = gain * math.sqrt(3.0 / float(fan))
            return "uniform", -limit, limit
        return "normal", 0.0, gain / math.sqrt(float(fan))

    def forward(self, param, block=None):
        _fill(param, _sample(self.distribution(list(param.shape)), list(param.shape)))


class KaimingNormal(MSRAInitializer):
    def __init__(self, fan_in: float | None = None, negative_slope: float = 0.0,
                 nonlinearity: str = "relu", mode: str = "fan_in") -> None:
        super().__init__(uniform=False, fan_in=fan_in, seed=0, negative_slope=negative_slope,
                         nonlinearity=nonlinearity, mode=mode)


class KaimingUniform(MSRAInitializer):
    def __init__(self, fan_in: float | None = None, negative_slope: float = 0.0,
                 nonlinearity: str = "relu", mode: str = "fan_in") -> None:
        super().__init__(uniform=True, fan_in=fan_in, seed=0, negative_slope=negative_slope,
                         nonlinearity=nonlinearity, mode=mode)


class NumpyArrayInitializer(Initializer):
    def __init__(self, value: np.ndarray) -> None:
        assert isinstance(value, np.ndarray)
        super().__init__()
        self._value = value

    def forward(self, param, block=None):
        # Paddle's assign_value_ gives the parameter the value's shape, even a different one.
        _fill(param, self._value)


class Assign(NumpyArrayInitializer):
    def __init__(self, value: Any, name: str | None = None) -> None:
        if hasattr(value, "_data") and isinstance(value._data, np.ndarray):  # a Tensor
            value = value.numpy()
        elif isinstance(value, (list, tuple)):
            value = np.array(value)
        elif not isinstance(value, np.ndarray):
            raise TypeError("The type of 'value' in Assign must be (numpy.ndarray, list, tuple, "
                            f"Tensor), but received {type(value)}.")
        super().__init__(value)


def calculate_gain(nonlinearity: str, param: bool | float | None = None) -> float:
    if param is None:
        param = 0.01
    else:
        assert isinstance(param, (bool, int, float))
        param = float(param)
    recommended_gain = {
        "sigmoid": 1, "linear": 1, "conv1d": 1, "conv2d": 1, "conv3d": 1,
        "conv1d_transpose": 1, "conv_transpose1d": 1, "conv2d_transpose": 1,
        "conv_transpose2d": 1, "conv3d_transpose": 1, "conv_transpose3d": 1,
        "tanh": 5.0 / 3,
        "relu": math.sqrt(2.0),
        "leaky_relu": math.sqrt(2.0 / (1 + param**2)),
        "selu": 3.0 / 4,
    }
    if nonlinearity in recommended_gain:
        return recommended_gain[nonlinearity]
    raise ValueError(f"nonlinearity function {nonlinearity} is not supported now.")


# --- paddle.nn.initializer.set_global_initializer --------------------------------------------
_global_weight_init: Initializer | None = None
_global_bias_init: Initializer | None = None


def set_global_initializer(weight_init: Initializer | None,
                           bias_init: Initializer | None = None) -> None:
    """Override the initializer of every parameter created afterwards (None restores defaults)."""
    global _global_weight_init, _global_bias_init
    if weight_init is not None and not isinstance(weight_init, Initializer):
        raise TypeError("weight_init should be an Initializer or None")
    if bias_init is not None and not isinstance(bias_init, Initializer):
        raise TypeError("bias_init should be an Initializer or None")
    _global_weight_init = weight_init
    _global_bias_init = bias_init


def _global_weight_initializer() -> Initializer | None:
    return _global_weight_init


def _global_bias_initializer() -> Initializer | None:
    return _global_bias_init


__all__ = [
    "Initializer", "Constant", "Uniform", "Normal", "TruncatedNormal", "XavierUniform",
    "XavierNormal", "KaimingUniform", "KaimingNormal", "Assign", "calculate_gain",
    "set_global_initializer",
]
