"""Parameter updates: Paddle's optimizer ops (sgd, momentum, adam, adamw, rmsprop, adagrad,
lamb), one class each, with their legacy slots and attributes as Paddle 3.3.1's op makers
declare them.

The eager `tostatic.optimizer` classes run their step through these ops, so a static
`minimize` can emit the very same ones. Each result is the new value of one input (`UPDATES`:
ParamOut is written into Param's variable, Moment1Out into Moment1's ...), as Paddle writes
them in place. The kernels compute in the parameter's dtype (float32), in the order of Paddle's
CPU kernels, so that ten steps agree with Paddle's to float rounding. The learning rate is a
[1] (or 0-D) tensor, as the optimizer passes it; the beta-power accumulators of adam / adamw /
lamb are [1] tensors, updated after the step (beta1_pow_out = beta1_pow * beta1).
Master weights (multi_precision) and sparse gradients are not supported: those slots stay empty.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir.attributes import BOOL, FLOAT, STR, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, Fixed, From, Legacy, PdOp, pd_op
from tostatic.ops.attr_checks import check_choice


def _scalar(a: np.ndarray, dtype: np.dtype) -> Any:
    """A [1] / 0-D tensor (learning rate, beta power) as a scalar of the parameter's dtype."""
    return np.asarray(a, dtype=dtype).reshape(-1)[0]


def _check_like(op: str, param: Abstract, **others: Abstract) -> None:
    if not param.dtype.is_floating:
        raise ShapeError(f"{op}: the parameter must be floating, got {param.dtype.name}")
    for what, v in others.items():
        if not v.compatible(param):
            raise ShapeError(f"{op}: {what} must have the parameter's shape {list(param.shape)} "
                             f"and dtype {param.dtype.name}, got {list(v.shape)} {v.dtype.name}")


def _check_scalar(op: str, **scalars: Abstract) -> None:
    for what, v in scalars.items():
        if v.ndim > 1 or (v.ndim == 1 and v.shape[0] not in (1, -1)):
            raise ShapeError(f"{op}: {what} must hold one value (shape [1]), got {list(v.shape)}")


class Update(PdOp):
    """An optimizer op: new values of some of its inputs, in Paddle's output slot order."""

    EFFECTS = True  # it writes persistable state: never folded, merged or removed
    NONDIFF = True


@pd_op
class Sgd(Update):
    name = "pd.sgd"
    INPUTS = ("param", "learning_rate", "grad")
    ATTRS = {"multi_precision": attr(BOOL, False)}
    NUM_RESULTS = 1
    UPDATES = {0: "param"}
    PADDLE = Legacy("sgd", {"Param": "param", "LearningRate": "learning_rate", "Grad": "grad"},
                    {"ParamOut": 0}, {"multi_precision": From("BOOLEAN", "multi_precision")},
                    optional_inputs=("MasterParam",))

    @staticmethod
    def infer(param: Abstract, learning_rate: Abstract, grad: Abstract,
              multi_precision: bool) -> Abstract:
        _check_like("pd.sgd", param, grad=grad)
        _check_scalar("pd.sgd", learning_rate=learning_rate)
        return param

    @staticmethod
    def eager(param: np.ndarray, learning_rate: np.ndarray, grad: np.ndarray,
              multi_precision: bool) -> np.ndarray:
        return param - _scalar(learning_rate, param.dtype) * grad


