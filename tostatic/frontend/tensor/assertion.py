"""paddle.static.nn.control_flow.Assert: check a condition when the program runs."""
from __future__ import annotations

from typing import Any, Sequence

from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.naming import helper
from tostatic.ops import assertion


def Assert(cond: Any, data: Sequence[Any] | None = None, summarize: int = 20,  # noqa: N802
           name: str | None = None) -> None:
    """Eagerly a check now; while capturing, Paddle's `assert` op in the program."""
    with helper("assert", name):
        apply(assertion.Assert, cond, *(data or []), summarize=int(summarize))
