"""Activation and tensor-manipulation ops (relu6 ... top_k_v2, reduce_*, cumsum), one table of
cases read by every check:

- eager: our numpy kernel against real Paddle's dygraph on the same inputs (interop);
- shape rule: `infer` with a dynamic batch keeps it dynamic and gives the eager result's dims;
- export: a one-op pd function lowered to a .pdmodel runs natively (load_model) as eager does,
  and in paddle.inference (interop);
- raise: a program Paddle itself wrote (static mode + save_inference_model) loads and runs with
  Paddle's outputs, and lowered again writes Paddle's very op desc (slots and attributes).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp

from tostatic.ir import dtypes
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract, PdOp
from tostatic.ops import activation as A
from tostatic.ops import creation_from_tensors as C
from tostatic.ops import indexing as I
from tostatic.ops import joining as J
from tostatic.ops import manipulation as M
from tostatic.ops import reduction as R
from tostatic.ops import search as S
from tostatic.passes.base import entry
from tostatic.passes.lower_to_program import lower_function
from tostatic.passes.raise_from_program import raise_program
from tostatic.runtime.loaded_model import load_model
from tostatic.serialization import framework_pb2 as fpb
from tostatic.serialization.program_desc import load_program, save_program

from conftest import assert_close, export_forms, paddle_predict
from conftest import one_op_module as shared_one_op_module

RNG = np.random.default_rng(12)


def f32(*shape, scale=3.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def i64(*values):
    return np.array(values, dtype=np.int64)


@dataclass
class Case:
    """One op applied to `inputs` with pd `attrs`; `api(paddle, *tensors)` is the Paddle
    call that computes it in dygraph and writes it in static mode (`static` when that call
    differs, None when Paddle 3.3.1 writes no such legacy op). Inputs whose index is in
    `batched` get a dynamic first dim in specs and programs; `dyn` lists the result dims that
    are then dynamic."""

    id: str
    cls: type[PdOp]
    inputs: list[np.ndarray]
    attrs: dict[str, Any]
    api: Callable[..., Any] | None
    static: Callable[..., Any] | None | str = "api"
    batched: tuple[int, ...] = (0,)
    dyn: tuple[int, ...] = (0,)
    ref: Callable[[Any], np.ndarray] = field(default=lambda t: np.asarray(t.numpy()))
    # paddle.inference 3.3.1's OneDNN kernels get some cases wrong for Paddle's own programs
    # too (expand_v2 with -1, split with three sections, slice with a start before the dim):
    # those run with OneDNN off
    onednn: bool = True

    def static_api(self) -> Callable[..., Any] | None:
        return self.api if self.static == "api" else self.static  # type: ignore[return-value]


def F(paddle):
    return paddle.nn.functional


def appended(op_type, attrs, out_dtype="float32", extra=None, results=("Out",)):
    """A static builder appending one legacy op as Paddle 2.x's Python API did (Paddle 3.3.1's
    paddle.sum / paddle.argmax / cumsum's exclusive and reverse, flatten2, top_k and expand v1
    are no longer written by its API); `extra`: more output slots and their dtypes."""
    def build(paddle, x):
        from paddle.base.layer_helper import LayerHelper

        helper = LayerHelper(op_type)
        outs = {slot: helper.create_variable_for_type_inference(dtype)
                for slot, dtype in {"Out": out_dtype, **(extra or {})}.items()}
        helper.append_op(type=op_type, inputs={"X": x}, outputs=outs, attrs=attrs)
        return [outs[r] for r in results]
    return build


X357 = f32(3, 5, 7)
NEAR0 = np.concatenate([f32(3, 4), np.array([[0, 1e-4, -1e-4, -7]], np.float32)])

CASES = [
    # --- activations -----------------------------------------------------------------------
    Case("relu6", A.Relu6, [X357 * 2], {}, lambda p, x: F(p).relu6(x)),
    Case("hardswish", A.HardSwish, [X357], {}, lambda p, x: F(p).hardswish(x)),
    Case("hardsigmoid", A.HardSigmoid, [X357], {"slope": 0.2, "offset": 0.4},
         lambda p, x: F(p).hardsigmoid(x, 0.2, 0.4)),
    Case("swish", A.Swish, [X357 * 10], {}, lambda p, x: F(p).swish(x)),
    Case("silu", A.Silu, [X357 * 10], {}, lambda p, x: F(p).silu(x)),
    Case("leaky_relu", A.LeakyRelu, [NEAR0], {"alpha": 0.1},
         lambda p, x: F(p).leaky_relu(x, 0.1)),
    Case("elu", A.Elu, [NEAR0], {"alpha": 0.5}, lambda p, x: F(p).elu(x, 0.5)),
    Case("prelu_all", A.Prelu, [f32(3, 4, 5), np.array([0.25], np.float32)],
         {"mode": "all", "data_format": "NCHW"},
         lambda p, x, w: F(p).prelu(x, w), batched=(0,)),
    Case("prelu_channel", A.Prelu, [f32(3, 4, 5), f32(4)], {"mode": "channel",
                                                            "data_format": "NCHW"},
         lambda p, x, w: F(p).prelu(x, w)),
    Case("prelu_channel_nhwc", A.Prelu, [f32(3, 4, 5), f32(5)],
         {"mode": "channel", "data_format": "NHWC"},
         lambda p, x, w: F(p).prelu(x, w, data_format="NHWC")),
    Case("prelu_element", A.Prelu, [f32(3, 4, 5), f32(1, 4, 5)],
         {"mode": "element", "data_format": "NCHW"},
         lambda p, x, w: p._C_ops.prelu(x, w, "NCHW", "element"), static=None),
    Case("clip", A.Clip, [X357], {"min": -0.5, "max": 0.7}, lambda p, x: p.clip(x, -0.5, 0.7)),
    Case("softmax", A.Softmax, [X357], {"axis": 1}, lambda p, x: F(p).softmax(x, axis=1)),
    Case("softmax_last", A.Softmax, [X357 * 20], {"axis": -1}, lambda p, x: F(p).softmax(x)),
    # --- shapes ----------------------------------------------------------------------------
    Case("flatten", M.Flatten, [f32(3, 4, 5, 2)], {"start_axis": 1, "stop_axis": -1},
         lambda p, x: p.flatten(x, 1, -1)),
    Case("flatten_front", M.Flatten, [f32(3, 4, 5, 2)], {"start_axis": 0, "stop_axis": 2},
         lambda p, x: p.flatten(x, 0, 2)),
    Case("squeeze", M.Squeeze, [f32(3, 1, 4, 1)], {"axes": (1, -1)},
         lambda p, x: p.squeeze(x, [1, -1])),
    Case("squeeze_all", M.Squeeze, [f32(3, 1, 4, 1)], {"axes": ()}, lambda p, x: p.squeeze(x)),
    Case("squeeze_keeps_non_1", M.Squeeze, [f32(3, 1, 4)], {"axes": (1, 2)},
         lambda p, x: p.squeeze(x, [1, 2])),
    Case("unsqueeze", M.Unsqueeze, [f32(3, 4)], {"axes": (-1, 1, 3)},
         lambda p, x: p.unsqueeze(x, [-1, 1, 3])),
    Case("expand", M.Expand, [f32(3, 1, 5)], {"shape": (2, -1, 4, 5)},
         lambda p, x: p.expand(x, [2, -1, 4, 5]), dyn=(1,), onednn=False),
    Case("tile", M.Tile, [f32(3, 2)], {"repeat_times": (2, 1, 3)},
         lambda p, x: p.tile(x, [2, 1, 3]), dyn=(1,)),
    Case("shape", M.Shape, [f32(3, 4, 5)], {}, lambda p, x: p.shape(x), dyn=(),
         ref=lambda t: np.asarray(t.numpy()).astype(np.int32)),  # dygraph's is int64
    # --- joining ---------------------------------------------------------------------------
    Case("concat", J.Concat, [f32(3, 2, 4), f32(3, 3, 4), f32(3, 1, 4)], {"axis": 1},
         lambda p, *xs: p.concat(list(xs), axis=1), batched=(0, 1, 2)),
    Case("concat_last", J.Concat, [f32(3, 2), f32(3, 5)], {"axis": -1},
         lambda p, *xs: p.concat(list(xs), axis=-1), batched=(0, 1)),
    Case("split_num", J.Split, [f32(3, 4, 6)], {"num": 3, "axis": 2},
         lambda p, x: p.split(x, 3, axis=2)),
    Case("split_sections", J.Split, [f32(3, 5, 2)], {"sections": (1, -1, 2), "axis": 1},
         lambda p, x: p.split(x, [1, -1, 2], axis=1), onednn=False),
    Case("stack", J.Stack, [f32(3, 4), f32(3, 4), f32(3, 4)], {"axis": 1},
         lambda p, *xs: p.stack(list(xs), axis=1), batched=(0, 1, 2)),
    Case("stack_last", J.Stack, [f32(3, 4), f32(3, 4)], {"axis": -1},
         lambda p, *xs: p.stack(list(xs), axis=-1), batched=(0, 1)),
    Case("meshgrid", J.Meshgrid, [f32(3), f32(4), f32(2)], {},
         lambda p, *xs: p.meshgrid(*xs), batched=(), dyn=()),
    # --- indexing --------------------------------------------------------------------------
    Case("slice", I.Slice, [f32(3, 5, 6)],
         {"axes": (1, 2), "starts": (1, -3), "ends": (2147483647, -1)},
         lambda p, x: x[:, 1:, -3:-1]),
    Case("slice_decrease", I.Slice, [f32(3, 5, 6)],
         {"axes": (2,), "starts": (-1,), "ends": (2147483647,), "decrease_axis": (2,)},
         lambda p, x: x[:, :, -1]),
    Case("slice_clamped", I.Slice, [f32(3, 5)], {"axes": (1,), "starts": (-9,), "ends": (3,)},
         lambda p, x: p.slice(x, [1], [-9], [3]), onednn=False),
    Case("gather", I.Gather, [f32(3, 5, 4), i64(4, 0, 0, 2)], {"axis": 1},
         lambda p, x, i: p.gather(x, i, axis=1)),
    Case("gather_int32_axis0", I.Gather, [f32(5, 3), np.array([4, 1], np.int32)], {"axis": 0},
         lambda p, x, i: p.gather(x, i), batched=(), dyn=()),
    Case("where", I.Where, [f32(3, 4) > 0, f32(3, 4), f32(3, 4)], {},
         lambda p, c, x, y: p.where(c, x, y), batched=(0, 1, 2)),
    # --- search ----------------------------------------------------------------------------
    Case("argmax", S.ArgMax, [X357], {"axis": 1},
         lambda p, x: p.argmax(x, axis=1),
         static=appended("arg_max", {"axis": 1, "keepdims": False, "flatten": False,
                                     "dtype": 3}, "int64")),
    Case("argmax_keepdims_int32", S.ArgMax, [X357],
         {"axis": -1, "keepdims": True, "dtype": "int32"},
         lambda p, x: p.argmax(x, axis=-1, keepdim=True, dtype="int32"),
         static=appended("arg_max", {"axis": -1, "keepdims": True, "flatten": False,
                                     "dtype": 2}, "int32")),
    Case("argmax_flatten", S.ArgMax, [X357], {"flatten": True, "axis": 0},
         lambda p, x: p.argmax(x), dyn=(),
         static=appended("arg_max", {"axis": 0, "keepdims": False, "flatten": True,
                                     "dtype": 3}, "int64")),
    Case("topk", S.TopK, [X357], {"k": 2, "axis": 1}, lambda p, x: p.topk(x, 2, axis=1)),
    Case("topk_smallest", S.TopK, [X357], {"k": 3, "largest": False},
         lambda p, x: p.topk(x, 3, largest=False)),
    # --- creation from tensors -------------------------------------------------------------
    Case("full_like_int", C.FullLike, [X357], {"value": -2.7, "dtype": "int32"},
         lambda p, x: p.full_like(x, -2.7, "int32")),
    Case("full_like", C.FullLike, [X357], {"value": 0.1, "dtype": "float32"},
         lambda p, x: p.full_like(x, 0.1)),
    Case("range_float", C.Range, [np.array([0.5], np.float32), np.array([3.0], np.float32),
                                  np.array([0.3], np.float32)], {},
         lambda p, s, e, d: p.arange(s, e, d), batched=()),
    Case("range_int_down", C.Range, [i64(7), i64(-4), i64(-3)], {},
         lambda p, s, e, d: p.arange(s, e, d), batched=()),
    # --- reductions and scans --------------------------------------------------------------
    Case("sum", R.Sum, [X357], {"axis": (1, 2)}, lambda p, x: p.sum(x, axis=[1, 2]),
         static=appended("reduce_sum", {"dim": [1, 2], "keep_dim": False,
                                        "reduce_all": False})),
    Case("sum_int32_keepdim", R.Sum, [(X357 * 100).astype(np.int32)],
         {"axis": (-1,), "keepdim": True}, lambda p, x: p.sum(x, axis=-1, keepdim=True),
         static=appended("reduce_sum", {"dim": [-1], "keep_dim": True}, "int64")),
    Case("sum_out_dtype", R.Sum, [X357 + 0.7], {"axis": (1,), "dtype": "int64"},
         lambda p, x: p.sum(x.astype("int64"), axis=1),
         static=appended("reduce_sum", {"dim": [1], "out_dtype": 3}, "int64")),
    Case("mean", R.Mean, [X357], {"axis": (-1,), "keepdim": True},
         lambda p, x: p.mean(x, axis=-1, keepdim=True)),
    Case("mean_all", R.Mean, [X357], {"reduce_all": True}, lambda p, x: p.mean(x), dyn=()),
    Case("max", R.Max, [X357], {"axis": (1,)}, lambda p, x: p.max(x, axis=1)),
    Case("min", R.Min, [X357], {"axis": (0, 2)}, lambda p, x: p.min(x, axis=[0, 2]), dyn=()),
    Case("prod", R.Prod, [X357 / 2], {"axis": (2,)}, lambda p, x: p.prod(x, axis=2)),
    Case("cumsum", R.Cumsum, [X357], {"axis": 1}, lambda p, x: p.cumsum(x, axis=1)),
    Case("cumsum_flatten", R.Cumsum, [X357], {"flatten": True}, lambda p, x: p.cumsum(x)),
    Case("cumsum_exclusive_reverse", R.Cumsum, [X357],
         {"axis": -1, "exclusive": True, "reverse": True},
         lambda p, x: p._C_ops.cumsum(x, -1, False, True, True),
         static=appended("cumsum", {"axis": -1, "exclusive": True, "reverse": True})),
    # --- the forms Paddle <= 2.0 wrote ------------------------------------------------------
    Case("flatten2", M.FlattenTo2D, [f32(3, 4, 5, 2)], {"axis": 2},
         lambda p, x: p.reshape(x, [12, 10]), dyn=(0,),
         static=appended("flatten2", {"axis": 2}, extra={"XShape": "float32"})),
    Case("top_k_v1", S.TopKLastAxis, [X357], {"k": 3}, lambda p, x: p.topk(x, 3),
         static=appended("top_k", {"k": 3}, extra={"Indices": "int64"},
                         results=("Out", "Indices"))),
    Case("expand_v1", M.ExpandTimes, [f32(3, 1, 2)], {"expand_times": (1, 3, 2)},
         lambda p, x: p.tile(x, [1, 3, 2]),
         static=appended("expand", {"expand_times": [1, 3, 2]})),
]
IDS = [c.id for c in CASES]
BY_ID = dict(zip(IDS, CASES))


def _outs(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def eager(case: Case) -> list[np.ndarray]:
    return case.cls.run_eager(case.inputs, case.cls.normalize_attrs(dict(case.attrs)))


def abstracts(case: Case, batch: int = -1) -> list[Abstract]:
    return [Abstract(((batch,) + a.shape[1:]) if i in case.batched else a.shape,
                     dtypes.convert_dtype(a.dtype)) for i, a in enumerate(case.inputs)]


# --- eager against Paddle's dygraph -----------------------------------------------------------

@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_eager_matches_paddle_dygraph(case, real_paddle):
    p = real_paddle
    theirs = _outs(case.api(p, *[p.to_tensor(a) for a in case.inputs]))
    ours = eager(case)
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert_close(o, case.ref(t))


# --- the shape rule ----------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_infer_keeps_the_batch_dynamic_and_gives_eager_dims(case):
    attrs = case.cls.normalize_attrs(dict(case.attrs))
    results = case.cls.infer_results(abstracts(case), attrs)
    static = case.cls.infer_results(abstracts(case, batch=case.inputs[0].shape[0]
                                              if case.inputs[0].ndim else 0), attrs)
    for got, fixed, value in zip(results, static, eager(case)):
        assert got.dtype == dtypes.convert_dtype(value.dtype)
        assert len(got.shape) == value.ndim
        want = tuple(-1 if i in case.dyn else d for i, d in enumerate(value.shape))
        if case.cls is C.Range:  # values decide the length: always dynamic
            assert got.shape == fixed.shape == (-1,)
            continue
        assert got.shape == want, (got.shape, value.shape)
        assert fixed.shape == value.shape


# --- export: one op lowered to a .pdmodel ---------------------------------------------------------

def one_op_module(case: Case) -> ModuleOp:
    return shared_one_op_module(case.cls, [a.tensor_type() for a in abstracts(case)],
                                case.attrs)


def exported(case: Case, tmp_path) -> str:
    path = tmp_path / "m.pdmodel"
    save_program(path, lower_function(entry(one_op_module(case))))
    return str(path)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exported_op_runs_natively_as_eager(case, tmp_path):
    model = load_model(exported(case, tmp_path), None)
    got = model.run(case.inputs)
    for g, want in zip(got, eager(case)):
        assert_close(g, want)


def predict(model, feeds, onednn=True):
    return paddle_predict(model, None, feeds, onednn=onednn)


@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exported_op_runs_in_paddle_inference_as_eager(case, tmp_path, real_paddle):
    feeds = {f"x{i}": a for i, a in enumerate(case.inputs)}
    got = predict(exported(case, tmp_path), feeds, case.onednn)
    want = eager(case)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w)


# --- raise: programs real Paddle wrote ------------------------------------------------------------

@contextlib.contextmanager
def paddle_static(paddle):
    main, startup = paddle.static.Program(), paddle.static.Program()
    paddle.enable_static()
    try:
        with paddle.utils.unique_name.guard(), paddle.static.program_guard(main, startup):
            yield main, startup
    finally:
        paddle.disable_static()


def paddle_saved(case: Case, paddle, tmp_path) -> tuple[str, list[np.ndarray]]:
    """The case written by Paddle's static mode and saved as an inference model; with the
    outputs Paddle's executor computed."""
    build = case.static_api()
    with paddle_static(paddle) as (main, startup):
        xs = [paddle.static.data(f"x{i}", _dims(a, i in case.batched), str(a.dtype))
              for i, a in enumerate(case.inputs)]
        outs = _outs(build(paddle, *xs))
        exe = paddle.static.Executor(paddle.CPUPlace())
        exe.run(startup)
        feeds = {f"x{i}": a for i, a in enumerate(case.inputs)}
        expected = exe.run(main, feed=feeds, fetch_list=outs)
        prefix = str(tmp_path / "paddle")
        paddle.static.save_inference_model(prefix, xs, outs, exe, program=main)
    return prefix + ".pdmodel", [np.asarray(e) for e in expected]


