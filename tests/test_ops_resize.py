"""Resampling and padding ops (tostatic/ops/resize.py, padding.py, sampling.py): eager against
real Paddle's kernels, shape rules with dynamic dims, export to Paddle's legacy ops (run in
paddle.inference and loaded back), raising of programs Paddle wrote, and refusals."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Block, Region

from tostatic.ir import dtypes
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import LEGACY, Abstract
from tostatic.ops import resize as R
from tostatic.passes.base import entry
from tostatic.ir.attr_keys import INPUT_NAME_ATTR
from tostatic.passes.lower_to_program import lower_function
from tostatic.runtime.loaded_model import load_model
from tostatic.runtime.plan import ExecutionPlan
from tostatic.serialization import framework_pb2 as fpb
from tostatic.serialization.program_desc import save_program

from conftest import assert_close, emit, export_forms, paddle_predict

F32 = np.float32


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def function(inputs, build):
    """func.func over named inputs [(name, Abstract)]; `build(block, args)` returns results."""
    types = [a.tensor_type() for _, a in inputs]
    block = Block(arg_types=types)
    outs = build(block, list(block.args))
    block.add_op(func.ReturnOp(*outs))
    fn = func.FuncOp("main", (types, [v.type for v in outs]), Region(block))
    fn.arg_attrs = ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(n)})
                              for n, _ in inputs])
    module = ModuleOp([fn])
    module.verify()
    return module


def export(tmp_path, inputs, build):
    """Lower a hand-built pd function to a saved .pdmodel; its path."""
    path = tmp_path / "m.pdmodel"
    save_program(path, lower_function(entry(function(inputs, build))))
    return path


def ops_of(path, skip=("feed", "fetch")):
    prog = fpb.ProgramDesc.FromString(open(path, "rb").read())
    return [op for op in prog.blocks[0].ops if op.type not in skip]


def signature(op):
    """An OpDesc without variable names: slots with their arity, attrs without callstack."""
    slots = sorted((s.parameter, len(s.arguments)) for s in op.inputs)
    outs = sorted((s.parameter, len(s.arguments)) for s in op.outputs)
    attrs = sorted(str(a).replace("\n", " ") for a in op.attrs if a.name != "op_callstack")
    return op.type, slots, outs, attrs


@pytest.fixture
def paddle_static(real_paddle):
    """Build-and-save in real Paddle's static mode: `save(tmp_path, build)` where build(paddle)
    returns (feeds, fetches) inside a fresh program; the saved prefix."""
    def save(prefix, build):
        paddle = real_paddle
        paddle.enable_static()
        try:
            main, startup = paddle.static.Program(), paddle.static.Program()
            with paddle.utils.unique_name.guard(), \
                    paddle.static.program_guard(main, startup):
                feeds, fetches = build(paddle)
            exe = paddle.static.Executor(paddle.CPUPlace())
            paddle.static.save_inference_model(str(prefix), feeds, fetches, exe, program=main)
        finally:
            paddle.disable_static()
        return str(prefix)
    return save


def paddle_predict_reference(model, feeds):
    """paddle.inference with Paddle's own kernels (oneDNN off: its nearest_interp_v2 samples
    half-pixel centres, floor((k + 0.5) * in / out), and sizes the output in float32, so for
    fractional ratios it disagrees with Paddle's own kernel; integer up-sampling agrees)."""
    return paddle_predict(model, None, feeds, onednn=False)


def interp_kwargs(**kw):
    base = dict(data_layout="NCHW", out_d=-1, out_h=-1, out_w=-1, scale=(),
                align_corners=False, align_mode=0)
    base.update(kw)
    return base


C_OPS = {"nearest": "nearest_interp", "bilinear": "bilinear_interp", "bicubic": "bicubic_interp",
         "linear": "linear_interp", "trilinear": "trilinear_interp"}
CLASSES = {"nearest": R.NearestInterp, "bilinear": R.BilinearInterp, "bicubic": R.BicubicInterp,
           "linear": R.LinearInterp, "trilinear": R.TrilinearInterp}


def paddle_interp(paddle, method, x, size_input=None, sizes=(), **a):
    """Paddle's own kernel (the C op the *_interp_v2 legacy ops run), same attributes."""
    t = [paddle.to_tensor(s) for s in sizes]
    out_size = t[0] if size_input == "out_size" else None
    size_tensor = t if size_input == "size_tensor" else None
    scale_tensor = t[0] if size_input == "scale_tensor" else None
    fn = getattr(paddle._C_ops, C_OPS[method])
    return fn(paddle.to_tensor(x), out_size, size_tensor, scale_tensor, a["data_layout"],
              a["out_d"], a["out_h"], a["out_w"], list(a["scale"]), a.get("interp_method", method),
              a["align_corners"], a["align_mode"]).numpy()


def spatial_shape(layout, n, c, sp):
    return (n, c, *sp) if layout == "NCHW" else (n, *sp, c)


# ---------------------------------------------------------------------------------------------
# interpolation: eager against Paddle's kernels
# ---------------------------------------------------------------------------------------------

# (method, spatial input sizes, output sizes, scales); scales exactly representable in float32,
# since Paddle's eager call passes the Python double where a saved program has the float32
# attribute (those are checked through paddle.inference below)
INTERP_CASES = {
    "nearest": ([(1, 1), (3, 5), (7, 4), (13, 6)], [(1, 3), (5, 9), (16, 16), (26, 12)],
                [(2.0, 2.0), (0.5, 0.5), (1.5, 2.5), (3.0, 0.75)]),
    "bilinear": ([(1, 1), (3, 5), (7, 4), (13, 6)], [(1, 3), (5, 9), (16, 16), (2, 3), (26, 12)],
                 [(2.0, 2.0), (0.5, 0.5), (1.5, 2.5), (3.0, 0.75), (1.0, 1.25)]),
    "bicubic": ([(1, 1), (3, 5), (8, 8)], [(1, 3), (5, 9), (16, 16), (4, 4)],
                [(2.0, 2.0), (0.5, 1.5)]),
    "linear": ([(1,), (5,), (9,)], [(1,), (4,), (11,)], [(2.5,), (0.5,)]),
    "trilinear": ([(1, 2, 3), (3, 4, 5)], [(2, 5, 7), (6, 1, 9), (3, 4, 5)], [(2.0, 1.5, 0.75)]),
}


