"""paddle.inference, served by tostatic's native runtime."""
from tostatic.runtime.predictor import Config, Predictor, Tensor, create_predictor

__all__ = ["Config", "Predictor", "Tensor", "create_predictor"]
