"""Parameter initialisers as startup-program ops (what Paddle's initialisers append in static
mode): the same distribution the eager initialiser samples, as a random or fill `pd` op."""
from __future__ import annotations

from typing import Any

from xdsl.dialects.builtin import DictionaryAttr
from xdsl.ir import Attribute

from tostatic.dialects.program import to_attr
from tostatic.frontend.nn import initializer as init
from tostatic.ir import dtypes
from tostatic.ir.attr_keys import LEGACY_ATTRS_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import PdOp
from tostatic.ops.creation import Full, GaussianRandom, UniformRandom


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


def append_initializer(name: str, shape: tuple[int, ...], dtype: Any, initializer: Any,
                       result_type: Attribute) -> PdOp:
    """The op that initialises parameter `name` (its result type given)."""
    d = dtypes.convert_dtype(dtype)
    cls, attrs = _op_for(initializer, shape, d)
    op = cls.make([], attrs, [result_type])
    if cls is Full:  # an initialiser's fill_constant states its value as float text, any dtype
        text = str(float(cls.normalize_attrs(attrs)["value"]))
        op.attributes[LEGACY_ATTRS_ATTR] = DictionaryAttr({"str_value": to_attr("STRING", text)})
    return op
