"""The Transformer / NLP op cases and the machinery that checks one case every way (shared by
test_ops_nlp.py): our eager kernel, Paddle's dygraph, Paddle's static program (written by its
Python API or, where 3.3.1's API no longer writes the legacy op in static mode, appended as
its LayerHelper did), our one-op export, paddle.inference."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from tostatic.ir import dtypes
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.passes.base import entry
from tostatic.passes.lower_to_program import lower_function
from tostatic.serialization import framework_pb2 as fpb
from tostatic.serialization.program_desc import save_program

from conftest import assert_close, paddle_predict
from conftest import one_op_module as shared_one_op_module

RNG = np.random.default_rng(13)


def f32(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def ints(high, *shape, dtype=np.int64, low=0):
    return RNG.integers(low, high, size=shape).astype(dtype)


@dataclass
class Case:
    """One op on `inputs` with pd `attrs`. `dygraph(paddle, *tensors)`: Paddle's eager call
    computing it (None: no dygraph form); `static(paddle, *vars)`: what writes it in static
    mode (None: Paddle 3.3.1 writes no such legacy op). Inputs whose index is in `batched` get
    a dynamic first dim in specs and programs; `dyn` lists the result dims that are then
    dynamic (None: every dim). `order` reorders Paddle's results into ours."""

    id: str
    cls: type[PdOp]
    inputs: list[np.ndarray]
    attrs: dict[str, Any]
    dygraph: Callable[..., Any] | None
    static: Callable[..., Any] | None
    batched: tuple[int, ...] = (0,)
    dyn: tuple[int, ...] | None = (0,)
    onednn: bool = True  # paddle.inference with OneDNN (some of its kernels differ)
    declared: bool = True  # False: Paddle declares a wrong compile-time shape
    # output slots whose variable we declare differently from Paddle (see the case)
    other_vars: tuple[str, ...] = ()

    def norm_attrs(self) -> dict[str, Any]:
        return self.cls.normalize_attrs(dict(self.attrs))


