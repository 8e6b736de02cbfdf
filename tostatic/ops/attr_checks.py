"""Helpers the op families share for attribute values: refusing unsupported ones by name, and
legacy attributes Paddle writes but its kernels never read."""
from __future__ import annotations

from typing import Any, Iterable

from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import FromInputs


def unsupported(op: str, attr: str, value: Any, supported: Iterable[Any] | str) -> UnsupportedError:
    """The error for an attribute value an op cannot run: names the op, the attribute, the
    value and what would work instead (raise it from `infer`, so capture and loading see it)."""
    if not isinstance(supported, str):
        supported = "one of " + ", ".join(repr(s) for s in supported)
    return UnsupportedError(f"{op}: {attr}={value!r} is not supported (expected {supported})")


def check_choice(op: str, attr: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise unsupported(op, attr, value, choices)


def written(attr_type: str, value: Any) -> FromInputs:
    """A legacy attribute written with Paddle's fixed value and not read back: Paddle 3.3.1's
    kernels ignore it (e.g. reduce_mean's in_dtype/out_dtype), so any value in a file is fine."""
    return FromInputs(attr_type, lambda *_: value)
