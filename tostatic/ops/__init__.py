"""The primitives: one small class an op, grouped by family. Importing this registers them all."""
from tostatic.ops import (  # noqa: F401
    activation,
    control_flow,
    core,
    creation,
    elementwise,
    linalg,
    logical,
    manipulation,
    padding,
    reduction,
    resize,
    sampling,
)