@pd_op
class Momentum(Update):
    """velocity = mu * velocity + g (g + coeff * param with l2_decay); param -= lr * velocity,
    or with Nesterov param -= lr * (g + mu * velocity)."""

    name = "pd.momentum"
    INPUTS = ("param", "grad", "velocity", "learning_rate")
    ATTRS = {"mu": attr(FLOAT, 0.9), "use_nesterov": attr(BOOL, False),
             "regularization_method": attr(STR, ""), "regularization_coeff": attr(FLOAT, 0.0),
             "multi_precision": attr(BOOL, False), "rescale_grad": attr(FLOAT, 1.0)}
    NUM_RESULTS = 2
    UPDATES = {0: "param", 1: "velocity"}
    PADDLE = Legacy("momentum", {"Param": "param", "Grad": "grad", "Velocity": "velocity",
                                 "LearningRate": "learning_rate"},
                    {"ParamOut": 0, "VelocityOut": 1},
                    {"mu": From("FLOAT", "mu"), "use_nesterov": From("BOOLEAN", "use_nesterov"),
                     "regularization_method": From("STRING", "regularization_method"),
                     "regularization_coeff": From("FLOAT", "regularization_coeff"),
                     "multi_precision": From("BOOLEAN", "multi_precision"),
                     "rescale_grad": From("FLOAT", "rescale_grad")},
                    optional_inputs=("MasterParam",))

    @staticmethod
    def infer(param: Abstract, grad: Abstract, velocity: Abstract, learning_rate: Abstract,
              **attrs: Any) -> list[Abstract]:
        check_choice("pd.momentum", "regularization_method", attrs["regularization_method"],
                     ("", "l2_decay"))
        _check_like("pd.momentum", param, grad=grad, velocity=velocity)
        _check_scalar("pd.momentum", learning_rate=learning_rate)
        return [param, velocity]

    @staticmethod
    def eager(param: np.ndarray, grad: np.ndarray, velocity: np.ndarray,
              learning_rate: np.ndarray, mu: float, use_nesterov: bool,
              regularization_method: str, regularization_coeff: float, multi_precision: bool,
              rescale_grad: float) -> list[np.ndarray]:
        t = param.dtype.type
        lr, mu_ = _scalar(learning_rate, param.dtype), t(mu)
        g = t(rescale_grad) * grad
        if regularization_method == "l2_decay":
            g += t(regularization_coeff) * param
        v = velocity * mu_
        v += g
        if use_nesterov:
            step = v * mu_
            step += g
            step *= lr
            return [np.subtract(param, step, out=step), v]
        step = np.multiply(v, lr)
        return [np.subtract(param, step, out=step), v]


_ADAM_SLOTS = {"Param": "param", "Grad": "grad", "LearningRate": "learning_rate",
               "Moment1": "moment1", "Moment2": "moment2", "Beta1Pow": "beta1_pow",
               "Beta2Pow": "beta2_pow"}
_ADAM_OUT = {"ParamOut": 0, "Moment1Out": 1, "Moment2Out": 2, "Beta1PowOut": 3,
             "Beta2PowOut": 4}
_ADAM_ATTRS = {"beta1": From("FLOAT", "beta1"), "beta2": From("FLOAT", "beta2"),
               "epsilon": From("FLOAT", "epsilon"), "lazy_mode": From("BOOLEAN", "lazy_mode"),
               "min_row_size_to_use_multithread": Fixed("LONG", 1000),
               "multi_precision": From("BOOLEAN", "multi_precision"),
               "use_global_beta_pow": From("BOOLEAN", "use_global_beta_pow"),
               "amsgrad": Fixed("BOOLEAN", False)}
_ADAM_OPTIONAL = ("Moment2Max", "MasterParam", "SkipUpdate", "Beta1Tensor", "Beta2Tensor",
                  "EpsilonTensor")


def _adam_infer(cls: type, param: Abstract, grad: Abstract, learning_rate: Abstract,
                moment1: Abstract, moment2: Abstract, beta1_pow: Abstract,
                beta2_pow: Abstract, **attrs: Any) -> list[Abstract]:
    """The shape rule of the ops with Adam's slots (adam, adamw, lamb)."""
    op = cls.name
    _check_like(op, param, grad=grad, moment1=moment1, moment2=moment2)
    _check_scalar(op, learning_rate=learning_rate, beta1_pow=beta1_pow, beta2_pow=beta2_pow)
    return [param, moment1, moment2, beta1_pow, beta2_pow]


