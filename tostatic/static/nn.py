"""paddle.static.nn."""
from tostatic.frontend.static_nn import fc

__all__ = ["fc"]