def _dims(a: np.ndarray, batched: bool) -> list[int]:
    return [None if batched and i == 0 else d for i, d in enumerate(a.shape)]  # type: ignore


def _op_descs(path, op_type, renamed=()):
    """The op descs of one type without op_callstack; the variables of `renamed` output slots
    (XShape: raising does not keep their names yet) blanked."""
    prog = fpb.ProgramDesc.FromString(open(path, "rb").read())
    out = []
    for op in prog.blocks[0].ops:
        if op.type == op_type:
            kept = fpb.OpDesc()
            kept.CopyFrom(op)
            for slot in kept.outputs:
                if slot.parameter in renamed:
                    slot.arguments[:] = ["?"] * len(slot.arguments)
            del kept.attrs[:]
            kept.attrs.extend(a for a in op.attrs if a.name != "op_callstack")
            out.append(str(kept))
    return out


RAISED = [c for c in CASES if c.static_api() is not None]
# Paddle declares expand (v1)'s output with a wrong compile-time shape ([1, 3, 2] here)
DECLARED = [c for c in RAISED if c.id != "expand_v1"]


@pytest.mark.interop
@pytest.mark.parametrize("case", RAISED, ids=[c.id for c in RAISED])
def test_program_paddle_wrote_runs_and_lowers_back_to_the_same_op(case, tmp_path, real_paddle):
    path, expected = paddle_saved(case, real_paddle, tmp_path)
    op_type, renamed = case.cls.PADDLE.type, case.cls.PADDLE.extra_outputs
    theirs = _op_descs(path, op_type, renamed)
    assert theirs, f"Paddle wrote no {op_type} op for this case"
    model = load_model(path, None)
    feeds = {f"x{i}": a for i, a in enumerate(case.inputs)}
    got = model.run([feeds[n] for n in model.feed_names])
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_close(g, e)
    module, *_ = raise_program(load_program(path))
    ours_path = tmp_path / "ours.pdmodel"
    with export_forms(enabled=False):  # Paddle's form, not the one written for paddle2onnx
        save_program(ours_path, lower_function(entry(module)))
    assert _op_descs(ours_path, op_type, renamed) == theirs


