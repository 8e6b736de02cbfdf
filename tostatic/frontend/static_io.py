"""save_inference_model / load_inference_model: a static Program to and from Paddle's files.

Saving prunes the program to what the fetches need from the feeds, then writes it the way
Paddle 3.3.1 does (variables sorted by name, feed and fetch ops, training-only attributes
dropped) with the persistables' current values from the scope.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, i1

from tostatic.dialects.program import BlockOp, OpOp, VarOp
from tostatic.frontend import io
from tostatic.frontend.program import Program
from tostatic.ir.opdef import LEGACY
from tostatic.passes.lower_to_program import inference_program
from tostatic.runtime.executor import Scope, global_scope
from tostatic.serialization.pdiparams import load_combine, save_combine
from tostatic.serialization.program_desc import (
    load_program,
    parse_program_bytes,
    save_program,
    to_program_desc,
)

_EXTRA = ("op_callstack", "with_quant_attr")


def _names(xs: Any) -> list[str]:
    xs = xs if isinstance(xs, (list, tuple)) else [xs]
    return [x if isinstance(x, str) else x.name for x in xs]


def _prune(block: BlockOp, feeds: list[str], fetches: list[str]) -> list[OpOp]:
    """The ops the fetches depend on, stopping at the feeds (in program order)."""
    needed, kept = set(fetches), []
    for op in reversed([o for o in block.ops if o.op_type not in ("feed", "fetch")]):
        if any(n in needed for n in op.output_names):
            kept.append(op)
            needed.update(n for n in op.input_names if n not in feeds)
    missing = [n for n in fetches if n not in feeds and not any(n in o.output_names for o in kept)
               and not _var(block, n).persistable]
    if missing:
        raise ValueError(f"save_inference_model: no op computes fetch {missing[0]!r}")
    return list(reversed(kept))


def _var(block: BlockOp, name: str) -> VarOp:
    var = block.var(name)
    if var is None:
        raise ValueError(f"save_inference_model: {name!r} is not a variable of the program")
    return var


def _saved_var(var: VarOp) -> VarOp:
    """A variable as Paddle writes it to an inference model: its own fields, without the
    training-only ones."""
    copy = var.clone()
    for field in ("stop_gradient", "is_parameter"):
        copy.properties.pop(field, None)
    return copy


def _saved_op(op: OpOp) -> OpOp:
    """Ops whose definition has an extra-attr map lose op_callstack / with_quant_attr."""
    specs = LEGACY.get(op.op_type)
    copy = op.clone()
    if specs and not specs[0].PADDLE.keeps_extra_attrs:
        attrs = {k: v for k, v in op.attrs_attr.data.items() if k not in _EXTRA}
        copy.properties["attrs"] = DictionaryAttr(attrs)
    return copy


def save_inference_model(path_prefix: str, feed_vars: Any, fetch_vars: Any, executor: Any,
                         program: Program | None = None, scope: Scope | None = None,
                         **kwargs: Any) -> None:
    """Write path_prefix.pdmodel and .pdiparams (the persistables the pruned program reads)."""
    from tostatic.frontend.static_mode import default_main_program

    program = program or default_main_program()
    scope = scope or global_scope()
    feeds, fetches = _names(feed_vars), _names(fetch_vars)
    block = program.global_block().desc
    ops = _prune(block, feeds, fetches)
    used = set(feeds) | set(fetches) | {n for op in ops for n in op.input_names + op.output_names}
    variables = [_saved_var(_var(block, n)) for n in sorted(used)]
    desc = inference_program(variables, [_saved_op(op) for op in ops], feeds, fetches)
    weights = {}
    for v in variables:
        if v.persistable and v.var_type == "DENSE_TENSOR":
            value = scope.get(v.var_name)
            if value is None:
                raise ValueError(f"save_inference_model: persistable {v.var_name!r} has no "
                                 f"value; run the startup program first")
            weights[v.var_name] = value
    directory = os.path.dirname(path_prefix)
    if directory:
        os.makedirs(directory, exist_ok=True)
    save_program(path_prefix + ".pdmodel", desc)
    if weights:
        save_combine(path_prefix + ".pdiparams", weights)


def load_inference_model(path_prefix: str, executor: Any = None, scope: Scope | None = None,
                         **kwargs: Any) -> list[Any]:
    """[program, feed names, fetch Variables]; the parameters go into the scope."""
    scope = scope or global_scope()
    desc = load_program(path_prefix + ".pdmodel")
    program = Program.from_desc(desc)
    block = program.global_block()
    ops = block.desc.ops
    feeds = [o.output("Out")[0] for o in sorted((o for o in ops if o.op_type == "feed"),
                                                 key=lambda o: o.attr("col"))]
    fetches = [o.input("X")[0] for o in sorted((o for o in ops if o.op_type == "fetch"),
                                                key=lambda o: o.attr("col"))]
    persistables = sorted(v.var_name for v in block.desc.vars
                          if v.persistable and v.var_type == "DENSE_TENSOR")
    if persistables:
        params = load_combine(path_prefix + ".pdiparams", persistables)
        for name, value in params.items():
            scope.set(name, value)
    return [program, feeds, [block.var(n) for n in fetches]]


@io.save.register(Program)
def _save_program(program: Program, path: Any, protocol: int = 4, **configs: Any) -> None:
    """paddle.save(program, 'x.pdimodel'): the ProgramDesc bytes, parameters marked."""
    desc = program.desc.clone()
    for p in program.all_parameters():
        var = desc.blocks[p.block.idx].var(p.name)
        var.properties["is_parameter"] = IntegerAttr(1, i1)
    for block in desc.blocks:  # Paddle's BlockDesc keeps its vars sorted by name
        first_op = next(iter(block.ops), None)
        for var in sorted(block.vars, key=lambda v: v.var_name.encode()):
            var.detach()
            if first_op is None:
                block.body.block.add_op(var)
            else:
                block.body.block.insert_op_before(var, first_op)
    if hasattr(path, "write"):
        path.write(to_program_desc(desc).SerializeToString())
    else:
        save_program(os.fspath(path), desc)


def _load_program(path: Any, **configs: Any) -> Program:
    if hasattr(path, "read"):
        return Program.from_desc(parse_program_bytes(path.read(), "<in-memory buffer>"))
    return Program.from_desc(load_program(path))


# a ProgramDesc starts with its first block (field 1, length-delimited: 0x0a)
io.register_loader(lambda head: head[:1] == b"\n", _load_program)

__all__ = ["save_inference_model", "load_inference_model"]
