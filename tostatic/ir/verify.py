"""The verifier: xDSL's structural checks plus each pd op's own shape rule.

Run between passes, it catches a pass that leaves a result type its `infer` rule disagrees
with, so the failure is reported at the pass that caused it and not three passes later.
"""
from __future__ import annotations

from xdsl.ir import Operation

from tostatic.ir.errors import ToStaticError
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ir.text import location_of


class VerifyError(ToStaticError, ValueError):
    """An op is malformed; `op` is the offender (its `pd.loc` names the user's line)."""

    def __init__(self, message: str, op: Operation):
        super().__init__(message)
        self.op = op


def check_types(op: PdOp) -> None:
    """Result types must agree with what the op's `infer` rule derives from its operands."""
    if op.regions or not hasattr(type(op), "infer"):
        return
    inferred = type(op).infer_results([Abstract.of_value(v) for v in op.operands],
                                      op.attr_values())
    if len(inferred) != len(op.results):
        raise ValueError(f"{op.name} has {len(op.results)} results, its rule gives "
                         f"{len(inferred)}")
    for i, (r, want) in enumerate(zip(op.results, inferred)):
        have = Abstract.of_value(r)
        if not have.compatible(want):
            raise ValueError(f"{op.name} result {i} is {list(have.shape)} {have.dtype.name}, "
                             f"but its operands give {list(want.shape)} {want.dtype.name}")


def verify(root: Operation) -> None:
    """Verify every op under `root`; the first bad one raises VerifyError naming it."""
    for op in root.walk():
        try:
            op.verify(verify_nested_ops=False)
            if isinstance(op, PdOp):
                check_types(op)
        except VerifyError:
            raise
        except Exception as e:  # xDSL's VerifyException, a rule's ShapeError, ...
            where = location_of(op)
            raise VerifyError(f"{op.name}{f' at {where}' if where else ''}: {e}", op) from e
