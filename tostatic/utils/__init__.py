"""paddle.utils (unique_name)."""
from tostatic.utils import unique_name  # noqa: F401
