"""Static-mode training: `paddle.static.append_backward` and `Optimizer.minimize` in a Program.

append_backward differentiates the main program's `pd` function from the loss and appends
the backward as Paddle writes it (frontend/static/gradients.py): Paddle's `<type>_grad` ops
(ops/grad_ops.py, whose kernels are the forward ops' own VJP rules), `@GRAD` names, `sum`
accumulation and op_role; the Executor runs forward and backward as one program. Each
parameter's gradient is the variable `<param>@GRAD`.

minimize then appends, in the eager step's order (parameters by name within each group, as
Paddle's apply_gradients sorts them), the gradient clipping and weight decay (the same tensor
code, traced into the Program) and the optimizer's update op per parameter (ops/optimizer.py,
the very op the eager step runs): its accumulators and the `learning_rate_0` variable are
persistables of the main program that the startup program fills, and ParamOut / Moment1Out
... are written into their inputs' variables, so each Executor.run updates the scope.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, StringAttr
from xdsl.ir import SSAValue

from tostatic.frontend.nn.initializer import Constant
from tostatic.frontend.static import mode
from tostatic.frontend.static.gradients import ProgramBackward, set_legacy
from tostatic.frontend.static.initializers import append_initializer
from tostatic.frontend.static.program import Parameter, Program, Variable
from tostatic.ir import dtypes
from tostatic.dialects.program import to_attr
from tostatic.ir.attr_keys import LEGACY_ATTRS_ATTR, NAMES_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.location import user_location
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops.core import Persistable
from tostatic.ops.creation import Full
from tostatic.passes.base import PassError


# Paddle's OpRole: what a program's op is for (the Executor of real Paddle prunes by it)
BACKWARD, OPTIMIZE, LOSS = 1, 2, 256


def _mark_role(ops: Sequence[Any], role: int) -> None:
    for op in ops:
        legacy = dict(op.attributes[LEGACY_ATTRS_ATTR].data) if LEGACY_ATTRS_ATTR in \
            op.attributes else {}
        legacy["op_role"] = to_attr("INT", role)
        op.attributes[LEGACY_ATTRS_ATTR] = DictionaryAttr(legacy)


class ProgramEmitter:
    """A VJP rule's emitter that appends `pd` ops to a live Program's global block."""

    def __init__(self, program: Program):
        self.program = program

    def __call__(self, op_cls: type[PdOp], *inputs: SSAValue, **attrs: Any) -> Any:
        attrs = op_cls.normalize_attrs(attrs)
        results = op_cls.infer_results([Abstract.of_value(v) for v in inputs], attrs)
        op = op_cls.make(list(inputs), attrs, [r.tensor_type() for r in results])
        self.program._append(op)
        return op.results[0] if op_cls.NUM_RESULTS == 1 else list(op.results)

    def shape(self, v: SSAValue) -> tuple[int, ...]:
        return Abstract.of_value(v).shape

    def dtype(self, v: SSAValue) -> Any:
        return Abstract.of_value(v).dtype


def _name(p: Any) -> str:
    return p if isinstance(p, str) else p.name


def append_backward(loss: Variable, parameter_list: Sequence[Any] | None = None,
                    no_grad_set: Any = None, callbacks: Any = None,
                    checkpoints: Any = None) -> list[tuple[Parameter, Variable]]:
    """paddle.static.append_backward: the backward of `loss` (a one-element Variable) in its
    Program; returns (parameter, its `@GRAD` variable) for each trainable parameter (or each
    of `parameter_list`) the loss depends on."""
    mode._require_static("paddle.static.append_backward")
    if not isinstance(loss, Variable) or loss.block is None:
        raise TypeError(f"append_backward: loss must be a static Variable, got "
                        f"{type(loss).__name__}")
    if callbacks is not None or checkpoints is not None:
        raise UnsupportedError("append_backward: callbacks and checkpoints (recompute) are not "
                               "supported")
    program: Program = loss.block.program
    if len(program._frames) != 1:
        raise UnsupportedError(f"append_backward inside a cond / while_loop block (at "
                               f"{user_location()})")
    loss_value = program._value_of(loss, "append_backward")
    if int(np.prod(loss.shape)) != 1:
        raise ValueError(f"append_backward: the loss must hold one value, {loss.name} has "
                         f"shape {list(loss.shape)}")
    skip = {_name(v) for v in (no_grad_set or ())}
    wanted = None if parameter_list is None else [_name(p) for p in parameter_list]
    params = [p for p in program.all_parameters()
              if p.trainable and p.name not in skip and (wanted is None or p.name in wanted)]
    if wanted is not None:
        missing = set(wanted) - {p.name for p in params}
        if missing:
            raise ValueError(f"append_backward: {sorted(missing)} are not trainable "
                             f"parameters of the program")
    wrt = [program._value_of(p, "append_backward") for p in params]
    block = program._frames[0].block
    body = list(block.ops)
    emit = ProgramEmitter(program)
    _mark_role([loss_value.owner], LOSS)
    back = ProgramBackward(program, emit)
    shape = tuple(Abstract.of_value(loss_value).shape)
    seed = emit(Full, shape=shape, value=1.0, dtype=Abstract.of_value(loss_value).dtype)
    seed = back.name(seed, back.unique(f"{loss.name}@GRAD"))
    _mark_role([seed.owner], BACKWARD | LOSS)
    try:
        back.run(body, wrt, loss_value, seed)
    except PassError as e:
        raise UnsupportedError(f"append_backward (at {user_location()}): {e}") from None
    pairs = []
    role_vars: dict[Any, list[tuple[str, str, str]]] = {}  # op -> (its slot, param, grad)
    for p, v in zip(params, wrt):
        grad = back.total(v)
        if grad is None:
            continue  # the loss does not depend on it: Paddle leaves it out too
        name = back.named.get(grad)
        if name is None or not name.startswith(f"{p.name}@GRAD"):
            grad = back.name(grad, back.unique(f"{p.name}@GRAD"))
            name = back.named[grad]
        role_vars.setdefault(grad.owner, []).append((_slot_of(grad), p.name, name))
        pairs.append((p, program._new_var(name, grad, False, {"persistable": False})))
    for op, entries in role_vars.items():  # Paddle lists them by the op's output slots
        flat = [n for _, param, g in sorted(entries) for n in (param, g)]
        set_legacy(op, op_role_var=("STRINGS", flat))
    _mark_role(list(block.ops)[len(body) + 1:], BACKWARD)
    return pairs


def _slot_of(value: SSAValue) -> str:
    spec = getattr(value.owner, "PADDLE", None)
    slots = {idx: slot for slot, idx in spec.outputs.items()} if spec is not None else {}
    return slots.get(value.index, "")


# --- minimize: the optimizer's state as persistables of the program --------------------------

def _persistable(name: str, shape: Sequence[int], dtype: Any, value: float) -> Variable:
    """A non-parameter persistable of the main program, filled with `value` by the startup
    program (Paddle's optimizer accumulators and learning rate)."""
    main = mode.default_main_program()
    if name in main._vars:
        return main._vars[name]
    ty = Abstract(tuple(shape), dtypes.convert_dtype(dtype)).tensor_type()
    op = Persistable.make([], {"var_name": name, "trainable": False, "is_parameter": False},
                          [ty])
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(name)])
    main._append(op, root=True)
    var = Variable(name, op.results[0], main.global_block(), True, {"persistable": True})
    main._register(var, main._frames[0])
    startup = mode.default_startup_program()
    if name not in startup._vars:
        init = append_initializer(name, tuple(shape), dtype, Constant(value), ty)
        init.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(name)])
        startup._append(init, root=True)
        startup._register(Variable(name, init.results[0], startup.global_block(), True,
                                   {"persistable": True}), startup._frames[0])
    return var


