"""A while loop on a tensor condition: its pd.while.

The loop-carried state is every variable the body assigns that holds a tensor or a number on
entry (a number becomes a tensor, as Paddle's converter makes it); a variable first set in
the body is local to it (after the loop it is unset, and reading it says why); any other
Python value must come out of the body unchanged. The body is traced once on the entry
types; when a carried tensor's shape changes between iterations, it is traced again with
the dims that differ dynamic.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from tostatic.frontend.capture import regions
from tostatic.frontend.capture.convert_ast import log
from tostatic.frontend.capture.convert_ast.names import RET_VALUE
from tostatic.frontend.capture.convert_ast.runtime import (
    UndefinedVar,
    _check_context,
    at_line,
    _is_number,
    _number_dtype,
    _tracer,
    _truth,
    symbolic,
)
from tostatic.frontend.capture.tracing import Tracer
from tostatic.frontend.tensor import math as tensor_math
from tostatic.frontend.tensor.tensor import TensorMethods
from tostatic.frontend.tensor.variable import Variable
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import Abstract
from tostatic.ops.control_flow import join

_MAX_TRACES = 4


def _tensor(tracer: Tracer, x: Any, like: Any = None) -> Any:
    if isinstance(x, TensorMethods):
        return x
    if like is not None:
        return tensor_math.full([], x, like.dtype) if not like.shape else \
            tensor_math.full([d if d >= 0 else 1 for d in like.shape], x, like.dtype)
    return tensor_math.full([], x, _number_dtype(x))


def _abstract(tracer: Tracer, x: Any) -> Abstract:
    return Abstract.of_value(tracer.value_of(x))


def convert_while(cond_fn: Callable[[], Any], body_fn: Callable[[], Any],
                  get_args: Callable[[], tuple], set_args: Callable[[tuple], None],
                  names: Sequence[str], where: Sequence[tuple[str, int]] = (),
                  line: int | None = None) -> None:
    """`while cond_fn(): body_fn()`: Python's loop until the condition is a symbolic tensor,
    then a pd.while from there on."""
    c = cond_fn()
    while not symbolic(c):
        if not _truth(c):
            return
        body_fn()
        c = cond_fn()
    location = at_line(line)
    _check_context("while loop", where, location)
    tracer = _tracer()
    assert tracer is not None
    build_while(tracer, c, cond_fn, body_fn, get_args, set_args, names, location)


def build_while(tracer: Tracer, cond: Any, cond_fn: Callable[[], Any],
                body_fn: Callable[[], Any], get_args: Callable[[], tuple],
                set_args: Callable[[tuple], None], names: Sequence[str],
                location: str | None) -> None:
    init = list(get_args())
    entry = [regions.condition(tracer, cond, "while loop", location)]
    for attempt in range(_MAX_TRACES + 1):
        carried = [i for i, v in enumerate(init)
                   if isinstance(v, TensorMethods) or _is_number(v)]
        fixed = {i: v for i, v in enumerate(init)
                 if i not in carried and not isinstance(v, UndefinedVar)}
        entry_vars = [Variable("while_cond", entry[0])]
        entry_vars += [_tensor(tracer, init[i]) for i in carried]
        types = [_abstract(tracer, v) for v in entry_vars]
        frame, outs, nexts, new_types = _trace_body(
            tracer, types, init, carried, fixed, cond_fn, body_fn, get_args, set_args, names,
            location)
        returned = [i for i, v in enumerate(init) if isinstance(v, UndefinedVar)
                    and names[i].startswith(RET_VALUE) and isinstance(outs[i], TensorMethods)]
        if not returned:
            break
        for i in returned:  # a return inside the loop: its value is carried, zeros on entry
            like = outs[i]
            init[i] = tensor_math.full([d if d >= 0 else 1 for d in like.shape], 0, like.dtype)
    log.decision(2, f"while loop at {location}: tensor condition, building pd.while over "
                    f"{[names[i] for i in carried]}")
    for _ in range(_MAX_TRACES):
        if new_types == types:
            break
        types = new_types
        frame, outs, nexts, new_types = _trace_body(
            tracer, types, init, carried, fixed, cond_fn, body_fn, get_args, set_args, names,
            location)
    else:
        raise UnsupportedError(f"the while loop at {location}: its loop variables' shapes do "
                               f"not settle")
    stop = [all(getattr(x, "stop_gradient", True) for x in (a, b))
            for a, b in zip(entry_vars, nexts)]
    results = regions.finish_while(tracer, frame, entry_vars, nexts,
                                   [t.tensor_type() for t in types], location, stop)
    final = list(init)
    for j, i in enumerate(carried):
        final[i] = results[1 + j]
    for i, v in enumerate(init):
        if isinstance(v, UndefinedVar):
            final[i] = UndefinedVar(names[i], f"it is first assigned inside the while loop on "
                                              f"a tensor at {location}; assign it before "
                                              f"the loop to use it after")
    set_args(tuple(final))


def _trace_body(tracer: Tracer, types: list[Abstract], init: list[Any], carried: list[int],
                fixed: dict[int, Any], cond_fn: Callable[[], Any], body_fn: Callable[[], Any],
                get_args: Callable[[], tuple], set_args: Callable[[tuple], None],
                names: Sequence[str], location: str | None) -> tuple:
    """The body traced once on `types`: its region, the variables after it, the values it
    yields and their types joined with `types`."""
    frame = tracer.open_region([t.tensor_type() for t in types])
    try:
        args = [Variable(n, a) for n, a in
                zip(["while_cond", *(names[i] for i in carried)], frame.block.args)]
        values = list(init)
        for j, i in enumerate(carried):
            values[i] = args[1 + j]
        set_args(tuple(values))
        body_fn()
        next_cond = cond_fn()
        outs = list(get_args())
        for i, v in fixed.items():
            if outs[i] is not v and not _same(outs[i], v):
                raise UnsupportedError(
                    f"{names[i]!r} is a {type(v).__name__} that the while loop on a "
                    f"tensor at {location} changes: only tensors and numbers can be "
                    f"loop variables of a tensor-dependent loop")
        nexts = [Variable("while_cond", regions.condition(tracer, next_cond, "while loop",
                                                          location))
                 if not isinstance(next_cond, bool) else
                 _tensor(tracer, next_cond)]
        for j, i in enumerate(carried):
            out = outs[i]
            if isinstance(out, UndefinedVar) or not (isinstance(out, TensorMethods)
                                                     or _is_number(out)):
                raise UnsupportedError(
                    f"{names[i]!r} is a tensor before the while loop on a tensor at "
                    f"{location} and {out!r} after its body")
            nexts.append(_tensor(tracer, out, args[1 + j]))
        new_types = [join(t, _abstract(tracer, v), f"loop variable {n!r} of the while "
                          f"loop at {location}")
                     for t, v, n in zip(types, nexts,
                                        ["condition", *(names[i] for i in carried)])]
    finally:
        tracer.close_region()
    return frame, outs, nexts, new_types


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001
        return False
