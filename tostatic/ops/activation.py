"""Unary activations and math: same shape, same dtype."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir import epilogue_rules as rules
from tostatic.ir import scalar_expr as se
from tostatic.ir.attributes import BOOL, FLOAT, INT, STR, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.attr_checks import check_choice, unsupported
from tostatic.ops.shapes import normalize_axis
from tostatic.ops.special import erf, erf_float32


class Unary(PdOp):
    INPUTS = ("x",)
    FN: ClassVar[Any] = None

    @staticmethod
    def infer(x: Abstract, **_: Any) -> Abstract:
        return x

    @classmethod
    def eager(cls, x: np.ndarray, **attrs: Any) -> np.ndarray:
        return np.asarray(cls.FN(x, **attrs), dtype=x.dtype)


def unary(paddle_type: str, keeps_extra_attrs: bool = False, **attrs: From) -> Legacy:
    return Legacy(paddle_type, {"X": "x"}, {"Out": 0}, dict(attrs),
                  keeps_extra_attrs=keeps_extra_attrs)


class FloatUnary(Unary):
    """An activation defined for floating tensors only (Paddle has no integer kernel)."""

    @classmethod
    def infer(cls, x: Abstract, **_: Any) -> Abstract:
        if not x.dtype.is_floating:
            raise ShapeError(f"{cls.name}: expects a floating tensor, got {x.dtype.name}")
        return x


@pd_op
class Relu(Unary):
    name = "pd.relu"
    FN = staticmethod(lambda x: np.maximum(x, 0))
    PADDLE = unary("relu")
    NAME_HINT = "relu"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, A.compare(e, "greater_than", out, 0.0)))
    SCALAR = staticmethod(rules.relu)


@pd_op
class Sigmoid(Unary):
    name = "pd.sigmoid"
    FN = staticmethod(lambda x: 1.0 / (1.0 + np.exp(-x)))
    PADDLE = unary("sigmoid")
    NAME_HINT = "sigmoid"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, A.mul(e, out, A.scale(e, out, -1.0, 1.0))))
    SCALAR = staticmethod(rules.sigmoid)


@pd_op
class Tanh(Unary):
    name = "pd.tanh"
    FN = np.tanh
    PADDLE = unary("tanh")
    NAME_HINT = "tanh"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, A.scale(e, A.mul(e, out, out), -1.0, 1.0)))
    SCALAR = staticmethod(se.tanh)


@pd_op
class Exp(Unary):
    name = "pd.exp"
    FN = np.exp
    PADDLE = unary("exp")
    NAME_HINT = "exp"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, out))
    SCALAR = staticmethod(se.exp)


@pd_op
class Sqrt(Unary):
    name = "pd.sqrt"
    FN = np.sqrt
    PADDLE = unary("sqrt")
    NAME_HINT = "sqrt"
    vjp = A.unary_vjp(lambda e, x, out, g: A.div(e, A.scale(e, g, 0.5), out))
    SCALAR = staticmethod(se.sqrt)


@pd_op
class Abs(Unary):
    name = "pd.abs"
    FN = np.abs
    PADDLE = unary("abs")
    NAME_HINT = "abs"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, A.sub(e, A.compare(e, "greater_than", x, 0.0), A.compare(e, "less_than", x, 0.0))))
    SCALAR = staticmethod(se.absolute)


@pd_op
class Neg(Unary):
    """-x; Paddle writes it as scale(-1) so it has no legacy op of its own."""

    name = "pd.neg"
    FN = np.negative
    NAME_HINT = "scale"
    vjp = A.unary_vjp(lambda e, x, out, g: A.neg(e, g))
    SCALAR = staticmethod(lambda x: -x)


def _scale_scalar(x: se.Expr, scale: float, bias: float, bias_after_scale: bool) -> se.Expr:
    t = se.cast(x, "float64") if not x.is_float else x  # integers: in float64, truncated
    t = t * scale + bias if bias_after_scale else (t + bias) * scale
    return se.cast(t, x.dtype)


@pd_op
class Scale(Unary):
    """scale * x + bias (bias_after_scale), else scale * (x + bias): how Paddle writes x*2, x+1."""

    name = "pd.scale"
    ATTRS = {"scale": attr(FLOAT, 1.0), "bias": attr(FLOAT, 0.0),
             "bias_after_scale": attr(BOOL, True)}
    PADDLE = Legacy("scale", {"X": "x"}, {"Out": 0},
                    {"scale": From("FLOAT", "scale"), "bias": From("FLOAT", "bias"),
                     "bias_after_scale": From("BOOLEAN", "bias_after_scale")},
                    optional_inputs=("ScaleTensor", "BiasTensor"))
    NAME_HINT = "scale"
    vjp = A.unary_vjp(lambda e, x, out, g, scale, bias, bias_after_scale: A.scale(e, g, scale))
    SCALAR = staticmethod(_scale_scalar)

    @staticmethod
    def eager(x: np.ndarray, scale: float, bias: float, bias_after_scale: bool) -> np.ndarray:
        if np.issubdtype(x.dtype, np.integer):
            out = x * scale + bias if bias_after_scale else (x + bias) * scale
            return np.asarray(out).astype(x.dtype)
        s, b = x.dtype.type(scale), x.dtype.type(bias)
        return (x * s + b) if bias_after_scale else (x + b) * s


def _gelu(x: np.ndarray, approximate: bool) -> np.ndarray:
    if approximate:
        c = np.sqrt(2.0 / np.pi)
        return 0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x ** 3)))
    if x.dtype == np.float32:  # float32 arithmetic throughout, as Paddle's kernel
        y = erf_float32(x * np.float32(0.7071067811865476))
        y += np.float32(1.0)
        y *= x
        y *= np.float32(0.5)
        return y
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


@pd_op
class Gelu(Unary):
    name = "pd.gelu"
    ATTRS = {"approximate": attr(BOOL, False)}
    FN = staticmethod(_gelu)
    PADDLE = unary("gelu", approximate=From("BOOLEAN", "approximate"))
    NAME_HINT = "gelu"
    vjp = A.unary_vjp(lambda e, x, out, g, approximate: A.mul(e, g, _gelu_grad(e, x, approximate)))
    SCALAR = staticmethod(rules.gelu)


# --- clipped and piecewise-linear activations (what MobileNets write) -------------------------

@pd_op
class Relu6(FloatUnary):
    """min(max(x, 0), 6). Paddle 3.3.1 writes no attribute; older files carry an extra
    `threshold` that Paddle 3.3.1's kernel ignores (always 6), so it is not read either."""

    name = "pd.relu6"
    FN = staticmethod(lambda x: np.minimum(np.maximum(x, 0), 6))
    PADDLE = unary("relu6")
    NAME_HINT = "relu6"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, A.mul(e, A.compare(e, "greater_than", x, 0.0), A.compare(e, "less_than", x, 6.0))))
    SCALAR = staticmethod(rules.relu6)


