"""paddle.nn.functional losses: cross_entropy, softmax_with_cross_entropy, nll_loss, mse_loss,
l1_loss, smooth_l1_loss, binary_cross_entropy(_with_logits), kl_div.

Paddle 3.3.1's signatures and its dygraph arithmetic, including its quirks: cross_entropy's
'mean' divides by the number of non-ignored labels only when ignore_index >= 0 (with the default
-100 it is the plain mean); weights divide the 'mean' by the summed weights. Built from public
tensor functions (one `pd.softmax_with_cross_entropy` op for cross entropy, as Paddle writes),
so the losses trace in to_static and differentiate with their ops' VJPs.
"""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn.functional_nlp import one_hot
from tostatic.frontend.tensor import math as T
from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.manipulation import gather, squeeze, unsqueeze
from tostatic.frontend.tensor.naming import helper
from tostatic.frontend.tensor.reduction import mean, sum as reduce_sum
from tostatic.frontend.tensor.search import where
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ops import loss as loss_ops

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
           "kl_div", "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss",
           "softmax_with_cross_entropy"]

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(fn: str, reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"The value of 'reduction' in {fn} should be "
                         f"{', '.join(repr(r) for r in allowed)}, but received {reduction!r}, "
                         f"which is not allowed.")


def _reduce(out: Any, reduction: str) -> Any:
    return mean(out) if reduction == "mean" else reduce_sum(out) if reduction == "sum" else out


def _safe_divide(total: Any, count: Any) -> Any:
    """total / count, dividing by 1 where count is 0 (Paddle: count + (count == 0))."""
    return T.divide(total, T.add(count, T.cast(T.equal(count, T.zeros_like(count)),
                                               count.dtype)))


def _is_int(x: Any) -> bool:
    return not x.dtype.is_floating


def softmax_with_cross_entropy(logits: Any, label: Any, soft_label: bool = False,
                               ignore_index: int = -100, numeric_stable_mode: bool = True,
                               return_softmax: bool = False, axis: int = -1) -> Any:
    """The op itself: the loss with a 1 on `axis` (and the softmax if asked)."""
    if not soft_label and len(label.shape) == len(logits.shape) - 1:
        label = unsqueeze(label, axis)
    with helper("softmax_with_cross_entropy", None):
        softmax, loss = apply(loss_ops.SoftmaxWithCrossEntropy, logits, label,
                              soft_label=soft_label, use_softmax=True,
                              numeric_stable_mode=numeric_stable_mode,
                              ignore_index=int(ignore_index), axis=int(axis))
    return (loss, softmax) if return_softmax else loss


def _class_vector(weight: Any, ndim: int, axis: int) -> Any:
    """A [C] weight shaped to broadcast along `axis` of an ndim tensor."""
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return T.reshape(weight, shape)


def cross_entropy(input: Any, label: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", soft_label: bool = False, axis: int = -1,
                  use_softmax: bool = True, label_smoothing: float = 0.0,
                  name: str | None = None) -> Any:
    _check_reduction("softmax_cross_entropy", reduction)
    if ignore_index > 0 and soft_label:
        raise ValueError(f"When soft_label == True, the value of 'ignore_index' in "
                         f"softmax_cross_entropy should be '-100', but received {ignore_index}, "
                         f"which is not allowed.")
    in_dims, label_dims = len(input.shape), len(label.shape)
    if in_dims == 0:
        raise ValueError("The dimension of input should be larger than zero!")
    if in_dims - 1 != label_dims and in_dims != label_dims:
        raise ValueError(f"Expected input_dims - 1 = label_dims or input_dims == label_dims "
                         f"(got input_dims{in_dims}, label_dims{label_dims})")
    squeeze_out = in_dims - 1 == label_dims
    if squeeze_out:
        label = unsqueeze(label, axis)
    if label_smoothing > 0.0:
        soft_label = True
        if _is_int(label):
            label = one_hot(squeeze(label, axis), input.shape[-1])
        classes = label.shape[-1]
        label = T.cast(T.scale(label, 1.0 - label_smoothing, label_smoothing / classes),
                       input.dtype)
    with helper("softmax_with_cross_entropy", None):
        _, out = apply(loss_ops.SoftmaxWithCrossEntropy, input, label, soft_label=soft_label,
                       use_softmax=use_softmax, numeric_stable_mode=True,
                       ignore_index=int(ignore_index), axis=int(axis))
    weights = None
    if weight is not None:
        if soft_label:
            weights = reduce_sum(T.multiply(T.cast(label, weight.dtype),
                                            _class_vector(weight, in_dims, axis)),
                                 axis=axis, keepdim=True)
        else:
            if input.shape[axis] != weight.shape[-1]:
                raise ValueError(f"input's class_dimension({input.shape[axis]}) must equal to "
                                 f"weight's class_dimension({weight.shape[-1]}) when weight "
                                 f"is provided")
            valid = T.not_equal(label, T.full_like(label, ignore_index))
            safe = T.multiply(label, T.cast(valid, label.dtype))
            picked = gather(weight, T.reshape(safe, [-1]))
            weights = T.multiply(T.reshape(picked, label.shape), T.cast(valid, weight.dtype))
        out = T.multiply(T.cast(out, weights.dtype), weights)
    if reduction == "sum":
        return reduce_sum(out)
    if reduction == "mean":
        if ignore_index >= 0 and not soft_label:
            valid = T.cast(T.not_equal(label, T.full_like(label, ignore_index)), out.dtype)
            count = reduce_sum(valid if weights is None else T.multiply(valid, weights))
            return _safe_divide(reduce_sum(out), count)
        if weights is not None:
            return _safe_divide(reduce_sum(out), reduce_sum(weights))
        return mean(out)
    return squeeze(out, axis) if squeeze_out else out