@pytest.mark.interop
@pytest.mark.parametrize("method", sorted(INTERP_CASES))
def test_interp_eager_matches_paddle(real_paddle, method):
    """Every size / scale / align_corners / align_mode / layout combination, float32 (and
    float64, uint8 for the exact-rounding paths), up and down, integer and fractional."""
    rng = np.random.default_rng(0)
    ins, outs, scales = INTERP_CASES[method]
    cls = CLASSES[method]
    dts = {"nearest": [F32, np.float64, np.uint8, np.int64], "bilinear": [F32, np.float64, np.uint8],
           "linear": [F32, np.uint8], "trilinear": [F32, np.uint8]}.get(method, [F32, np.float64])
    checked = 0
    for layout, (ac, am), sp in itertools.product(("NCHW", "NHWC"),
                                                  [(False, 0), (False, 1), (True, 0), (True, 1)],
                                                  ins):
        if method == "nearest" and ac:
            continue  # checked below with its own rounding
        for dt in dts:
            x = (rng.standard_normal(spatial_shape(layout, 2, 3, sp)) * 40 + 100).astype(dt)
            attrs = [interp_kwargs(data_layout=layout, align_corners=ac, align_mode=am,
                                   **dict(zip(("out_d", "out_h", "out_w")[3 - len(o):], o)))
                     for o in outs]
            attrs += [interp_kwargs(data_layout=layout, align_corners=ac, align_mode=am,
                                    scale=s) for s in scales
                      if all(int(n * s) > 0 for n, s in zip(sp, s))]
            for a in attrs:
                want = paddle_interp(real_paddle, method, x, **a)
                got = cls.eager(x, [], interp_method=method, **a)
                assert_close(got, want)
                checked += 1
    assert checked > 50


@pytest.mark.interop
def test_nearest_align_corners_and_method_dispatch_match_paddle(real_paddle):
    """The op (not F.interpolate) takes align_corners for nearest (rounding to nearest), and
    runs the method its interp_method attribute names, whatever the legacy type."""
    x = np.arange(2 * 3 * 4 * 5, dtype=F32).reshape(2, 3, 4, 5)
    for layout, o in itertools.product(("NCHW", "NHWC"), [(7, 9), (3, 2), (1, 4)]):
        xx = x if layout == "NCHW" else x.transpose(0, 2, 3, 1).copy()
        a = interp_kwargs(data_layout=layout, out_h=o[0], out_w=o[1], align_corners=True)
        assert_close(R.NearestInterp.eager(xx, [], interp_method="nearest", **a),
                     paddle_interp(real_paddle, "nearest", xx, **a))
        b = interp_kwargs(out_h=o[0], out_w=o[1])
        assert_close(R.NearestInterp.eager(x, [], interp_method="bilinear", **b),
                     paddle_interp(real_paddle, "nearest", x, interp_method="bilinear", **b))


