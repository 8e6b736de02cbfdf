"""paddle.vision: the model zoo (`tostatic.vision.models`)."""
from tostatic.vision import models

__all__ = ["models"]
