"""paddle.optimizer: SGD, Momentum, Adam, AdamW, RMSProp, Adagrad, Lamb and `lr` schedules."""
from tostatic.frontend.optim.optimizer import Optimizer
from tostatic.frontend.optim.optimizers import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Lamb,
    Momentum,
    RMSProp,
)
from tostatic.optimizer import lr

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Lamb", "Momentum", "Optimizer", "RMSProp", "lr"]
