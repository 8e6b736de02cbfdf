"""paddle.optimizer.Optimizer: the eager step, state and learning rate shared by every
optimizer.

`step()` does what Paddle's dygraph step does, in its order: take (param, grad) for each
trainable parameter with a gradient, clip (`grad_clip`), add weight decay (the parameter's
ParamAttr regularizer, else the optimizer's), create the accumulators the first time, then run
the optimizer's update op (tostatic/ops/optimizer.py) per parameter and write its results back
(ParamOut into the parameter, Moment1Out into the moment, ...). Accumulators are named as
Paddle names them (`<param>_<acc>_<n>`, e.g. `linear_0.w_0_moment1_0`), so `state_dict()` has
Paddle's keys and `.pdopt` files load both ways.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from tostatic.frontend.optim.lr import LRScheduler
from tostatic.frontend.static import backward as static_backward
from tostatic.frontend.optim.regularizer import L2Decay, WeightDecayRegularizer
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.grad_mode import no_grad
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ir import builder as builders
from tostatic.ir import names as unique_name
from tostatic.ir.opdef import PdOp

__all__ = ["Optimizer"]


def _as_array(value: Any) -> np.ndarray:
    return np.asarray(value.numpy() if isinstance(value, Tensor) else value)


class Optimizer:
    """Base class; subclasses set `type`, create accumulators and run their update op."""

    type = "optimizer"

    def __init__(self, learning_rate: float | LRScheduler = 0.001,
                 parameters: Iterable[Any] | None = None,
                 weight_decay: float | WeightDecayRegularizer | None = None,
                 grad_clip: Any = None, name: str | None = None) -> None:
        if parameters is None and not builders.static_enabled():
            raise AttributeError("parameters argument given to the Optimizer should not be None "
                                 "in dygraph mode.")
        if isinstance(parameters, Tensor):
            raise TypeError(f"`parameters` argument given to the optimizer should be an iterable "
                            f"of paddle Tensors, but got argument type is `{type(parameters)}`.")
        given = list(parameters) if parameters is not None else []
        if not isinstance(learning_rate, (int, float, LRScheduler)):
            raise TypeError(f"learning rate should be float or LRScheduler, got "
                            f"{type(learning_rate).__name__} here")
        if grad_clip is not None and not callable(grad_clip):
            raise TypeError("'grad_clip' should be an instance of ClipGradBase's derived class")
        if isinstance(weight_decay, (int, float)) and not isinstance(weight_decay, bool):
            weight_decay = L2Decay(float(weight_decay))
        self.regularization: WeightDecayRegularizer | None = weight_decay
        self._learning_rate = learning_rate
        self._grad_clip = grad_clip
        self._name = name
        self._group_defaults: dict[str, Any] | None = None
        self._param_groups: list[dict[str, Any]] = []
        if given and isinstance(given[0], dict):
            for group in given:
                self._add_param_group(dict(group))
        else:
            self._param_groups.append({"params": given, "grad_clip": grad_clip})
        self._parameter_list = [p for g in self._param_groups for p in g["params"]]
        self._accumulators: dict[str, dict[str, Tensor]] = {}
        self._accumulators_holder: dict[str, Any] = {}
        self._static: Any = None  # while minimize builds a static Program (static/backward.py)

    # --- learning rate -----------------------------------------------------------------

    def get_lr(self) -> float:
        lr = self._learning_rate
        return float(lr()) if isinstance(lr, LRScheduler) else float(lr)

    def set_lr(self, value: float) -> None:
        if not isinstance(value, (int, float)):
            raise TypeError(f"The type of 'value' in optimizer.set_lr must be float, but "
                            f"received {type(value)}.")
        if isinstance(self._learning_rate, LRScheduler):
            raise RuntimeError("optimizer's learning rate can't be LRScheduler when invoke this "
                               "API, because this will lead to conflict.")
        self._learning_rate = float(value)

    def set_lr_scheduler(self, scheduler: LRScheduler) -> None:
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"The type of 'scheduler' in optimizer.set_lr_scheduler must be "
                            f"LRScheduler, but received {type(scheduler)}.")
        self._learning_rate = scheduler

    def _param_lr(self, param: Any) -> Tensor:
        """The global rate as a float32 [1] tensor, times the ParamAttr's learning_rate."""
        if self._static is not None:
            return self._static.learning_rate(param)
        lr = np.array([self.get_lr()], np.float32)
        ratio = (getattr(param, "optimize_attr", None) or {}).get("learning_rate", 1.0)
        if ratio != 1.0:
            lr = lr * np.float32(ratio)
        return Tensor(lr)

    # --- accumulators and state --------------------------------------------------------

    def _add_accumulator(self, name: str, param: Any, dtype: Any = None,
                         fill_value: float = 0.0, shape: Any = None) -> Tensor:
        if self._name is not None:
            name = f"{self._name}_{name}"
        known = self._accumulators.setdefault(name, {})
        if param.name in known:
            return known[param.name]
        if self._static is not None:
            known[param.name] = self._static.accumulator(name, param, dtype, fill_value, shape)
            return known[param.name]
        var_name = unique_name.generate(f"{param.name}_{name}")
        array = np.full(param.shape if shape is None else shape, fill_value,
                        dtype=np.dtype(dtype) if dtype is not None else param.numpy().dtype)
        var = Tensor(array, name=var_name, persistable=True)
        if self._accumulators_holder:
            if var_name not in self._accumulators_holder:
                raise KeyError(f"Optimizer set error, {var_name} should in state dict")
            var.set_value(_as_array(self._accumulators_holder.pop(var_name)))
        known[param.name] = var
        return var

    def _get_accumulator(self, name: str, param: Any) -> Tensor:
        if self._name is not None:
            name = f"{self._name}_{name}"
        return self._accumulators[name][param.name]

    def _create_accumulators(self, parameters: list[Any]) -> None:
        """Subclasses add theirs, per parameter, in Paddle's order (that fixes the names)."""

    def state_dict(self) -> dict[str, Any]:
        if not self._accumulators and self._accumulators_holder:
            out = dict(self._accumulators_holder)
        else:
            out = {var.name: var for per_param in self._accumulators.values()
                   for var in per_param.values()}
        if isinstance(self._learning_rate, LRScheduler):
            out["LR_Scheduler"] = self._learning_rate.state_dict()
        return out

    def set_state_dict(self, state_dict: dict[str, Any]) -> None:
        if isinstance(self._learning_rate, LRScheduler):
            lr_state = state_dict.get("LR_Scheduler")
            if lr_state is None:
                raise KeyError("LR_Scheduler state must be included in the state dict")
            self._learning_rate.set_state_dict(lr_state)
        state = {k: v for k, v in state_dict.items()
                 if k not in ("LR_Scheduler", "master_weights", "StructuredToParameterName@@")}
        self._accumulators_holder = state
        for per_param in self._accumulators.values():
            for var in per_param.values():
                if var.name not in state:
                    raise KeyError(f"optimizer Tensor {var.name} not found")
                var.set_value(_as_array(state[var.name]))

    load_state_dict = set_state_dict

    # --- the step ----------------------------------------------------------------------

    # --- parameter groups --------------------------------------------------------------

    # group key -> attribute holding that hyperparameter (a group's value replaces the
    # constructor's while its parameters update, as Paddle's _update_param_group)
    GROUP_KEYS: dict[str, str] = {}

    def _add_param_group(self, group: dict[str, Any]) -> None:
        """As Paddle: the group's learning_rate (a multiplier) and weight_decay (the
        parameters' own regularizer) are written onto its parameters."""
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set) or params is None:
            raise TypeError("optimizer parameters should be in ordered collections, but "
                            f"received {type(params).__name__}, please use list instead.")
        group["params"] = list(params)
        group.setdefault("weight_decay", self.regularization)
        group.setdefault("grad_clip", self._grad_clip)
        seen = {id(p) for g in self._param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        decay = group["weight_decay"]
        for p in group["params"]:
            if self._group_sets_regularizer():
                p.regularizer = L2Decay(decay) if isinstance(decay, (int, float)) else decay
            attrs = getattr(p, "optimize_attr", None)
            p.optimize_attr = {**(attrs or {}), "learning_rate": group.get("learning_rate", 1.0)}
        self._param_groups.append(group)

    def _group_sets_regularizer(self) -> bool:
        return True

    def _enter_group(self, group: dict[str, Any]) -> None:
        if self._group_defaults is None:
            self._group_defaults = {k: getattr(self, a) for k, a in self.GROUP_KEYS.items()}
        for key, attr_name in self.GROUP_KEYS.items():
            setattr(self, attr_name, group.get(key, self._group_defaults[key]))

    def _trainable(self) -> list[Any]:
        return [p for p in self._parameter_list if not p.stop_gradient]

    def _regularized(self, param: Any, grad: Any) -> Any:
        reg = getattr(param, "regularizer", None) or self.regularization
        if reg is None:
            return grad
        return reg(param if self._static is not None else param.detach(), grad)

    @no_grad()
    def step(self) -> None:
        for group in self._param_groups:
            self._enter_group(group)
            params_grads = [(p, p.grad.detach()) for p in group["params"]
                            if not p.stop_gradient and p.grad is not None]
            if group["grad_clip"] is not None:
                params_grads = group["grad_clip"](params_grads)
            params_grads = [(p, self._regularized(p, g)) for p, g in params_grads]
            self._create_accumulators([p for p, _ in params_grads])
            for p, g in params_grads:
                self._append_optimize_op(p, g)
            self._finish_update([p for p, _ in params_grads])

    def _append_optimize_op(self, param: Any, grad: Any) -> None:
        raise NotImplementedError

    def _finish_update(self, parameters: list[Any]) -> None:
        """After all updates (Paddle's hook; no optimizer here needs it)."""

    def _run(self, op_cls: type[PdOp], inputs: dict[str, Any], **attrs: Any) -> None:
        """One update op on the current values (detached: no gradient history); each result
        is written into the tensor of the input it updates (op_cls.UPDATES)."""
        ordered = [inputs[n] for n in op_cls.INPUTS]
        if self._static is not None:  # appended to the Program; its results update in place
            builders.current().emit(op_cls, ordered, op_cls.normalize_attrs(attrs))
            return
        args = [x if isinstance(x, Tensor) and x.stop_gradient and x.grad is None
                else Tensor(x.numpy()) for x in ordered]
        outs = apply(op_cls, *args, **attrs)
        outs = outs if isinstance(outs, list) else [outs]
        for i, input_name in op_cls.UPDATES.items():
            target = inputs[input_name]
            target._data = outs[i].numpy().astype(target.numpy().dtype, copy=False)

    def clear_grad(self, set_to_zero: bool = True) -> None:
        for p in self._trainable():
            p.clear_gradient(set_to_zero)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.clear_grad(set_to_zero=not set_to_none)

    def minimize(self, loss: Any, startup_program: Any = None, parameters: Any = None,
                 no_grad_set: Any = None) -> tuple[None, list[tuple[Any, Any]]]:
        """Dygraph: backward from `loss`, then one step. Static mode: the backward and the
        update ops appended to the loss's Program (static/backward.py)."""
        if builders.static_enabled():
            return static_backward.minimize(self, loss, parameters or self._parameter_list or None,
                                           no_grad_set)
        loss.backward()
        pairs = [(p, p.grad) for p in self._trainable() if p.grad is not None]
        self.step()
        return None, pairs