# --- Paddle's fixtures -------------------------------------------------------------------------

MINE = {"relu6", "hard_swish", "flatten_contiguous_range", "slice", "concat", "squeeze2",
        "unsqueeze2", "softmax"}


@pytest.mark.parametrize("name", ["small_cnn", "depthwise_cnn", "embed_ln"])
def test_paddle_fixtures_run_and_lower_back_to_the_ops_paddle_wrote(name, tmp_path):
    from conftest import FIXTURES, fixture_cases

    for d, feeds, expected in fixture_cases(name):
        model = load_model(str(d / "model.pdmodel"), str(d / "model.pdiparams"))
        got = model.run([feeds[n] for n in model.feed_names])
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_close(g, e)
    path = FIXTURES / name / "model.pdmodel"
    module, *_ = raise_program(load_program(path))
    save_program(tmp_path / "m.pdmodel", lower_function(entry(module)))
    for op_type in MINE:
        assert _op_descs(tmp_path / "m.pdmodel", op_type) == _op_descs(path, op_type), op_type
    assert sum(len(_op_descs(path, t)) for t in MINE) >= {"embed_ln": 9}.get(name, 1)


# --- the shape rule against Paddle's own compile-time shapes --------------------------------------

@pytest.mark.interop
@pytest.mark.parametrize("case", DECLARED, ids=[c.id for c in DECLARED])
def test_infer_agrees_with_the_shapes_paddle_declared(case, tmp_path, real_paddle):
    """Raised from Paddle's file, our result types have Paddle's ranks and agree with every
    dim Paddle knew (ours may know more: expand's -1 is the input's dim; range's length)."""
    path, _ = paddle_saved(case, real_paddle, tmp_path)
    program = load_program(path)
    module, _, fetches, _ = raise_program(program)
    ours = [Abstract.of_type(t) for t in entry(module).function_type.outputs.data]
    declared = {v.var_name: v for v in program.blocks[0].vars}
    for name, got in zip(fetches, ours):
        theirs = declared[name].shape
        assert len(got.shape) == len(theirs), (name, got.shape, theirs)
        for g, t in zip(got.shape, theirs):
            assert t < 0 or g in (t, -1), (name, got.shape, theirs)