class StaticState:
    """What an Optimizer's step reads and writes, as Program variables: accumulators,
    the learning rate, and its update ops appended through the static builder."""

    def __init__(self, optimizer: Any):
        self.optimizer = optimizer
        self.scaled: dict[float, Variable] = {}  # ratio -> learning_rate_0 * ratio

    def accumulator(self, name: str, param: Any, dtype: Any, fill_value: float,
                    shape: Any) -> Variable:
        var_name = f"{param.name}_{name}_0"
        return _persistable(var_name, param.shape if shape is None else shape,
                            dtype or param.dtype, fill_value)

    def learning_rate(self, param: Any) -> Variable:
        """`learning_rate_0` (an LRScheduler's is 0-d, as Paddle's, and the Executor sets it
        before each run); a parameter's own ratio (its group's learning_rate) scales it, as
        Paddle's `_create_param_lr` does, with one `scale` op per ratio."""
        sched = not isinstance(self.optimizer._learning_rate, (int, float))
        lr = _persistable("learning_rate_0", [] if sched else [1], "float32",
                          self.optimizer.get_lr())
        ratio = float((getattr(param, "optimize_attr", None) or {}).get("learning_rate", 1.0))
        if ratio == 1.0:
            return lr
        if ratio not in self.scaled:
            self.scaled[ratio] = lr * ratio
        return self.scaled[ratio]


def minimize(optimizer: Any, loss: Variable, parameters: Any = None,
             no_grad_set: Any = None) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """Optimizer.minimize in static mode: append_backward, then per parameter group (in
    Paddle's order: by parameter name) clipping, decay and the update ops. An LRScheduler
    becomes the program's `lr_scheduler`, whose value the Executor writes into
    `learning_rate_0` before each run, as Paddle's does."""
    params_grads = append_backward(loss, parameters, no_grad_set)
    program = loss.block.program
    if not isinstance(optimizer._learning_rate, (int, float)):
        program.lr_scheduler = optimizer._learning_rate
        program.lr_var_name = "learning_rate_0"
    grads = {p.name: g for p, g in params_grads}
    optimizer._static = StaticState(optimizer)
    block = program._frames[0].block
    first = len(list(block.ops))
    ops: list[Any] = []
    out: list[tuple[Any, Any]] = []
    try:  # the eager step's order: clip, weight decay, accumulators, updates
        for group in _static_groups(optimizer, params_grads):
            optimizer._enter_group(group)
            pairs = sorted(((p, grads[p.name]) for p in group["params"] if p.name in grads),
                           key=lambda pg: pg[0].name)
            if group.get("grad_clip") is not None:
                pairs = group["grad_clip"](pairs)
            pairs = [(p, optimizer._regularized(p, g)) for p, g in pairs]
            optimizer._create_accumulators([p for p, _ in pairs])
            for p, g in pairs:
                optimizer._append_optimize_op(p, g)
                set_legacy(block.last_op, op_role_var=("STRINGS", [p.name, grads[p.name].name]))
                ops.append(p)
            optimizer._finish_update([p for p, _ in pairs])
            out += pairs
    finally:
        optimizer._static = None
    _mark_role([op for op in list(block.ops)[first:] if not isinstance(op, Persistable)],
               OPTIMIZE)
    return ops, out


def _static_groups(optimizer: Any, params_grads: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """The optimizer's parameter groups over the program's parameters (matched by name); one
    group of every parameter when it was made without parameters."""
    groups = optimizer._param_groups
    if len(groups) > 1 or (groups and groups[0]["params"]):
        return groups
    return [{"params": [p for p, _ in params_grads], "grad_clip": optimizer._grad_clip}]
