"""The builder protocol: whatever records ops while user code runs.

Public functions call `current()`: None means eager (numpy runs now); otherwise the builder
on top (a to_static Tracer, or static mode's program builder) records the op. Capture and
static mode share this protocol and Paddle's LayerHelper naming, so it lives below both.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, PdOp


class Builder:
    """Whatever records ops while user code runs (a Tracer, or static mode's ProgramBuilder):
    `dispatch.apply` calls `emit`; naming follows Paddle's LayerHelper."""

    def __init__(self, names: Any):
        self.names = names  # key -> unique name ("linear" -> "linear_0")
        self._helpers: list[str] = []
        self._exact: list[list[str]] = []  # names the next op's results take as they are

    def emit(self, op_cls: type[PdOp], inputs: Sequence[Any], attrs: dict[str, Any],
             name_hint: str | None = None) -> list[Any]:
        raise NotImplementedError

    def touch(self, tensor: Any) -> None:
        """A parameter was read; tracing declares it now, as Paddle does (variable order)."""

    def create_parameter(self, name: str, shape: Sequence[int], dtype: Any, initializer: Any,
                         trainable: bool = True) -> Any:
        """A Layer's parameter made while this builder records (static mode makes program
        parameters; a trace leaves Layers their eager parameters and never gets here)."""
        raise TypeError(f"{type(self).__name__} does not create parameters")

    def infer(self, op_cls: type[PdOp], abstracts: list[Abstract], attrs: dict[str, Any],
              name_hint: str | None, location: str | None) -> tuple[list[Abstract], list[str]]:
        """Result types from the op's rule, and Paddle's names for the results and any extra
        outputs (reshape2's XShape)."""
        results = self.infer_types(op_cls, abstracts, attrs, location)
        spec = op_cls.PADDLE
        n_extra = len(spec.extra_vars(abstracts)) if spec else 0
        return results, self._names_for(op_cls, name_hint, len(results) + n_extra)

    @staticmethod
    def infer_types(op_cls: type[PdOp], abstracts: list[Abstract], attrs: dict[str, Any],
                    location: str | None) -> list[Abstract]:
        """The op's shape rule at build time; a mismatch names the user's line."""
        try:
            return op_cls.infer_results(abstracts, attrs)
        except ShapeError as e:
            raise ShapeError(f"{e} (in {op_cls.name} at {location})") from None

    def _names_for(self, op_cls: type[PdOp], hint: str | None, count: int) -> list[str]:
        """Paddle's names: `tmp_N` for operators, `<helper>_K.tmp_J` for API calls."""
        if self._exact:
            given = self._exact.pop()
            return given[:count] + [self.names(given[0] + ".tmp")
                                    for _ in range(count - len(given))]
        if hint == "tmp":
            return [self.names("tmp") for _ in range(count)]
        prefix = self._helpers[-1] if self._helpers else self.names(hint or op_cls.NAME_HINT or "tmp")
        return [self.names(prefix + ".tmp") for _ in range(count)]

    @contextlib.contextmanager
    def name_next(self, *names: str) -> Iterator[None]:
        """The next op's results are called `names` (Paddle's names made outside any
        LayerHelper: `x[1:]` is `x_slice_0`; or out of result order: layer_norm's Y is
        `layer_norm_0.tmp_2`)."""
        self._exact.append(list(names))
        try:
            yield
        finally:
            self._exact.clear()

    @contextlib.contextmanager
    def helper(self, key: str, name: str | None = None) -> Iterator[str]:
        """Ops made inside share one Paddle LayerHelper name (F.linear: linear_0.tmp_0/1);
        a user-given `name` is taken as it is, as LayerHelper does."""
        self._helpers.append(name or self.names(key))
        try:
            yield self._helpers[-1]
        finally:
            self._helpers.pop()


_active: list[Builder] = []
_static: Callable[[], Builder] | None = None  # static mode's builder, while it is on


def current() -> Builder | None:
    """The builder recording ops now: an active trace, else static mode's, else None (eager)."""
    if _active:
        return _active[-1]
    return _static() if _static is not None else None


def set_static(builder: Callable[[], Builder] | None) -> None:
    """Turn static mode's builder on (a callable giving it) or off (None)."""
    global _static
    _static = builder


def static_enabled() -> bool:
    return _static is not None


def static_builder() -> Builder | None:
    """Static mode's builder, while static mode is on."""
    return _static() if _static is not None else None


@contextlib.contextmanager
def recording(builder: Builder) -> Iterator[Builder]:
    """`builder` records every op applied inside the block (nested traces stack)."""
    _active.append(builder)
    try:
        yield builder
    finally:
        _active.pop()


@contextlib.contextmanager
def helper(key: str) -> Iterator[None]:
    """Name the ops of one public API call as Paddle's LayerHelper would (no-op when eager)."""
    tracer = current()
    if tracer is None:
        yield
    else:
        with tracer.helper(key):
            yield