@pytest.mark.interop
def test_interp_size_inputs_match_paddle(real_paddle):
    """Sizes from OutSize, SizeTensor (int32 and int64, [1] and []) and Scale (one value or
    one a dim), with Paddle's priority: SizeTensor > OutSize > Scale > scale > out_*; a scale
    sets the ratio even when OutSize overrides the size."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 5)).astype(F32)
    cases = [
        (R.BilinearInterp, "out_size", [np.array([6, 3], np.int32)], {}),
        (R.BilinearInterp, "out_size", [np.array([9, 9], np.int32)], {"scale": (2.0, 2.0)}),
        (R.BilinearInterpSizes, "size_tensor", [np.array([5], np.int32), np.array(4, np.int64)],
         {"out_w": 7}),
        (R.NearestInterpSizes, "size_tensor", [np.array([14], np.int64), np.array([10], np.int32)],
         {}),
        (R.BilinearInterpScale, "scale_tensor", [np.array([1.5], F32)], {}),
        (R.NearestInterpScale, "scale_tensor", [np.array([2.0, 0.5], F32)], {"out_h": 3}),
    ]
    for cls, slot, sizes, extra in cases:
        for ac, am in [(False, 0), (False, 1), (True, 1)]:
            method = cls.ATTRS["interp_method"].default
            if method == "nearest" and ac:
                continue
            a = interp_kwargs(align_corners=ac, align_mode=am, **extra)
            got = cls.eager(x, sizes, interp_method=method, **a)
            assert_close(got, paddle_interp(real_paddle, method, x, slot, sizes, **a))


def test_interp_nearest_integer_upsampling_is_a_repeat_and_exact():
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 4)).astype(F32)
    got = R.NearestInterp.eager(x, [], interp_method="nearest", **interp_kwargs(scale=(2.0, 3.0)))
    np.testing.assert_array_equal(got, x.repeat(2, axis=2).repeat(3, axis=3))
    same = R.BilinearInterp.eager(x, [], interp_method="bilinear",
                                  **interp_kwargs(out_h=3, out_w=4))
    np.testing.assert_array_equal(same, x)  # the kernel's copy when nothing changes size


# ---------------------------------------------------------------------------------------------
# interpolation: shape rules
# ---------------------------------------------------------------------------------------------

def ab(*shape, dtype=dtypes.float32):
    return Abstract(tuple(shape), dtype)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_interp_shape_rule_keeps_dynamic_dims(layout):
    x = np.zeros(spatial_shape(layout, 2, 3, (7, 10)), F32)
    sym = ab(*spatial_shape(layout, -1, 3, (7, 10)))
    for cls, sizes, attrs in [
            (R.BilinearInterp, [], interp_kwargs(out_h=5, out_w=9)),
            (R.NearestInterp, [], interp_kwargs(scale=(2.0, 0.7))),  # int(10 * 0.7f) = 6
            (R.BilinearInterp, [np.array([4, 6], np.int32)], interp_kwargs()),
            (R.BilinearInterpSizes, [np.array([4], np.int32), np.array([3], np.int32)],
             interp_kwargs()),
            (R.BilinearInterpScale, [np.array([1.5], F32)], interp_kwargs())]:
        a = dict(attrs, data_layout=layout)
        out = cls.eager(x, sizes, **a, interp_method=cls.ATTRS["interp_method"].default)
        (shape,) = cls.infer_results([sym] + [Abstract.of_array(s) for s in sizes],
                                     cls.normalize_attrs(a))
        assert shape.dtype == dtypes.float32 and shape.shape[0] == -1
        assert all(s in (-1, d) for s, d in zip(shape.shape[1:], out.shape[1:]))
        if not sizes:
            assert shape.shape[1:] == out.shape[1:]
    # a dynamic spatial dim with a scale stays dynamic
    (shape,) = R.NearestInterp.infer_results([ab(-1, 3, -1, 8)], R.NearestInterp.normalize_attrs(
        interp_kwargs(scale=(2.0, 2.0))))
    assert shape == ab(-1, 3, -1, 16)


def test_interp_bad_attributes_name_op_attribute_and_value():
    x = ab(1, 3, 4, 4)
    bad = [(R.BilinearInterp, x, {"data_layout": "NCDHW"}, "data_layout 'NCDHW'"),
           (R.BilinearInterp, x, {"interp_method": "area"}, "interp_method 'area'"),
           (R.NearestInterp, ab(1, 3, 4, 4, 4), {"interp_method": "bicubic"},
            "interp_method 'bicubic'"),
           (R.LinearInterp, x, {}, "interp_method 'linear'"),  # linear needs a 3-D input
           (R.BilinearInterp, x, {"align_mode": 2}, "align_mode 2")]
    for cls, inp, extra, text in bad:
        attrs = cls.normalize_attrs(interp_kwargs(out_h=8, out_w=8, **extra))
        with pytest.raises(UnsupportedError, match=f"{cls.name}.*{text}"):
            cls.infer_results([inp], attrs)
        with pytest.raises(UnsupportedError, match=text):
            cls.run_eager([np.zeros(inp.shape, F32)], attrs)
    # no size at all (what a SizeTensor/Scale program looks like to the OutSize op)
    with pytest.raises(UnsupportedError, match="out_h=-1 and no scale"):
        R.BilinearInterp.infer_results([x], R.BilinearInterp.normalize_attrs(interp_kwargs()))
    with pytest.raises(ShapeError, match="scale \\[2.0\\] must have 2 values"):
        R.BilinearInterp.infer_results([x], R.BilinearInterp.normalize_attrs(
            interp_kwargs(scale=(2.0,))))
    with pytest.raises(ShapeError, match="OutSize has int32\\[3\\], expected an int tensor of 2"):
        R.BilinearInterp.infer_results([x, ab(3, dtype=dtypes.int32)],
                                       R.BilinearInterp.normalize_attrs(interp_kwargs()))
    with pytest.raises(ShapeError, match="SizeTensor holds 1 tensors, a 4-D input needs 2"):
        R.BilinearInterpSizes.infer_results([x, ab(1, dtype=dtypes.int32)],
                                            R.BilinearInterp.normalize_attrs(interp_kwargs()))


def test_bad_attribute_in_a_loaded_program_is_refused_at_load(tmp_path):
    """A file whose op has a value the kernels lack fails when loaded, naming op and value."""
    import legacy_programs as L

    for op in [L.op("pad3d", {"X": ["x"], "Paddings": []}, {"Out": ["y"]},
                    paddings=("INTS", [1] * 6), mode=("STRING", "symmetric"),
                    value=("FLOAT", 0.0), data_format=("STRING", "NCDHW")),
               L.op("bilinear_interp_v2", {"X": ["x"], "OutSize": [], "SizeTensor": [],
                                           "Scale": []}, {"Out": ["y"]},
                    data_layout=("STRING", "NCHW"), out_d=("INT", -1), out_h=("INT", 4),
                    out_w=("INT", 4), scale=("FLOATS", []), interp_method=("STRING", "area"),
                    align_corners=("BOOLEAN", False), align_mode=("INT", 0))]:
        prog = L.program(([L.var("x", shape=(-1, 3, 4, 4, 4)), L.var("y", shape=())],
                          [L.feed("x", 0), op, L.fetch("y", 0)]))
        save_program(tmp_path / "bad.pdmodel", prog)
        with pytest.raises(UnsupportedError, match="'symmetric'|'area'") as err:
            load_model(str(tmp_path / "bad.pdmodel"), None)
        assert op.op_type in str(err.value)


# ---------------------------------------------------------------------------------------------
# interpolation: export and raise
# ---------------------------------------------------------------------------------------------

def _interp_model(block, args):
    """Every way a size reaches the ops. The first five load back (the OutSize ops); the
    SizeTensor and Scale forms need raising to read their slots (see the refusal test)."""
    x, s, *rest = args
    outs = [
        emit(block, R.BilinearInterp, x, **interp_kwargs(scale=(2.2, 1.7))),
        emit(block, R.BilinearInterp, x, **interp_kwargs(out_h=5, out_w=13, align_corners=True)),
        emit(block, R.NearestInterp, x, **interp_kwargs(scale=(2.0, 2.0), align_mode=1)),
        emit(block, R.NearestInterp, x, s, **interp_kwargs(align_mode=1)),
        emit(block, R.NearestInterp, x, **interp_kwargs(scale=(0.7, 1.3)))]
    if rest:
        t0, t1, sc = rest
        outs += [emit(block, R.BilinearInterpSizes, x, t0, t1, **interp_kwargs(align_mode=1)),
                 emit(block, R.BicubicInterpScale, x, sc, **interp_kwargs())]
    return outs


INTERP_INPUTS = [("x", ab(-1, 3, 10, 7)), ("s", ab(2, dtype=dtypes.int32)),
                 ("t0", ab(1, dtype=dtypes.int32)), ("t1", ab(1, dtype=dtypes.int32)),
                 ("sc", ab(2))]


def _interp_feeds():
    return {"x": np.random.default_rng(3).standard_normal((2, 3, 10, 7)).astype(F32),
            "s": np.array([4, 9], np.int32), "t0": np.array([6], np.int32),
            "t1": np.array([11], np.int32), "sc": np.array([1.5, 0.7], F32)}


def _eager(inputs, build, feeds):
    return ExecutionPlan(entry(function(inputs, build)), {}).run(list(feeds.values()))


def test_interp_exports_every_size_slot_and_loads_back(tmp_path):
    path = export(tmp_path, INTERP_INPUTS, _interp_model)
    all_ops = ops_of(path)
    consts = {o.outputs[0].arguments[0]: o.type for o in all_ops
              if o.type in ("fill_constant", "assign_value")}
    ops = [o for o in all_ops if o.type.endswith("_interp_v2")]
    assert [o.type for o in ops] == ["bilinear_interp_v2"] * 2 + ["nearest_interp_v2"] * 3 + \
        ["bilinear_interp_v2", "bicubic_interp_v2"]
    slots = [{s.parameter: list(s.arguments) for s in o.inputs} for o in ops]
    assert all(sorted(s) == ["OutSize", "Scale", "SizeTensor", "X"] for s in slots)
    assert slots[3]["OutSize"] == ["s"] and slots[3]["SizeTensor"] == [] == slots[3]["Scale"]
    assert slots[5]["SizeTensor"] == ["t0", "t1"] and slots[5]["OutSize"] == []
    assert slots[6]["Scale"] == ["sc"] and slots[0]["OutSize"] == []
    # a scale list is also written as the Scale input (lower_export_forms.py: paddle2onnx)
    assert [consts.get(slots[i]["Scale"][0]) for i in (0, 2, 4)] == \
        ["assign_value", "fill_constant", "assign_value"]
    assert slots[1]["Scale"] == []

    inputs = INTERP_INPUTS[:2]  # x and s: the ops that load back
    feeds = {k: v for k, v in _interp_feeds().items() if k in ("x", "s")}
    path = export(tmp_path, inputs, _interp_model)
    native = load_model(str(path), None).run(list(feeds.values()))
    assert len(native) == 5
    for a, b in zip(native, _eager(inputs, _interp_model, feeds)):
        assert_close(a, b)


@pytest.mark.interop
def test_interp_export_runs_in_paddle_inference(tmp_path, real_paddle):
    """Non-representable scales (2.2, 0.7: float32 attributes) and every size slot, run by
    paddle.inference, against our eager evaluation of the pd function."""
    path = export(tmp_path, INTERP_INPUTS, _interp_model)
    feeds = _interp_feeds()
    theirs = paddle_predict_reference(path, feeds)
    ours = _eager(INTERP_INPUTS, _interp_model, feeds)
    assert len(theirs) == len(ours) == 7
    for a, b in zip(ours, theirs):
        assert_close(a, b)


@pytest.mark.interop
def test_interp_lowers_to_the_op_paddle_writes(tmp_path, paddle_static):
    import paddle.nn.functional as F

    def build(paddle):
        x = paddle.static.data("x", [-1, 3, 10, 7], "float32")
        return [x], [F.interpolate(x, scale_factor=2, mode="nearest"),
                     F.interpolate(x, size=[5, 13], mode="bilinear", align_corners=True),
                     F.upsample(x, scale_factor=[1.5, 0.5], mode="bilinear", align_mode=1,
                                data_format="NHWC")]
    prefix = paddle_static(tmp_path / "p", build)

    def ours(block, args):
        (x,) = args
        return [emit(block, R.NearestInterp, x, **interp_kwargs(scale=(2.0, 2.0))),
                emit(block, R.BilinearInterp, x,
                     **interp_kwargs(out_h=5, out_w=13, align_corners=True)),
                emit(block, R.BilinearInterp, x, **interp_kwargs(
                    scale=(1.5, 0.5), align_mode=1, data_layout="NHWC"))]
    with export_forms(enabled=False):  # Paddle's form, not the one written for paddle2onnx
        path = export(tmp_path, [("x", ab(-1, 3, 10, 7))], ours)
    assert [signature(o) for o in ops_of(path)] == \
        [signature(o) for o in ops_of(prefix + ".pdmodel")]


@pytest.mark.interop
def test_interp_programs_paddle_wrote_load_and_run(tmp_path, paddle_static):
    import paddle.nn.functional as F

    def build(paddle):
        x = paddle.static.data("x", [-1, 3, 10, 7], "float32")
        y = paddle.static.data("y", [-1, 3, 9, 14], "float32")
        s = paddle.static.data("s", [2], "int32")
        return [x, y, s], [
            F.interpolate(x, scale_factor=[2.2, 1.7], mode="bilinear"),
            F.upsample(y, scale_factor=2, mode="nearest", align_mode=1, data_format="NHWC"),
            F.interpolate(x, size=[4, 11], mode="bilinear", align_corners=True),
            F.interpolate(x, size=s, mode="nearest"),  # OutSize, through a cast to int32
            F.interpolate(y, scale_factor=0.5, mode="bicubic")]
    prefix = paddle_static(tmp_path / "p", build)
    rng = np.random.default_rng(4)
    feeds = {"x": rng.standard_normal((2, 3, 10, 7)).astype(F32),
             "y": rng.standard_normal((2, 3, 9, 14)).astype(F32), "s": np.array([6, 3], np.int32)}
    model = load_model(prefix + ".pdmodel", None)
    got = model.run([feeds[n] for n in model.feed_names])
    want = paddle_predict_reference(prefix + ".pdmodel", feeds)
    for a, b in zip(got, want):
        assert_close(a, b)


@pytest.mark.interop
def test_interp_size_tensor_program_raises_to_the_op_reading_the_slot(
        tmp_path, paddle_static, monkeypatch):
    """A SizeTensor program raises to the pd op whose mapping reads SizeTensor (raising
    skips ops that would drop a filled slot), whatever order the ops are registered in, and
    runs as Paddle does."""
    import paddle.nn.functional as F

    def build(paddle):
        x = paddle.static.data("x", [-1, 3, 10, 7], "float32")
        h = paddle.static.data("h", [1], "int32")
        w = paddle.static.data("w", [1], "int64")
        return [x, h, w], [F.interpolate(x, size=[h, w], mode="bilinear")]
    prefix = paddle_static(tmp_path / "p", build)
    feeds = {"x": np.random.default_rng(5).standard_normal((2, 3, 10, 7)).astype(F32),
             "h": np.array([4], np.int32), "w": np.array([15], np.int64)}
    (want,) = paddle_predict_reference(prefix + ".pdmodel", feeds)
    for order in ([R.BilinearInterp, R.BilinearInterpSizes, R.BilinearInterpScale],
                  [R.BilinearInterpScale, R.BilinearInterp, R.BilinearInterpSizes]):
        monkeypatch.setitem(LEGACY, "bilinear_interp_v2", order)
        model = load_model(prefix + ".pdmodel", None)
        (got,) = model.run([feeds[n] for n in model.feed_names])
        assert got.shape == (2, 3, 4, 15)
        assert_close(got, want)


# ---------------------------------------------------------------------------------------------
# pad3d and pad
# ---------------------------------------------------------------------------------------------

from tostatic.ops.padding import Pad, Pad3d  # noqa: E402

PAD3D_PADDINGS = [[1, 2, 0, 1, 2, 0], [0, 0, 0, 0, 0, 0], [3, 1, 2, 2, 1, 1], [-1, 2, 0, -1, 1, 0],
                  [5, 7, 3, 4, 2, 6]]


@pytest.mark.interop
def test_pad3d_eager_matches_paddle(real_paddle):
    """Every mode and format, float and int dtypes, crops (negative paddings), pads larger
    than the dim (circular, replicate; reflect refuses them, as Paddle does)."""
    rng = np.random.default_rng(6)
    checked = 0
    for mode, fmt, dt, shape, pads in itertools.product(
            ["constant", "reflect", "replicate", "circular"], ["NCDHW", "NDHWC"],
            [F32, np.float64, np.int32, np.int64], [(2, 3, 4, 5, 6), (1, 2, 1, 3, 2)],
            PAD3D_PADDINGS):
        x = (rng.standard_normal(shape) * 10).astype(dt)
        a = dict(paddings=pads, mode=mode, value=1.5, data_format=fmt)
        try:
            want = real_paddle._C_ops.pad3d(real_paddle.to_tensor(x), pads, mode, 1.5,
                                            fmt).numpy()
        except ValueError:
            with pytest.raises(ShapeError, match="reflect padding"):
                Pad3d.eager(x, [], **a)
            continue
        assert_close(Pad3d.eager(x, [], **a), want)
        checked += 1
    assert checked > 250
    x = rng.standard_normal((2, 3, 4, 5, 6)).astype(F32)
    p = np.array([1, 2, 0, 1, 2, 0], np.int32)
    want = real_paddle._C_ops.pad3d(real_paddle.to_tensor(x), real_paddle.to_tensor(p), "reflect",
                                    0.0, "NCDHW").numpy()
    assert_close(Pad3d.eager(x, [p], paddings=(0,) * 6, mode="reflect", value=0.0,
                             data_format="NCDHW"), want)


@pytest.mark.interop
def test_legacy_pad_eager_matches_paddle(real_paddle):
    rng = np.random.default_rng(7)
    for shape, pads in [((2, 3, 4), [1, 0, 0, 2, 3, 1]), ((3, 4), [0, 0, 1, 2]),
                        ((2, 3, 4, 5), [1] * 8), ((5,), [2, 3])]:
        for dt in (F32, np.int64):
            x = (rng.standard_normal(shape) * 10).astype(dt)
            want = real_paddle._C_ops.pad(real_paddle.to_tensor(x), pads, -2.5).numpy()
            assert_close(Pad.eager(x, paddings=pads, pad_value=-2.5), want)


def test_pad_shape_rules_keep_dynamic_dims():
    attrs = Pad3d.normalize_attrs(dict(paddings=(1, 2, 0, 1, 3, 0), mode="replicate"))
    (out,) = Pad3d.infer_results([ab(-1, 3, 4, -1, 6)], attrs)
    assert out == ab(-1, 3, 7, -1, 9)
    x = np.zeros((2, 3, 4, 5, 6), F32)
    assert Pad3d.run_eager([x], attrs)[0].shape == (2, 3, 7, 6, 9)
    (out,) = Pad3d.infer_results([ab(-1, 4, 5, 6, 3), ab(6, dtype=dtypes.int32)],
                                 Pad3d.normalize_attrs(dict(data_format="NDHWC")))
    assert out == ab(-1, -1, -1, -1, 3)
    (out,) = Pad.infer_results([ab(-1, 3, 4)], Pad.normalize_attrs(dict(paddings=(0, 0, 1, 2, 3, 4))))
    assert out == ab(-1, 6, 11)


def test_pad_bad_attributes_name_op_attribute_and_value():
    x = ab(1, 3, 4, 4, 4)
    for extra, err, text in [
            ({"mode": "symmetric"}, UnsupportedError, "pd.pad3d.*mode 'symmetric'"),
            ({"data_format": "NCHW"}, UnsupportedError, "pd.pad3d.*data_format 'NCHW'"),
            ({"mode": "reflect", "paddings": (4, 0, 0, 0, 0, 0)}, ShapeError,
             "reflect padding \\[4, 0\\] must be smaller than the dim it pads \\(4\\)"),
            ({"paddings": (1, 1)}, ShapeError, "must have 6 values")]:
        attrs = Pad3d.normalize_attrs(extra)
        with pytest.raises(err, match=text):
            Pad3d.infer_results([x], attrs)
        with pytest.raises(err, match=text):
            Pad3d.run_eager([np.zeros(x.shape, F32)], attrs)
    with pytest.raises(ShapeError, match="must be 5-D, got rank 4 \\(F.pad unsqueezes"):
        Pad3d.infer_results([ab(1, 3, 4, 4)], Pad3d.normalize_attrs({}))
    with pytest.raises(ShapeError, match="must be >= 0"):
        Pad.infer_results([ab(3, 4)], Pad.normalize_attrs({"paddings": (0, 0, -1, 2)}))


def _pad_model(block, args):
    x, y, p = args
    return [emit(block, Pad3d, x, paddings=(1, 2, 0, 1, 2, 0), mode="constant", value=0.1),
            emit(block, Pad3d, x, paddings=(2, 1, 1, 3, 1, 1), mode="reflect"),
            emit(block, Pad3d, x, paddings=(4, 0, 1, 7, 0, 2), mode="replicate"),
            emit(block, Pad3d, x, paddings=(6, 1, 0, 2, 3, 0), mode="circular",
                 data_format="NDHWC"),
            emit(block, Pad3d, x, p, paddings=(), mode="reflect"),  # as F.pad writes it
            emit(block, Pad, y, paddings=(0, 0, 1, 2, 3, 1), pad_value=-1.25)]


PAD_INPUTS = [("x", ab(-1, 3, 4, 5, 6)), ("y", ab(-1, 3, 4)), ("p", ab(6, dtype=dtypes.int32))]


def _pad_feeds():
    rng = np.random.default_rng(8)
    return {"x": rng.standard_normal((2, 3, 4, 5, 6)).astype(F32),
            "y": rng.standard_normal((2, 3, 4)).astype(F32),
            "p": np.array([1, 0, 2, 1, 0, 3], np.int32)}


def test_pad_exports_and_loads_back(tmp_path):
    path = export(tmp_path, PAD_INPUTS, _pad_model)
    ops = ops_of(path)
    assert [o.type for o in ops] == ["pad3d"] * 5 + ["pad"]
    slots = [{s.parameter: list(s.arguments) for s in o.inputs} for o in ops]
    assert slots[0] == {"X": ["x"], "Paddings": []} and slots[4] == {"X": ["x"], "Paddings": ["p"]}
    feeds = _pad_feeds()
    native = load_model(str(path), None).run(list(feeds.values()))
    for a, b in zip(native, _eager(PAD_INPUTS, _pad_model, feeds)):
        assert_close(a, b)


@pytest.mark.interop
def test_pad_export_runs_in_paddle_inference(tmp_path, real_paddle):
    path = export(tmp_path, PAD_INPUTS, _pad_model)
    feeds = _pad_feeds()
    theirs = paddle_predict_reference(path, feeds)
    assert len(theirs) == 6
    for a, b in zip(_eager(PAD_INPUTS, _pad_model, feeds), theirs):
        assert_close(a, b)


@pytest.mark.interop
def test_pad_lowers_to_the_ops_paddle_writes_and_raises_from_them(tmp_path, paddle_static):
    """F.pad of a 5-D input writes pad3d directly (a tensor pad fills Paddings), a constant
    pad of every dim writes the legacy `pad`; ours are the same ops, and Paddle's run here."""
    import paddle.nn.functional as F

    def build(paddle):
        x = paddle.static.data("x", [-1, 3, 4, 5, 6], "float32")
        y = paddle.static.data("y", [-1, 3, 4], "float32")
        p = paddle.static.data("p", [6], "int32")
        return [x, y, p], [
            F.pad(x, [1, 2, 0, 1, 2, 0], value=0.1),
            F.pad(x, [2, 1, 1, 3, 1, 1], mode="reflect"),
            F.pad(x, [4, 0, 1, 7, 0, 2], mode="replicate"),
            F.pad(x, [6, 1, 0, 2, 3, 0], mode="circular", data_format="NDHWC"),
            F.pad(x, p, mode="reflect"),
            F.pad(y, [0, 0, 1, 2, 3, 1], value=-1.25, pad_from_left_axis=True)]
    prefix = paddle_static(tmp_path / "p", build)
    path = export(tmp_path, PAD_INPUTS, _pad_model)
    assert [signature(o) for o in ops_of(path)] == \
        [signature(o) for o in ops_of(prefix + ".pdmodel")]
    feeds = _pad_feeds()
    model = load_model(prefix + ".pdmodel", None)
    got = model.run([feeds[n] for n in model.feed_names])
    for a, b in zip(got, paddle_predict_reference(prefix + ".pdmodel", feeds)):
        assert_sampled_close(a, b)


