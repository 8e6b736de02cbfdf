"""paddle.nn: Layer and the common layers."""
from tostatic.frontend.nn.layer import Layer
from tostatic.frontend.nn.activation import (
    ELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    PReLU,
    ReLU6,
    Sigmoid,
    Silu,
    Softmax,
    Swish,
    Tanh,
)
from tostatic.frontend.nn.common import (
    Flatten,
    Identity,
    LayerDict,
    LayerList,
    Linear,
    ReLU,
    Sequential,
)
from tostatic.frontend.nn.conv import Conv2D, Conv2DTranspose
from tostatic.frontend.nn.dropout import Dropout
from tostatic.frontend.nn.norm import (
    BatchNorm,
    BatchNorm1D,
    BatchNorm2D,
    GroupNorm,
    InstanceNorm2D,
)
from tostatic.frontend.nn.padding import Pad1D, Pad2D, Pad3D
from tostatic.frontend.nn.param_attr import ParamAttr
from tostatic.frontend.nn.pooling import (
    AdaptiveAvgPool2D,
    AdaptiveMaxPool2D,
    AvgPool2D,
    MaxPool2D,
)
from tostatic.frontend.nn.upsampling import Upsample, UpsamplingBilinear2D, UpsamplingNearest2D
from tostatic.nn import functional, initializer

__all__ = ["AdaptiveAvgPool2D", "AdaptiveMaxPool2D", "AvgPool2D", "BatchNorm", "BatchNorm1D",
           "BatchNorm2D", "Conv2D", "Conv2DTranspose", "Dropout", "ELU", "Flatten",
           "GroupNorm", "Hardsigmoid", "Hardswish", "Identity", "InstanceNorm2D", "Layer",
           "LayerDict", "LayerList", "LeakyReLU", "Linear", "MaxPool2D", "PReLU", "Pad1D",
           "Pad2D", "Pad3D", "ParamAttr", "ReLU", "ReLU6", "Sequential", "Sigmoid", "Silu",
           "Softmax", "Swish", "Tanh", "Upsample", "UpsamplingBilinear2D",
           "UpsamplingNearest2D", "functional", "initializer"]
# recurrent layers (frontend/nn/rnn.py, rnn_cells.py)
from tostatic.frontend.nn.rnn import GRU, LSTM, RNNBase, SimpleRNN  # noqa: E402
from tostatic.frontend.nn.rnn_cells import (  # noqa: E402
    BiRNN, GRUCell, LSTMCell, RNN, RNNCellBase,
    SimpleRNNCell)
__all__ += ["BiRNN", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCellBase",
            "SimpleRNN", "SimpleRNNCell"]