def _adam_step(param: np.ndarray, grad: np.ndarray, lr: Any, moment1: np.ndarray,
               moment2: np.ndarray, beta1_pow: np.ndarray, beta2_pow: np.ndarray,
               beta1: float, beta2: float, epsilon: float,
               moment2_max: np.ndarray | None = None) -> list[np.ndarray]:
    """Paddle's CPU adam: the bias corrections folded into lr and epsilon. (The same float32
    operations in the same order as m1 = b1 m1 + (1 - b1) g, m2 = b2 m2 + (1 - b2) g g,
    param - lr_t (m1 / (sqrt(m2) + eps)), computed in place into fresh arrays.)"""
    t = param.dtype.type
    b1, b2 = t(beta1), t(beta2)
    b1p, b2p = _scalar(beta1_pow, param.dtype), _scalar(beta2_pow, param.dtype)
    lr_t = lr * np.sqrt(t(1) - b2p) / (t(1) - b1p)
    eps = t(epsilon) * np.sqrt(t(1) - b2p)
    m1 = np.multiply(moment1, b1)
    m1 += (t(1) - b1) * grad
    g2 = np.multiply(grad, t(1) - b2)
    g2 *= grad
    m2 = np.multiply(moment2, b2)
    m2 += g2
    extra = []
    if moment2_max is not None:  # amsgrad: divide by the running maximum of moment2
        extra = [np.maximum(m2, moment2_max)]
    step = np.sqrt(extra[0] if extra else m2, out=g2)
    step += eps
    np.divide(m1, step, out=step)
    step *= lr_t
    return [np.subtract(param, step, out=step), m1, m2,
            (beta1_pow * b1).astype(beta1_pow.dtype), (beta2_pow * b2).astype(beta2_pow.dtype),
            *extra]


@pd_op
class Adam(Update):
    name = "pd.adam"
    INPUTS = ("param", "grad", "learning_rate", "moment1", "moment2", "beta1_pow", "beta2_pow")
    ATTRS = {"beta1": attr(FLOAT, 0.9), "beta2": attr(FLOAT, 0.999),
             "epsilon": attr(FLOAT, 1e-8), "lazy_mode": attr(BOOL, False),
             "multi_precision": attr(BOOL, False), "use_global_beta_pow": attr(BOOL, False)}
    NUM_RESULTS = 5
    UPDATES = {0: "param", 1: "moment1", 2: "moment2", 3: "beta1_pow", 4: "beta2_pow"}
    PADDLE = Legacy("adam", dict(_ADAM_SLOTS), dict(_ADAM_OUT), dict(_ADAM_ATTRS),
                    optional_inputs=_ADAM_OPTIONAL)

    infer = classmethod(_adam_infer)

    @staticmethod
    def eager(param: np.ndarray, grad: np.ndarray, learning_rate: np.ndarray,
              moment1: np.ndarray, moment2: np.ndarray, beta1_pow: np.ndarray,
              beta2_pow: np.ndarray, beta1: float, beta2: float, epsilon: float,
              lazy_mode: bool, multi_precision: bool,
              use_global_beta_pow: bool) -> list[np.ndarray]:
        return _adam_step(param, grad, _scalar(learning_rate, param.dtype), moment1, moment2,
                          beta1_pow, beta2_pow, beta1, beta2, epsilon)


@pd_op
class AdamW(Update):
    """Adam with decoupled weight decay: param *= 1 - lr * lr_ratio * coeff first (when
    with_decay), then Adam's step with lr * lr_ratio."""

    name = "pd.adamw"
    INPUTS = Adam.INPUTS
    ATTRS = {**Adam.ATTRS, "lr_ratio": attr(FLOAT, 1.0), "coeff": attr(FLOAT, 0.01),
             "with_decay": attr(BOOL, False)}
    NUM_RESULTS = 5
    UPDATES = dict(Adam.UPDATES)
    PADDLE = Legacy("adamw", dict(_ADAM_SLOTS), dict(_ADAM_OUT),
                    {**_ADAM_ATTRS, "lr_ratio": From("FLOAT", "lr_ratio"),
                     "coeff": From("FLOAT", "coeff"),
                     "with_decay": From("BOOLEAN", "with_decay")},
                    optional_inputs=_ADAM_OPTIONAL)

    infer = classmethod(_adam_infer)

    @staticmethod
    def eager(param: np.ndarray, grad: np.ndarray, learning_rate: np.ndarray,
              moment1: np.ndarray, moment2: np.ndarray, beta1_pow: np.ndarray,
              beta2_pow: np.ndarray, beta1: float, beta2: float, epsilon: float,
              lazy_mode: bool, multi_precision: bool, use_global_beta_pow: bool,
              lr_ratio: float, coeff: float, with_decay: bool) -> list[np.ndarray]:
        t = param.dtype.type
        lr = _scalar(learning_rate, param.dtype) * t(lr_ratio)
        if with_decay:
            param = param * (t(1) - lr * t(coeff))
        return _adam_step(param, grad, lr, moment1, moment2, beta1_pow, beta2_pow, beta1,
                          beta2, epsilon)


