"""paddle.nn.functional."""
from tostatic.frontend.nn_functional import flatten, linear, relu, sigmoid, tanh

__all__ = ["flatten", "linear", "relu", "sigmoid", "tanh"]
