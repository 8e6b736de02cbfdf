"""save_inference_model / load_inference_model: a static Program to and from Paddle's files.

Saving is compiling: the program's `pd` function with the feeds as its arguments and the
fetches as its results goes through dead-op-elimination (the pruner: what the fetches do not
need goes, inside the regions of cond and while_loop too) and `lower-to-program{mode=save}`,
which writes it as Paddle 3.3.1 saves one (variables sorted by name, feed and fetch ops,
training-only fields and attributes dropped, is_test set, the sub-blocks that remain numbered
in order). The slots of a kept conditional_block / while stay as the program built them, as
Paddle keeps them (less what pruning removed entirely). The persistables' current values
come from the scope. A loaded program is raised to `pd` first (the "load" pipeline).
"""
from __future__ import annotations

import os
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, IntegerAttr, ModuleOp, StringAttr, i1
from xdsl.ir import SSAValue

from tostatic.dialects.program import ProgramOp
from tostatic.frontend.nn import io
from tostatic.frontend.static.mode import default_main_program
from tostatic.frontend.static.program import Program
from tostatic.ir.attr_keys import INPUT_NAME_ATTR
from tostatic.ops.control_flow import If, RegionOp
from tostatic.passes.base import CompileState
from tostatic.passes.lower_control_flow import record_slots
from tostatic.passes.lowering import block_names, name_results
from tostatic.passes.manager import PassManager
from tostatic.runtime.program_run import with_feeds_and_fetches
from tostatic.runtime.scope import Scope, global_scope
from tostatic.serialization.artifact import check_file, prefix_manifest, record_crcs, save_files
from tostatic.serialization.pdiparams import load_combine, write_combine
from tostatic.serialization.program_desc import (
    load_program,
    parse_program_bytes,
    save_program,
    to_program_desc,
)


def _names(xs: Any) -> list[str]:
    xs = xs if isinstance(xs, (list, tuple)) else [xs]
    return [x if isinstance(x, str) else x.name for x in xs]


def save_inference_model(path_prefix: str, feed_vars: Any, fetch_vars: Any, executor: Any,
                         program: Program | None = None, scope: Scope | None = None,
                         **kwargs: Any) -> None:
    """Write path_prefix.pdmodel and .pdiparams (the persistables the pruned program reads)."""
    program = program or default_main_program()
    scope = scope or global_scope()
    feeds, fetches = _names(feed_vars), _names(fetch_vars)
    if program._live:
        module = _save_module(program, feeds, fetches)
        state = CompileState(variables=program)
        PassManager("dead-op-elimination{keep-effects=false}", verify="end").run(
            module, state, first_stage="static-program")
        _drop_unfed_arguments(module, len(feeds))
        PassManager("lower-to-program{mode=save},set-is-test", verify="end").run(module, state,
                                                                    first_stage="pruned")
    else:  # a loaded program: raised, pruned and lowered as jit.save would
        module = ModuleOp([with_feeds_and_fetches(program.desc, feeds, fetches)])
        PassManager("load,lower-to-program,set-is-test", verify="end").run(module, CompileState(),
                                                              first_stage="program")
    desc = next(op for op in module.body.block.ops if isinstance(op, ProgramOp))
    weights = {}
    for v in desc.blocks[0].vars:
        if v.persistable and v.var_type == "DENSE_TENSOR":
            value = scope.get(v.var_name)
            if value is None:
                raise ValueError(f"save_inference_model: persistable {v.var_name!r} has no "
                                 f"value; run the startup program first")
            weights[v.var_name] = value
    model = to_program_desc(desc).SerializeToString()
    save_files(path_prefix, {  # one atomic unit (serialization/artifact.py)
        ".pdmodel": lambda f: f.write(model),
        ".pdiparams": (lambda f: write_combine(f, weights)) if weights else None},
        others=(".pdiparams.info",))


def _save_module(program: Program, feeds: list[str], fetches: list[str]) -> ModuleOp:
    """A copy of the program's function whose first arguments are `feeds` (a fed variable
    that an op computes is read from the feed instead) and whose results are `fetches`; each
    cond and while_loop carries the slots the program gave its Paddle ops (pd.block_slots)."""
    slots = _block_op_slots(program.desc)
    mapper: dict[SSAValue, SSAValue] = {}
    fn = program._fn.clone(value_mapper=mapper)
    block = fn.body.block
    root = program._frames[0].values

    def value(name: str, what: str) -> SSAValue:
        var = program._vars.get(name)
        if var is None or var not in root:
            raise ValueError(f"save_inference_model: {what} {name!r} is not a variable of the "
                             f"program's global block")
        return mapper.get(root[var], root[var])

    data_args = list(zip(block.args, [v.name for v in program._feeds]))
    fed: dict[str, SSAValue] = {}
    for name in feeds:
        v = value(name, "feed")
        fed[name] = block.insert_arg(v.type, len(fed))
        v.replace_all_uses_with(fed[name])
    results = [fed[n] if n in fed else value(n, "fetch") for n in fetches]
    unfed = []
    for arg, name in data_args:  # static.data not fed: pruning says whether it is needed
        if arg.uses:
            unfed.append(name)
        else:
            block.erase_arg(arg)
    block.add_op(func.ReturnOp(*results))
    fn.function_type = func.FunctionType.from_lists([a.type for a in block.args],
                                                    [r.type for r in results])
    fn.arg_attrs = _arg_names(feeds + unfed)
    name_results(fn, fetches)
    for op in fn.walk():
        names = block_names(op) if isinstance(op, RegionOp) else None
        if names is None:
            continue
        if isinstance(op, If):
            record_slots(op, {key: slots[names[key][-1]] for key in ("then", "else")
                              if key in names})
        else:
            record_slots(op, {"while": slots[names["scope"]]})
    return ModuleOp([fn])


def _block_op_slots(desc: ProgramOp) -> dict[str, dict[str, list[str]]]:
    """step scope name -> the slots of the conditional_block / while that has it."""
    out = {}
    for block in desc.blocks:
        for op in block.ops:
            if op.op_type == "conditional_block":
                out[op.output("Scope")[0]] = {"Input": op.input("Input"),
                                              "Out": op.output("Out")}
            elif op.op_type == "while":
                out[op.output("StepScopes")[0]] = {"X": op.input("X"),
                                                   "Out": op.output("Out")}
    return out


def _drop_unfed_arguments(module: ModuleOp, n_feeds: int) -> None:
    """After pruning: the static.data variables not fed must be ones nothing needs."""
    fn = next(op for op in module.body.block.ops if isinstance(op, func.FuncOp))
    block = fn.body.block
    names = [d.data[INPUT_NAME_ATTR].data for d in fn.arg_attrs.data]  # type: ignore
    for arg, name in list(zip(block.args, names))[n_feeds:]:
        if arg.uses:
            raise ValueError(f"save_inference_model: the fetches need {name!r}, which is not "
                             f"among feed_vars")
        block.erase_arg(arg)
    fn.function_type = func.FunctionType.from_lists(
        [a.type for a in block.args], list(fn.function_type.outputs.data))
    fn.arg_attrs = _arg_names(names[:n_feeds])


def _arg_names(names: list[str]) -> ArrayAttr:
    return ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(n)}) for n in names])


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
        manifest = prefix_manifest(path_prefix)  # tostatic's saves: each record checked
        params_file = path_prefix + ".pdiparams"
        check_file(manifest, params_file)
        params = load_combine(params_file, persistables, crcs=record_crcs(manifest, params_file))
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