@pd_op
class HardSwish(FloatUnary):
    """x * min(max(x + offset, 0), threshold) / scale, with Paddle's constants 6, 6, 3.

    Paddle writes threshold/scale/offset but its 3.3.1 kernel ignores them and always uses
    6, 6, 3: other values are refused rather than run differently from Paddle."""

    name = "pd.hardswish"
    ATTRS = {"threshold": attr(FLOAT, 6.0), "scale": attr(FLOAT, 6.0),
             "offset": attr(FLOAT, 3.0)}
    PADDLE = unary("hard_swish", threshold=From("FLOAT", "threshold"),
                   scale=From("FLOAT", "scale"), offset=From("FLOAT", "offset"))
    NAME_HINT = "hardswish"
    vjp = A.unary_vjp(lambda e, x, out, g, threshold, scale, offset: A.mul(e, g, _hardswish_grad(e, x, threshold, scale, offset)))
    SCALAR = staticmethod(rules.hardswish)

    @classmethod
    def infer(cls, x: Abstract, threshold: float, scale: float, offset: float) -> Abstract:
        for key, value, fixed in (("threshold", threshold, 6.0), ("scale", scale, 6.0),
                                  ("offset", offset, 3.0)):
            if value != fixed:
                raise unsupported(cls.name, key, value,
                                  f"{fixed} (Paddle's hard_swish kernel ignores other values)")
        return super().infer(x)

    @staticmethod
    def eager(x: np.ndarray, threshold: float, scale: float, offset: float) -> np.ndarray:
        t = x + x.dtype.type(3)
        np.maximum(t, 0, out=t)
        np.minimum(t, 6, out=t)
        t *= x
        t /= x.dtype.type(6)
        return t


