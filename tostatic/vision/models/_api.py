"""Stand-ins for public functions and layers the models need that tostatic's public API does
not offer yet (concat, split, squeeze, relu6, hardswish, hardsigmoid, swish and their layers:
being added to `tostatic` / `tostatic.nn` on the api-shape-act branch).

Each dispatches the op that already exists in `tostatic.ops` with the attributes Paddle's own
function writes, so eager runs, traces and exported programs are what the public function
will give. Private: once the public API has them, the models import those and this goes.
"""
from __future__ import annotations

from typing import Any, Sequence

from tostatic.frontend.nn.layer import Layer
from tostatic.frontend.tensor.dispatch import apply
from tostatic.nn import functional as F
from tostatic.ops import activation, joining, manipulation


def concat(xs: Sequence[Any], axis: int = 0) -> Any:
    """paddle.concat with a Python int axis."""
    return apply(joining.Concat, *xs, axis=int(axis))


def split(x: Any, num_or_sections: int | Sequence[int], axis: int = 0) -> list[Any]:
    """paddle.split: `num` equal pieces or the given section sizes along a Python int axis."""
    if isinstance(num_or_sections, int):
        return apply(joining.Split, x, num=num_or_sections, axis=int(axis))
    return apply(joining.Split, x, sections=tuple(int(s) for s in num_or_sections),
                 axis=int(axis))


def squeeze(x: Any, axis: int | Sequence[int]) -> Any:
    """paddle.squeeze of the given axes (Paddle writes squeeze2)."""
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return apply(manipulation.Squeeze, x, axes=axes)


def relu6(x: Any) -> Any:
    return apply(activation.Relu6, x)


def hardswish(x: Any) -> Any:
    return apply(activation.HardSwish, x)


def hardsigmoid(x: Any, slope: float = 0.1666667, offset: float = 0.5) -> Any:
    return apply(activation.HardSigmoid, x, slope=slope, offset=offset)


def swish(x: Any) -> Any:
    return apply(activation.Swish, x)


class _Activation(Layer):
    """A parameterless activation layer (`name` kept as Paddle's layers keep it)."""

    FN: Any = None

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self._name = name

    def forward(self, x: Any) -> Any:
        return type(self).FN(x)


class ReLU6(_Activation):
    FN = staticmethod(relu6)


class Hardswish(_Activation):
    FN = staticmethod(hardswish)


class Hardsigmoid(_Activation):
    FN = staticmethod(hardsigmoid)


class Swish(_Activation):
    FN = staticmethod(swish)


class Sigmoid(_Activation):
    FN = staticmethod(F.sigmoid)