@pd_op
class Rmsprop(Update):
    """mean_square = rho * ms + (1 - rho) * g^2 (attribute `decay` is rho); centered also
    tracks mean_grad and divides by sqrt(ms - mg^2 + eps); moment = momentum * moment +
    lr * g / that; param -= moment."""

    name = "pd.rmsprop"
    INPUTS = ("param", "mean_square", "grad", "moment", "learning_rate", "mean_grad")
    ATTRS = {"epsilon": attr(FLOAT, 1e-10), "decay": attr(FLOAT, 0.9),
             "momentum": attr(FLOAT, 0.0), "centered": attr(BOOL, False),
             "multi_precision": attr(BOOL, False)}
    NUM_RESULTS = 4
    UPDATES = {0: "param", 1: "moment", 2: "mean_square", 3: "mean_grad"}
    PADDLE = Legacy("rmsprop", {"Param": "param", "MeanSquare": "mean_square", "Grad": "grad",
                                "Moment": "moment", "LearningRate": "learning_rate",
                                "MeanGrad": "mean_grad"},
                    {"ParamOut": 0, "MomentOut": 1, "MeanSquareOut": 2, "MeanGradOut": 3},
                    {"epsilon": From("FLOAT", "epsilon"), "decay": From("FLOAT", "decay"),
                     "momentum": From("FLOAT", "momentum"),
                     "centered": From("BOOLEAN", "centered"),
                     "multi_precision": From("BOOLEAN", "multi_precision")},
                    optional_inputs=("MasterParam",))

    @staticmethod
    def infer(param: Abstract, mean_square: Abstract, grad: Abstract, moment: Abstract,
              learning_rate: Abstract, mean_grad: Abstract, **attrs: Any) -> list[Abstract]:
        _check_like("pd.rmsprop", param, mean_square=mean_square, grad=grad, moment=moment,
                    mean_grad=mean_grad)
        _check_scalar("pd.rmsprop", learning_rate=learning_rate)
        return [param, moment, mean_square, mean_grad]

    @staticmethod
    def eager(param: np.ndarray, mean_square: np.ndarray, grad: np.ndarray, moment: np.ndarray,
              learning_rate: np.ndarray, mean_grad: np.ndarray, epsilon: float, decay: float,
              momentum: float, centered: bool, multi_precision: bool) -> list[np.ndarray]:
        t = param.dtype.type
        rho, lr = t(decay), _scalar(learning_rate, param.dtype)
        ms = rho * mean_square + (t(1) - rho) * grad * grad
        if centered:
            mg = rho * mean_grad + (t(1) - rho) * grad
            denom = np.sqrt(ms - mg * mg + t(epsilon))
        else:
            mg = mean_grad
            denom = np.sqrt(ms + t(epsilon))
        mom = t(momentum) * moment + lr * grad / denom
        return [param - mom, mom, ms, mg]


@pd_op
class Adagrad(Update):
    name = "pd.adagrad"
    INPUTS = ("param", "grad", "moment", "learning_rate")
    ATTRS = {"epsilon": attr(FLOAT, 1e-6), "multi_precision": attr(BOOL, False)}
    NUM_RESULTS = 2
    UPDATES = {0: "param", 1: "moment"}
    PADDLE = Legacy("adagrad", {"Param": "param", "Grad": "grad", "Moment": "moment",
                                "LearningRate": "learning_rate"},
                    {"ParamOut": 0, "MomentOut": 1},
                    {"epsilon": From("FLOAT", "epsilon"),
                     "multi_precision": From("BOOLEAN", "multi_precision")},
                    optional_inputs=("MasterParam",))

    @staticmethod
    def infer(param: Abstract, grad: Abstract, moment: Abstract, learning_rate: Abstract,
              **attrs: Any) -> list[Abstract]:
        _check_like("pd.adagrad", param, grad=grad, moment=moment)
        _check_scalar("pd.adagrad", learning_rate=learning_rate)
        return [param, moment]

    @staticmethod
    def eager(param: np.ndarray, grad: np.ndarray, moment: np.ndarray,
              learning_rate: np.ndarray, epsilon: float,
              multi_precision: bool) -> list[np.ndarray]:
        t = param.dtype.type
        m = moment + grad * grad
        return [param - _scalar(learning_rate, param.dtype) * grad / (np.sqrt(m) + t(epsilon)),
                m]


