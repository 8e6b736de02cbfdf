"""What converted code calls (`_tsj.*`): each construct decides at run time. A condition that
is a Python value (or an eager tensor) runs as plain Python, so it is decided while capturing;
a symbolic tensor builds a pd.if / pd.while (capture/regions.py) from the branch and body
functions the transformers made.

Variables flow through `get_args` / `set_args`: a branch or body runs with the values on
entry, and its variables after it are merged: tensors become results of the op, numbers that
differ become tensors, a variable set on one side only stays unset (UndefinedVar, which names
the construct when read), other Python values must agree.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

from tostatic.frontend.capture import regions
from tostatic.frontend.capture.tracing import RegionFrame, Tracer
from tostatic.frontend.tensor import manipulation as tensor_manip
from tostatic.frontend.tensor import math as tensor_math
from tostatic.frontend.tensor.tensor import TensorMethods
from tostatic.frontend.tensor.variable import Variable
from tostatic.ir import builder as builders
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.location import user_location

from tostatic.frontend.capture.convert_ast import log
from tostatic.frontend.capture.convert_ast.names import RET_VALUE


class UndefinedVar:
    """A local not set (yet) on this path; reading it raises an error naming it and why."""

    def __init__(self, name: str, why: str | None = None):
        self._name, self._why = name, why

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        why = f": {self._why}" if self._why else ""
        raise UnboundLocalError(f"local variable {self._name!r} is read before it is "
                                f"assigned (at {user_location()}){why}")

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        self._fail()

    __call__ = __getitem__ = __iter__ = __len__ = __bool__ = __float__ = __int__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = __neg__ = __matmul__ = __pow__ = _fail

    def __repr__(self) -> str:
        return f"<undefined {self._name}>"


def return_value(v: Any) -> Any:
    return None if isinstance(v, UndefinedVar) else v


def _tracer() -> Tracer | None:
    b = builders.current()
    return b if isinstance(b, Tracer) else None


def symbolic(x: Any) -> bool:
    return isinstance(x, Variable) and x.block is None and _tracer() is not None


def _truth(x: Any) -> bool:
    return bool(x)


def _is_number(x: Any) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, UndefinedVar)


def _number_dtype(*xs: Any) -> dtypes.DType:
    if all(isinstance(x, bool) for x in xs):
        return dtypes.bool_
    if all(isinstance(x, int) for x in xs):
        return dtypes.int64
    return dtypes.float32


# --- the context a tensor-dependent construct is in -----------------------------------------

_with = threading.local()


class With:
    """Wraps a context manager of converted code: inside one that is not tostatic's own, a
    tensor-dependent if / while is refused (its __exit__ would not see the program's path)."""

    def __init__(self, manager: Any):
        self.manager = manager

    def __enter__(self) -> Any:
        stack = getattr(_with, "stack", None) or []
        stack.append(self.manager)
        _with.stack = stack
        return self.manager.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        _with.stack.pop()
        return self.manager.__exit__(*exc)


def _check_context(what: str, where: Sequence[tuple[str, int]], location: str | None) -> None:
    """A tensor-dependent construct inside try / a user's with: recorded (the trace goes on,
    so that every such problem of the function is reported together)."""
    managers = [m for m in getattr(_with, "stack", []) or []
                if not type(m).__module__.startswith("tostatic")]
    tracer = _tracer()
    assert tracer is not None
    for kind, line in where:
        if kind == "try":
            tracer.problems.append(
                f"{_article(what)} {what} on a tensor at {location} is inside the try statement "
                f"of line {line}: the program cannot catch exceptions; move the try out of the "
                f"converted function or the {what} out of the try")
        if kind == "with" and managers:
            tracer.problems.append(
                f"{_article(what)} {what} on a tensor at {location} is inside the with "
                f"statement of line {line} ({type(managers[-1]).__name__}): its __exit__ would "
                f"run once while capturing, not on the program's path; move the {what} out of "
                f"the with")


def at_line(line: int | None) -> str | None:
    """The user's file and the line of the statement being converted."""
    location = user_location()
    if line is None or location is None:
        return location
    return f"{location.rsplit(':', 1)[0]}:{line}"


def _article(what: str) -> str:
    return "an" if what[0] in "aeiou" else "a"


# --- if ----------------------------------------------------------------------------------------

class _Slot:
    def __init__(self, index: int):
        self.index = index


class _Merge:
    """The variables after both branches of a tensor-dependent if, as results of its pd.if."""

    def __init__(self, tracer: Tracer, frames: Sequence[RegionFrame], location: str | None,
                 what: str):
        self.tracer, self.frames, self.location, self.what = tracer, frames, location, what
        self.sides: tuple[list[Any], list[Any]] = ([], [])
        self.stop: list[bool] = []

    def _const(self, side: int, value: Any, like: Any) -> Any:
        if like is None:
            shape, dtype = [], _number_dtype(value)
        else:
            shape, dtype = [d if d >= 0 else 1 for d in like.shape], like.dtype
            if any(d < 0 for d in like.shape):
                shape = []
        with self.tracer.inside(self.frames[side]):
            return tensor_math.full(shape, value, dtype)

    def _slot(self, t: Any, f: Any) -> _Slot:
        self.sides[0].append(t)
        self.sides[1].append(f)
        self.stop.append(all(getattr(x, "stop_gradient", True) for x in (t, f)))
        return _Slot(len(self.stop) - 1)

    def leaf(self, name: str, t: Any, f: Any) -> Any:
        if t is f:
            return t
        t_undef, f_undef = isinstance(t, UndefinedVar), isinstance(f, UndefinedVar)
        if t_undef and f_undef:
            return t
        if t_undef or f_undef:
            other = f if t_undef else t
            if name.startswith(RET_VALUE) and isinstance(other, (TensorMethods, tuple, list)):
                return self._undefined_side(name, 0 if t_undef else 1, other)
            side = "false" if t_undef else "true"
            return UndefinedVar(name, f"it is assigned only in the {side} branch of the "
                                      f"{self.what} on a tensor at {self.location}; assign it "
                                      f"in both branches, or before the {self.what}")
        t_tensor, f_tensor = isinstance(t, TensorMethods), isinstance(f, TensorMethods)
        if not (t_tensor or f_tensor):
            if isinstance(t, (list, tuple)) and type(t) is type(f) and len(t) == len(f):
                return type(t)(self.leaf(f"{name}[{i}]", a, b) for i, (a, b) in
                               enumerate(zip(t, f)))
            if isinstance(t, dict) and isinstance(f, dict) and t.keys() == f.keys():
                return {k: self.leaf(f"{name}[{k!r}]", t[k], f[k]) for k in t}
            if _is_number(t) and _is_number(f):
                if type(t) is type(f) and t == f:
                    return t
                return self._slot(self._const(0, t, None), self._const(1, f, None))
            try:
                if type(t) is type(f) and bool(t == f):
                    return t
            except Exception:  # noqa: BLE001  (a comparison that is not a bool)
                pass
            raise UnsupportedError(
                f"{name!r} is {t!r} after the true branch and {f!r} after the false branch of "
                f"the {self.what} on a tensor at {self.location}: only tensors and numbers "
                f"can differ between the branches")
        if t_tensor and f_tensor:
            return self._slot(t, f)
        if _is_number(t) or _is_number(f):
            if t_tensor:
                return self._slot(t, self._const(1, f, t))
            return self._slot(self._const(0, t, f), f)
        raise UnsupportedError(
            f"{name!r} is a {type(t).__name__} after the true branch and a "
            f"{type(f).__name__} after the false branch of the {self.what} on a tensor at "
            f"{self.location}")

    def _undefined_side(self, name: str, side: int, other: Any) -> Any:
        if isinstance(other, (tuple, list)):
            return type(other)(self._undefined_side(name, side, o) for o in other)
        if not isinstance(other, TensorMethods):
            raise UnsupportedError(f"the function returns {other!r} on one path of the "
                                   f"{self.what} on a tensor at {self.location} and a tensor "
                                   f"(or nothing) on another")
        pair = [other, other]
        pair[side] = None
        return self._slot(pair[0], pair[1])

    def fill(self, merged: Any, results: Sequence[Any]) -> Any:
        if isinstance(merged, _Slot):
            return results[merged.index]
        if isinstance(merged, (list, tuple)):
            return type(merged)(self.fill(m, results) for m in merged)
        if isinstance(merged, dict):
            return {k: self.fill(v, results) for k, v in merged.items()}
        return merged


def convert_ifelse(pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any],
                   get_args: Callable[[], tuple], set_args: Callable[[tuple], None],
                   names: Sequence[str], where: Sequence[tuple[str, int]] = (),
                   what: str = "if", line: int | None = None) -> None:
    if not symbolic(pred):
        (true_fn if _truth(pred) else false_fn)()
        return
    tracer = _tracer()
    assert tracer is not None
    location = at_line(line)
    _check_context(what, where, location)
    cond = regions.condition(tracer, pred, what, location)
    log.decision(2, f"{what} at {location}: tensor condition, building pd.if")
    init = get_args()
    outs, frames = [], []
    for fn in (true_fn, false_fn):
        set_args(init)
        frame = tracer.open_region()
        try:
            fn()
            outs.append(get_args())
        finally:
            tracer.close_region()
        frames.append(frame)
    merge = _Merge(tracer, frames, location, what)
    merged = [merge.leaf(n, t, f) for n, t, f in zip(names, outs[0], outs[1])]
    results = regions.finish_if(tracer, cond, frames, merge.sides, location, merge.stop)
    set_args(tuple(merge.fill(m, results) for m in merged))


