"""paddle.metric: Metric, Accuracy, accuracy."""
from tostatic.frontend.metric.accuracy import Accuracy, Metric, accuracy  # noqa: F401

__all__ = ["Accuracy", "Metric", "accuracy"]
