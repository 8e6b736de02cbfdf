"""paddle.static.nn.cond and while_loop, built as Paddle 3.3.1's legacy static graph builds them.

cond(pred, t, f): a sub-block runs t() and `assign`s each result onto a new `_generated_var`
of the parent block, and a `conditional_block` op runs it on pred; `logical_not(pred)` and a
second sub-block do the same for f(); then `cast(pred, int32)` and one
`select_input(X=[false value, true value], Mask)` per result.
while_loop(cond, body, vars): `cond(*vars)` in the parent block; a sub-block runs body(*vars),
cond of its results, and `assign`s the results back onto the loop variables and the new
condition onto the first one; a `while` op runs it.

Paddle gathers the Input / X / Out slots of those ops in Python sets; `_block_io` fills sets
in exactly Paddle's order, so for one PYTHONHASHSEED the slots list the names as Paddle's do
(Paddle's own order changes with the seed).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.static.program import Block, Variable
from tostatic.frontend.static.mode import ProgramBuilder, default_main_program
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.dialects.program_block_ops import CONDITIONAL_BLOCK, WHILE
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError
from tostatic.ops.control_flow import SelectInput
from tostatic.ops.logical import LogicalNot
from tostatic.ops.manipulation import Assign, Cast
from tostatic.passes.lowering import common_attrs
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
    builder = _builder("paddle.static.nn.cond")
    if builder is None:  # eager: run the branch pred picks
        fn = true_fn if _truth(pred, "cond") else false_fn
        return None if fn is None else fn()
    _check_condition(pred, "paddle.static.nn.cond", "pred")
    if name is None:
        builder.names("cond")  # Paddle's LayerHelper('cond') takes a name
    true_out = false_out = None
    if true_fn is not None:
        true_out = _branch(builder, pred, true_fn)
    if false_fn is not None:
        false_out = _branch(builder, apply(LogicalNot, pred), false_fn)
    if true_out is None and false_out is None:
        return None
    if true_out is None or false_out is None:
        raise ValueError(f"Incompatible return values of true_fn and false_fn in cond: "
                         f"{'true_fn' if true_out is None else 'false_fn'} returns None while "
                         f"the other does not (at {user_location()})")
    true_leaves, false_leaves = _matching_leaves(true_out, false_out)
    mask = apply(Cast, pred, dtype=dtypes.int32)
    merged = [_select_input(builder, mask, f, t) for f, t in zip(false_leaves, true_leaves)]
    return _pack(false_out, merged)


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
    pre_cond = cond(*loop_vars)
    _check_condition(pre_cond, "paddle.static.nn.while_loop", "the value cond returns",
                     strict=True)
    if name is None:
        builder.names("while")  # While's LayerHelper
    program = default_main_program()
    block = program._create_block()
    try:
        outs = _as_list(body(*loop_vars))
        _check_arity(outs, loop_vars)
        for i, (out, var) in enumerate(zip(outs, loop_vars)):
            _check_same_type(out, var, f"while_loop: body's result {i}", f"loop_vars[{i}]")
        now_cond = cond(*outs)
        _check_condition(now_cond, "paddle.static.nn.while_loop", "the value cond returns",
                         strict=True)
        for out, var in zip(outs, loop_vars):
            _assign(builder, out, var)
        _assign(builder, now_cond, pre_cond)
        _append_while(block, pre_cond, is_test)
    finally:
        program._rollback()
    return list(loop_vars)


# --- cond's parts ------------------------------------------------------------------------------

def _branch(builder: ProgramBuilder, condition: Variable, fn: Callable[[], Any]) -> Any:
    """ConditionalBlock: fn's ops in a new sub-block, its results copied to the parent block,
    then the `conditional_block` op in the parent."""
    builder.names("conditional_block")  # ConditionalBlock's LayerHelper
    program = default_main_program()
    block = program._create_block()
    try:
        out = _map(lambda v: _copy_to_parent(builder, v), fn())
        _append_conditional_block(block, condition)
    finally:
        program._rollback()
    return out


def _copy_to_parent(builder: ProgramBuilder, var: Any) -> Any:
    if not isinstance(var, Variable):
        return var
    parent = default_main_program().current_block().parent
    assert parent is not None
    out = parent.create_var(parent._generated_name(), var.shape, var.dtype, persistable=None)
    _assign(builder, var, out)
    return out


def _append_conditional_block(block: Block, condition: Variable) -> None:
    parent = block.parent
    assert parent is not None
    params, intermediate = _block_io(block, set(), set())
    inputs = [parent._var_recursive(n).name for n in params]
    outs = [v.name for v in (parent._find_var_recursive(n) for n in intermediate) if v is not None]
    scope = _step_scopes(parent)
    parent.append_op(CONDITIONAL_BLOCK.build(condition.name, inputs, outs, scope, block.idx,
                                             True, _sub_block_attrs()))


def _select_input(builder: ProgramBuilder, mask: Variable, false_var: Variable,
                  true_var: Variable) -> Variable:
    """One merged output: a `_generated_var` typed as Paddle's select_input declares it
    (the true value's dtype, dims that differ unknown)."""
    builder.names("select_input")
    block = default_main_program().current_block()
    shape = [a if a == b else -1 for a, b in zip(false_var.shape, true_var.shape)]
    out = block.create_var(block._generated_name(), shape, true_var.dtype, persistable=None)
    builder.write(SelectInput, [mask, false_var, true_var], {}, [out], infer_shape=False)
    return out


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

def _append_while(block: Block, condition: Variable, is_test: bool) -> None:
    """While._complete: X is every outer name the body reads or writes, Out every outer name
    it writes (the condition included)."""
    parent = block.parent
    assert parent is not None
    inner_outputs = {condition.name}
    x_name_list: set[str] = set()
    x_name_list, inner_outputs = _block_io(block, x_name_list, inner_outputs)
    out_vars = [v for v in (parent._find_var_recursive(n) for n in inner_outputs) if v is not None]
    x_name_list |= {x.name for x in out_vars}
    x_name_list -= {condition.name}
    scope = _step_scopes(parent)
    parent.append_op(WHILE.build(condition.name,
                                 [parent._var_recursive(n).name for n in x_name_list],
                                 [v.name for v in out_vars], scope, block.idx, bool(is_test),
                                 _sub_block_attrs()))


def _check_arity(outs: list[Any], loop_vars: Sequence[Any]) -> None:
    if len(outs) != len(loop_vars):
        raise ValueError(f"body in while_loop should return the same arity (length and "
                         f"structure) as loop_vars: it returns {len(outs)} values for "
                         f"{len(loop_vars)} loop_vars (at {user_location()})")


# --- shared ------------------------------------------------------------------------------------

def _builder(what: str) -> ProgramBuilder | None:
    """Static mode's builder, or None when eager; inside a to_static trace: not supported."""
    builder = builders.current()
    if builder is None or isinstance(builder, ProgramBuilder):
        return builder
    raise UnsupportedError(f"{what} inside a to_static function is not supported yet "
                           f"(at {user_location()})")


def _block_io(block: Block, inputs: set[str], outputs: set[str]) -> tuple[set[str], set[str]]:
    """Paddle's get_inputs_outputs_in_block: names read before any op of the block writes
    them, and names written. Same set operations in the same order as Paddle (slots in the
    C++ OpDesc's std::map order), which makes the iteration order Paddle's too."""
    for op in block.ops:
        for slot in sorted(op.input_names):
            for n in op.input(slot):
                if n not in outputs:
                    inputs.add(n)
        for slot in sorted(op.output_names):
            for n in op.output(slot):
                outputs.add(n)
    parent = block.parent
    assert parent is not None
    own_vars = block.vars
    arrays = set()  # tensor arrays created in the block are not inputs
    for n in inputs:
        own = own_vars.get(n)
        if (parent._find_var_recursive(n) is None and own is not None
                and own.type == "DENSE_TENSOR_ARRAY"):
            arrays.add(n)
    return inputs - arrays, outputs


def _step_scopes(block: Block) -> str:
    var = block.create_var(block._generated_name(), type="STEP_SCOPES", persistable=None)
    return var.name


def _sub_block_attrs() -> dict[str, tuple[str, Any]]:
    """What a live conditional_block / while carries besides its own attributes."""
    return {"skip_eager_deletion_vars": ("STRINGS", []),
            **common_attrs(True, user_location())}


def _assign(builder: ProgramBuilder, x: Variable, out: Variable) -> None:
    """paddle.assign(x, out): writes the existing `out` (nothing when x is out)."""
    if x.desc is out.desc:
        return
    builder.names("assign")  # its LayerHelper
    builder.write(Assign, [x], {}, [out])


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
