"""paddle.optimizer.SGD / Momentum / Adam / AdamW / RMSProp / Adagrad / Lamb.

Each names its accumulators as Paddle does (`velocity`, `moment1`, `beta1_pow_acc`, ...),
creates them in Paddle's order, and runs its step through its op in tostatic/ops/optimizer.py
with the attributes Paddle's dygraph optimizer gives that op.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from tostatic.frontend.optim.lr import LRScheduler
from tostatic.frontend.optim.optimizer import Optimizer
from tostatic.frontend.optim.regularizer import L2Decay, WeightDecayRegularizer
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ir import names as unique_name
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import optimizer as ops

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Lamb", "Momentum", "RMSProp"]

LR = float | LRScheduler


def _float(value: Any, what: str) -> float:
    if hasattr(value, "numpy"):
        value = value.numpy().reshape(-1)[0]
    return float(value)


class SGD(Optimizer):
    type = "sgd"

    def __init__(self, learning_rate: LR = 0.001, parameters: Iterable[Any] | None = None,
                 weight_decay: float | WeightDecayRegularizer | None = None,
                 grad_clip: Any = None, multi_precision: bool = False,
                 name: str | None = None) -> None:
        super().__init__(learning_rate, parameters, weight_decay, grad_clip, name)

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        self._run(ops.Sgd, {"param": param, "learning_rate": self._param_lr(param),
                            "grad": grad})


class Momentum(Optimizer):
    """L2 weight decay (a float or L2Decay, also a parameter's own) runs inside the momentum
    op (regularization_method='l2_decay'), as in Paddle; L1Decay is added to the gradient."""

    type = "momentum"
    GROUP_KEYS = {"momentum": "_momentum", "use_nesterov": "_use_nesterov",
                  "rescale_grad": "_rescale_grad",
                  "regularization_method": "_regularization_method",
                  "regularization_coeff": "_regularization_coeff"}

    def __init__(self, learning_rate: LR = 0.001, momentum: float = 0.9,
                 parameters: Iterable[Any] | None = None, use_nesterov: bool = False,
                 weight_decay: float | WeightDecayRegularizer | None = None,
                 grad_clip: Any = None, multi_precision: bool = False,
                 rescale_grad: float = 1.0, use_multi_tensor: bool = False,
                 name: str | None = None) -> None:
        fused = isinstance(weight_decay, (int, float, L2Decay)) and weight_decay is not None
        super().__init__(learning_rate, parameters, None if fused else weight_decay,
                         grad_clip, name)
        self._momentum = float(momentum)
        self._use_nesterov = bool(use_nesterov)
        self._rescale_grad = float(rescale_grad)
        self._regularization_method = "l2_decay" if fused else ""
        self._regularization_coeff = (0.0 if not fused else weight_decay.coeff
                                      if isinstance(weight_decay, L2Decay)
                                      else float(weight_decay))

    def _regularized(self, param: Any, grad: Any) -> Any:
        if isinstance(getattr(param, "regularizer", None), L2Decay):
            return grad  # fused into the op below
        return super()._regularized(param, grad)

    def _create_accumulators(self, parameters: list[Any]) -> None:
        for p in parameters:
            self._add_accumulator("velocity", p)

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        method, coeff = self._regularization_method, self._regularization_coeff
        own = getattr(param, "regularizer", None)
        if isinstance(own, L2Decay):
            method, coeff = "l2_decay", own.coeff
        elif own is not None:
            method, coeff = "", 0.0
        self._run(ops.Momentum, {"param": param, "grad": grad,
                                 "velocity": self._get_accumulator("velocity", param),
                                 "learning_rate": self._param_lr(param)},
                  mu=self._momentum, use_nesterov=self._use_nesterov,
                  regularization_method=method, regularization_coeff=coeff,
                  rescale_grad=self._rescale_grad)


class _AdamBase(Optimizer):
    """Adam's accumulators: moment1, moment2 (moment2_max with amsgrad), then the [1] beta
    powers (starting at beta). With multi_precision, a float16 / bfloat16 parameter is
    updated through a float32 master copy (`<param>_fp32_master_0`, its accumulators named
    after it, all in `state_dict()['master_weights']` as Paddle keeps them) and gets the
    master's value rounded after each step."""

    GROUP_KEYS = {"beta1": "_beta1", "beta2": "_beta2", "epsilon": "_epsilon"}

    def _adam_init(self, beta1: Any, beta2: Any, epsilon: Any, lazy_mode: bool = False,
                   multi_precision: bool = False, amsgrad: bool = False) -> None:
        self._beta1 = _float(beta1, "beta1")
        self._beta2 = _float(beta2, "beta2")
        self._epsilon = _float(epsilon, "epsilon")
        for what, v in (("beta1", self._beta1), ("beta2", self._beta2)):
            if not 0 <= v < 1:
                raise ValueError(f"Invalid value of {what}, expect {what} in [0,1).")
        if self._epsilon < 0:
            raise ValueError("Invalid value of epsilon, expect epsilon >= 0.")
        # lazy_mode updates only the rows a sparse gradient has; gradients here are dense,
        # for which Paddle's lazy adam is the plain one
        self._lazy_mode, self._amsgrad = bool(lazy_mode), bool(amsgrad)
        self._multi_precision = bool(multi_precision)
        self._master_weights: dict[str, Tensor] = {}

    def _target(self, p: Any) -> Any:
        """The tensor the update runs on: the master copy of a low-precision parameter."""
        return self._master_weights.get(p.name, p)

    def _create_accumulators(self, parameters: list[Any]) -> None:
        for p in parameters:
            if (self._multi_precision and _low_precision(p)
                    and p.name not in self._master_weights):
                self._master_weights[p.name] = self._master_weight(p)
            p = self._target(p)
            self._add_accumulator("moment1", p)
            self._add_accumulator("moment2", p)
            if self._amsgrad:
                self._add_accumulator("moment2_max", p)
            self._add_accumulator("beta1_pow_acc", p, fill_value=self._beta1, shape=[1])
            self._add_accumulator("beta2_pow_acc", p, fill_value=self._beta2, shape=[1])

    def _master_weight(self, p: Any) -> Tensor:
        saved = (self._masters_loaded or {}).get(p.name)
        # a loaded master keeps its name (its accumulators' keys derive from it), as Paddle's
        name = getattr(saved, "name", None) or unique_name.generate(f"{p.name}_fp32_master")
        value = (_as_array(saved).astype(np.float32) if saved is not None
                 else p.numpy().astype(np.float32))
        return Tensor(value.copy(), name=name, persistable=True)

    _masters_loaded: dict[str, Any] | None = None

    def _adam_inputs(self, param: Any, grad: Any) -> dict[str, Any]:
        acc = self._get_accumulator
        target = self._target(param)
        if target is not param:
            grad = Tensor(grad.numpy().astype(np.float32))
        out = {"param": target, "grad": grad, "learning_rate": self._param_lr(param),
               "moment1": acc("moment1", target), "moment2": acc("moment2", target),
               "beta1_pow": acc("beta1_pow_acc", target),
               "beta2_pow": acc("beta2_pow_acc", target)}
        if getattr(self, "_amsgrad", False):
            out["moment2_max"] = acc("moment2_max", target)
        return out

    def _adam_run(self, op: Any, param: Any, grad: Any, **attrs: Any) -> None:
        inputs = self._adam_inputs(param, grad)
        attrs.update(lazy_mode=self._lazy_mode, multi_precision=inputs["param"] is not param)
        if self._amsgrad:
            if self._static is not None:
                raise UnsupportedError(f"{type(self).__name__}(amsgrad=True).minimize in "
                                       f"static mode is not supported")
            attrs.setdefault("with_decay", False)
            op = ops.AdamAmsgrad
        self._run(op, inputs, **attrs)
        if inputs["param"] is not param:  # the parameter gets the master, rounded
            param._data = inputs["param"].numpy().astype(param.numpy().dtype)

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        if getattr(self, "_master_weights", None):
            out["master_weights"] = dict(self._master_weights)
        return out

    def set_state_dict(self, state_dict: dict[str, Any]) -> None:
        masters = state_dict.get("master_weights") or {}
        for name, master in getattr(self, "_master_weights", {}).items():
            if name in masters:
                master.set_value(_as_array(masters[name]))
        self._masters_loaded = masters  # masters of parameters not stepped yet start here
        super().set_state_dict(state_dict)

    load_state_dict = set_state_dict


def _low_precision(p: Any) -> bool:
    return p.numpy().dtype.name in ("float16", "bfloat16")


def _as_array(value: Any) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


class Adam(_AdamBase):
    type = "adam"

    def __init__(self, learning_rate: LR = 0.001, beta1: Any = 0.9, beta2: Any = 0.999,
                 epsilon: Any = 1e-08, parameters: Iterable[Any] | None = None,
                 weight_decay: float | WeightDecayRegularizer | None = None,
                 grad_clip: Any = None, lazy_mode: bool = False, multi_precision: bool = False,
                 use_multi_tensor: bool = False, amsgrad: bool = False,
                 name: str | None = None) -> None:
        super().__init__(learning_rate, parameters, weight_decay, grad_clip, name)
        self._adam_init(beta1, beta2, epsilon, lazy_mode, multi_precision, amsgrad)

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        self._adam_run(ops.Adam, param, grad, beta1=self._beta1, beta2=self._beta2,
                       epsilon=self._epsilon)


class AdamW(_AdamBase):
    """Decoupled weight decay `weight_decay` (a float: the op's coeff) for the parameters
    whose name apply_decay_param_fun accepts (all when it is None)."""

    type = "adamw"
    GROUP_KEYS = {**_AdamBase.GROUP_KEYS, "weight_decay": "_coeff"}

    def __init__(self, learning_rate: LR = 0.001, beta1: Any = 0.9, beta2: Any = 0.999,
                 epsilon: Any = 1e-08, parameters: Iterable[Any] | None = None,
                 weight_decay: float = 0.01, use_lowprecision_moment: bool = False,
                 lr_ratio: Callable[[Any], float] | None = None,
                 apply_decay_param_fun: Callable[[str], bool] | None = None,
                 grad_clip: Any = None, lazy_mode: bool = False, multi_precision: bool = False,
                 amsgrad: bool = False, name: str | None = None) -> None:
        if isinstance(weight_decay, WeightDecayRegularizer):
            raise TypeError("AdamW: weight_decay is the decoupled decay coefficient (a float), "
                            "not a regularizer")
        if lr_ratio is not None and not callable(lr_ratio):
            raise TypeError("AdamW: lr_ratio must be a callable (param -> float)")
        self._coeff = _float(weight_decay, "weight_decay")  # before the groups read it
        super().__init__(learning_rate, parameters, None, grad_clip, name)
        self._adam_init(beta1, beta2, epsilon, lazy_mode, multi_precision, amsgrad)
        self._lr_ratio = lr_ratio
        self._apply_decay_param_fun = apply_decay_param_fun

    def _add_param_group(self, group: dict[str, Any]) -> None:
        group.setdefault("weight_decay", self._coeff)
        super()._add_param_group(group)

    def _group_sets_regularizer(self) -> bool:
        return False  # a group's weight_decay is its decoupled coefficient

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        fun = self._apply_decay_param_fun
        self._adam_run(ops.AdamW, param, grad, beta1=self._beta1,
                       beta2=self._beta2, epsilon=self._epsilon, coeff=self._coeff,
                       with_decay=fun is None or bool(fun(param.name)),
                       lr_ratio=1.0 if self._lr_ratio is None else float(self._lr_ratio(param)))


class RMSProp(Optimizer):
    type = "rmsprop"
    GROUP_KEYS = {"rho": "_rho", "epsilon": "_epsilon", "momentum": "_momentum",
                  "centered": "_centered"}

    def __init__(self, learning_rate: LR, rho: float = 0.95, epsilon: float = 1e-06,
                 momentum: float = 0.0, centered: bool = False,
                 parameters: Iterable[Any] | None = None,
                 weight_decay: float | WeightDecayRegularizer | None = None,
                 grad_clip: Any = None, name: str | None = None) -> None:
        for what, v in (("rho", rho), ("epsilon", epsilon), ("momentum", momentum)):
            if v is None or v < 0:
                raise ValueError(f"{what} is not set or is negative.")
        super().__init__(learning_rate, parameters, weight_decay, grad_clip, name)
        self._rho, self._epsilon = float(rho), float(epsilon)
        self._momentum, self._centered = float(momentum), bool(centered)

    def _create_accumulators(self, parameters: list[Any]) -> None:
        for p in parameters:
            self._add_accumulator("momentum", p)
            self._add_accumulator("mean_square", p)
            self._add_accumulator("mean_grad", p)

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        acc = self._get_accumulator
        self._run(ops.Rmsprop, {"param": param, "mean_square": acc("mean_square", param),
                                "grad": grad, "moment": acc("momentum", param),
                                "learning_rate": self._param_lr(param),
                                "mean_grad": acc("mean_grad", param)},
                  epsilon=self._epsilon, decay=self._rho, momentum=self._momentum,
                  centered=self._centered)


class Adagrad(Optimizer):
    type = "adagrad"
    GROUP_KEYS = {"epsilon": "_epsilon",
                  "initial_accumulator_value": "initial_accumulator_value"}

    def __init__(self, learning_rate: LR, epsilon: float = 1e-06,
                 parameters: Iterable[Any] | None = None,
                 weight_decay: float | WeightDecayRegularizer | None = None,
                 grad_clip: Any = None, name: str | None = None,
                 initial_accumulator_value: float = 0.0) -> None:
        super().__init__(learning_rate, parameters, weight_decay, grad_clip, name)
        self._epsilon = float(epsilon)
        self.initial_accumulator_value = float(initial_accumulator_value)

    def _create_accumulators(self, parameters: list[Any]) -> None:
        for p in parameters:
            self._add_accumulator("moment", p, fill_value=self.initial_accumulator_value)

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        self._run(ops.Adagrad, {"param": param, "grad": grad,
                                "moment": self._get_accumulator("moment", param),
                                "learning_rate": self._param_lr(param)},
                  epsilon=self._epsilon)


class Lamb(_AdamBase):
    """Layer-wise adaptive Adam; lamb_weight_decay is 0 for parameters that
    exclude_from_weight_decay_fn(param) selects (which also skips the trust ratio unless
    always_adapt)."""

    type = "lamb"
    GROUP_KEYS = {**_AdamBase.GROUP_KEYS, "lamb_weight_decay": "_lamb_weight_decay",
                  "exclude_from_weight_decay_fn": "_exclude_fn"}

    def __init__(self, learning_rate: LR = 0.001, lamb_weight_decay: float = 0.01,
                 beta1: Any = 0.9, beta2: Any = 0.999, epsilon: Any = 1e-06,
                 parameters: Iterable[Any] | None = None, grad_clip: Any = None,
                 exclude_from_weight_decay_fn: Callable[[Any], bool] | None = None,
                 multi_precision: bool = False, always_adapt: bool = False,
                 name: str | None = None) -> None:
        super().__init__(learning_rate, parameters, None, grad_clip, name)
        self._adam_init(beta1, beta2, epsilon)
        self._lamb_weight_decay = float(lamb_weight_decay)
        self._exclude_fn = exclude_from_weight_decay_fn
        self._always_adapt = bool(always_adapt)

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        excluded = self._exclude_fn is not None and self._exclude_fn(param)
        self._run(ops.Lamb, self._adam_inputs(param, grad),
                  weight_decay=0.0 if excluded else self._lamb_weight_decay, beta1=self._beta1,
                  beta2=self._beta2, epsilon=self._epsilon, always_adapt=self._always_adapt)
