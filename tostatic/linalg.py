"""paddle.linalg: the vector norms tostatic implements."""
from tostatic.frontend.tensor.linalg import norm, vector_norm  # noqa: F401
from tostatic.frontend.tensor.math import matmul  # noqa: F401

__all__ = ["matmul", "norm", "vector_norm"]