# --- attribute values that are refused, by name ----------------------------------------------------

def ab(*shape, dtype=dtypes.float32):
    return Abstract(tuple(shape), dtype)


@pytest.mark.parametrize("cls,inputs,attrs,words", [
    (A.HardSwish, [ab(-1, 4)], {"threshold": 4.0}, ["pd.hardswish", "threshold=4.0"]),
    (A.HardSwish, [ab(-1, 4)], {"offset": 2.0}, ["pd.hardswish", "offset=2.0"]),
    (A.Prelu, [ab(-1, 4, 5), ab(4)], {"mode": "row"}, ["pd.prelu", "mode='row'", "'channel'"]),
    (A.Prelu, [ab(-1, 4, 5), ab(4)], {"mode": "channel", "data_format": "NCL"},
     ["pd.prelu", "data_format='NCL'", "'NHWC'"]),
    (S.ArgMax, [ab(-1, 4)], {"dtype": "float32"}, ["pd.argmax", "dtype='float32'", "int64"]),
])
def test_unsupported_attribute_values_name_op_attribute_and_value(cls, inputs, attrs, words):
    with pytest.raises(UnsupportedError) as err:
        cls.infer_results(inputs, cls.normalize_attrs(attrs))
    for w in words:
        assert w in str(err.value)


