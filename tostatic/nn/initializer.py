"""paddle.nn.initializer."""
from tostatic.frontend.initializer import *  # noqa: F401,F403