@pytest.mark.interop
def test_pad_of_4d_input_end_to_end(tmp_path, paddle_static):
    """F.pad on 4-D NCHW / NHWC input: Paddle writes unsqueeze2 -> pad3d -> squeeze2."""
    if not {"unsqueeze2", "squeeze2"} <= set(LEGACY):
        pytest.skip("needs the unsqueeze2 / squeeze2 ops (vision-shape branch)")
    import paddle.nn.functional as F

    def build(paddle):
        x = paddle.static.data("x", [-1, 3, 5, 6], "float32")
        return [x], [F.pad(x, [1, 2, 3, 0], mode="reflect"),
                     F.pad(x, [2, 0, 1, 1], value=0.5, data_format="NHWC"),
                     F.pad(x, [1, 1, 2, 2], mode="replicate")]
    prefix = paddle_static(tmp_path / "p", build)
    assert [o.type for o in ops_of(prefix + ".pdmodel")] == \
        ["unsqueeze2", "pad3d", "squeeze2"] * 3
    feeds = {"x": np.random.default_rng(9).standard_normal((2, 3, 5, 6)).astype(F32)}
    got = load_model(prefix + ".pdmodel", None).run([feeds["x"]])
    want = paddle_predict_reference(prefix + ".pdmodel", feeds)
    for a, b in zip(got, want):
        assert_close(a, b)
    x = feeds["x"]
    np.testing.assert_array_equal(got[0], np.pad(x, [(0, 0), (0, 0), (3, 0), (1, 2)], "reflect"))

    # the pd ops F.pad will emit for it lower to the same three ops, and run so in Paddle
    unsqueeze, squeeze = LEGACY["unsqueeze2"][0], LEGACY["squeeze2"][0]

    def ours(block, args):
        outs = []
        for axis, pads, kw in [(2, (1, 2, 3, 0, 0, 0), {"mode": "reflect"}),
                               (1, (2, 0, 1, 1, 0, 0), {"value": 0.5, "data_format": "NDHWC"}),
                               (2, (1, 1, 2, 2, 0, 0), {"mode": "replicate"})]:
            u = emit(block, unsqueeze, args[0], axes=(axis,))
            outs.append(emit(block, squeeze, emit(block, Pad3d, u, paddings=pads, **kw),
                             axes=(axis,)))
        return outs
    inputs = [("x", ab(-1, 3, 5, 6))]
    path = export(tmp_path, inputs, ours)
    assert [signature(o) for o in ops_of(path)] == \
        [signature(o) for o in ops_of(prefix + ".pdmodel")]
    for a, b in zip(paddle_predict_reference(path, feeds), _eager(inputs, ours, feeds)):
        assert_close(a, b)
    for a, b in zip(got, _eager(inputs, ours, feeds)):
        assert_close(a, b)


