"""paddle.static.nn.cond and while_loop: pd.if and pd.while, built while the user's functions run.

cond(pred, t, f): each branch function runs in a block of its own (a region of the pd.if);
the outer variables it reads become operands of the pd.if and arguments of the region, and
what it returns is yielded. while_loop(cond, body, vars): `cond(*vars)` in the current block,
then body and cond of its results in the pd.while's region, whose loop-carried arguments the
loop variables hold there; after the loop they hold its results (Paddle writes the loop back
onto them). How Paddle writes these ops (conditional_block, select_input, while, the assigns)
is passes/lower_control_flow.py's business; here the names Paddle gives the variables it
creates around them are taken in Paddle's order (`pd.block_names`), so that every other name
of the program comes out as Paddle's.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, StringAttr
from xdsl.ir import Block as IRBlock
from xdsl.ir import SSAValue

from tostatic.frontend.capture.convert_ast.api import traced_cond, traced_while_loop
from tostatic.frontend.capture.tracing import Tracer
from tostatic.frontend.static.mode import ProgramBuilder, default_main_program
from tostatic.frontend.static.program import Frame, Program, Variable
from tostatic.frontend.tensor import math as tensor_math
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ir import dtypes
from tostatic.ir.attr_keys import BLOCK_NAMES_ATTR, LOC_ATTR, NAMES_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.opdef import Abstract
from tostatic.ops.control_flow import If, While, Yield, join
from tostatic.ops.logical import LogicalNot
from tostatic.ops.manipulation import Cast
from tostatic.ir import builder as builders
from tostatic.ir.location import user_location


def cond(pred: Any, true_fn: Callable[[], Any] | None = None,
         false_fn: Callable[[], Any] | None = None, name: str | None = None,
         return_names: Any = None) -> Any:
    """`true_fn()` if pred else `false_fn()`; in static mode both branches become sub-blocks."""
    for fn, what in ((true_fn, "true_fn"), (false_fn, "false_fn")):
        if fn is not None and not callable(fn):
            raise TypeError(f"The {what} in cond must be callable, but received "
                            f"{type(fn).__name__} (at {user_location()})")
    if isinstance(builders.current(), Tracer):  # inside to_static
        return traced_cond(pred, true_fn, false_fn)
    builder = _builder("paddle.static.nn.cond")
    if builder is None:  # eager: run the branch pred picks
        fn = true_fn if _truth(pred, "cond") else false_fn
        return None if fn is None else fn()
    _check_condition(pred, "paddle.static.nn.cond", "pred")
    program = default_main_program()
    location = user_location()
    pred_value = program._value_of(pred, "paddle.static.nn.cond")
    first_block = len(program.blocks)
    try:
        if name is None:
            builder.names("cond")  # Paddle's LayerHelper('cond') takes a name
        names: dict[str, Any] = {}
        sides: list[_Side | None] = [None, None]
        if true_fn is not None:
            sides[0] = _branch(builder, program, true_fn)
            names["then"] = sides[0].names
        if false_fn is not None:
            names["not"] = builder._names_for(LogicalNot, None, 1)[0]  # logical_not(pred)
            program._reserve(names["not"], pred.stop_gradient)
            sides[1] = _branch(builder, program, false_fn)
            names["else"] = sides[1].names
        true_out = sides[0].out if sides[0] else None
        false_out = sides[1].out if sides[1] else None
        if true_out is None and false_out is None:
            _append_if(program, pred_value, sides, names, location, [], [])
            return None
        if true_out is None or false_out is None:
            raise ValueError(f"Incompatible return values of true_fn and false_fn in cond: "
                             f"{'true_fn' if true_out is None else 'false_fn'} returns None "
                             f"while the other does not (at {location})")
        true_leaves, false_leaves = _matching_leaves(true_out, false_out)
        names["mask"] = program._reserve(builder._names_for(Cast, None, 1)[0],  # cast(pred)
                                         pred.stop_gradient)
        stop = [pred.stop_gradient and t.stop_gradient and f.stop_gradient
                for t, f in zip(true_leaves, false_leaves)]
        outs = []
        for _ in true_leaves:
            builder.names("select_input")
            outs.append(program._generated_name())
        results = _append_if(program, pred_value, sides, names, location, outs, stop)
        return _pack(false_out, results)
    except BaseException:
        program._abandon(first_block)
        raise


def while_loop(cond: Callable[..., Any], body: Callable[..., Any], loop_vars: Sequence[Any],
               is_test: bool = False, name: str | None = None) -> list[Any]:
    """Repeat `loop_vars = body(*loop_vars)` while `cond(*loop_vars)`; in static mode the body
    becomes the sub-block of a `while` op that writes the results back onto loop_vars."""
    if not callable(cond) or not callable(body):
        raise TypeError(f"cond and body in while_loop should be callable "
                        f"(at {user_location()})")
    if not isinstance(loop_vars, (list, tuple)) or len(loop_vars) == 0:
        raise ValueError(f"loop_vars in while_loop should be a non-empty list or tuple, got "
                         f"{loop_vars!r} (at {user_location()})")
    if isinstance(builders.current(), Tracer):  # inside to_static
        return traced_while_loop(cond, body, loop_vars)
    builder = _builder("paddle.static.nn.while_loop")
    if builder is None:  # eager: as Paddle, results are written back into the loop tensors
        values = list(loop_vars)
        while _truth(cond(*values), "while_loop"):
            values = _as_list(body(*values))
            _check_arity(values, loop_vars)
        for var, value in zip(loop_vars, values):
            if isinstance(var, Tensor) and isinstance(value, Tensor) and var is not value:
                var._data = value._data
        return [var if isinstance(var, Tensor) else value
                for var, value in zip(loop_vars, values)]
    for v in loop_vars:
        if not isinstance(v, Variable):
            raise UnsupportedError(f"while_loop: loop_vars must be static Variables, got "
                                   f"{type(v).__name__} (at {user_location()})")
    if len({id(v) for v in loop_vars}) != len(loop_vars):
        raise UnsupportedError(f"while_loop: a variable is given twice in loop_vars "
                               f"(at {user_location()})")
    location = user_location()
    program = default_main_program()
    pre_cond = cond(*loop_vars)
    _check_condition(pre_cond, "paddle.static.nn.while_loop", "the value cond returns",
                     strict=True)
    if any(pre_cond is v for v in loop_vars):
        raise UnsupportedError(f"while_loop: cond returns one of the loop variables itself; "
                               f"return a comparison instead (at {location})")
    if name is None:
        builder.names("while")  # While's LayerHelper
    carried = [pre_cond, *loop_vars]
    initial = [program._value_of(v, "paddle.static.nn.while_loop") for v in carried]
    first_block = len(program.blocks)
    frame = program._open_frame(v.type for v in initial)
    try:
        for var, arg in zip(carried, frame.block.args):
            frame.values[var] = arg
        outs = _as_list(body(*loop_vars))
        _check_arity(outs, loop_vars)
        for i, (out, var) in enumerate(zip(outs, loop_vars)):
            _check_same_type(out, var, f"while_loop: body's result {i}", f"loop_vars[{i}]")
        now_cond = cond(*outs)
        _check_condition(now_cond, "paddle.static.nn.while_loop", "the value cond returns",
                         strict=True)
        nexts = [now_cond, *outs]
        yields = [program._value_of(v, "paddle.static.nn.while_loop") for v in nexts]
        for out, var in zip(outs, loop_vars):  # paddle.assign(out, var) for each that moved
            if out is not var:
                builder.names("assign")
        builder.names("assign")  # ... and for the condition
        scope = program._generated_name(False)
    except BaseException:
        program._close_frame()
        program._abandon(first_block)
        raise
    program._close_frame()
    op = _make_while(frame, initial, yields, location, [v.name for v in carried],
                     {"scope": scope})
    program._append(op)
    for var, nxt, result in zip(carried, nexts, op.results):
        _write_back(program, var, nxt, result)
    return list(loop_vars)


# --- cond's parts ------------------------------------------------------------------------------

class _Side:
    """One branch of a cond: its block (a frame), what it returned, and the names Paddle
    gave the copies of its results in the parent block and its step scope."""

    def __init__(self, frame: Frame, out: Any, yields: list[SSAValue], names: list[str]):
        self.frame, self.out, self.yields, self.names = frame, out, yields, names


def _branch(builder: ProgramBuilder, program: Program, fn: Callable[[], Any]) -> _Side:
    """ConditionalBlock: fn's ops in a new sub-block; each result is copied (assigned) to a
    new variable of the parent block; then the block's step scope."""
    builder.names("conditional_block")  # ConditionalBlock's LayerHelper
    frame = program._open_frame()
    try:
        out = fn()
        leaves = [v for v in _flatten(_as_list(out))[0] if isinstance(v, Variable)]
        yields = [program._value_of(v, "paddle.static.nn.cond") for v in leaves]
        names = []
        for leaf in leaves:  # the copy in the parent block, then paddle.assign(leaf, copy)
            names.append(program._generated_name(leaf.stop_gradient))
            builder.names("assign")
        names.append(program._generated_name(False))  # the step scope
    finally:
        program._close_frame()
    return _Side(frame, out, yields, names)