@pd_op
class Lamb(Update):
    """Adam's moments, bias-corrected, plus weight_decay * param as the update direction r;
    the step is lr * ||param|| / ||r|| (1 when either norm is 0) along r."""

    name = "pd.lamb"
    INPUTS = Adam.INPUTS
    ATTRS = {"weight_decay": attr(FLOAT, 0.01), "beta1": attr(FLOAT, 0.9),
             "beta2": attr(FLOAT, 0.999), "epsilon": attr(FLOAT, 1e-6),
             "always_adapt": attr(BOOL, False), "multi_precision": attr(BOOL, False)}
    NUM_RESULTS = 5
    UPDATES = dict(Adam.UPDATES)
    PADDLE = Legacy("lamb", dict(_ADAM_SLOTS), dict(_ADAM_OUT),
                    {k: From("BOOLEAN" if k in ("always_adapt", "multi_precision") else "FLOAT",
                             k) for k in ATTRS},
                    optional_inputs=("MasterParam", "SkipUpdate"))

    infer = classmethod(_adam_infer)

    @staticmethod
    def eager(param: np.ndarray, grad: np.ndarray, learning_rate: np.ndarray,
              moment1: np.ndarray, moment2: np.ndarray, beta1_pow: np.ndarray,
              beta2_pow: np.ndarray, weight_decay: float, beta1: float, beta2: float,
              epsilon: float, always_adapt: bool, multi_precision: bool) -> list[np.ndarray]:
        t = param.dtype.type
        b1, b2 = t(beta1), t(beta2)
        b1p, b2p = _scalar(beta1_pow, param.dtype), _scalar(beta2_pow, param.dtype)
        m1 = b1 * moment1 + (t(1) - b1) * grad
        m2 = b2 * moment2 + (t(1) - b2) * grad * grad
        r = (m1 / (t(1) - b1p)) / (np.sqrt(m2 / (t(1) - b2p)) + t(epsilon))
        r = r + t(weight_decay) * param
        p_norm = np.sqrt(np.sum(param * param, dtype=param.dtype))
        r_norm = np.sqrt(np.sum(r * r, dtype=param.dtype))
        adapt = weight_decay != 0 or always_adapt
        ratio = p_norm / r_norm if adapt and p_norm > 0 and r_norm > 0 else t(1)
        out = param - _scalar(learning_rate, param.dtype) * ratio * r
        return [out, m1, m2, (beta1_pow * b1).astype(beta1_pow.dtype),
                (beta2_pow * b2).astype(beta2_pow.dtype)]


@pd_op
class AdamAmsgrad(Update):
    """Adam / AdamW with amsgrad=True (Paddle's adam / adamw op given Moment2Max): the step
    divides by the square root of the running maximum of moment2, kept in `moment2_max`.
    AdamW's decay attributes apply as in pd.adamw (with_decay False: plain Adam)."""

    name = "pd.adam_amsgrad"
    INPUTS = (*Adam.INPUTS, "moment2_max")
    ATTRS = dict(AdamW.ATTRS)
    NUM_RESULTS = 6
    UPDATES = {**Adam.UPDATES, 5: "moment2_max"}

    @classmethod
    def infer(cls, param: Abstract, grad: Abstract, learning_rate: Abstract,
              moment1: Abstract, moment2: Abstract, beta1_pow: Abstract, beta2_pow: Abstract,
              moment2_max: Abstract, **attrs: Any) -> list[Abstract]:
        _check_like(cls.name, param, moment2_max=moment2_max)
        return [*_adam_infer(cls, param, grad, learning_rate, moment1, moment2, beta1_pow,
                             beta2_pow), moment2_max]

    @staticmethod
    def eager(param: np.ndarray, grad: np.ndarray, learning_rate: np.ndarray,
              moment1: np.ndarray, moment2: np.ndarray, beta1_pow: np.ndarray,
              beta2_pow: np.ndarray, moment2_max: np.ndarray, beta1: float, beta2: float,
              epsilon: float, lazy_mode: bool, multi_precision: bool,
              use_global_beta_pow: bool, lr_ratio: float, coeff: float,
              with_decay: bool) -> list[np.ndarray]:
        t = param.dtype.type
        lr = _scalar(learning_rate, param.dtype) * t(lr_ratio)
        if with_decay:
            param = param * (t(1) - lr * t(coeff))
        return _adam_step(param, grad, lr, moment1, moment2, beta1_pow, beta2_pow, beta1,
                          beta2, epsilon, moment2_max)