def _one_op_file(tmp_path, op, x_shape=(2, 3), out_shape=(2, 3)):
    import legacy_programs as L

    vs = [L.var("x", shape=x_shape), L.var("out", shape=out_shape)]
    path = tmp_path / "m.pdmodel"
    save_program(path, L.program((vs, [L.feed("x", 0), op, L.fetch("out", 0)])))
    return str(path)


def test_loading_refuses_a_hard_swish_paddle_would_run_with_other_constants(tmp_path):
    import legacy_programs as L

    path = _one_op_file(tmp_path, L.op("hard_swish", {"X": ["x"]}, {"Out": ["out"]},
                                       threshold=("FLOAT", 4.0), scale=("FLOAT", 6.0),
                                       offset=("FLOAT", 3.0)))
    with pytest.raises(UnsupportedError, match=r"pd.hardswish: threshold=4.0 is not supp"
                                               r".*\(raising op 1 \(hard_swish\) of block 0\)"):
        load_model(path, None)


def test_loading_reads_slice_bounds_from_tensors(tmp_path):
    """infer_flags -1: Paddle reads that start from StartsTensorList at run time; so does
    tostatic (runtime_bounds.py), as numpy's x[:, s:] at each s."""
    import legacy_programs as L

    vs = [L.var("x", shape=(2, 5)), L.var("s", "int32", ()), L.var("out", shape=(2, -1))]
    ops = [L.feed("s", 1), L.feed("x", 0),
           L.op("slice", {"Input": ["x"], "StartsTensorList": ["s"], "EndsTensor": [],
                          "EndsTensorList": [], "StartsTensor": []}, {"Out": ["out"]},
                axes=("INTS", [1]), starts=("INTS", [-1]), ends=("INTS", [2147483647]),
                infer_flags=("INTS", [-1]), decrease_axis=("INTS", [])),
           L.fetch("out", 0)]
    path = tmp_path / "m.pdmodel"
    save_program(path, L.program((vs, ops)))
    model = load_model(str(path), None)
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    for start in (0, 2, -1, 7):
        (got,) = model.run([x, np.array(start, np.int32)])
        np.testing.assert_array_equal(got, x[:, start:])


@pytest.mark.parametrize("op_type,slots,attrs", [
    ("concat", {"X": ["x", "x"], "AxisTensor": ["t"]}, {"axis": ("INT", 0)}),
    # x.expand([n, -1]) with n a tensor: shape -1 there, the size in expand_shapes_tensor
    ("expand_v2", {"X": ["x"], "Shape": [], "expand_shapes_tensor": ["t"]},
     {"shape": ("INTS", [-1, -1])}),
    ("tile", {"X": ["x"], "RepeatTimes": ["t"], "repeat_times_tensor": []},
     {"repeat_times": ("INTS", [])}),
])
def test_loading_refuses_attributes_given_as_tensors(tmp_path, op_type, slots, attrs):
    """Paddle writes a tensor-valued axis / shape / bound into an input slot and leaves the
    attribute at a placeholder: running the attribute would be silently wrong."""
    import legacy_programs as L

    vs = [L.var("x", shape=(2, 3)), L.var("t", "int32", (1,)), L.var("out", shape=(2, 3))]
    ops = [L.feed("t", 1), L.feed("x", 0), L.op(op_type, slots, {"Out": ["out"]}, **attrs),
           L.fetch("out", 0)]
    path = tmp_path / "m.pdmodel"
    save_program(path, L.program((vs, ops)))
    with pytest.raises(UnsupportedError, match=f"no pd op handles {op_type} with inputs"):
        load_model(str(path), None)


@pytest.mark.parametrize("cls,inputs,attrs,match", [
    (A.Clip, [ab(3)], {"min": 2.0, "max": 1.0}, "min 2.0 is greater than max 1.0"),
    (A.Softmax, [ab(3, dtype=dtypes.int32)], {"axis": -1}, "floating"),
    (A.Prelu, [ab(-1, 4, 5), ab(5)], {"mode": "channel"}, "needs 4 alpha values"),
    (I.Where, [ab(2, 3, dtype=dtypes.bool_), ab(2, 3), ab(1, 3)], {}, "does not broadcast"),
    (I.Slice, [ab(-1, 5)], {"axes": (1,), "starts": (1,), "ends": (3,),
                            "decrease_axis": (1,)}, "must keep exactly 1"),
    (I.Gather, [ab(4, 5), ab(2, 2, dtype=dtypes.int64)], {}, "1-D, 0-D or \\[N, 1\\]"),
    (J.Concat, [ab(-1, 2, 3), ab(-1, 3, 4)], {"axis": 1}, "differ in dim 2"),
    (J.Split, [ab(-1, 5)], {"sections": (2, 2), "axis": 1}, "add up to 4"),
    (J.Split, [ab(-1, 5)], {"num": 2, "axis": 1}, "does not split into 2"),
    (J.Split, [ab(-1, 5)], {"sections": (5, -1), "axis": 1}, "nothing for the -1"),
    (R.Cumsum, [ab(-1, 5)], {"flatten": True, "axis": 1}, "out of range"),
    (M.Squeeze, [ab(-1, 1)], {"axes": (2,)}, "out of range"),
    (M.Expand, [ab(-1, 3)], {"shape": (-1, 4)}, "cannot expand dim 1 of size 3"),
    (M.Expand, [ab(3)], {"shape": (-1, 3)}, "new leading dim"),
    (M.Flatten, [ab(2, 3, 4)], {"start_axis": 2, "stop_axis": 1}, "comes after"),
    (S.TopK, [ab(-1, 4)], {"k": 5}, "k=5 must be in \\[1, 4\\]"),
    (C.Range, [ab(1), ab(1, dtype=dtypes.int64), ab(1)], {}, "one dtype"),
])
def test_inputs_that_do_not_fit_are_shape_errors(cls, inputs, attrs, match):
    with pytest.raises(ShapeError, match=match):
        cls.infer_results(inputs, cls.normalize_attrs(attrs))