def _append_if(program: Program, pred: SSAValue, sides: list["_Side | None"],
               names: dict[str, Any], location: str | None, outs: list[str],
               stop: list[bool]) -> list[Variable]:
    """The pd.if of a cond: both regions take every outer value either branch reads (a
    missing branch is an empty region); its results become variables `outs`."""
    captured: list[SSAValue] = []
    for side in sides:
        for v in (side.frame.captured if side else []):
            if v not in captured:
                captured.append(v)
    blocks = []
    for side in sides:
        if side is None:
            block = IRBlock(arg_types=[v.type for v in captured])
            block.add_op(Yield.make([], {}, []))
        else:
            block = side.frame.block
            yields = _take_args(block, side.frame, captured, side.yields)
            block.add_op(Yield.make(yields if outs else [], {}, []))
        blocks.append(block)
    op = If.new(pred, captured, blocks[0], blocks[1])
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in outs])
    op.attributes[BLOCK_NAMES_ATTR] = _names_attr(names)
    if location:
        op.attributes[LOC_ATTR] = StringAttr(location)
    program._append(op)
    return [program._new_var(n, r, s, {}) for n, r, s in zip(outs, op.results, stop)]


def _take_args(block: IRBlock, frame: Frame, captured: list[SSAValue],
               yields: list[SSAValue]) -> list[SSAValue]:
    """Make `block`'s arguments one per value of `captured`, in that order (what the branch
    read keeps its meaning; what only the other branch reads is an unused argument); returns
    `yields` with the arguments among them replaced."""
    old = list(block.args)
    new_of: dict[SSAValue, SSAValue] = {}
    for v in captured:
        arg = block.insert_arg(v.type, len(block.args))
        if v in frame.args:
            frame.args[v].replace_all_uses_with(arg)
            new_of[frame.args[v]] = arg
        frame.args[v] = arg
    for arg in old:
        block.erase_arg(arg)
    return [new_of.get(y, y) for y in yields]


