"""paddle.nn: Layer and the common layers."""
from tostatic.frontend.nn.layer import Layer
from tostatic.frontend.nn.common import (
    Flatten,
    Identity,
    LayerDict,
    LayerList,
    Linear,
    ReLU,
    Sequential,
)
from tostatic.frontend.nn.param_attr import ParamAttr
from tostatic.nn import functional, initializer

__all__ = ["Flatten", "Identity", "Layer", "LayerDict", "LayerList", "Linear", "ParamAttr", "ReLU",
           "Sequential", "functional", "initializer"]
