"""The inference passes (fold-batch-norm, fuse-epilogue, fold-static-shapes) and the bound
execution plan of a loaded model: what they make of exported models, that outputs with and
without them agree (rtol 1e-5), that the plan allocates nothing per run for a repeated
shape, that threads and the profile are honoured."""
import ctypes
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import tostatic
from tostatic.inference import Config, create_predictor
from tostatic.ir.errors import UnsupportedError
from tostatic.passes.base import CompileState
from tostatic.passes.manager import PassManager
from tostatic.runtime import threads
from tostatic.runtime.loaded_model import load_model
from tostatic.static import InputSpec

nn = tostatic.nn


class ConvNet(nn.Layer):
    """Every pattern the passes fold or fuse: conv + BN (+ relu / relu6 / hardswish /
    sigmoid), a residual add, a depthwise conv, a conv with its own bias before the BN, a
    transposed conv + BN, linear + BN1D, linear + GELU."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2D(3, 8, 3, padding=1, bias_attr=False), nn.BatchNorm2D(8)
        self.c2, self.b2 = nn.Conv2D(8, 8, 3, padding=1), nn.BatchNorm2D(8)
        self.dw, self.b3 = nn.Conv2D(8, 8, 3, stride=2, padding=1, groups=8), nn.BatchNorm2D(8)
        self.c4 = nn.Conv2D(8, 6, 1)
        self.ct, self.b5 = nn.Conv2DTranspose(6, 4, 2, stride=2), nn.BatchNorm2D(4)
        self.fc, self.b6 = nn.Linear(4 * 4 * 4, 16), nn.BatchNorm1D(16)
        self.head = nn.Linear(16, 5)
        self.relu, self.relu6, self.hs = nn.ReLU(), nn.ReLU6(), nn.Hardswish()
        self.sig, self.gelu = nn.Sigmoid(), nn.GELU()

    def forward(self, x):
        y = self.relu(self.b1(self.c1(x)))
        y = self.relu(self.b2(self.c2(y)) + y)  # residual
        y = self.relu6(self.b3(self.dw(y)))
        y = self.hs(self.c4(y))
        y = self.sig(self.b5(self.ct(y)))
        y = tostatic.flatten(tostatic.nn.functional.avg_pool2d(y, 2), 1)
        return self.head(self.gelu(self.b6(self.fc(y))))


def randomised(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.sublayers():
        if isinstance(layer, (nn.BatchNorm2D, nn.BatchNorm1D)):
            n = layer.weight.shape[0]
            layer.weight.set_value(rng.uniform(0.5, 1.5, n).astype(np.float32))
            layer.bias.set_value(rng.uniform(-0.3, 0.3, n).astype(np.float32))
            layer._mean.set_value(rng.uniform(-0.3, 0.3, n).astype(np.float32))
            layer._variance.set_value(rng.uniform(0.5, 1.5, n).astype(np.float32))
    model.eval()
    return model


@pytest.fixture(scope="module")
def convnet(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("convnet") / "net"
    tostatic.jit.save(randomised(ConvNet()), str(prefix),
                      input_spec=[InputSpec([None, 3, 8, 8], "float32", "x")])
    return str(prefix)


def op_names(model):
    return [op.name for op in model.plan.body.ops]


def test_batch_norms_fold_and_epilogues_fuse(convnet):
    raw = load_model(convnet + ".pdmodel", convnet + ".pdiparams", optimize=False)
    opt = load_model(convnet + ".pdmodel", convnet + ".pdiparams")
    assert op_names(raw).count("pd.batch_norm") == 5
    names = op_names(opt)
    assert "pd.batch_norm" not in names
    epilogues = [op.attr_values()["epilogue"] for op in opt.plan.body.ops
                 if op.name in ("pd.fused_conv2d", "pd.fused_matmul")]
    # the depthwise conv (its batch norm folded) fuses its bias and relu6 too: codegen's
    # depthwise kernel applies them before its one store
    assert epilogues == [("bias", "relu"), ("bias", "add", "relu"), ("bias", "relu6"),
                         ("bias", "hardswish"), ("bias", "gelu"), ("bias",)]
    assert "pd.depthwise_conv2d" not in names
    assert [op.attr_values()["groups"] > 1 for op in opt.plan.body.ops
            if op.name == "pd.fused_conv2d"].count(True) == 1
    # the transposed conv keeps its op, its batch norm a bias add, which fuse-elementwise
    # (after fuse-epilogue) joins with the sigmoid
    k = names.index("pd.conv2d_transpose")
    assert names[k + 1] == "pd.fused_elementwise" and "pd.sigmoid" not in names
    folded = [n for n in opt.plan.body.constants]
    assert len(folded) > 0
    # the loaded module itself (what jit.save writes back) keeps Paddle's ops
    module_ops = [op.name for op in raw.module.walk()]
    assert "pd.batch_norm" in module_ops and "pd.fused_conv2d" not in module_ops


@pytest.mark.parametrize("batch", [1, 3])
def test_outputs_with_and_without_the_passes_agree(convnet, batch):
    x = np.random.default_rng(batch).standard_normal((batch, 3, 8, 8)).astype(np.float32)
    outs = []
    for flag in (False, True):
        config = Config(convnet)
        config.switch_ir_optim(flag)
        predictor = create_predictor(config)
        outs.append([predictor.run([x])[0] for _ in range(3)])  # generic, then bound runs
    want = outs[0][0]
    for got in outs[0][1:] + outs[1]:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_a_fused_op_is_never_lowered_to_paddle(convnet):
    opt = load_model(convnet + ".pdmodel", convnet + ".pdiparams")
    fn = opt.plan.body.ops[0].parent_op()
    module = fn.parent_op().clone()
    with pytest.raises(UnsupportedError, match=r"pd\.fused_conv2d has no Paddle legacy op"):
        PassManager("lower-to-program", verify="off").run(module, CompileState())
    # and a jit.save of the loaded model writes Paddle's own ops (its module is unfused)
    layer = tostatic.jit.load(convnet)
    x = tostatic.to_tensor(np.ones((1, 3, 8, 8), np.float32))
    y = layer(x).numpy()
    out = convnet + "_resaved"
    tostatic.jit.save(layer, out)
    np.testing.assert_allclose(tostatic.jit.load(out)(x).numpy(), y, rtol=1e-6)


def test_the_passes_show_in_the_dumps_and_change_nothing_without_weights(convnet, capfd,
                                                                        monkeypatch):
    monkeypatch.setenv("TOSTATIC_DUMP", "after=fold-batch-norm+fuse-epilogue")
    load_model(convnet + ".pdmodel", convnet + ".pdiparams")
    err = capfd.readouterr()
    text = err.out + err.err
    assert "After fold-batch-norm" in text and "After fuse-epilogue" in text
    assert "pd.fused_conv2d" in text
    monkeypatch.delenv("TOSTATIC_DUMP")
    raw = load_model(convnet + ".pdmodel", convnet + ".pdiparams", optimize=False)
    module = raw.module.clone()
    before = str(module)
    PassManager("inference").run(module, CompileState())  # no weights: nothing to fold
    assert "pd.batch_norm" in str(module) and "pd.fused_conv2d" not in str(module)
    assert str(module).count("pd.conv2d") == before.count("pd.conv2d")


def test_shapes_of_static_tensors_fold_into_constants(tmp_path):
    class Reshaper(nn.Layer):
        def forward(self, x):
            return tostatic.reshape(x, [x.shape[0] * x.shape[1], -1])

    prefix = str(tmp_path / "r")
    tostatic.jit.save(Reshaper(), prefix, input_spec=[InputSpec([2, 3, 4], "float32", "x")])
    opt = load_model(prefix + ".pdmodel", prefix + ".pdiparams")
    assert "pd.shape" not in op_names(opt)
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(opt.run([x])[0], x.reshape(6, 4))


def test_a_repeated_shape_allocates_nothing_and_plans_are_kept_per_shape(convnet):
    model = load_model(convnet + ".pdmodel", convnet + ".pdiparams")
    rng = np.random.default_rng(0)
    x1, x4 = (rng.standard_normal((b, 3, 8, 8)).astype(np.float32) for b in (1, 4))
    generic = model.run([x1])[0]  # the first run of a shape is the generic one
    model.run([x4])
    first = model.run([x1])[0]
    assert len(model.plan.bound) == 2
    np.testing.assert_allclose(first, generic, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.run([x1])[0], first)
    held = model.run([x1])[0]
    model.run([x1 + 1])
    np.testing.assert_array_equal(held, first)  # an output is never a reused buffer

    def peak(run):
        tracemalloc.start()
        run()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top
    generic = peak(lambda: model.plan.body.run([x4]))  # every result allocated afresh
    bound = peak(lambda: model.run([x4]))
    # left: what the eager steps (transposed conv, flatten) make and the output copy
    assert bound < generic / 3, (bound, generic)


def test_buffers_are_reused_by_liveness(convnet):
    model = load_model(convnet + ".pdmodel", convnet + ".pdiparams")
    x = np.zeros((4, 3, 8, 8), np.float32)
    model.run([x])
    model.run([x])
    (bound,) = model.plan.bound.values()
    written = sum(fn.keywords["out"].nbytes for fn, _, _ in bound.steps
                  if hasattr(fn, "keywords"))
    assert bound.buffer_bytes < written


def _openblas_threads():
    for path in threads._blas_libraries():
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, name):
                return getattr(lib, name)()
    pytest.skip("numpy's BLAS is not OpenBLAS")


def test_the_thread_count_reaches_our_kernels_and_blas_runs_one_thread_each(convnet):
    config = Config(convnet)
    config.set_cpu_math_library_num_threads(2)
    before = (_openblas_threads(), threads._requested)
    try:
        create_predictor(config)
        assert threads.current() == 2 and config.cpu_math_library_num_threads() == 2
        assert _openblas_threads() == 1  # one BLAS thread per kernel thread
    finally:
        threads.set_blas_threads(before[0])
        threads._requested = before[1]
    with pytest.raises(ValueError, match="positive"):
        config.set_cpu_math_library_num_threads(0)


def test_tostatic_num_threads_is_honoured_and_checked(convnet):
    code = ("import tostatic; from tostatic.runtime import threads;"
            f"tostatic.jit.load({convnet!r}); print(threads.current())")
    env = {**__import__("os").environ, "TOSTATIC_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "2"
    env["TOSTATIC_NUM_THREADS"] = "many"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "TOSTATIC_NUM_THREADS='many': expected a positive integer" in out.stderr


def test_enable_profile_prints_a_table_per_op_and_kernel(convnet, capfd):
    config = Config(convnet)
    config.enable_profile()
    predictor = create_predictor(config)
    x = np.zeros((2, 3, 8, 8), np.float32)
    for _ in range(3):
        predictor.run([x])
    del predictor
    import gc

    gc.collect()
    err = capfd.readouterr().err
    assert "tostatic profile of" in err and "(3 runs)" in err
    assert any("pd.fused_conv2d" in line and ("im2col-gen" in line or "im2col-gemm" in line)
               for line in err.splitlines())
    # the slowest steps of the bound plan, each with its input and output shapes: the
    # first conv maps the 2x3x8x8 feed
    steps = err[err.index("slowest steps"):].splitlines()[2:]
    assert steps and any("pd.fused_conv2d" in line and "[2, 3, 8, 8] -> [2, " in line
                         for line in steps)
    times = [float(line.split()[3]) for line in steps]
    assert times == sorted(times, reverse=True)


def _run_both_ways(model, params, feeds):
    """Outputs with and without the inference passes, each from a generic and a bound run."""
    runs = []
    for flag in (False, True):
        config = Config(str(model), str(params) if params else None)
        config.switch_ir_optim(flag)
        predictor = create_predictor(config)
        arrays = [feeds[n] for n in predictor.get_input_names()]
        runs += [predictor.run(arrays), predictor.run(arrays)]
    return runs


def _assert_runs_agree(runs, what):
    want = runs[0]
    for k, got in enumerate(runs[1:], 1):
        for i, (g, w) in enumerate(zip(got, want)):
            w = np.asarray(w)
            if w.dtype.kind == "f":
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * max(np.abs(w).max(), 1),
                                           err_msg=f"{what}: run {k} output {i}")
            else:
                np.testing.assert_array_equal(g, w, err_msg=f"{what}: run {k} output {i}")


@pytest.mark.parametrize("name", ["simple_net", "mlp", "two_outputs", "static_fc",
                                  "control_flow", "small_cnn", "depthwise_cnn", "embed_ln"])
def test_paddle_fixtures_give_the_same_outputs_with_and_without_the_passes(name):
    from conftest import fixture_cases

    for d, feeds, _ in fixture_cases(name):
        params = d / "model.pdiparams"
        runs = _run_both_ways(d / "model.pdmodel", params if params.exists() else None, feeds)
        _assert_runs_agree(runs, name)


def test_the_bert_example_gives_the_same_outputs_with_and_without_the_passes(tmp_path):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent.parent / "examples"))
    import bert_classifier

    config = bert_classifier.BertConfig(hidden_size=64, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=128)
    model = bert_classifier.BertForSequenceClassification(tostatic, config)
    model.eval()
    prefix = tmp_path / "bert"
    tostatic.jit.save(model, str(prefix), input_spec=bert_classifier.input_spec(tostatic))
    feeds = bert_classifier.example_inputs(2, 16, config.vocab_size)
    runs = _run_both_ways(prefix.with_suffix(".pdmodel"), prefix.with_suffix(".pdiparams"),
                          feeds)
    _assert_runs_agree(runs, "bert")
    opt = load_model(str(prefix) + ".pdmodel", str(prefix) + ".pdiparams")
    epilogues = [op.attr_values()["epilogue"] for op in opt.plan.body.ops
                 if op.name == "pd.fused_matmul"]
    assert ("bias", "gelu") in epilogues and ("bias",) in epilogues