def _matching_leaves(true_out: Any, false_out: Any) -> tuple[list[Variable], list[Variable]]:
    """The branches' results, flattened, once they are known to agree in structure, dtype and
    rank (Paddle checks only the structure; select_input of other dtypes fails at run time)."""
    true_leaves, true_shape = _flatten(_as_list(true_out))
    false_leaves, false_shape = _flatten(_as_list(false_out))
    if true_shape != false_shape:
        raise ValueError(f"Incompatible return values of true_fn and false_fn in cond: "
                         f"true_fn returns {_describe(true_out)}, false_fn returns "
                         f"{_describe(false_out)} (at {user_location()})")
    for i, (t, f) in enumerate(zip(true_leaves, false_leaves)):
        _check_same_type(t, f, f"cond: true_fn's result {i}", "false_fn's")
    return true_leaves, false_leaves


# --- while_loop's parts ------------------------------------------------------------------------

def _make_while(frame: Frame, initial: list[SSAValue], yields: list[SSAValue],
                location: str | None, names: list[str], block_names: dict[str, Any]) -> While:
    """The pd.while: loop-carried state `initial`, loop invariants what the body captured.
    The carried arguments get the loop's types (dims that change between iterations are
    dynamic), which the body's ops were built for on the first iteration's types."""
    block = frame.block
    k = len(initial)
    types = []
    for i, (v, y) in enumerate(zip(initial, yields)):
        types.append(join(Abstract.of_value(v), Abstract.of_value(y),
                          f"while_loop: loop variable {i}").tensor_type())
    for i, t in enumerate(types):
        arg = block.args[i]
        if arg.type != t:
            new = block.insert_arg(t, i)
            arg.replace_all_uses_with(new)
            yields = [new if y is arg else y for y in yields]
            block.erase_arg(arg)
    block.add_op(Yield.make(yields, {}, []))
    op = While.new(initial, frame.captured, block, types)
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in names])
    op.attributes[BLOCK_NAMES_ATTR] = _names_attr(block_names)
    if location:
        op.attributes[LOC_ATTR] = StringAttr(location)
    assert len(block.args) == k + len(frame.captured)
    return op


def _write_back(program: Program, var: Variable, nxt: Variable, result: SSAValue) -> None:
    """After the loop `var` holds its result. Paddle's assign(nxt, var) made it
    stop_gradient if nxt is, and gave it a LoD level."""
    program._bind(var, result)
    var.value = result
    if nxt is not var:
        if nxt.stop_gradient:
            var._stop_gradient = True
        if var._fields.get("lod_level") is None:
            var._fields["lod_level"] = 0


def _check_arity(outs: list[Any], loop_vars: Sequence[Any]) -> None:
    if len(outs) != len(loop_vars):
        raise ValueError(f"body in while_loop should return the same arity (length and "
                         f"structure) as loop_vars: it returns {len(outs)} values for "
                         f"{len(loop_vars)} loop_vars (at {user_location()})")


