"""apply(): the one door every public op goes through, eager or traced.

Eager: numpy in, numpy out, no IR objects; when grad is enabled and an input requires grad
(and the op is differentiable), the op is recorded on the tape (a `GradNode`) for backward.
Traced (any symbolic input, or a tracer active): the active Tracer inserts the op. This is the
only place that knows both worlds.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.frontend.tensor.grad_mode import ENABLED
from tostatic.frontend.tensor.grad_node import GradNode
from tostatic.frontend.tensor.tensor import Tensor

from tostatic.ir.errors import ShapeError
from tostatic.ir.location import user_location
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ir import builder as builders


def apply(op_cls: type[PdOp], *inputs: Any, name_hint: str | None = None,
          **attrs: Any) -> Any:
    """Run or trace one op; returns one tensor, or a list for multi-result ops."""
    attrs = op_cls.normalize_attrs(attrs)
    tracer = builders.current()
    if tracer is not None:
        outs = tracer.emit(op_cls, inputs, attrs, name_hint)
        return outs[0] if op_cls.NUM_RESULTS == 1 else outs
    try:
        arrays = [x._data for x in inputs]
    except AttributeError:
        bad = next(x for x in inputs if not isinstance(x, Tensor))
        raise TypeError(f"{op_cls.name}: expected Tensor inputs, got {type(bad).__name__}"
                        f" (a symbolic Variable used outside its trace?)") from None
    results = _run_eager(op_cls, arrays, attrs)
    if ENABLED[0] and not op_cls.NONDIFF:
        for x in inputs:
            if not x.stop_gradient:
                return _recorded(op_cls, inputs, attrs, results)
    if op_cls.NUM_RESULTS == 1:
        a = results[0]
        return Tensor(a if type(a) is np.ndarray else np.asarray(a))
    return [Tensor(a if type(a) is np.ndarray else np.asarray(a)) for a in results]


def _recorded(op_cls: type[PdOp], inputs: tuple[Any, ...], attrs: dict[str, Any],
              results: list[Any]) -> Any:
    """The results as tensors with a history: one GradNode on the tape (one result, the
    common case, without the loops: this is every eager op's cost while training)."""
    if op_cls.NUM_RESULTS == 1:
        a = results[0]
        t = Tensor(a if type(a) is np.ndarray else np.asarray(a), stop_gradient=False)
        t._grad_node = (GradNode(op_cls, list(inputs), attrs, [t]), 0)
        return t
    outs = [Tensor(a if type(a) is np.ndarray else np.asarray(a), stop_gradient=False)
            for a in results]
    node = GradNode(op_cls, list(inputs), attrs, outs)
    for i, t in enumerate(outs):
        t._grad_node = (node, i)
    return outs


def _run_eager(op_cls: type[PdOp], arrays: list[np.ndarray], attrs: dict[str, Any]) -> list[Any]:
    """The numpy kernel; when it fails, the op's shape rule explains why (kept off the fast path)."""
    try:
        return op_cls.run_eager(arrays, attrs)
    except Exception:
        try:
            op_cls.infer_results([Abstract.of_array(a) for a in arrays], attrs)
        except ShapeError as e:
            raise ShapeError(f"{e} (in {op_cls.name} at {user_location()})") from None
        raise
