"""save_inference_model / load_inference_model: a static Program to and from Paddle's files.

Saving prunes the program to what the fetches need from the feeds (sub-blocks of the ops kept
included, pruned and renumbered as Paddle's Prune does), then writes it the way Paddle 3.3.1
does (variables sorted by name, feed and fetch ops, training-only attributes dropped) with the
persistables' current values from the scope.
"""
from __future__ import annotations

import os
from typing import Any

from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, i1

from tostatic.dialects.program import BlockOp, OpOp, VarOp, outer_uses, to_attr
from tostatic.serialization.program_text import extra_attrs
from tostatic.frontend.nn import io
from tostatic.frontend.static.program import Program
from tostatic.ir.opdef import LEGACY
from tostatic.passes.lowering import inference_program
from tostatic.runtime.scope import Scope, global_scope
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


def _prune(blocks: list[BlockOp], feeds: list[str], fetches: list[str]
           ) -> list[tuple[BlockOp, int, list[OpOp]]]:
    """Paddle's Prune: (source block, new parent index, saved ops) for block 0 and then, depth
    first, each kept op's sub-block, renumbered in that order (sub_block attrs follow)."""
    out: list[Any] = []
    _prune_block(blocks, 0, -1, set(fetches), set(feeds), out)
    block0_ops = out[0][2]
    missing = [n for n in fetches if n not in feeds
               and not any(n in o.output_names for o in block0_ops)
               and not _var(blocks[0], n).persistable]
    if missing:
        raise ValueError(f"save_inference_model: no op computes fetch {missing[0]!r}")
    return out


def _prune_block(blocks: list[BlockOp], idx: int, parent: int, needed: set[str],
                 feeds: set[str], out: list[Any]) -> int:
    """The ops of block `idx` that write a needed name, whose inputs (and what their
    sub-blocks read from outside) become needed, stopping at the feeds. A kept op's sub-block
    is pruned the same way, needing what the op reads and writes. Returns the new index."""
    kept: list[OpOp] = []
    for op in reversed([o for o in blocks[idx].ops if o.op_type not in ("feed", "fetch")]):
        sub = _sub_block(op)
        writes_feed = (sub is not None or parent >= 0) and any(n in feeds
                                                               for n in op.output_names)
        if writes_feed or any(n in needed for n in op.output_names):
            kept.append(op)
            reads = op.input_names + (outer_uses(blocks, sub)[0] if sub is not None else [])
            needed.update(n for n in reads if n not in feeds)
    new_idx = len(out)
    out.append(None)
    ops = []
    for op in reversed(kept):
        op = _saved_op(op)
        sub = _sub_block(op)
        if sub is not None:
            deps = {n for n in op.input_names + op.output_names if n not in feeds}
            _set_attr(op, "sub_block", ("BLOCK", _prune_block(blocks, sub, new_idx, deps,
                                                              feeds, out)))
        ops.append(op)
    out[new_idx] = (blocks[idx], parent, ops)
    return new_idx


def _sub_block(op: OpOp) -> int | None:
    return op.attr("sub_block") if op.has_attr("sub_block") else None


def _set_attr(op: OpOp, name: str, value: tuple[str, Any]) -> None:
    op.properties["attrs"] = DictionaryAttr({**op.attrs_attr.data, name: to_attr(*value)})


def _referenced(ops: list[OpOp]) -> set[str]:
    return {n for op in ops for n in op.input_names + op.output_names}


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
    """Ops whose definition has an extra-attr map lose op_callstack / with_quant_attr (and
    the map's own attrs: conditional_block's skip_eager_deletion_vars); `is_test` becomes
    True (Paddle's _inference_optimize)."""
    specs = LEGACY.get(op.op_type)
    copy = op.clone()
    extra = extra_attrs(op.op_type)
    if (specs and not specs[0].PADDLE.keeps_extra_attrs) or (not specs and extra):
        attrs = {k: v for k, v in op.attrs_attr.data.items()
                 if k not in _EXTRA and k not in extra}
        copy.properties["attrs"] = DictionaryAttr(attrs)
    if copy.has_attr("is_test"):
        _set_attr(copy, "is_test", ("BOOLEAN", True))
    return copy


def save_inference_model(path_prefix: str, feed_vars: Any, fetch_vars: Any, executor: Any,
                         program: Program | None = None, scope: Scope | None = None,
                         **kwargs: Any) -> None:
    """Write path_prefix.pdmodel and .pdiparams (the persistables the pruned program reads)."""
    from tostatic.frontend.static.mode import default_main_program

    program = program or default_main_program()
    scope = scope or global_scope()
    feeds, fetches = _names(feed_vars), _names(fetch_vars)
    (block, _, ops), *sub_blocks = _prune(program.desc.blocks, feeds, fetches)
    used = set(feeds) | set(fetches) | _referenced(ops)
    variables = [_saved_var(_var(block, n)) for n in sorted(used)]
    desc = inference_program(variables, ops, feeds, fetches)
    for idx, (source, parent, sub_ops) in enumerate(sub_blocks, 1):
        names = sorted(n for n in _referenced(sub_ops) if source.var(n) is not None)
        desc.body.block.add_op(BlockOp.build(idx, parent, [_saved_var(source.var(n))
                                                           for n in names], sub_ops))
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