def _names_attr(names: dict[str, Any]) -> DictionaryAttr:
    return DictionaryAttr({k: StringAttr(v) if isinstance(v, str)
                           else ArrayAttr([StringAttr(n) for n in v]) for k, v in names.items()})


# --- shared ------------------------------------------------------------------------------------

def switch_case(branch_index: Any, branch_fns: Any, default: Callable[[], Any] | None = None,
                name: str | None = None) -> Any:
    """Run the function of `branch_fns` (a dict, or a list of (index, fn) pairs or of fns)
    keyed by `branch_index`, else `default` (else the one with the largest index), as
    Paddle's: a chain of conds on `branch_index == key`."""
    if isinstance(branch_fns, dict):
        pairs = sorted(branch_fns.items())
    else:
        pairs = [p if isinstance(p, (list, tuple)) else (i, p)
                 for i, p in enumerate(branch_fns)]
    for key, fn in pairs:
        if not isinstance(key, int) or not callable(fn):
            raise TypeError(f"switch_case: branch_fns must pair int indices with callables, "
                            f"got {key!r}: {fn!r} (at {user_location()})")
    if default is None:
        pairs, default = pairs[:-1], pairs[-1][1]
    fn: Callable[[], Any] = default
    for key, branch in reversed(pairs):
        def chained(key: int = key, branch: Callable[[], Any] = branch,
                    rest: Callable[[], Any] = fn) -> Any:
            return cond(tensor_math.equal(branch_index, tensor_math.full(
                list(branch_index.shape), key, branch_index.dtype)), branch, rest)
        fn = chained
    return fn()


def _builder(what: str) -> ProgramBuilder | None:
    """Static mode's builder, or None when eager; inside a to_static trace: not supported."""
    builder = builders.current()
    if builder is None or isinstance(builder, ProgramBuilder):
        return builder
    raise UnsupportedError(f"{what} inside a to_static function is not supported yet "
                           f"(at {user_location()})")


def _check_condition(c: Any, api: str, what: str, strict: bool = False) -> None:
    """A one-element bool Variable. cond accepts unknown (-1) dims, as Paddle does;
    while_loop (`strict`) wants every dim known to be 1."""
    if not isinstance(c, Variable) or c.dtype != dtypes.bool_:
        got = (f"{c.dtype.name} tensor" if isinstance(c, Variable) else type(c).__name__)
        raise TypeError(f"{api}: {what} must be a bool Tensor, got a {got} "
                        f"(at {user_location()})")
    if any(d != 1 and (strict or d >= 0) for d in c.shape):
        raise TypeError(f"{api}: {what} must hold one element (shape [] or [1]), got shape "
                        f"{list(c.shape)} (at {user_location()})")


def _check_same_type(a: Any, b: Any, what: str, other: str) -> None:
    """Both Variables of one dtype and rank (the run-time join of the two needs that)."""
    if not isinstance(a, Variable) or not isinstance(b, Variable):
        bad = a if not isinstance(a, Variable) else b
        raise UnsupportedError(f"{what}: only Tensors are supported, got "
                               f"{type(bad).__name__} (at {user_location()})")
    if a.dtype != b.dtype or len(a.shape) != len(b.shape):
        raise TypeError(f"{what} is {a.dtype.name} {list(a.shape)} but {other} is "
                        f"{b.dtype.name} {list(b.shape)}: dtype and rank must agree "
                        f"(at {user_location()})")


def _truth(pred: Any, api: str) -> bool:
    if not isinstance(pred, Tensor) or pred.size != 1:
        raise TypeError(f"{api}: the condition must be a one-element Tensor "
                        f"(at {user_location()})")
    return bool(pred.numpy().reshape(-1)[0])


def _as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _map(fn: Callable[[Any], Any], x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return type(x)(_map(fn, item) for item in x)
    return fn(x)


def _flatten(x: Any) -> tuple[list[Any], Any]:
    """(leaves, nesting); lists and tuples nest alike, as Paddle's check_types=False."""
    if isinstance(x, (list, tuple)):
        pairs = [_flatten(item) for item in x]
        return [leaf for p in pairs for leaf in p[0]], tuple(p[1] for p in pairs)
    if isinstance(x, dict):
        raise UnsupportedError(f"cond: dict results are not supported yet "
                               f"(at {user_location()})")
    return [x], None


def _pack(template: Any, leaves: list[Any]) -> Any:
    it = iter(leaves)

    def rebuild(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return type(x)(rebuild(item) for item in x)
        return next(it)
    return rebuild(template)


def _describe(x: Any) -> str:
    if isinstance(x, (list, tuple)):
        return f"{type(x).__name__} of {len(x)} (" + ", ".join(_describe(i) for i in x) + ")"
    return type(x).__name__
