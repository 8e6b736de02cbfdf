"""paddle.static.nn."""
from tostatic.frontend.static.control_flow import cond, while_loop
from tostatic.frontend.static.nn import fc

__all__ = ["fc", "cond", "while_loop"]
