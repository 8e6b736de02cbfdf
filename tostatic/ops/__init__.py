"""The primitives: one small class an op, grouped by family. Importing this registers them all."""
from tostatic.ops import (  # noqa: F401
    activation,
    control_flow,
    conv,
    core,
    creation,
    dropout,
    elementwise,
    linalg,
    logical,
    manipulation,
    normalization,
    padding,
    pooling,
    reduction,
    resize,
    sampling,
)
