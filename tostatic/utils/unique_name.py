"""paddle.utils.unique_name: the counters behind `fc_0`, `tmp_3`, ... and `guard()`."""
from tostatic.ir.names import generate, guard  # noqa: F401
