"""Shape arithmetic shared by the ops' `infer` rules; -1 is a dynamic dim."""
from __future__ import annotations

from typing import Any, Sequence

from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract


def broadcast(a: Sequence[int], b: Sequence[int], what: str = "broadcast") -> tuple[int, ...]:
    """numpy broadcasting where a dynamic dim (-1) stays dynamic unless the other side fixes it."""
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif x == -1 or y == -1:
            out.append(max(x, y) if min(x, y) == -1 and max(x, y) != -1 else -1)
        elif x == y:
            out.append(x)
        else:
            raise ShapeError(f"{what}: shapes {list(a)} and {list(b)} cannot be broadcast "
                             f"(dim {x} vs {y})")
    return tuple(out)


def normalize_axis(axis: int, ndim: int, what: str = "axis") -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ShapeError(f"{what} {axis} is out of range for a tensor of rank {ndim}")
    return axis % max(ndim, 1)


def numel(shape: Sequence[int]) -> int:
    """Number of elements, or -1 when a dim is dynamic."""
    n = 1
    for d in shape:
        if d < 0:
            return -1
        n *= d
    return n


def dim0_kept(op: Any) -> bool:
    """Whether an op keeps its first input's dim 0 (unsqueeze2's InferShape shares the LoD,
    and Paddle declares the output with legacy_lod_level, only then)."""
    x, out = Abstract.of_value(op.operands[0]), Abstract.of_value(op.results[0])
    return bool(x.shape) and bool(out.shape) and x.shape[0] == out.shape[0]


def axis0_unsliced(op: Any) -> bool:
    """slice's InferShape shares the LoD unless it slices axis 0."""
    ndim = len(op.operands[0].type.get_shape())
    return all(a % max(ndim, 1) != 0 for a in op.attr_values()["axes"])
