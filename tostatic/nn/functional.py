"""paddle.nn.functional."""
from tostatic.frontend.nn.functional import flatten, linear
from tostatic.frontend.nn.functional_activation import (
    elu,
    hardsigmoid,
    hardswish,
    leaky_relu,
    prelu,
    relu,
    relu6,
    sigmoid,
    silu,
    softmax,
    swish,
    tanh,
)
from tostatic.frontend.nn.functional_common import interpolate, pad, upsample
from tostatic.frontend.nn.functional_conv import conv2d, conv2d_transpose
from tostatic.frontend.nn.functional_dropout import dropout
from tostatic.frontend.nn.functional_norm import batch_norm, group_norm, instance_norm
from tostatic.frontend.nn.functional_pooling import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool2d,
)
from tostatic.frontend.nn.functional_vision import affine_grid, grid_sample

from tostatic.frontend.nn.functional_nlp import (  # Transformers and NLP (issue 13)
    embedding,
    gelu,
    layer_norm,
    log_softmax,
    one_hot,
)

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "affine_grid", "avg_pool2d",
           "batch_norm", "conv2d", "conv2d_transpose", "dropout", "elu", "flatten",
           "grid_sample", "group_norm", "hardsigmoid", "hardswish", "instance_norm",
           "interpolate", "leaky_relu", "linear", "max_pool2d", "pad", "prelu", "relu",
           "relu6", "sigmoid", "silu", "softmax", "swish", "tanh", "upsample"]
__all__ += ["embedding", "gelu", "layer_norm", "log_softmax", "one_hot"]

from tostatic.frontend.nn.functional_loss import (  # losses (training, issue 14)
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
    softmax_with_cross_entropy,
)

__all__ += ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
            "kl_div", "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss",
            "softmax_with_cross_entropy"]
