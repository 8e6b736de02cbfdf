"""The eager Tensor, its operators and the public tensor functions (`paddle.add`, ...)."""
from tostatic.frontend.tensor import operators  # noqa: F401  (installs Tensor operators)
from tostatic.frontend.tensor import autograd  # noqa: F401  (installs Tensor.backward, ...)