@pd_op
class HardSigmoid(FloatUnary):
    """max(0, min(1, slope * x + offset)); the op's defaults are slope 0.2, offset 0.5
    (paddle.nn.functional.hardsigmoid writes slope 1/6)."""

    name = "pd.hardsigmoid"
    ATTRS = {"slope": attr(FLOAT, 0.2), "offset": attr(FLOAT, 0.5)}
    PADDLE = unary("hard_sigmoid", keeps_extra_attrs=True, slope=From("FLOAT", "slope"),
                   offset=From("FLOAT", "offset"))
    NAME_HINT = "hardsigmoid"
    vjp = A.unary_vjp(lambda e, x, out, g, slope, offset: A.mul(e, g, A.scale(e, A.mul(e, A.compare(e, "greater_than", out, 0.0), A.compare(e, "less_than", out, 1.0)), slope)))
    SCALAR = staticmethod(lambda x, slope, offset:
                          se.minimum(se.maximum(x * slope + offset, 0), 1))

    @staticmethod
    def eager(x: np.ndarray, slope: float, offset: float) -> np.ndarray:
        t = x * x.dtype.type(slope)
        t += x.dtype.type(offset)
        return np.clip(t, 0, 1, out=t)


def _swish(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x: the result is -0
        return x / (1 + np.exp(-x))


@pd_op
class Swish(FloatUnary):
    """x * sigmoid(x): what paddle.nn.functional.swish / nn.Swish write (Paddle 3.3.1 writes
    no `beta`, and its kernel ignores one an older file carries)."""

    name = "pd.swish"
    FN = staticmethod(_swish)
    PADDLE = unary("swish")
    NAME_HINT = "swish"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, _silu_grad(e, x)))
    SCALAR = staticmethod(rules.swish)


@pd_op
class Silu(FloatUnary):
    """x * sigmoid(x), as its own legacy op: what paddle.nn.functional.silu / nn.Silu write."""

    name = "pd.silu"
    FN = staticmethod(_swish)
    PADDLE = unary("silu")
    NAME_HINT = "silu"
    vjp = A.unary_vjp(lambda e, x, out, g: A.mul(e, g, _silu_grad(e, x)))
    SCALAR = staticmethod(rules.swish)


@pd_op
class LeakyRelu(FloatUnary):
    """x if x > 0 else alpha * x (the op's default alpha is 0.02; the Python API's 0.01)."""

    name = "pd.leaky_relu"
    ATTRS = {"alpha": attr(FLOAT, 0.02)}
    PADDLE = unary("leaky_relu", alpha=From("FLOAT", "alpha"))
    NAME_HINT = "leaky_relu"
    vjp = A.unary_vjp(lambda e, x, out, g, alpha: A.mul(e, g, A.scale(e, A.compare(e, "greater_than", x, 0.0), 1.0 - alpha, alpha)))
    SCALAR = staticmethod(lambda x, alpha: se.where(x > 0, x, x * alpha))

    @staticmethod
    def eager(x: np.ndarray, alpha: float) -> np.ndarray:
        return np.where(x > 0, x, x * x.dtype.type(alpha))


@pd_op
class Elu(FloatUnary):
    """x if x > 0 else alpha * (exp(x) - 1), computed as Paddle does (not with expm1)."""

    name = "pd.elu"
    ATTRS = {"alpha": attr(FLOAT, 1.0)}
    PADDLE = unary("elu", alpha=From("FLOAT", "alpha"))
    NAME_HINT = "elu"
    vjp = A.unary_vjp(lambda e, x, out, g, alpha: A.mul(e, g, A.where(e, A.e_cmp(e, "greater_than", x, 0.0), A.full_like(e, x, 1.0), A.scale(e, out, 1.0, alpha))))
    SCALAR = staticmethod(lambda x, alpha:
                          se.where(x > 0, x, (se.exp(se.minimum(x, 0)) - 1) * alpha))

    @staticmethod
    def eager(x: np.ndarray, alpha: float) -> np.ndarray:
        neg = np.exp(np.minimum(x, 0))
        neg -= 1
        neg *= x.dtype.type(alpha)
        return np.where(x > 0, x, neg)