# --- semantics worth pinning down -----------------------------------------------------------------

def test_clip_casts_its_bounds_to_integers_as_paddle_does():
    """Measured with Paddle's legacy executor: clip(int32 [-3..3], -1.5, 1.7) truncates the
    bounds to -1 and 1; FLT_MAX (the default max) saturates."""
    x = np.arange(-3, 4, dtype=np.int32)
    (out,) = A.Clip.run_eager([x], {"min": -1.5, "max": 1.7})
    np.testing.assert_array_equal(out, [-1, -1, -1, 0, 1, 1, 1])
    assert out.dtype == np.int32
    (out,) = A.Clip.run_eager([x], {"min": -1.0, "max": 3.4028234663852886e38})
    np.testing.assert_array_equal(out, [-1, -1, -1, 0, 1, 2, 3])


def test_unsqueeze_and_squeeze_follow_paddles_axis_rules():
    # each unsqueeze axis is a place in the growing output; earlier new dims move along
    assert M.unsqueeze_shape((3, 4), (-1, 1, 3)) == (3, 1, 4, 1, 1)
    assert M.unsqueeze_shape((3, 4), (0, 0)) == (1, 1, 3, 4)
    assert M.unsqueeze_shape((3,), (1, -1)) == (3, 1, 1)
    # squeeze drops listed dims of size 1 only; at compile time a listed -1 goes too
    assert M.squeeze_shape((3, 1, 4), (1, 2)) == (3, 4)
    assert M.squeeze_shape((-1, 1, 4), (0, 1)) == (4,)
    assert M.squeeze_shape((-1, 1, 4, 1), ()) == (-1, 4)


def test_topk_takes_nan_as_largest_and_the_first_of_ties_first():
    x = np.array([[1.0, np.nan, 3.0, 3.0, -1.0]], np.float32)
    out, idx = S.TopK.run_eager([x], {"k": 3, "axis": -1, "largest": True, "sorted": True})
    np.testing.assert_array_equal(idx, [[1, 2, 3]])
    out, idx = S.TopK.run_eager([x], {"k": 3, "axis": -1, "largest": False, "sorted": True})
    np.testing.assert_array_equal(idx, [[4, 0, 2]])
    assert idx.dtype == np.int64


@pytest.mark.interop
def test_nan_handling_of_argmax_and_topk_matches_paddle(real_paddle):
    p = real_paddle
    for row in ([np.nan, 1, 2], [1, np.nan, 3, np.nan], [3, np.nan, 1], [np.nan, np.nan],
                [-np.inf, np.nan, -np.inf]):
        x = np.array([row], np.float32)
        t = p.to_tensor(x)
        (am,) = S.ArgMax.run_eager([x], S.ArgMax.normalize_attrs({"axis": 1}))
        np.testing.assert_array_equal(am, p.argmax(t, axis=1).numpy(), err_msg=str(row))
        for largest in (True, False):
            _, idx = S.TopK.run_eager([x], S.TopK.normalize_attrs(
                {"k": 2, "largest": largest}))
            np.testing.assert_array_equal(idx, p.topk(t, 2, largest=largest)[1].numpy(),
                                          err_msg=f"{row} largest={largest}")


@pytest.mark.interop
def test_range_is_bit_exact_with_paddles_running_sum(real_paddle):
    for s, e, d, dt in ((0.1, 7.3, 0.7, np.float32), (-3.0, 2.9, 0.1, np.float32),
                        (5.0, -5.0, -0.3, np.float64), (-7, 20, 4, np.int32)):
        arrays = [np.array([v], dt) for v in (s, e, d)]
        (ours,) = C.Range.run_eager(arrays, {})
        theirs = real_paddle.arange(*[real_paddle.to_tensor(a) for a in arrays],
                                    dtype=dt).numpy()
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == theirs.dtype