# ---------------------------------------------------------------------------------------------
# grid_sampler and affine_grid
# ---------------------------------------------------------------------------------------------

from tostatic.ops.sampling import AffineGrid, GridSample  # noqa: E402


@pytest.mark.interop
def test_grid_sample_eager_matches_paddle(real_paddle):
    """Both modes, every padding mode, align_corners, float32/float64, 4-D and 5-D, grids
    reaching outside [-1, 1] and hitting exact pixel centres and halves."""
    rng = np.random.default_rng(10)
    for nd, mode, pm, ac, dt in itertools.product(
            [2, 3], ["bilinear", "nearest"], ["zeros", "border", "reflection"], [False, True],
            [F32, np.float64]):
        for sp in ([(4, 5), (1, 1), (7, 3)] if nd == 2 else [(3, 4, 5), (1, 2, 1)]):
            x = rng.standard_normal((2, 3) + sp).astype(dt)
            osp = (5, 6) if nd == 2 else (2, 3, 4)
            g = rng.uniform(-1.6, 1.6, (2,) + osp + (nd,)).astype(dt)
            g.reshape(-1)[:8] = [-1, 1, 0, -1.5, 1.25, 0.5, -0.6, 0.2]
            want = real_paddle._C_ops.grid_sample(real_paddle.to_tensor(x),
                                                  real_paddle.to_tensor(g), mode, pm, ac).numpy()
            assert_close(GridSample.eager(x, g, mode=mode, padding_mode=pm, align_corners=ac),
                         want)


