"""paddle.linalg.norm / vector_norm (paddle/tensor/linalg.py, 3.3.1) for vector p-norms: what
Paddle writes as one p_norm op (p a number, inf or -inf, or 'fro' over every element; one axis
or all). Matrix norms (two axes: svd, frobenius_norm) and norms over several axes are not
supported and say so."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.manipulation import no_tensor
from tostatic.frontend.tensor.naming import helper
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import norms


def _one_axis(axis: Any, api: str) -> int | None:
    no_tensor(api, "axis", axis)
    if axis is None or isinstance(axis, int):
        return axis
    axis = list(axis)
    if len(axis) == 1:
        return int(axis[0])
    raise UnsupportedError(f"paddle.linalg.{api}: a norm over the axes {axis} (a matrix "
                           f"norm, or several axes) is not supported; give one axis or None")


def vector_norm(x: Any, p: float = 2.0, axis: Any = None, keepdim: bool = False,
                name: str | None = None) -> Any:
    """The p-norm of x along `axis`, or of all its elements (axis None)."""
    ax = _one_axis(axis, "vector_norm")
    if isinstance(p, str):
        raise ValueError(f"paddle.linalg.vector_norm: p must be a number, got {p!r}")
    with helper("p_norm", name):
        return apply(norms.PNorm, x, porder=float(p), axis=-1 if ax is None else ax,
                     epsilon=1e-12, keepdim=bool(keepdim), asvector=ax is None)


def norm(x: Any, p: Any = None, axis: Any = None, keepdim: bool = False,
         name: str | None = None) -> Any:
    """Vector norms: p a number (or inf / -inf) along one axis or over every element; p None
    or 'fro' over every element is the 2-norm, as Paddle computes it."""
    ax = _one_axis(axis, "norm")
    if p is None or p == "fro":
        if ax is not None and p == "fro":
            raise UnsupportedError("paddle.linalg.norm: p='fro' along one axis is not "
                                   "supported (Paddle asks for two axes)")
        p = 2.0
    elif isinstance(p, str):
        raise UnsupportedError(f"paddle.linalg.norm: p={p!r} (a matrix norm) is not "
                               f"supported; give a number, inf, -inf or 'fro'")
    return vector_norm(x, p, ax, keepdim, name)


__all__ = ["norm", "vector_norm"]
