"""A while loop on a tensor condition: its pd.while.

The loop-carried state is every variable the body assigns that holds a tensor or a number on
entry (a number becomes a tensor, as Paddle's converter makes it); a variable first set in
the body is local to it (after the loop it is unset, and reading it says why); any other
Python value must come out of the body unchanged. The body is traced once on the entry
types; when a carried tensor's shape changes between iterations, it is traced again with
the dims that differ dynamic.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

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


def _flat(v: Any) -> list[Any] | None:
    """The tensors and numbers a loop variable holds (itself, or a tuple / list of them),
    None when it is anything else."""
    if isinstance(v, TensorMethods) or _is_number(v):
        return [v]
    if isinstance(v, (list, tuple)) and v:
        out: list[Any] = []
        for x in v:
            f = _flat(x)
            if f is None:
                return None
            out += f
        return out
    return None


def _rebuild(template: Any, leaves: Iterator[Any]) -> Any:
    if isinstance(template, (list, tuple)):
        return type(template)(_rebuild(t, leaves) for t in template)
    return next(leaves)


class _State:
    """The loop-carried leaves: which variables, how many leaves each."""

    def __init__(self, init: list[Any], names: Sequence[str]):
        self.carried = [i for i, v in enumerate(init) if _flat(v) is not None]
        self.counts = {i: len(_flat(init[i]) or []) for i in self.carried}
        self.fixed = {i: v for i, v in enumerate(init)
                      if i not in self.counts and not isinstance(v, UndefinedVar)}
        self.names = ["condition"] + [names[i] if self.counts[i] == 1 else f"{names[i]}[{k}]"
                                      for i in self.carried for k in range(self.counts[i])]

    def slices(self, values: Sequence[Any]) -> Iterator[tuple[int, list[Any]]]:
        at = 1
        for i in self.carried:
            yield i, list(values[at:at + self.counts[i]])
            at += self.counts[i]


def build_while(tracer: Tracer, cond: Any, cond_fn: Callable[[], Any],
                body_fn: Callable[[], Any], get_args: Callable[[], tuple],
                set_args: Callable[[tuple], None], names: Sequence[str],
                location: str | None) -> None:
    init = list(get_args())
    entry = [regions.condition(tracer, cond, "while loop", location)]
    for _ in range(_MAX_TRACES + 1):
        state = _State(init, names)
        entry_vars = [Variable("while_cond", entry[0])]
        entry_vars += [_tensor(tracer, leaf) for i in state.carried for leaf in _flat(init[i])]
        types = [_abstract(tracer, v) for v in entry_vars]
        frame, outs, nexts, new_types = _trace_body(
            tracer, types, init, state, cond_fn, body_fn, get_args, set_args, names, location)
        returned = [i for i, v in enumerate(init) if isinstance(v, UndefinedVar)
                    and names[i].startswith(RET_VALUE) and _flat(outs[i]) is not None]
        if not returned:
            break
        for i in returned:  # a return inside the loop: its value is carried, zeros on entry
            init[i] = _rebuild(outs[i], iter([
                tensor_math.full([d if d >= 0 else 1 for d in x.shape], 0, x.dtype)
                if isinstance(x, TensorMethods) else x for x in _flat(outs[i]) or []]))
    log.decision(2, f"while loop at {location}: tensor condition, building pd.while over "
                    f"{state.names[1:]}")
    for _ in range(_MAX_TRACES):
        if new_types == types:
            break
        types = new_types
        frame, outs, nexts, new_types = _trace_body(
            tracer, types, init, state, cond_fn, body_fn, get_args, set_args, names, location)
    else:
        raise UnsupportedError(f"the while loop at {location}: its loop variables' shapes do "
                               f"not settle")
    stop = [all(getattr(x, "stop_gradient", True) for x in (a, b))
            for a, b in zip(entry_vars, nexts)]
    results = regions.finish_while(tracer, frame, entry_vars, nexts,
                                   [t.tensor_type() for t in types], location, stop)
    final = list(init)
    for i, leaves in state.slices(results):
        final[i] = _rebuild(init[i], iter(leaves))
    for i, v in enumerate(init):
        if isinstance(v, UndefinedVar):
            final[i] = UndefinedVar(names[i], f"it is first assigned inside the while loop on "
                                              f"a tensor at {location}; assign it before "
                                              f"the loop to use it after")
    set_args(tuple(final))


def _trace_body(tracer: Tracer, types: list[Abstract], init: list[Any], state: _State,
                cond_fn: Callable[[], Any], body_fn: Callable[[], Any],
                get_args: Callable[[], tuple], set_args: Callable[[tuple], None],
                names: Sequence[str], location: str | None) -> tuple:
    """The body traced once on `types`: its region, the variables after it, the values it
    yields and their types joined with `types`."""
    frame = tracer.open_region([t.tensor_type() for t in types])
    try:
        args = [Variable(n, a) for n, a in zip(state.names, frame.block.args)]
        values = list(init)
        for i, leaves in state.slices(args):
            values[i] = _rebuild(init[i], iter(leaves))
        set_args(tuple(values))
        body_fn()
        next_cond = cond_fn()
        outs = list(get_args())
        for i, v in state.fixed.items():
            if outs[i] is not v and not _same(outs[i], v):
                raise UnsupportedError(
                    f"{names[i]!r} is a {type(v).__name__} that the while loop on a "
                    f"tensor at {location} changes: only tensors and numbers (and tuples "
                    f"or lists of them) can be loop variables of a tensor-dependent loop")
        nexts = [Variable("while_cond", regions.condition(tracer, next_cond, "while loop",
                                                          location))
                 if not isinstance(next_cond, bool) else
                 _tensor(tracer, next_cond)]
        for i, leaves in state.slices(args):
            flat = _flat(outs[i])
            if flat is None or len(flat) != len(leaves):
                raise UnsupportedError(
                    f"{names[i]!r} is {_describe(init[i])} before the while loop on a tensor "
                    f"at {location} and {_describe(outs[i])} after its body")
            nexts += [_tensor(tracer, out, arg) for out, arg in zip(flat, leaves)]
        new_types = [join(t, _abstract(tracer, v), f"loop variable {n!r} of the while "
                          f"loop at {location}")
                     for t, v, n in zip(types, nexts, state.names)]
    finally:
        tracer.close_region()
    return frame, outs, nexts, new_types


def _describe(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return f"a {type(v).__name__} of {len(v)}"
    return "a tensor" if isinstance(v, TensorMethods) else repr(v)


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001
        return False
