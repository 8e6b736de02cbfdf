"""paddle.static (InputSpec now; static-graph mode comes with its own issue)."""
from tostatic.frontend.input_spec import InputSpec

__all__ = ["InputSpec"]
