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

from tostatic.frontend.nn.attention import MultiHeadAttention
from tostatic.frontend.nn.common_nlp import GELU, Embedding, LayerNorm
from tostatic.frontend.nn.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from tostatic.frontend.nn.rnn import GRU, LSTM, RNNBase, SimpleRNN
from tostatic.frontend.nn.rnn_cells import (
    RNN,
    BiRNN,
    GRUCell,
    LSTMCell,
    RNNCellBase,
    SimpleRNNCell,
)
from tostatic.frontend.optim.clip import (  # training (issue 14)
    ClipGradByGlobalNorm,
    ClipGradByNorm,
    ClipGradByValue,
)
from tostatic.frontend.nn.loss import (  # training (issue 14)
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from tostatic.nn import functional, initializer

__all__ = sorted(name for name in dir() if not name.startswith("_"))