PRELU_MODES = ("all", "channel", "element")
PRELU_FORMATS = ("NCHW", "NHWC")
# F.prelu writes NCHW / NHWC in mode 'channel'; with one weight (mode 'all') it writes the
# layout the user gave, any of these (the layout only matters for 'channel')
PRELU_ANY_FORMATS = ("NCHW", "NHWC", "NC", "NCL", "NCDHW", "NLC", "NDHWC")


def _prelu_alpha_shape(x: tuple[int, ...], mode: str, data_format: str) -> tuple[int, ...]:
    """The shape alpha is reshaped to so that it broadcasts against x."""
    if mode == "all":
        return (1,) * len(x)
    if mode == "channel":
        axis = 1 if data_format == "NCHW" else len(x) - 1
        return tuple(d if i == axis else 1 for i, d in enumerate(x))
    return (1,) + tuple(x[1:])


@pd_op
class Prelu(PdOp):
    """x if x > 0 else alpha * x, alpha a weight shared by all elements (`all`), one per
    channel (`channel`: dim 1 in NCHW, the last dim in NHWC) or one per element of a sample
    (`element`)."""

    name = "pd.prelu"
    INPUTS = ("x", "alpha")
    ATTRS = {"mode": attr(STR, "all"), "data_format": attr(STR, "NCHW")}
    PADDLE = Legacy("prelu", {"X": "x", "Alpha": "alpha"}, {"Out": 0},
                    {"data_format": From("STRING", "data_format"), "mode": From("STRING", "mode")})
    NAME_HINT = "prelu"

    @classmethod
    def infer(cls, x: Abstract, alpha: Abstract, mode: str, data_format: str) -> Abstract:
        check_choice(cls.name, "mode", mode, PRELU_MODES)
        check_choice(cls.name, "data_format", data_format,
                     PRELU_FORMATS if mode == "channel" else PRELU_ANY_FORMATS)
        if alpha.dtype != x.dtype:
            raise ShapeError(f"{cls.name}: alpha dtype {alpha.dtype.name} differs from x dtype "
                             f"{x.dtype.name}")
        if mode != "all" and x.ndim < 2:
            raise ShapeError(f"{cls.name}: mode {mode!r} needs x of rank >= 2, got shape "
                             f"{list(x.shape)}")
        want = 1
        for d in _prelu_alpha_shape(x.shape, mode, data_format):
            want = -1 if d < 0 or want < 0 else want * d
        have = 1
        for d in alpha.shape:
            have = -1 if d < 0 or have < 0 else have * d
        if want >= 0 and have >= 0 and want != have:
            raise ShapeError(f"{cls.name}: mode {mode!r} ({data_format}) needs {want} alpha "
                             f"values for x of shape {list(x.shape)}, alpha has shape "
                             f"{list(alpha.shape)}")
        return x

    @staticmethod
    def eager(x: np.ndarray, alpha: np.ndarray, mode: str, data_format: str) -> np.ndarray:
        a = alpha.reshape(_prelu_alpha_shape(x.shape, mode, data_format))
        return np.where(x > 0, x, x * a)

    @classmethod
    def vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any],
            attrs: dict[str, Any], cts: list[Any], needs: list[Any]) -> list[Any]:
        x, alpha = inputs
        g = cts[0]
        shape = _prelu_alpha_shape(e.shape(x), attrs["mode"], attrs["data_format"])
        a = A.reshape(e, alpha, shape)
        pos = A.compare(e, "greater_than", x, 0.0)
        neg = A.scale(e, pos, -1.0, 1.0)
        dx = A.mul(e, g, A.add(e, pos, A.mul(e, neg, a))) if needs[0] else None
        da = None
        if needs[1]:
            da = A.reshape(e, A.sum_to(e, A.mul(e, g, A.mul(e, x, neg)), shape), e.shape(alpha))
        return [dx, da]


