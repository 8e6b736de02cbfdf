"""paddle.nn.functional."""
from tostatic.frontend.nn.functional import flatten, linear, relu, sigmoid, tanh

__all__ = ["flatten", "linear", "relu", "sigmoid", "tanh"]
