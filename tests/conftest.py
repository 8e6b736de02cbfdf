import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "paddle-3.3.1"

# The fixtures tests/fixtures/README.md lists, written out rather than read from the directory:
# a fixture that goes missing then fails the tests parametrized on it instead of quietly
# shrinking their parameter lists.
FIXTURE_NAMES = ["control_flow", "depthwise_cnn", "embed_ln", "mlp", "simple_net", "small_cnn",
                 "static_fc", "two_outputs"]
# model.pdiparams: every fixture but two_outputs (no parameters); model.pdiparams.info: the
# five made by jit.save of a Layer (not the function, not save_inference_model).
FIXTURES_WITH_PARAMS = [n for n in FIXTURE_NAMES if n != "two_outputs"]
FIXTURES_WITH_INFO = ["depthwise_cnn", "embed_ln", "mlp", "simple_net", "small_cnn"]


def fixture_cases(name):
    """[(dir, feeds by name, expected outputs)] for every io file of a Paddle fixture; never
    empty (a loop over it always checks something)."""
    d = FIXTURES / name
    meta = json.loads((d / "meta.json").read_text())
    cases = []
    for io_file in meta["io_files"]:
        z = np.load(d / io_file)
        feeds = {f["name"]: z[f["name"]] for f in meta["feeds"]}
        expected = [z[f"out{i}"] for i in range(len(meta["fetches"]))]
        assert feeds and expected, f"{name}/{io_file}: no feeds or no outputs"
        cases.append((d, feeds, expected))
    assert len(cases) == (2 if name == "control_flow" else 1), (name, meta["io_files"])
    return cases


@contextmanager
def export_forms(enabled: bool = True):
    """jit.save's forms for paddle2onnx (passes/lower_export_forms.py), on or off; yields the
    list of the pd ops written in such a form meanwhile. Byte comparisons with Paddle's
    jit.save turn them off where they applied: there tostatic writes another form on purpose
    (test_export_interop checks it), everything else must still be Paddle's bytes."""
    from tostatic.passes import lowering

    saved = dict(lowering.EXPORT_FORMS)
    used: list[str] = []

    def recorded(form):
        def write(low, op, *rest):
            done = enabled and form(low, op, *rest)
            if done:
                used.append(op.name)
            return done
        return write

    lowering.EXPORT_FORMS.update({cls: recorded(f) for cls, f in saved.items()})
    try:
        yield used
    finally:
        lowering.EXPORT_FORMS.clear()
        lowering.EXPORT_FORMS.update(saved)


def describe_program(path):
    """A .pdmodel as comparable parts: vars as bytes, ops as text without op_callstack."""
    from tostatic.serialization import framework_pb2 as fpb

    prog = fpb.ProgramDesc.FromString(open(path, "rb").read())
    out = {"version": prog.version.version,
           "op_version_map": [(p.op_name, p.op_version.version) for p in prog.op_version_map.pair]}
    for block in prog.blocks:
        out[f"vars{block.idx}"] = [v.SerializeToString() for v in block.vars]
        ops = []
        for op in block.ops:
            kept = fpb.OpDesc()
            kept.CopyFrom(op)
            del kept.attrs[:]
            kept.attrs.extend(a for a in op.attrs if a.name != "op_callstack")
            ops.append(str(kept))
        out[f"ops{block.idx}"] = ops
    return out


def assert_close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape,
                                                                 want.dtype, want.shape)
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


def assert_all_close(got, want):
    """assert_close for each pair of two output lists that must have the same, non-zero length
    (zip alone would stop at the shorter one and pass on missing outputs)."""
    got, want = list(got), list(want)
    assert want and len(got) == len(want), f"{len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        try:
            assert_close(g, w)
        except AssertionError as e:
            raise AssertionError(f"output {i}: {e}") from None


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory):
    """Generated kernels (tostatic.codegen) go to a cache made for this test session: each
    compiles once a session, whatever the machine's own cache holds (TOSTATIC_CACHE_DIR, when
    set, is kept)."""
    os.environ.setdefault("TOSTATIC_CACHE_DIR", str(tmp_path_factory.mktemp("kernels")))