@pytest.mark.interop
def test_affine_grid_eager_matches_paddle(real_paddle):
    rng = np.random.default_rng(11)
    for ac, shape in itertools.product([False, True], [[2, 3, 5, 6], [2, 3, 1, 4], [3, 1, 1, 1],
                                                       [2, 3, 4, 5, 6], [2, 1, 1, 2, 3]]):
        theta = rng.standard_normal((shape[0], 2, 3) if len(shape) == 4 else
                                    (shape[0], 3, 4)).astype(F32)
        want = real_paddle._C_ops.affine_grid(real_paddle.to_tensor(theta), shape, ac).numpy()
        got = AffineGrid.eager(theta, [], output_shape=shape, align_corners=ac)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # NaN where Paddle's is
        got = AffineGrid.eager(theta, [np.array(shape, np.int32)], output_shape=(),
                               align_corners=ac)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_sampling_shape_rules_and_refusals():
    attrs = GridSample.normalize_attrs({"align_corners": False})
    (out,) = GridSample.infer_results([ab(-1, 3, 8, 9), ab(-1, 5, 6, 2)], attrs)
    assert out == ab(-1, 3, 5, 6)
    (out,) = GridSample.infer_results([ab(-1, 3, 4, 8, 9), ab(-1, 2, 5, 6, 3)], attrs)
    assert out == ab(-1, 3, 2, 5, 6)
    for extra, text in [({"mode": "bicubic"}, "pd.grid_sample.*mode 'bicubic'"),
                        ({"padding_mode": "circular"}, "padding_mode 'circular'")]:
        bad = GridSample.normalize_attrs(extra)
        with pytest.raises(UnsupportedError, match=text):
            GridSample.infer_results([ab(1, 3, 8, 9), ab(1, 5, 6, 2)], bad)
        with pytest.raises(UnsupportedError, match=text):
            GridSample.run_eager([np.zeros((1, 3, 8, 9), F32), np.zeros((1, 5, 6, 2), F32)], bad)
    with pytest.raises(ShapeError, match="grid \\[1, 5, 6, 3\\] must be \\(N, H, W, 2\\)"):
        GridSample.infer_results([ab(1, 3, 8, 9), ab(1, 5, 6, 3)], attrs)
    (out,) = AffineGrid.infer_results([ab(-1, 2, 3)], AffineGrid.normalize_attrs(
        {"output_shape": (4, 3, 5, 7)}))
    assert out == ab(-1, 5, 7, 2)
    (out,) = AffineGrid.infer_results([ab(-1, 3, 4), ab(5, dtype=dtypes.int32)],
                                      AffineGrid.normalize_attrs({}))
    assert out == ab(-1, -1, -1, -1, 3)
    with pytest.raises(ShapeError, match="output_shape \\[4, 3, 5\\] must have 4 values"):
        AffineGrid.infer_results([ab(-1, 2, 3)], AffineGrid.normalize_attrs(
            {"output_shape": (4, 3, 5)}))