@pd_op
class Clip(Unary):
    """min(max(x, min), max) with the bounds cast to x's dtype as Paddle's kernel casts them
    (1.7 -> 1 for integers). The Min/Max tensor slots are written empty (bounds read from
    tensors are the ops of runtime_bounds.py)."""

    name = "pd.clip"
    ATTRS = {"min": attr(FLOAT), "max": attr(FLOAT)}
    PADDLE = Legacy("clip", {"X": "x"}, {"Out": 0},
                    {"max": From("FLOAT", "max"), "min": From("FLOAT", "min")},
                    optional_inputs=("Max", "Min"))
    NAME_HINT = "clip"
    vjp = A.unary_vjp(lambda e, x, out, g, min, max: A.mul(e, g, A.mul(e, A.compare(e, "greater_equal", x, min), A.compare(e, "less_equal", x, max))))
    SCALAR = staticmethod(lambda x, min, max: se.minimum(se.maximum(
        x, _bound(min, np.dtype(x.dtype)).item()), _bound(max, np.dtype(x.dtype)).item()))

    @classmethod
    def infer(cls, x: Abstract, min: float, max: float) -> Abstract:
        if min > max:
            raise ShapeError(f"{cls.name}: min {min} is greater than max {max}")
        return x

    @staticmethod
    def eager(x: np.ndarray, min: float, max: float) -> np.ndarray:
        lo, hi = _bound(min, x.dtype), _bound(max, x.dtype)
        return np.minimum(np.maximum(x, lo), hi)


def _bound(value: float, dtype: np.dtype) -> Any:
    """A float bound as x's dtype: truncated for integers (C's cast), saturated to the range
    (Paddle's default max is FLT_MAX, which no integer holds)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if value != value:  # NaN
            raise ShapeError(f"pd.clip: bound {value} cannot bound an integer tensor")
        return dtype.type(int(sorted((info.min, value, info.max))[1]))
    return dtype.type(value)


class AlongAxis(FloatUnary):
    """A floating unary op that works along one `axis` (softmax, log_softmax)."""

    @classmethod
    def infer(cls, x: Abstract, axis: int) -> Abstract:
        normalize_axis(axis, x.ndim, f"{cls.name} axis")
        return super().infer(x)


@pd_op
class Softmax(AlongAxis):
    """exp(x - max) / sum(exp(x - max)) along one axis."""

    name = "pd.softmax"
    ATTRS = {"axis": attr(INT, -1)}
    PADDLE = unary("softmax", axis=From("INT", "axis"))
    NAME_HINT = "softmax"
    vjp = A.unary_vjp(lambda e, x, out, g, axis: A.mul(e, out, A.sub(e, g, A.e(e, "pd.sum", A.mul(e, g, out), axis=(axis,), keepdim=True))))

    @staticmethod
    def eager(x: np.ndarray, axis: int) -> np.ndarray:
        if x.ndim == 0:
            return np.ones_like(x)
        e = x - x.max(axis=axis, keepdims=True)
        np.exp(e, out=e)
        e /= e.sum(axis=axis, keepdims=True)
        return e


def _gelu_grad(e: A.Emitter, x: Any, approximate: bool) -> Any:
    """d gelu / dx: Phi(x) + x phi(x), or the derivative of the tanh approximation."""
    if approximate:
        c = float(np.sqrt(2.0 / np.pi))
        x2 = A.mul(e, x, x)
        t = A.e(e, "pd.tanh", A.scale(e, A.mul(e, x, A.scale(e, x2, 0.044715, 1.0)), c))
        dt = A.mul(e, A.scale(e, A.mul(e, t, t), -1.0, 1.0), A.scale(e, x2, 3 * 0.044715 * c, c))
        return A.add(e, A.scale(e, t, 0.5, 0.5), A.scale(e, A.mul(e, x, dt), 0.5))
    cdf = A.scale(e, A.e(e, "pd.erf", A.scale(e, x, float(1 / np.sqrt(2.0)))), 0.5, 0.5)
    pdf = A.scale(e, A.e(e, "pd.exp", A.scale(e, A.mul(e, x, x), -0.5)),
                  float(1 / np.sqrt(2 * np.pi)))
    return A.add(e, cdf, A.mul(e, x, pdf))


def _silu_grad(e: A.Emitter, x: Any) -> Any:
    s = A.e(e, "pd.sigmoid", x)
    return A.mul(e, s, A.scale(e, A.mul(e, x, A.scale(e, s, -1.0, 1.0)), 1.0, 1.0))


def _hardswish_grad(e: A.Emitter, x: Any, threshold: float, scale: float, offset: float) -> Any:
    """0 below -offset, 1 above threshold - offset, (2x + offset) / scale between."""
    mid = A.mul(e, A.compare(e, "greater_than", x, -offset),
                A.compare(e, "less_than", x, threshold - offset))
    above = A.compare(e, "greater_equal", x, threshold - offset)
    return A.add(e, A.mul(e, mid, A.scale(e, x, 2.0 / scale, offset / scale)), above)