@pytest.fixture(scope="session")
def real_paddle():
    """Real PaddlePaddle 3.3.1 in legacy-IR mode (writes/reads .pdmodel)."""
    os.environ.setdefault("FLAGS_enable_pir_api", "0")
    return pytest.importorskip("paddle")


def paddle_predict(model, params, feeds, onednn=True):
    """Run files with real paddle.inference on CPU; outputs in fetch order.

    `onednn=False` runs Paddle's own CPU kernels (as its eager mode and Executor do): the
    default oneDNN path disagrees with them on Paddle's own programs in a few places
    (nearest_interp_v2 at fractional ratios, expand_v2 with -1, some split and slice cases)
    and fails outright on an NHWC conv with a bias."""
    from paddle import inference

    cfg = inference.Config(str(model), str(params) if params else "")
    cfg.disable_gpu()
    cfg.disable_glog_info()
    if not onednn:
        cfg.disable_mkldnn()
    predictor = inference.create_predictor(cfg)
    for name in predictor.get_input_names():
        h = predictor.get_input_handle(name)
        h.reshape(feeds[name].shape)
        h.copy_from_cpu(feeds[name])
    predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


@pytest.fixture
def static():
    """Static mode with fresh programs, names and scope, as a new Paddle process has them."""
    import tostatic as paddle
    from tostatic.utils import unique_name

    main, startup = paddle.static.Program(), paddle.static.Program()
    paddle.enable_static()
    try:
        with unique_name.guard(), paddle.static.program_guard(main, startup), \
                paddle.static.scope_guard(paddle.static.Scope()):
            yield main, startup
    finally:
        paddle.disable_static()


def emit(block, cls, *operands, **attrs):
    """Append one pd op with the result types its rule infers to `block`; its results."""
    from tostatic.ir.opdef import Abstract

    attrs = cls.normalize_attrs(attrs)
    types = [r.tensor_type() for r in
             cls.infer_results([Abstract.of_value(v) for v in operands], attrs)]
    op = cls.make(list(operands), attrs, types)
    block.add_op(op)
    return op.results[0] if len(op.results) == 1 else list(op.results)


def guide_simple_net():
    """The guide's section 1.1 SimpleNet (a class made on demand: tostatic is imported late)."""
    import tostatic as paddle

    class SimpleNet(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.linear = paddle.nn.Linear(10, 3)

        def forward(self, x, y):
            return self.linear(x) + y

    return SimpleNet


@pytest.fixture(scope="session")
def paddle_vision_models(real_paddle, tmp_path_factory):
    """paddle.vision.models cases as Paddle saved and ran them, made once a session
    (vision_models_harness.PaddleModels)."""
    from vision_models_harness import PaddleModels

    return PaddleModels(real_paddle, tmp_path_factory.mktemp("paddle_vision_models"))


def one_op_module(cls, types, attrs):
    """A module whose `main` applies one pd op to arguments x0, x1, ... and returns its results."""
    from xdsl.dialects import func
    from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
    from xdsl.ir import Block, Region

    from tostatic.ir.attr_keys import INPUT_NAME_ATTR

    block = Block(arg_types=list(types))
    results = emit(block, cls, *block.args, **attrs)
    results = list(results) if isinstance(results, (list, tuple)) else [results]
    block.add_op(func.ReturnOp(*results))
    fn = func.FuncOp("main", (list(types), [r.type for r in results]), Region(block))
    fn.arg_attrs = ArrayAttr([DictionaryAttr({INPUT_NAME_ATTR: StringAttr(f"x{i}")})
                              for i in range(len(types))])
    module = ModuleOp([fn])
    module.verify()
    return module


@pytest.fixture
def compiled_kernels(monkeypatch):
    """Tests of the compiled kernels themselves (`pytestmark = pytest.mark.usefixtures(
    "compiled_kernels")`) run them whatever TOSTATIC_KERNELS the run has: with
    TOSTATIC_KERNELS=numpy the rest of the suite runs on the numpy kernels."""
    monkeypatch.delenv("TOSTATIC_KERNELS", raising=False)
