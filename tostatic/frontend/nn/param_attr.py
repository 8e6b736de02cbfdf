"""paddle.ParamAttr: how a Layer's parameter is named, initialised and trained."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn.initializer import Initializer
from tostatic.frontend.nn.initializer import XavierUniform
from tostatic.frontend.nn.initializer import Constant


class ParamAttr:
    """Paddle's ParamAttr (paddle/base/param_attr.py), minus the optimiser plumbing.

    `regularizer` is kept as given (any object); tostatic does not train with it.
    """

    def __init__(self, name: str | None = None, initializer: Initializer | None = None,
                 learning_rate: float = 1.0, regularizer: Any = None, trainable: bool = True,
                 do_model_average: bool = True, need_clip: bool = True) -> None:
        _check_type(name, "name", (str, type(None)))
        _check_type(learning_rate, "learning_rate", (float, int))
        _check_type(trainable, "trainable", bool)
        _check_type(do_model_average, "do_model_average", bool)
        _check_type(need_clip, "need_clip", bool)
        _check_type(initializer, "initializer", (Initializer, type(None)))
        self.name = name
        if self.name == "":
            raise ValueError("name of ParamAttr can not be empty str")
        self.initializer = initializer
        self.learning_rate = learning_rate
        self.regularizer = regularizer
        self.trainable = trainable
        self.do_model_average = do_model_average
        self.need_clip = need_clip

    def _set_default_initializer(self, initializer: Initializer | None) -> None:
        if initializer is None:
            if self.initializer is None:
                raise ValueError("ParamAttr.initializer is not set")
            return
        if self.initializer is not None:
            return
        self.initializer = initializer

    def _set_default_param_initializer(self) -> None:
        self._set_default_initializer(XavierUniform())

    def _set_default_bias_initializer(self) -> None:
        self._set_default_initializer(Constant(0.0))

    @staticmethod
    def _to_attr(arg: Any) -> "ParamAttr | list | bool":
        """None → default attr, str → name, Initializer → initializer,
        False → no parameter."""
        if arg is None:
            return ParamAttr()
        if isinstance(arg, (list, tuple)):
            return [ParamAttr._to_attr(a) for a in arg]
        if isinstance(arg, ParamAttr):
            return arg
        if isinstance(arg, str):
            return ParamAttr(name=arg)
        if isinstance(arg, Initializer):
            return ParamAttr(initializer=arg)
        if isinstance(arg, bool):
            return ParamAttr._to_attr(None) if arg else False
        if type(arg).__name__ in ("L1Decay", "L2Decay") or hasattr(arg, "_regularization_coeff"):
            return ParamAttr(regularizer=arg)
        raise TypeError(f"{type(arg)} cast to ParamAttr")

    def _to_kwargs(self, with_initializer: bool = False) -> dict[str, Any]:
        kwargs = {
            "name": self.name,
            "optimize_attr": {"learning_rate": self.learning_rate},
            "regularizer": self.regularizer,
            "trainable": self.trainable,
            "do_model_average": self.do_model_average,
            "need_clip": self.need_clip,
        }
        if with_initializer:
            kwargs["initializer"] = self.initializer
        return kwargs

    def __repr__(self) -> str:
        return (f"ParamAttr(name={self.name!r}, initializer={self.initializer!r}, "
                f"learning_rate={self.learning_rate}, trainable={self.trainable})")


def _check_type(value: Any, what: str, types: tuple | type) -> None:
    if not isinstance(value, types):
        names = [t.__name__ for t in (types if isinstance(types, tuple) else (types,))]
        raise TypeError(f"The type of '{what}' in ParamAttr must be {names}, but received "
                        f"{type(value)}. ")
