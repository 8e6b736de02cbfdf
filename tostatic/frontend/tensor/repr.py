"""Paddle-identical ``repr``/``str`` of dense tensors (mirrors paddle 3.3.1 on CPU).

The rules below reproduce ``paddle.tensor.to_string.tensor_to_string``
exactly, including its quirks:

* there is no automatic switch to scientific notation: non-integral floats
  always use ``precision`` fixed digits (1e-9 -> ``0.00000000``); integral
  floats print as ``'{:.0f}.'`` (so ``inf`` -> ``inf.``, ``nan`` -> ``nan``);
  ``sci_mode=True`` uses ``'{:.{p}e}'`` for every float;
* the cell width and the "signed" flag are computed from the *edge items
  only* (``edgeitems`` from each end of every axis), even when the tensor is
  small enough to be printed in full; cells wider than that width are emitted
  unpadded and without the sign column;
* cells are left-justified; the sign column is a single leading space given
  to non-negative cells only when they are narrower than the width
  (``-0.`` counts as non-negative);
* 1-D rows wrap after ``(linewidth - indent) // (width + 2)`` cells, where
  ``indent`` is ``len("Tensor") + 1`` plus the nesting depth; ``...`` counts
  as a cell;
* sub-tensors of an N-D tensor are separated by ``,`` plus N-1 newlines.
"""

from __future__ import annotations

import numpy as np

__all__ = ["format_tensor", "set_printoptions", "get_printoptions", "PrintOptions"]


class PrintOptions:
    precision = 8
    threshold = 1000
    edgeitems = 3
    linewidth = 80
    sci_mode = False


DEFAULT_PRINT_OPTIONS = PrintOptions()


def set_printoptions(
    precision: int | None = None,
    threshold: int | None = None,
    edgeitems: int | None = None,
    sci_mode: bool | None = None,
    linewidth: int | None = None,
) -> None:
    """Set the printing options for Tensor (same semantics as ``paddle.set_printoptions``)."""
    for name, value, typ in (
        ("precision", precision, int),
        ("threshold", threshold, int),
        ("edgeitems", edgeitems, int),
        ("linewidth", linewidth, int),
        ("sci_mode", sci_mode, bool),
    ):
        if value is None:
            continue
        if not isinstance(value, typ):
            raise TypeError(
                f"The type of '{name}' in set_printoptions must be {typ}, "
                f"but received {type(value)}."
            )
        setattr(DEFAULT_PRINT_OPTIONS, name, value)


def get_printoptions() -> dict:
    o = DEFAULT_PRINT_OPTIONS
    return dict(precision=o.precision, threshold=o.threshold, edgeitems=o.edgeitems,
                sci_mode=o.sci_mode, linewidth=o.linewidth)


def _item_str(x) -> str:
    """Unpadded text of one element (numpy scalar or 0-d array)."""
    p, sci = DEFAULT_PRINT_OPTIONS.precision, DEFAULT_PRINT_OPTIONS.sci_mode
    kind = x.dtype.kind
    if kind == "f":
        if sci:
            return f"{x:.{p}e}"
        return f"{x:.0f}." if np.ceil(x) == x else f"{x:.{p}f}"
    if kind == "c":
        f = "e" if sci else "f"
        re, im = np.real(x), np.imag(x)
        return f"({re:.{p}{f}}{'+' if im >= 0 else ''}{im:.{p}{f}}j)"
    return f"{x}"


def _cell(x, width: int, signed: bool) -> str:
    s = _item_str(x)
    if width <= len(s):
        return s
    if signed and not x < 0:
        return " " + s.ljust(width - 1)
    return s.ljust(width)


def _edges(a: np.ndarray) -> np.ndarray:
    """Keep only the first/last ``edgeitems`` along every axis (paddle's _to_summary)."""
    if a.size == 0:
        return np.array([])
    e = DEFAULT_PRINT_OPTIONS.edgeitems
    for ax in range(a.ndim):
        if a.shape[ax] > 2 * e:
            head = [slice(None)] * ax + [slice(None, e)]
            tail = [slice(None)] * ax + [slice(-e, None)]  # -0: keeps everything
            a = np.concatenate([a[tuple(head)], a[tuple(tail)]], axis=ax)
    return a


def _format(a: np.ndarray, summary: bool, indent: int, width: int, signed: bool) -> str:
    if a.ndim == 0:
        return _cell(a, width, signed)
    o = DEFAULT_PRINT_OPTIONS
    n, e = a.shape[0], o.edgeitems
    if summary and n > 2 * e:
        idx = [*range(e), None, *range(n - e, n)]
    else:
        idx = range(n)
    if a.ndim == 1:
        cells = ["..." if i is None else _cell(a[i], width, signed) for i in idx]
        per = max(1, (o.linewidth - indent) // (width + 2))
        lines = [", ".join(cells[i:i + per]) for i in range(0, len(cells), per)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    parts = [
        "..." if i is None else _format(a[i], summary, indent + 1, width, signed)
        for i in idx
    ]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def format_tensor(
    array: np.ndarray,
    dtype_name: str,
    stop_gradient: bool,
    place: str = "Place(cpu)",
    prefix: str = "Tensor",
) -> str:
    """Return exactly what paddle prints for a dense tensor holding ``array``."""
    a = np.asarray(array)
    indent = len(prefix) + 1
    summary = int(np.prod(a.shape, dtype=np.int64)) > DEFAULT_PRINT_OPTIONS.threshold
    flat = _edges(a).ravel()
    width = max((len(_item_str(x)) for x in flat), default=0)
    signed = any(x < 0 for x in flat)
    data = _format(a, summary, indent, width, signed)
    shape = [int(d) for d in a.shape]
    return (
        f"{prefix}(shape={shape}, dtype={dtype_name}, place={place}, "
        f"stop_gradient={stop_gradient},\n{' ' * indent}{data})"
    )
