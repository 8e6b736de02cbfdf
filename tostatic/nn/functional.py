"""paddle.nn.functional."""
from tostatic.frontend.nn.functional import flatten, linear, relu, sigmoid, tanh
from tostatic.frontend.nn.functional_conv import conv2d, conv2d_transpose
from tostatic.frontend.nn.functional_dropout import dropout
from tostatic.frontend.nn.functional_norm import batch_norm, group_norm, instance_norm
from tostatic.frontend.nn.functional_pooling import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool2d,
)
from tostatic.frontend.nn.functional_nlp import (  # Transformers and NLP (issue 13)
    embedding,
    gelu,
    layer_norm,
    log_softmax,
    one_hot,
)

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "batch_norm", "conv2d",
           "conv2d_transpose", "dropout", "flatten", "group_norm", "instance_norm", "linear",
           "max_pool2d", "relu", "sigmoid", "tanh"]
__all__ += ["embedding", "gelu", "layer_norm", "log_softmax", "one_hot"]
