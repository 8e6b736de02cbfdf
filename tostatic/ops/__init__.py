"""The primitives: one small class an op, grouped by family. Importing this registers them all."""
from tostatic.ops import (  # noqa: F401
    activation,
    core,
    creation,
    elementwise,
    linalg,
    manipulation,
    reduction,
)
