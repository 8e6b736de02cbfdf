"""What the commands share: exit codes, which errors are the user's, and small formatters."""
from __future__ import annotations

import argparse
import re
from typing import Sequence

from xdsl.utils.exceptions import ParseError

from tostatic.ir.errors import ToStaticError
from tostatic.serialization import FormatError

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3


class CliError(Exception):
    """An error the user can fix; the command prints its message and exits 1."""


# Errors that mean "the input (a file, an option value, the user's model) is wrong", printed
# as one message. Anything else is a bug in tostatic and keeps its traceback. ValueError is
# Python's "bad value" (an unknown pass, a bad dump option, a state dict that does not fit);
# FormatError and the loaders' errors are ValueErrors that name the file and byte offset.
USER_ERRORS = (CliError, ToStaticError, FormatError, ParseError, ValueError, OSError)


def user_error_message(e: BaseException) -> str | None:
    """The message for an error the user caused, or None for a bug."""
    if not isinstance(e, USER_ERRORS):
        return None
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    message = str(e) or type(e).__name__
    notes = getattr(e, "__notes__", None) or []
    return "\n".join([message, *notes])


# ------------------------------------------------------------------------------ option values

_SPEC = re.compile(r"^\s*(?:(?P<name>[A-Za-z_][\w.]*)\s*:)?\s*(?P<dtype>[a-z][a-z0-9_]*)?\s*"
                   r"\[(?P<dims>[^\]]*)\]\s*$")
SPEC_HELP = ('NAME:DTYPE[DIMS], e.g. "x:float32[?,3,224,224]" (? or -1: any size; DTYPE '
             'defaults to float32; NAME to the argument\'s name)')


def parse_dims(text: str, what: str) -> list[int | None]:
    dims: list[int | None] = []
    for d in filter(None, (t.strip() for t in text.split(","))):
        if d in ("?", "-1", "None", "none"):
            dims.append(None)
        elif d.isdigit():
            dims.append(int(d))
        else:
            raise argparse.ArgumentTypeError(f"{what}: dimension {d!r} is neither a size nor "
                                             f"'?' (any size)")
    return dims


def input_spec(text: str) -> tuple[str | None, str, list[int | None]]:
    """`--input-spec` -> (name, dtype, shape with None for any size); argparse type."""
    m = _SPEC.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad input spec {text!r}; expected {SPEC_HELP}")
    dims = parse_dims(m.group("dims"), f"input spec {text!r}")
    return m.group("name"), m.group("dtype") or "float32", dims


def name_value(text: str) -> tuple[str, str]:
    """`NAME=VALUE` (argparse type)."""
    name, eq, value = text.partition("=")
    if not eq or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


# ------------------------------------------------------------------------------ formatting

def fmt_shape(shape: Sequence[int] | None) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape is not None else "?"


def fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def table(rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Left-aligned columns."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in rows) + "\n"