def _grid_model(block, args):
    x, theta, shape = args
    grid = emit(block, AffineGrid, theta, output_shape=(2, 3, 5, 6), align_corners=False)
    grid2 = emit(block, AffineGrid, theta, shape, align_corners=True)
    return [grid,
            emit(block, GridSample, x, grid, mode="bilinear", padding_mode="zeros",
                 align_corners=False),
            emit(block, GridSample, x, grid, mode="nearest", padding_mode="reflection",
                 align_corners=False),
            emit(block, GridSample, x, grid2, mode="bilinear", padding_mode="border",
                 align_corners=True)]


GRID_INPUTS = [("x", ab(-1, 3, 8, 9)), ("theta", ab(-1, 2, 3)), ("shape", ab(4, dtype=dtypes.int32))]


def _grid_feeds():
    rng = np.random.default_rng(12)
    return {"x": rng.standard_normal((2, 3, 8, 9)).astype(F32),
            "theta": (np.array([[1.2, 0.3, 0.1], [-0.2, 0.9, -0.3]], F32)
                      + rng.standard_normal((2, 2, 3)).astype(F32) * 0.2),
            "shape": np.array([2, 3, 4, 7], np.int32)}


def test_sampling_exports_and_loads_back(tmp_path):
    path = export(tmp_path, GRID_INPUTS, _grid_model)
    assert [o.type for o in ops_of(path)] == ["affine_grid"] * 2 + ["grid_sampler"] * 3
    feeds = _grid_feeds()
    native = load_model(str(path), None).run(list(feeds.values()))
    for a, b in zip(native, _eager(GRID_INPUTS, _grid_model, feeds)):
        assert_close(a, b)


