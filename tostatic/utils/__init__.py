"""paddle.utils (unique_name); ProgressBar for training scripts."""
from tostatic.utils import unique_name  # noqa: F401
from tostatic.utils.progress import ProgressBar  # noqa: F401
