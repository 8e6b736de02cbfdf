"""paddle.static.nn."""
from tostatic.frontend.static.control_flow import cond, switch_case, while_loop
from tostatic.frontend.static.nn import fc

__all__ = ["fc", "cond", "switch_case", "while_loop"]