def nll_loss(input: Any, label: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean", name: str | None = None) -> Any:
    """-input[n, label[n], ...] (times weight[label]); input holds log-probabilities with the
    classes on axis 1. 'mean' divides by the summed weights of the non-ignored labels."""
    _check_reduction("nll_loss", reduction)
    in_dims, label_dims = len(input.shape), len(label.shape)
    if in_dims < 2:
        raise ValueError(f"Expected 2 or more dimensions (got {in_dims})")
    if in_dims - 1 != label_dims:
        raise ValueError(f"Expected input_dims - 1 = label_dims (got input_dims{in_dims}, "
                         f"label_dims{label_dims})")
    if label.dtype.is_floating:
        raise TypeError(f"nll_loss: label must hold class ids (int64 or int32), got "
                        f"{label.dtype.name}")
    valid = T.not_equal(label, T.full_like(label, ignore_index))
    safe = T.multiply(label, T.cast(valid, label.dtype))
    picked = squeeze(T.take_along_axis(input, unsqueeze(safe, 1), axis=1), 1)
    w = T.cast(valid, input.dtype)
    if weight is not None:
        w = T.multiply(T.reshape(gather(weight, T.reshape(safe, [-1])), label.shape), w)
    out = T.scale(T.multiply(picked, w), -1.0)
    if reduction == "mean":
        return T.divide(reduce_sum(out), reduce_sum(w))
    return _reduce(out, reduction)


def mse_loss(input: Any, label: Any, reduction: str = "mean", name: str | None = None) -> Any:  # noqa: A002
    _check_reduction("mse_loss", reduction)
    return _reduce(T.square(T.subtract(input, label)), reduction)


def l1_loss(input: Any, label: Any, reduction: str = "mean", name: str | None = None) -> Any:  # noqa: A002
    _check_reduction("L1Loss", reduction)
    return _reduce(T.abs(T.subtract(input, label)), reduction)


def smooth_l1_loss(input: Any, label: Any, reduction: str = "mean", delta: float = 1.0,  # noqa: A002
                   is_huber: bool = True, name: str | None = None) -> Any:
    """Huber: 0.5 r^2 where |r| <= delta, delta (|r| - delta / 2) beyond (divided by delta
    when is_huber is False)."""
    _check_reduction("smooth_l1_loss", reduction)
    r = T.abs(T.subtract(input, label))
    out = where(T.less_equal(r, T.full_like(r, delta)), T.scale(T.square(r), 0.5),
                T.scale(r, delta, -0.5 * delta * delta))
    if not is_huber:
        out = T.scale(out, 1.0 / delta)
    return _reduce(out, reduction)


def binary_cross_entropy(input: Any, label: Any, weight: Any = None, reduction: str = "mean",  # noqa: A002
                         name: str | None = None) -> Any:
    """-(label log p + (1 - label) log(1 - p)), each log clamped at -100 as Paddle's kernel."""
    _check_reduction("binary_cross_entropy", reduction)
    if isinstance(input, Tensor):  # eager: Paddle's kernel checks the values too
        values = input.numpy()
        if values.size and not ((values >= 0) & (values <= 1)).all():
            raise ValueError(f"binary_cross_entropy: input is expected to be within the "
                             f"interval [0, 1] (probabilities: apply sigmoid first, or use "
                             f"binary_cross_entropy_with_logits), but got values in "
                             f"[{values.min()}, {values.max()}]")
    log_p = T.maximum(T.log(input), T.full_like(input, -100.0))
    log_q = T.maximum(T.log(T.scale(input, -1.0, 1.0)), T.full_like(input, -100.0))
    out = T.scale(T.add(T.multiply(label, log_p),
                        T.multiply(T.scale(label, -1.0, 1.0), log_q)), -1.0)
    if weight is not None:
        out = T.multiply(out, weight)
    return _reduce(out, reduction)


def binary_cross_entropy_with_logits(logit: Any, label: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None,
                                     name: str | None = None) -> Any:
    """Stable form: (1 - z) x + w_pos (log(1 + exp(-|x|)) + max(-x, 0)), w_pos = 1 + (pos_weight
    - 1) z."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    softplus_neg = T.add(T.log(T.scale(T.exp(T.scale(T.abs(logit), -1.0)), 1.0, 1.0)),
                         T.relu(T.scale(logit, -1.0)))
    if pos_weight is not None:
        softplus_neg = T.multiply(T.scale(T.multiply(label, T.scale(pos_weight, 1.0, -1.0)),
                                          1.0, 1.0), softplus_neg)
    out = T.add(T.multiply(T.scale(label, -1.0, 1.0), logit), softplus_neg)
    if weight is not None:
        out = T.multiply(out, weight)
    return _reduce(out, reduction)


def kl_div(input: Any, label: Any, reduction: str = "mean", log_target: bool = False,  # noqa: A002
           name: str | None = None) -> Any:
    """label * (log label - input), 0 where label <= 0 (log_target: exp(label) (label - input));
    'batchmean' divides the sum by the batch size."""
    _check_reduction("kl_div", reduction, REDUCTIONS + ("batchmean",))
    if input.dtype != label.dtype:  # Paddle computes in float64 when either is
        input, label = T.cast(input, "float64"), T.cast(label, "float64")
    if log_target:
        out = T.multiply(T.exp(label), T.subtract(label, input))
    else:
        positive = T.greater_than(label, T.zeros_like(label))
        safe = where(positive, label, T.ones_like(label))
        out = where(positive, T.multiply(label, T.subtract(T.log(safe), input)),
                    T.zeros_like(label))
    if reduction == "batchmean":
        total = reduce_sum(out)
        return T.scale(total, 1.0 / input.shape[0]) if len(input.shape) > 0 else total
    return _reduce(out, reduction)
