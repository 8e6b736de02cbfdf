"""What every pass shares: its name, the state it may touch, and the registry of passes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from tostatic.ir.errors import ToStaticError


@dataclass
class CompileState:
    """What travels with a `pd` module besides its IR: captured tensors and extracted weights."""

    captures: list[Any] = field(default_factory=list)  # tracing.CaptureInfo, by capture index
    weights: dict[str, Any] = field(default_factory=dict)  # var name -> ndarray or live Tensor
    # persistable-extraction copies each weight (a to_static program keeps the values it was
    # traced with); jit.save, which writes them at once, passes False and saves the copies
    snapshot_weights: bool = True
    # the weight arrays belong to this compilation alone (a predictor's load: nothing else
    # reads the file's arrays), so a pass may overwrite one it replaces (fold-batch-norm)
    # instead of allocating its new value
    weights_owned: bool = False
    info: dict[str, dict[str, Any]] = field(default_factory=dict)  # .pdiparams.info entries
    # A static Program's own table of its variables (lowering.VarTable): the VarDesc fields
    # and creation order Paddle keeps for them, which the SSA IR does not carry
    variables: Any = None

    def weight_array(self, name: str) -> np.ndarray:
        w = self.weights[name]
        return w.numpy() if hasattr(w, "numpy") else w


class PassError(ToStaticError, ValueError):
    """A pass refuses an op; `op` is the offender, so the failure report can name its line."""

    def __init__(self, message: str, op: Operation | None = None):
        super().__init__(message)
        self.op = op


class CompilePass:
    """A named transformation of a `pd` module; its docstring says what it does.

    Not xDSL's ModulePass: ours take the CompileState (captures, weights) that
    persistable-extraction and lowering need, where ModulePass.apply gets an xDSL Context,
    and ModulePass is a frozen dataclass, so it cannot hold `current_op` for failure
    reports. What passes share with xDSL is below this class: ops, traits (Pure,
    RecursiveMemoryEffect from `pd_op`), the rewriter and the pattern walker."""

    name: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}
    # True for passes that replace one dialect by another (lower-to-program): a verifier
    # that runs only at the end also runs before them, on the last IR of the old dialect.
    changes_dialect: ClassVar[bool] = False

    def __init__(self, **options: Any):
        unknown = set(options) - set(self.options)
        if unknown:
            raise ValueError(f"pass {self.name!r} has no option(s) {sorted(unknown)}; "
                             f"it takes {sorted(self.options)}")
        self.values = {**self.options, **options}
        self.current_op: Operation | None = None  # the op being rewritten, for failure reports

    def apply(self, module: ModuleOp, state: CompileState) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define apply()")

    def ops(self, ops: Any) -> Iterator[Operation]:
        """Iterate over a snapshot of `ops`, remembering the current one for failure reports."""
        for op in list(ops):
            self.current_op = op
            yield op
        self.current_op = None

    def spec(self) -> str:
        """The pipeline text that recreates this pass with its options (`name{k=v}`)."""
        if not self.values:
            return self.name
        items = " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                         for k, v in self.values.items())
        return f"{self.name}{{{items}}}"


PASSES: dict[str, type[CompilePass]] = {}


def register(cls: type[CompilePass]) -> type[CompilePass]:
    PASSES[cls.name] = cls
    return cls


def entry(module: ModuleOp) -> func.FuncOp:
    """The traced function of a module (the first func.func)."""
    for op in module.body.block.ops:
        if isinstance(op, func.FuncOp):
            return op
    raise ValueError("module has no func.func")
