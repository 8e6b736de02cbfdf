"""Parameter initialisers as startup-program ops (what Paddle's initialisers append in static
mode): the same distribution the eager initialiser samples, written as a random or fill op."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn import initializer as init
from tostatic.frontend.static.program import Block
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ops.creation import Full, GaussianRandom, UniformRandom
from tostatic.passes.lowering import legacy_op


def _op_for(initializer: Any, shape: tuple[int, ...], dtype: dtypes.DType
            ) -> tuple[type, dict[str, Any]]:
    base = {"shape": shape, "dtype": dtype}
    if isinstance(initializer, init.ConstantInitializer):
        return Full, {**base, "value": float(initializer._value)}
    if isinstance(initializer, init.UniformInitializer) and not initializer._diag_num:
        return UniformRandom, {**base, "min": float(initializer._low),
                               "max": float(initializer._high), "seed": initializer._seed}
    if isinstance(initializer, init.NormalInitializer) and not isinstance(
            initializer, init.TruncatedNormalInitializer):
        return GaussianRandom, {**base, "mean": float(initializer._mean),
                                "std": float(initializer._std_dev), "seed": initializer._seed}
    if hasattr(initializer, "distribution"):  # Xavier, Kaiming
        kind, a, b = initializer.distribution(list(shape))
        seed = getattr(initializer, "_seed", 0)
        if kind == "uniform":
            return UniformRandom, {**base, "min": a, "max": b, "seed": seed}
        return GaussianRandom, {**base, "mean": a, "std": b, "seed": seed}
    raise UnsupportedError(f"{type(initializer).__name__} cannot initialise a parameter in "
                           f"static mode yet")


def append_initializer(block: Block, name: str, shape: tuple[int, ...], dtype: Any,
                       initializer: Any) -> None:
    d = dtypes.convert_dtype(dtype)
    cls, attrs = _op_for(initializer, shape, d)
    attrs = cls.normalize_attrs(attrs)
    overrides = {}
    if cls is Full:  # an initialiser's fill_constant states its value as float text, any dtype
        overrides["str_value"] = ("STRING", str(float(attrs["value"])))
    block.append_op(legacy_op(cls, attrs, [], [], [name], [], None, keep_extra=True,
                              overrides=overrides))
