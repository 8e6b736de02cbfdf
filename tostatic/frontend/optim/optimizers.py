"""paddle.optimizer.SGD / Momentum / Adam / AdamW / RMSProp / Adagrad / Lamb.

Each names its accumulators as Paddle does (`velocity`, `moment1`, `beta1_pow_acc`, ...),
creates them in Paddle's order, and runs its step through its op in tostatic/ops/optimizer.py
with the attributes Paddle's dygraph optimizer gives that op.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from tostatic.frontend.optim.lr import LRScheduler
from tostatic.frontend.optim.optimizer import Optimizer
from tostatic.frontend.optim.regularizer import L2Decay, WeightDecayRegularizer
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
    """Adam's accumulators: moment1, moment2, then the [1] beta powers (starting at beta)."""

    GROUP_KEYS = {"beta1": "_beta1", "beta2": "_beta2", "epsilon": "_epsilon"}

    def _adam_init(self, beta1: Any, beta2: Any, epsilon: Any) -> None:
        self._beta1 = _float(beta1, "beta1")
        self._beta2 = _float(beta2, "beta2")
        self._epsilon = _float(epsilon, "epsilon")
        for what, v in (("beta1", self._beta1), ("beta2", self._beta2)):
            if not 0 <= v < 1:
                raise ValueError(f"Invalid value of {what}, expect {what} in [0,1).")
        if self._epsilon < 0:
            raise ValueError("Invalid value of epsilon, expect epsilon >= 0.")

    def _create_accumulators(self, parameters: list[Any]) -> None:
        for p in parameters:
            self._add_accumulator("moment1", p)
            self._add_accumulator("moment2", p)
            self._add_accumulator("beta1_pow_acc", p, fill_value=self._beta1, shape=[1])
            self._add_accumulator("beta2_pow_acc", p, fill_value=self._beta2, shape=[1])

    def _adam_inputs(self, param: Any, grad: Any) -> dict[str, Any]:
        acc = self._get_accumulator
        return {"param": param, "grad": grad, "learning_rate": self._param_lr(param),
                "moment1": acc("moment1", param), "moment2": acc("moment2", param),
                "beta1_pow": acc("beta1_pow_acc", param), "beta2_pow": acc("beta2_pow_acc", param)}


def _no_amsgrad(amsgrad: bool, lazy_mode: bool, cls: str) -> None:
    if amsgrad:
        raise NotImplementedError(f"{cls}(amsgrad=True) is not supported by tostatic")
    if lazy_mode:
        raise NotImplementedError(f"{cls}(lazy_mode=True) needs sparse gradients, which "
                                  f"tostatic does not have")


class Adam(_AdamBase):
    type = "adam"

    def __init__(self, learning_rate: LR = 0.001, beta1: Any = 0.9, beta2: Any = 0.999,
                 epsilon: Any = 1e-08, parameters: Iterable[Any] | None = None,
                 weight_decay: float | WeightDecayRegularizer | None = None,
                 grad_clip: Any = None, lazy_mode: bool = False, multi_precision: bool = False,
                 use_multi_tensor: bool = False, amsgrad: bool = False,
                 name: str | None = None) -> None:
        _no_amsgrad(amsgrad, lazy_mode, "Adam")
        super().__init__(learning_rate, parameters, weight_decay, grad_clip, name)
        self._adam_init(beta1, beta2, epsilon)

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        self._run(ops.Adam, self._adam_inputs(param, grad), beta1=self._beta1,
                  beta2=self._beta2, epsilon=self._epsilon)


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
        _no_amsgrad(amsgrad, lazy_mode, "AdamW")
        if isinstance(weight_decay, WeightDecayRegularizer):
            raise TypeError("AdamW: weight_decay is the decoupled decay coefficient (a float), "
                            "not a regularizer")
        if lr_ratio is not None and not callable(lr_ratio):
            raise TypeError("AdamW: lr_ratio must be a callable (param -> float)")
        self._coeff = _float(weight_decay, "weight_decay")  # before the groups read it
        super().__init__(learning_rate, parameters, None, grad_clip, name)
        self._adam_init(beta1, beta2, epsilon)
        self._lr_ratio = lr_ratio
        self._apply_decay_param_fun = apply_decay_param_fun

    def _add_param_group(self, group: dict[str, Any]) -> None:
        group.setdefault("weight_decay", self._coeff)
        super()._add_param_group(group)

    def _group_sets_regularizer(self) -> bool:
        return False  # a group's weight_decay is its decoupled coefficient

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        fun = self._apply_decay_param_fun
        self._run(ops.AdamW, self._adam_inputs(param, grad), beta1=self._beta1,
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