def outs(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def eager(case: Case) -> list[np.ndarray]:
    return case.cls.run_eager(case.inputs, case.norm_attrs())


def abstracts(case: Case, batch: int = -1) -> list[Abstract]:
    return [Abstract(((batch,) + a.shape[1:]) if i in case.batched else a.shape,
                     dtypes.convert_dtype(a.dtype)) for i, a in enumerate(case.inputs)]


def appended(op_type: str, slots: list[str], attrs: dict[str, Any],
             results: dict[str, str] | None = None) -> Callable[..., Any]:
    """A static builder appending one legacy op as its LayerHelper did: input i fills slot
    slots[i] (a list of inputs for a slot ending in '*'); `results`: output slot -> dtype."""
    results = results or {"Out": "float32"}

    def build(paddle, *xs):
        from paddle.base.layer_helper import LayerHelper

        helper = LayerHelper(op_type)
        ins: dict[str, Any] = {}
        for slot, x in zip(slots, xs):
            if slot.endswith("*"):
                ins.setdefault(slot[:-1], []).append(x)
            else:
                ins[slot] = x
        out = {s: helper.create_variable_for_type_inference(d) for s, d in results.items()}
        helper.append_op(type=op_type, inputs=ins, outputs=out, attrs=attrs)
        return [out[s] for s in results]
    return build


# --- our export ----------------------------------------------------------------------------------

def one_op_module(case: Case) -> ModuleOp:
    return shared_one_op_module(case.cls, [a.tensor_type() for a in abstracts(case)],
                                case.attrs)


def exported(case: Case, tmp_path) -> str:
    path = tmp_path / "m.pdmodel"
    save_program(path, lower_function(entry(one_op_module(case))))
    return str(path)


def feeds_of(case: Case) -> dict[str, np.ndarray]:
    return {f"x{i}": a for i, a in enumerate(case.inputs)}


def predict(model: str, feeds: dict[str, np.ndarray], onednn: bool = True) -> list[np.ndarray]:
    return paddle_predict(model, None, feeds, onednn=onednn)


# --- Paddle's static programs -------------------------------------------------------------------

@contextlib.contextmanager
def paddle_static(paddle):
    main, startup = paddle.static.Program(), paddle.static.Program()
    paddle.enable_static()
    try:
        with paddle.utils.unique_name.guard(), paddle.static.program_guard(main, startup):
            yield main, startup
    finally:
        paddle.disable_static()


def dims(a: np.ndarray, batched: bool) -> list[Any]:
    return [None if batched and i == 0 else d for i, d in enumerate(a.shape)]


def paddle_saved(case: Case, paddle, tmp_path, build=None) -> tuple[str, list[np.ndarray]]:
    """The case written by Paddle's static mode and saved as an inference model, with the
    outputs Paddle's executor computed for it."""
    build = build or case.static
    with paddle_static(paddle) as (main, startup):
        xs = [paddle.static.data(f"x{i}", dims(a, i in case.batched), str(a.dtype))
              for i, a in enumerate(case.inputs)]
        results = outs(build(paddle, *xs))
        exe = paddle.static.Executor(paddle.CPUPlace())
        exe.run(startup)
        expected = exe.run(main, feed=feeds_of(case), fetch_list=results)
        prefix = str(tmp_path / "paddle")
        paddle.static.save_inference_model(prefix, xs, results, exe, program=main)
    return prefix + ".pdmodel", [np.asarray(e) for e in expected]


def op_descs(path, op_type: str) -> list[str]:
    """The descs of the ops of one type, without op_callstack."""
    prog = fpb.ProgramDesc.FromString(open(path, "rb").read())
    found = []
    for op in prog.blocks[0].ops:
        if op.type == op_type:
            kept = fpb.OpDesc()
            kept.CopyFrom(op)
            del kept.attrs[:]
            kept.attrs.extend(a for a in op.attrs if a.name != "op_callstack")
            found.append(str(kept))
    return found


def output_vars(path, op_type: str, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """The VarDescs of the outputs of the ops of one type (but those of slots in `skip`)."""
    prog = fpb.ProgramDesc.FromString(open(path, "rb").read())
    names = {n for op in prog.blocks[0].ops if op.type == op_type
             for v in op.outputs if v.parameter not in skip for n in v.arguments}
    return {v.name: str(v) for v in prog.blocks[0].vars if v.name in names}


def runs_and_lowers_back(case: Case, path: str, expected: list[np.ndarray], tmp_path,
                         skip: tuple[str, ...] = ()) -> None:
    """A program Paddle wrote with the case's op: it runs here with Paddle's outputs, raises
    into the case's pd op, and lowers back to Paddle's op desc and output variables."""
    from tostatic.passes.raise_from_program import raise_program
    from tostatic.runtime.loaded_model import load_model
    from tostatic.serialization.program_desc import load_program

    op_type = case.cls.PADDLE.type
    theirs = op_descs(path, op_type)
    assert theirs, f"Paddle wrote no {op_type} op for this case"
    model = load_model(path, None)
    feeds = feeds_of(case)
    got = model.run([feeds[n] for n in model.feed_names])
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_close(g, e)
    module, *_ = raise_program(load_program(path))
    assert case.cls.name in {op.name for op in module.walk()}
    ours_path = tmp_path / "ours.pdmodel"
    save_program(ours_path, lower_function(entry(module)))
    assert op_descs(ours_path, op_type) == theirs
    assert output_vars(ours_path, op_type, skip) == output_vars(path, op_type, skip)


def declared_shapes(path) -> dict[str, list[int]]:
    prog = fpb.ProgramDesc.FromString(open(path, "rb").read())
    return {v.name: list(v.type.dense_tensor.tensor.dims) for v in prog.blocks[0].vars
            if v.type.type == fpb.VarType.DENSE_TENSOR}
