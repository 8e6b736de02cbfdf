"""paddle.nn.initializer."""
from tostatic.frontend.nn.initializer import *  # noqa: F401,F403
