"""paddle.tensor: the tensor functions by their module path (what dygraph-to-static code
spells `paddle.tensor.fill_constant`)."""
from tostatic.frontend.tensor.accumulate import (  # noqa: F401
    add_n,
    assign,
    fill_constant,
    full,
    increment,
    to_tensor,
)
from tostatic.frontend.tensor.manipulation import shape  # noqa: F401

__all__ = ["add_n", "assign", "fill_constant", "full", "increment", "shape", "to_tensor"]
