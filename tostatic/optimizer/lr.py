"""paddle.optimizer.lr: learning-rate schedulers."""
from tostatic.frontend.optim.lr import (  # noqa: F401
    CosineAnnealingDecay,
    ExponentialDecay,
    InverseTimeDecay,
    LambdaDecay,
    LinearLR,
    LinearWarmup,
    LRScheduler,
    MultiplicativeDecay,
    MultiStepDecay,
    NaturalExpDecay,
    NoamDecay,
    OneCycleLR,
    PiecewiseDecay,
    PolynomialDecay,
    ReduceOnPlateau,
    StepDecay,
)
from tostatic.frontend.optim.lr import __all__  # noqa: F401
