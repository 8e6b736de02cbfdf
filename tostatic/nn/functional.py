"""paddle.nn.functional."""
from tostatic.frontend.nn_functional import linear, relu, sigmoid, tanh

__all__ = ["linear", "relu", "sigmoid", "tanh"]
