"""paddle.regularizer: L1Decay, L2Decay."""
from tostatic.frontend.optim.regularizer import L1Decay, L2Decay, WeightDecayRegularizer  # noqa: F401

__all__ = ["L1Decay", "L2Decay", "WeightDecayRegularizer"]
