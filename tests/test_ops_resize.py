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
from tostatic.passes.lower_to_program import INPUT_NAME_ATTR, lower_function
from tostatic.runtime.loaded_model import load_model
from tostatic.runtime.plan import ExecutionPlan
from tostatic.serialization import framework_pb2 as fpb
from tostatic.serialization.program_desc import save_program

from conftest import assert_close, emit

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
    """paddle.inference on CPU without oneDNN: Paddle's own kernels, as its eager mode and
    Executor run them. (Paddle Inference's default oneDNN nearest_interp_v2 samples
    half-pixel centres, floor((k + 0.5) * in / out), and sizes the output in float32, so for
    fractional ratios it disagrees with Paddle's own kernel; integer up-sampling agrees.)"""
    from paddle import inference

    cfg = inference.Config(str(model), "")
    cfg.disable_gpu()
    cfg.disable_glog_info()
    cfg.disable_mkldnn()
    predictor = inference.create_predictor(cfg)
    for name in predictor.get_input_names():
        h = predictor.get_input_handle(name)
        h.reshape(feeds[name].shape)
        h.copy_from_cpu(feeds[name])
    predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


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
    ops = ops_of(path)
    assert [o.type for o in ops] == ["bilinear_interp_v2"] * 2 + ["nearest_interp_v2"] * 3 + \
        ["bilinear_interp_v2", "bicubic_interp_v2"]
    slots = [{s.parameter: list(s.arguments) for s in o.inputs} for o in ops]
    assert all(sorted(s) == ["OutSize", "Scale", "SizeTensor", "X"] for s in slots)
    assert slots[3]["OutSize"] == ["s"] and slots[3]["SizeTensor"] == [] == slots[3]["Scale"]
    assert slots[5]["SizeTensor"] == ["t0", "t1"] and slots[5]["OutSize"] == []
    assert slots[6]["Scale"] == ["sc"] and slots[0]["OutSize"] == []

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
def test_interp_size_tensor_program_is_refused_until_raising_reads_the_slot(
        tmp_path, paddle_static, monkeypatch):
    """A SizeTensor program raises to the OutSize op first (raising picks the first pd op of
    a legacy type) and is refused, naming the attribute; with the SizeTensor op first (what
    choosing by the filled slots would do) it runs as Paddle does."""
    import paddle.nn.functional as F

    def build(paddle):
        x = paddle.static.data("x", [-1, 3, 10, 7], "float32")
        h = paddle.static.data("h", [1], "int32")
        w = paddle.static.data("w", [1], "int64")
        return [x, h, w], [F.interpolate(x, size=[h, w], mode="bilinear")]
    prefix = paddle_static(tmp_path / "p", build)
    with pytest.raises(UnsupportedError, match="out_h=-1 and no scale"):
        load_model(prefix + ".pdmodel", None)
    monkeypatch.setitem(LEGACY, "bilinear_interp_v2",
                        [R.BilinearInterpSizes, R.BilinearInterp, R.BilinearInterpScale])
    feeds = {"x": np.random.default_rng(5).standard_normal((2, 3, 10, 7)).astype(F32),
             "h": np.array([4], np.int32), "w": np.array([15], np.int64)}
    model = load_model(prefix + ".pdmodel", None)
    (got,) = model.run([feeds[n] for n in model.feed_names])
    (want,) = paddle_predict_reference(prefix + ".pdmodel", feeds)
    assert_close(got, want)
