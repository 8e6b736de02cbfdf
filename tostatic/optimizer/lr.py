"""paddle.optimizer.lr: learning-rate schedulers."""
from tostatic.frontend.optim.lr import (  # noqa: F401
    CosineAnnealingDecay,
    ExponentialDecay,
    LambdaDecay,
    LinearWarmup,
    LRScheduler,
    MultiStepDecay,
    OneCycleLR,
    ReduceOnPlateau,
    StepDecay,
)
from tostatic.frontend.optim.lr import __all__  # noqa: F401