def assert_sampled_close(got, want):
    """Paddle computes the sampling grid in float32 with FMA where the CPU has it: a weight
    differs in its last bits, and a sample near a cell edge by up to ~2e-6 absolute (seen on an
    AVX-512 Xeon, not on the machine the test was written on)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.interop
def test_sampling_export_runs_in_paddle_inference(tmp_path, real_paddle):
    path = export(tmp_path, GRID_INPUTS, _grid_model)
    feeds = _grid_feeds()
    theirs = paddle_predict_reference(path, feeds)
    for a, b in zip(_eager(GRID_INPUTS, _grid_model, feeds), theirs):
        assert_sampled_close(a, b)


@pytest.mark.interop
def test_sampling_lowers_to_the_ops_paddle_writes_and_raises_from_them(tmp_path, paddle_static):
    """affine_grid as F.affine_grid writes it (attribute or OutputShape input); grid_sampler as
    Paddle 2.x's F.grid_sample wrote it (3.3.1's Python writes it only in PIR programs), with
    its use_cudnn attribute, which 3.3.1's saving drops."""
    import paddle.nn.functional as F

    def build(paddle):
        from paddle.base.layer_helper import LayerHelper

        x = paddle.static.data("x", [-1, 3, 8, 9], "float32")
        theta = paddle.static.data("theta", [-1, 2, 3], "float32")
        shape = paddle.static.data("shape", [4], "int32")
        grid = F.affine_grid(theta, [2, 3, 5, 6], align_corners=False)
        grid2 = F.affine_grid(theta, shape, align_corners=True)
        outs = [grid]
        for g, mode, pm, ac in [(grid, "bilinear", "zeros", False),
                                (grid, "nearest", "reflection", False),
                                (grid2, "bilinear", "border", True)]:
            helper = LayerHelper("grid_sample")
            out = helper.create_variable_for_type_inference(x.dtype)
            helper.append_op(type="grid_sampler", inputs={"X": x, "Grid": g},
                             outputs={"Output": out},
                             attrs={"mode": mode, "padding_mode": pm, "align_corners": ac,
                                    "use_cudnn": True})
            outs.append(out)
        return [x, theta, shape], outs
    prefix = paddle_static(tmp_path / "p", build)
    path = export(tmp_path, GRID_INPUTS, _grid_model)
    assert [signature(o) for o in ops_of(path)] == \
        [signature(o) for o in ops_of(prefix + ".pdmodel")]
    feeds = _grid_feeds()
    model = load_model(prefix + ".pdmodel", None)
    got = model.run([feeds[n] for n in model.feed_names])
    for a, b in zip(got, paddle_predict_reference(prefix + ".pdmodel", feeds)):
        assert_sampled_close(a, b)


@pytest.mark.interop
def test_first_generation_interp_ops_raise_run_and_lower_back(tmp_path, paddle_static):
    """nearest_interp / bilinear_interp (one float scale), as Paddle 2.x's fluid resize_*
    wrote them: raised, run as Paddle runs them, and lowered back to the same ops."""
    cases = [("nearest_interp", dict(out_h=9, out_w=4)), ("nearest_interp", dict(scale=1.7)),
             ("bilinear_interp", dict(scale=2.0, out_h=3, out_w=3)),
             ("bilinear_interp", dict(out_h=9, out_w=4, align_corners=True, align_mode=1))]

    def build(paddle):
        from paddle.base.layer_helper import LayerHelper

        x = paddle.static.data("x", [-1, 3, 7, 5], "float32")
        outs = []
        for op_type, extra in cases:
            helper = LayerHelper(op_type)
            out = helper.create_variable_for_type_inference("float32")
            attrs = dict(dict(out_h=-1, out_w=-1, interp_method=op_type.split("_")[0],
                              align_corners=False, align_mode=0, data_layout="NCHW"), **extra)
            helper.append_op(type=op_type, inputs={"X": x}, outputs={"Out": out}, attrs=attrs)
            outs.append(out)
        return [x], outs
    prefix = paddle_static(tmp_path / "p", build)
    feeds = {"x": np.random.default_rng(13).standard_normal((2, 3, 7, 5)).astype(F32)}
    model = load_model(prefix + ".pdmodel", None)
    got = model.run([feeds["x"]])
    for a, b in zip(got, paddle_predict_reference(prefix + ".pdmodel", feeds)):
        assert_sampled_close(a, b)
    path = tmp_path / "again.pdmodel"
    save_program(path, lower_function(entry(model.module)))
    assert [o.type for o in ops_of(path)] == [t for t, _ in cases]
    assert [a for a in ops_of(path)[1].attrs if a.name == "scale"][0].f == pytest.approx(1.7)