@pytest.mark.interop
def test_reduce_dtype_attributes_in_files_act_as_in_paddle(tmp_path, real_paddle):
    """Paddle 2.x files may set in_dtype/out_dtype: Paddle 3.3.1 casts x to reduce_sum's
    out_dtype before summing and ignores both on the other reductions."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4) + 0.7
    for op_type, attrs, dtype in (("reduce_sum", {"dim": [1], "out_dtype": 3}, "int64"),
                                  ("reduce_sum", {"dim": [1], "in_dtype": 6}, "float32"),
                                  ("reduce_mean", {"dim": [1], "out_dtype": 6}, "float32"),
                                  ("reduce_max", {"dim": [0], "in_dtype": 3,
                                                  "out_dtype": 3}, "float32")):
        case = Case(op_type, R.Sum, [x], {}, None, static=appended(op_type, attrs, dtype),
                    batched=())
        path, expected = paddle_saved(case, real_paddle, tmp_path)
        (got,) = load_model(path, None).run([x])
        assert_close(got, expected[0])


@pytest.mark.interop
@pytest.mark.parametrize("op_type,y_shape,axis", [
    ("elementwise_add", (4,), 1),            # Paddle 2.x conv bias: [C] at axis 1
    ("elementwise_mul", (3, 4), 0),          # 2.x squeeze-excite scale: [N, C] at axis 0
    ("elementwise_mul", (3, 4, 1, 1), -1),   # 3.x squeeze-excite scale
    ("elementwise_sub", (4, 1, 1), 1),       # trailing 1s of Y
    ("elementwise_div", (5,), 2),
])
def test_elementwise_axis_forms_of_vision_models_raise_as_paddle_runs_them(
        op_type, y_shape, axis, tmp_path, real_paddle):
    from tostatic.ops import elementwise as E

    x, y = f32(3, 4, 5, 2), (np.abs(f32(*y_shape)) + 0.5).astype(np.float32)

    def build(paddle, xv, yv):
        from paddle.base.layer_helper import LayerHelper

        helper = LayerHelper(op_type)
        out = helper.create_variable_for_type_inference("float32")
        helper.append_op(type=op_type, inputs={"X": xv, "Y": yv}, outputs={"Out": out},
                         attrs={"axis": axis})
        return out

    case = Case(op_type, E.Add, [x, y], {}, None, static=build, batched=(0,) if axis else ())
    path, expected = paddle_saved(case, real_paddle, tmp_path)
    (got,) = load_model(path, None).run([x, y])
    assert_close(got, expected[0])


# --- random shapes and attributes against Paddle's dygraph ---------------------------------------

def _random_shape(rng, rank=None):
    rank = rng.integers(1, 5) if rank is None else rank
    return tuple(int(d) for d in rng.integers(1, 6, size=rank))


def _slice(rng, p):
    x = f32(*_random_shape(rng))
    axes = sorted(rng.choice(x.ndim, size=rng.integers(1, x.ndim + 1), replace=False).tolist())
    starts = [int(rng.integers(-7, 7)) for _ in axes]
    ends = [int(rng.choice([rng.integers(-7, 8), 2147483647])) for _ in axes]
    kept = [len(range(x.shape[a]))
            and len(range(*slice(s, e).indices(x.shape[a]))) for a, s, e in zip(axes, starts, ends)]
    dec = [a for a, k in zip(axes, kept) if k == 1 and rng.random() < 0.5]
    attrs = {"axes": axes, "starts": starts, "ends": ends, "decrease_axis": dec}
    return I.Slice, [x], attrs, lambda t: p._C_ops.slice(t, axes, starts, ends, [1] * len(axes),
                                                         dec)


def _flatten(rng, p):
    x = f32(*_random_shape(rng))
    a, b = sorted(int(v) for v in rng.integers(0, x.ndim, size=2))
    a, b = a - x.ndim * int(rng.integers(0, 2)), b - x.ndim * int(rng.integers(0, 2))
    return M.Flatten, [x], {"start_axis": a, "stop_axis": b}, lambda t: p.flatten(t, a, b)


def _squeeze(rng, p):
    shape = [int(d) for d in rng.choice([1, 1, 2, 3], size=rng.integers(1, 5))]
    x = f32(*shape)
    axes = [int(a) - x.ndim * int(rng.integers(0, 2))
            for a in rng.choice(x.ndim, size=rng.integers(0, x.ndim + 1), replace=False)]
    return M.Squeeze, [x], {"axes": axes}, lambda t: p.squeeze(t, axes)


def _unsqueeze(rng, p):
    x = f32(*_random_shape(rng))
    axes, rank = [], x.ndim
    for _ in range(rng.integers(1, 4)):
        axes.append(int(rng.integers(-rank - 1, rank + 1)))
        rank += 1
    return M.Unsqueeze, [x], {"axes": axes}, lambda t: p.unsqueeze(t, axes)


def _split(rng, p):
    x = f32(*_random_shape(rng))
    axis = int(rng.integers(-x.ndim, x.ndim))
    n = x.shape[axis]
    if rng.random() < 0.5:
        num = int(rng.choice([d for d in range(1, n + 1) if n % d == 0]))
        return J.Split, [x], {"num": num, "axis": axis}, lambda t: p.split(t, num, axis)
    cuts = sorted(rng.integers(0, n + 1, size=rng.integers(1, 3)).tolist())
    sections = np.diff([0] + cuts + [n]).tolist()
    filled = [i for i, n in enumerate(sections) if n > 0]
    if filled and rng.random() < 0.5:  # Paddle's -1 section must get at least one element
        sections[int(rng.choice(filled))] = -1
    return J.Split, [x], {"sections": sections, "axis": axis}, \
        lambda t: p.split(t, sections, axis)


def _concat(rng, p):
    shape = _random_shape(rng)
    axis = int(rng.integers(-len(shape), len(shape)))
    xs = [f32(*[int(rng.integers(1, 4)) if i == axis % len(shape) else d
                for i, d in enumerate(shape)]) for _ in range(rng.integers(1, 4))]
    return J.Concat, xs, {"axis": axis}, lambda *ts: p.concat(list(ts), axis)


def _gather(rng, p):
    x = f32(*_random_shape(rng))
    axis = int(rng.integers(0, x.ndim))
    index = rng.integers(0, x.shape[axis], size=rng.integers(1, 5)).astype(
        rng.choice([np.int32, np.int64]))
    return I.Gather, [x, index], {"axis": axis}, lambda t, i: p.gather(t, i, axis)


def _topk(rng, p):
    x = f32(*_random_shape(rng))
    axis = int(rng.integers(-x.ndim, x.ndim))
    k = int(rng.integers(1, x.shape[axis] + 1))
    largest = bool(rng.random() < 0.5)
    return S.TopK, [x], {"k": k, "axis": axis, "largest": largest}, \
        lambda t: p.topk(t, k, axis, largest)


def _argmax(rng, p):
    x = f32(*_random_shape(rng))
    axis, keep = int(rng.integers(-x.ndim, x.ndim)), bool(rng.random() < 0.5)
    return S.ArgMax, [x], {"axis": axis, "keepdims": keep}, \
        lambda t: p.argmax(t, axis, keepdim=keep)


def _cumsum(rng, p):
    x = f32(*_random_shape(rng))
    flags = [bool(v) for v in rng.random(3) < 0.5]
    axis = int(rng.integers(-1, 1) if flags[0] else rng.integers(-x.ndim, x.ndim))
    return R.Cumsum, [x], dict(zip(("flatten", "exclusive", "reverse"), flags), axis=axis), \
        lambda t: p._C_ops.cumsum(t, axis, *flags)


def _reduce(rng, p):
    x = f32(*_random_shape(rng), scale=1.0)
    cls, fn = [(R.Sum, p.sum), (R.Mean, p.mean), (R.Max, p.max), (R.Min, p.min),
               (R.Prod, p.prod)][int(rng.integers(5))]
    axes = [int(a) - x.ndim * int(rng.integers(0, 2))
            for a in rng.choice(x.ndim, size=rng.integers(1, x.ndim + 1), replace=False)]
    keep = bool(rng.random() < 0.5)
    return cls, [x], {"axis": axes, "keepdim": keep}, lambda t: fn(t, axis=axes, keepdim=keep)


def _expand_tile(rng, p):
    shape = [int(d) for d in rng.choice([1, 2, 3], size=rng.integers(1, 4))]
    x = f32(*shape)
    if rng.random() < 0.5:
        reps = [int(r) for r in rng.integers(1, 4, size=rng.integers(1, 5))]
        return M.Tile, [x], {"repeat_times": reps}, lambda t: p.tile(t, reps)
    lead = [int(d) for d in rng.integers(1, 4, size=rng.integers(0, 3))]
    target = lead + [int(rng.integers(1, 4)) if d == 1 else int(rng.choice([d, -1]))
                     for d in shape]
    return M.Expand, [x], {"shape": target}, lambda t: p.expand(t, target)


def _softmax(rng, p):
    x = f32(*_random_shape(rng))
    axis = int(rng.integers(-x.ndim, x.ndim))
    return A.Softmax, [x], {"axis": axis}, lambda t: p.nn.functional.softmax(t, axis)


@pytest.mark.interop
@pytest.mark.parametrize("make", [_slice, _flatten, _squeeze, _unsqueeze, _split, _concat,
                                  _gather, _topk, _argmax, _cumsum, _reduce, _expand_tile,
                                  _softmax], ids=lambda f: f.__name__[1:])
def test_random_shapes_and_attributes_match_paddle_dygraph(make, real_paddle):
    rng = np.random.default_rng(sum(map(ord, make.__name__)))
    for _ in range(12):
        cls, inputs, attrs, paddle_fn = make(rng, real_paddle)
        attrs = cls.normalize_attrs({k: tuple(v) if isinstance(v, list) else v
                                     for k, v in attrs.items()})
        ours = cls.run_eager(inputs, attrs)
        theirs = _outs(paddle_fn(*[real_paddle.to_tensor(a) for a in inputs]))
        assert len(ours) == len(theirs), (cls.name, attrs)
        for o, t in zip(ours, theirs):
            t = np.asarray(t.numpy())
            assert o.shape == t.shape and o.dtype == t.dtype, (cls.name, attrs, o.shape, t.shape)
            np.testing.assert_allclose(o, t, rtol=1e-5, atol=1e-5, err_msg=f"{cls.name} {attrs}")
        inferred = cls.infer_results([Abstract.of_array(a) for a in inputs], attrs)
        assert [r.shape for r in inferred] == [o.shape for o in ours], (cls.name, attrs)


def test_cumsum_copies_a_one_element_tensor_even_when_exclusive():
    """Paddle 3.3.1's kernel returns [5] for an exclusive cumsum of [5] (a longer axis starts
    from 0): measured in dygraph, for every rank."""
    for shape in ((1,), (1, 1), ()):
        x = np.full(shape, 5, np.float32)
        (out,) = R.Cumsum.run_eager([x], R.Cumsum.normalize_attrs({"exclusive": True,
                                                                   "axis": -1}))
        np.testing.assert_array_equal(out, x)
    (out,) = R.Cumsum.run_eager([np.ones((3, 1, 2), np.float32)],
                                R.Cumsum.normalize_attrs({"exclusive": True, "axis": 1}))
    np.testing.assert_array_equal(out, np.zeros((3, 1, 2)))


@pytest.mark.interop
def test_a_program_with_paddles_arange_loads(tmp_path, real_paddle):
    case = Case("arange", C.Range, [i64(1, 2, 3, 4, 5)], {}, None, batched=(),
                static=lambda p, x: x + p.arange(0, 10, 2))
    path, expected = paddle_saved(case, real_paddle, tmp_path)
    (got,) = load_model(path, None).run(case.inputs)
    assert_close(got, expected[0])


@pytest.mark.interop
def test_arange_is_written_as_paddle_writes_it_and_runs_in_paddle_inference(tmp_path,
                                                                            real_paddle):
    """paddle.arange: three force_cpu fill_constants and a range op, in eager and exported."""
    import tostatic as ts
    from tostatic.serialization.program_desc import load_program

    np.testing.assert_array_equal(ts.arange(1, 11, 3).numpy(),
                                  real_paddle.arange(1, 11, 3).numpy())
    np.testing.assert_array_equal(ts.arange(0.0, 1.0, 0.3).numpy(),
                                  real_paddle.arange(0.0, 1.0, 0.3).numpy())
    spec = [ts.static.InputSpec([None, 5], "float32", "x")]
    fn = ts.jit.to_static(lambda x: x * ts.arange(0.5, 3.0, 0.5), input_spec=spec)
    unoptimised = ts.compile(fn, spec, passes="")  # constant folding would fold the range
    unoptimised.save(str(tmp_path / "ar"))
    ops = [op for op in load_program(tmp_path / "ar.pdmodel").blocks[0].ops]
    fills = [op for op in ops if op.op_type == "fill_constant"]
    assert [op.op_type for op in ops if op.op_type not in ("feed", "fetch")] == [
        "fill_constant"] * 3 + ["range", "elementwise_mul"]
    assert all(op.attr("force_cpu") and op.attr("shape") == [1] for op in fills)
    x = np.random.default_rng(3).standard_normal((2, 5)).astype("float32")
    from conftest import paddle_predict

    want = x * np.arange(0.5, 3.0, 0.5, dtype="float32")
    (got,) = paddle_predict(tmp_path / "ar.pdmodel", None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-6)
    ts.jit.save(fn, str(tmp_path / "folded"))  # optimised: the range folded to a constant
    (got,) = paddle_predict(tmp_path / "folded.pdmodel", None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-6)