def IfExp(pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:  # noqa: N802
    if not symbolic(pred):
        return true_fn() if _truth(pred) else false_fn()
    box: list[Any] = [None]

    def run(fn: Callable[[], Any]) -> Callable[[], None]:
        def inner() -> None:
            box[0] = fn()
        return inner

    def set_args(values: tuple) -> None:
        box[0] = values[0]
    convert_ifelse(pred, run(true_fn), run(false_fn), lambda: (box[0],), set_args,
                   ("<conditional expression>",), what="conditional expression")
    return box[0]


# --- boolean operators, assert ---------------------------------------------------------------

def _as_bool(x: Any) -> Any:
    return x if x.dtype == dtypes.bool_ else tensor_math.cast(x, "bool")


def And(*fns: Callable[[], Any]) -> Any:  # noqa: N802
    """`a and b and ...`: Python's, until a value is a symbolic tensor: then logical_and of
    it and the rest (which is evaluated: both sides are traced)."""
    value = fns[0]()
    for i, fn in enumerate(fns[1:], 1):
        if symbolic(value):
            rest = And(*fns[i:])
            if symbolic(rest):
                return tensor_math.logical_and(_as_bool(value), _as_bool(rest))
            return _as_bool(value) if _truth(rest) else rest
        if not _truth(value):
            return value
        value = fn()
    return value


def Or(*fns: Callable[[], Any]) -> Any:  # noqa: N802
    value = fns[0]()
    for i, fn in enumerate(fns[1:], 1):
        if symbolic(value):
            rest = Or(*fns[i:])
            if symbolic(rest):
                return tensor_math.logical_or(_as_bool(value), _as_bool(rest))
            return rest if _truth(rest) else _as_bool(value)
        if _truth(value):
            return value
        value = fn()
    return value


def Eq(a: Any, b: Any) -> Any:  # noqa: N802
    """`a == b`: elementwise when a symbolic tensor is involved (a Variable alone compares by
    identity, since it is a dict key while tracing), Python's otherwise."""
    if symbolic(b) and not symbolic(a):
        a, b = b, a
    if symbolic(a) and (symbolic(b) or _is_number(b) or isinstance(b, TensorMethods)):
        return tensor_math.binary_operator("equal", a, b)
    return a == b


def NotEq(a: Any, b: Any) -> Any:  # noqa: N802
    if symbolic(b) and not symbolic(a):
        a, b = b, a
    if symbolic(a) and (symbolic(b) or _is_number(b) or isinstance(b, TensorMethods)):
        return tensor_math.binary_operator("not_equal", a, b)
    return a != b


def Not(x: Any) -> Any:  # noqa: N802
    if symbolic(x):
        return tensor_math.logical_not(_as_bool(x))
    return not x


def Assert(cond: Any, msg: Callable[[], Any] | None = None) -> None:  # noqa: N802
    """`assert` on a tensor: Paddle's assert op (the program checks it at run time)."""
    if not symbolic(cond):
        if isinstance(cond, UndefinedVar):
            cond._fail()
        assert cond, (msg() if msg is not None else None)
        return
    from tostatic.frontend.tensor.assertion import Assert as assert_op
    assert_op(cond, data=None)


# --- what a condition may do to a tensor ------------------------------------------------------

def cond_bool(x: Any) -> Any:
    return _as_bool(x) if symbolic(x) else bool(x)


def cond_int(x: Any) -> Any:
    return tensor_math.cast(x, "int64") if symbolic(x) else int(x)


def cond_float(x: Any) -> Any:
    return tensor_math.cast(x, "float32") if symbolic(x) else float(x)


def cond_numpy(x: Any) -> Any:
    return x if symbolic(x) else x.numpy()


def cond_item(x: Any) -> Any:
    return x if symbolic(x) else x.item()


# --- for loops -------------------------------------------------------------------------------

class Range:
    """`range(...)` in a for header: bounds may be tensors."""

    def __init__(self, start: Any, stop: Any = None, step: Any = 1):
        if stop is None:
            start, stop = 0, start
        self.start, self.stop, self.step = start, stop, step
        if not any(symbolic(v) for v in (start, stop, step)):
            self.py = range(int(start), int(stop), int(step))
        else:
            self.py = None


class Enumerate:
    """`enumerate(...)` in a for header: of a tensor, its rows with their (maybe symbolic)
    index."""

    def __init__(self, source: Any, start: int = 0):
        self.source, self.start = source, start


class ForIter:
    """What a converted for loop walks: a Range, a tensor's first dimension (symbolic when
    it is dynamic), or any other iterable (made a list: an unrolled loop)."""

    def __init__(self, source: Any):
        self.offset = None  # enumerate's start: items are (offset + i, row)
        if isinstance(source, Enumerate):
            if isinstance(source.source, TensorMethods):
                self.offset = source.start
                source = source.source
            else:
                source = enumerate(source.source, source.start)
        self.source = source
        if isinstance(source, Range):
            self.kind = "range" if source.py is None else "list"
            self.items = list(source.py) if source.py is not None else None
        elif isinstance(source, TensorMethods):
            n = source.shape[0] if len(source.shape) else None
            if n is None:
                raise TypeError(f"iteration over a 0-D tensor (at {user_location()})")
            self.kind = "tensor"
            self.length = n if (n >= 0 or not symbolic(source)) else \
                tensor_math.cast(tensor_manip.shape(source)[0], "int64")
        elif isinstance(source, UndefinedVar):
            source._fail()
        else:
            self.kind, self.items = "list", list(source)

    def cond(self, i: Any, brk: Any = False) -> Any:
        """Whether item i exists (and no break happened). With a Python length, a break on a
        tensor keeps the loop unrolled (the body runs under `if not brk`)."""
        if self.kind == "list":
            if symbolic(i):
                raise UnsupportedError(
                    f"a for loop over a Python sequence cannot continue after a break on a "
                    f"tensor condition became part of a tensor-dependent loop (at "
                    f"{user_location()}); iterate over a tensor or range() instead")
            has: Any = i < len(self.items)
        elif self.kind == "range":
            r = self.source
            has = r.start + i * r.step < r.stop
        else:
            has = i < self.length
        if not symbolic(has):
            return bool(has) and (symbolic(brk) or not brk)
        return And(lambda: has, lambda: Not(brk))

    def get(self, i: Any) -> Any:
        if self.kind == "list":
            return self.items[i]
        if self.kind == "range":
            r = self.source
            return r.start + i * r.step
        if not symbolic(i):
            row = self.source[i]
        else:
            index = tensor_math.reshape(tensor_math.cast(i, "int64"), [1])
            row = tensor_manip.squeeze(tensor_manip.gather(self.source, index, axis=0),
                                       axis=[0])
        return row if self.offset is None else (i + self.offset, row)


def convert_len(x: Any) -> Any:
    if isinstance(x, TensorMethods) and symbolic(x) and (not x.shape or x.shape[0] < 0):
        return tensor_math.cast(tensor_manip.shape(x)[0], "int64")
    return len(x)
