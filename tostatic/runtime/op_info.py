"""What binding a plan reads of an op, without the op: its registered name, its attributes
and its number of results. A warm start (runtime/warm_start.py) binds from these, recorded
by an earlier bind, so that it imports no xDSL and no op class; the bind code (kernels.py,
views.py, bind_folding.py) dispatches on `op.name`, which a live `pd` op has too. The class
is imported only when a step needs it (its numpy kernel: `class_of`)."""
from __future__ import annotations

from typing import Any


class OpInfo:
    regions: tuple[Any, ...] = ()  # (an op with regions is never recorded)
    EFFECTS = False

    def __init__(self, name: str, attrs: dict[str, Any], num_results: int):
        self.name = name
        self._attrs = attrs
        self.results = (None,) * num_results

    def attr_values(self) -> dict[str, Any]:
        return self._attrs

    @property
    def cls(self) -> Any:
        from tostatic.runtime.lazy import few_collections

        with few_collections():
            import tostatic.ops  # noqa: F401  (registers every op)
            from tostatic.ir.opdef import REGISTRY
        return REGISTRY[self.name]

    def run_eager(self, arrays: list[Any]) -> list[Any]:
        return self.cls.run_eager(arrays, self._attrs)


def class_of(op: Any) -> Any:
    """The op's class: a live op's type, a recorded op's class (imported now); a class
    given as the op, itself."""
    if isinstance(op, OpInfo):
        return op.cls
    return op if isinstance(op, type) else type(op)
