"""The load path of a model file (paddle.inference, jit.load): what it skips to start fast
must not change what it gives: the collector's state, the legacy program asked for later,
and a reproducer when one of its passes fails."""
import gc

import numpy as np
import pytest

import tostatic
from tostatic.dialects.context import parse_ir
from tostatic.ir.text import print_ir
from tostatic.passes.fuse_epilogue import FuseEpilogue
from tostatic.passes.manager import PassFailure
from tostatic.runtime.loaded_model import load_model
from tostatic.serialization.program_desc import parse_program_bytes
from tostatic.static import InputSpec

from test_inference_passes import ConvNet, randomised


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("load") / "net")
    model = randomised(ConvNet())
    model.eval()
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, 3, 8, 8], "float32", "x")])
    return prefix


@pytest.mark.parametrize("enabled", [True, False])
def test_a_load_leaves_the_collector_as_it_found_it(saved, enabled):
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        load_model(saved + ".pdmodel", saved + ".pdiparams")
        assert gc.isenabled() is enabled
        with pytest.raises(FileNotFoundError):
            load_model(saved + ".pdmodel", saved + ".missing")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_the_legacy_program_is_read_again_when_asked_for(saved):
    model = load_model(saved + ".pdmodel", saved + ".pdiparams")
    assert model._program is None  # a predictor never asks: not kept, not copied
    with open(saved + ".pdmodel", "rb") as f:
        want = parse_program_bytes(f.read(), saved + ".pdmodel")
    assert print_ir(model.program) == print_ir(want)
    assert model.program is model.program  # read once


def test_a_failing_inference_pass_leaves_a_reproducer_of_the_ir_before_it(
        saved, tmp_path, monkeypatch):
    monkeypatch.setenv("TOSTATIC_REPRODUCER_DIR", str(tmp_path))

    def broken(self, module, state):
        raise RuntimeError("epilogue bug")
    monkeypatch.setattr(FuseEpilogue, "apply", broken)
    with pytest.raises(PassFailure, match="pass 'fuse-epilogue' failed") as info:
        load_model(saved + ".pdmodel", saved + ".pdiparams")
    text = open(info.value.reproducer).read()
    assert "// pipeline: fuse-epilogue\n" in text
    # the passes before it replayed, with the weights: batch norms folded into new weights
    module = parse_ir(text)
    names = [op.name for op in module.walk()]
    assert "pd.batch_norm" not in names and "@bn" in text
    assert "pd.fused_conv2d" not in names


def test_outputs_do_not_depend_on_the_load_path(saved):
    # fold-batch-norm scales filters in float32: within rounding of the unfused model
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    fused = load_model(saved + ".pdmodel", saved + ".pdiparams").run([x])[0]
    plain = load_model(saved + ".pdmodel", saved + ".pdiparams", optimize=False).run([x])[0]
    np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-5 * np.abs(plain).max())


class SharedFilter(tostatic.nn.Layer):
    """One filter read by two convolutions, each with its own batch norm: folding either
    must not scale the other's filter."""

    def __init__(self):
        super().__init__()
        self.conv = tostatic.nn.Conv2D(3, 8, 3, padding=1, bias_attr=False)
        self.b1, self.b2 = tostatic.nn.BatchNorm2D(8), tostatic.nn.BatchNorm2D(8)

    def forward(self, x):
        other = tostatic.nn.functional.conv2d(x * 2.0, self.conv.weight, padding=1)
        return self.b1(self.conv(x)) + self.b2(other)


@pytest.mark.parametrize("make", [ConvNet, SharedFilter])
def test_a_predictor_folds_in_place_what_no_one_else_reads(tmp_path, make):
    from tostatic.inference import Config, create_predictor

    prefix = str(tmp_path / "m")
    model = randomised(make())
    model.eval()
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, 3, 8, 8], "float32", "x")])
    files = (prefix + ".pdmodel", prefix + ".pdiparams")
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    plain = load_model(*files, optimize=False)
    kept = load_model(*files)  # jit.load's: the file's weights stay as they were read
    for name, array in plain.weights.items():
        np.testing.assert_array_equal(kept.weights[name], array)
    predictor = create_predictor(Config(*files))
    assert predictor._model.weights == {}  # no second copy beside the plan's
    want = plain.run([x])[0]
    for got in (kept.run([x])[0], predictor.run([x])[0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def _first_runs(saved, monkeypatch, x, after_load=lambda: None):
    """The first run's outputs bound ahead and generic (`after_load` runs between the loads
    and the runs), and what the bound-ahead run's check said."""
    from tostatic.runtime import plan as plan_module

    checked = []
    real = plan_module.BoundPlan.run_checked

    def spy(self, arrays, expected):
        checked.append("ran")
        out = real(self, arrays, expected)
        checked[-1] = out is not None
        return out
    monkeypatch.setattr(plan_module.BoundPlan, "run_checked", spy)
    ahead = load_model(saved + ".pdmodel", saved + ".pdiparams", keep_weights=False)
    generic = load_model(saved + ".pdmodel", saved + ".pdiparams")
    after_load()
    got = ahead.run([x])[0]
    assert len(ahead.plan.bound) == 1 and ahead.run([x])[0].shape == got.shape
    with monkeypatch.context() as m:
        m.setattr(plan_module, "_shapes_ahead", lambda body, arrays: None)
        want = generic.run([x])[0]
    return got, want, checked


def test_the_first_run_is_bound_ahead_from_the_shape_rules(saved, monkeypatch):
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    got, generic, checked = _first_runs(saved, monkeypatch, x)
    assert checked == [True]
    np.testing.assert_allclose(got, generic, rtol=1e-5, atol=1e-6 * np.abs(generic).max())


@pytest.mark.usefixtures("compiled_kernels")  # (pool2d: the compiled kernel's path)
@pytest.mark.parametrize("where", ["pd.flatten", "pd.pool2d"])
def test_a_shape_rule_that_disagrees_with_a_kernel_falls_back_to_the_generic_run(
        saved, monkeypatch, where):
    # a rule giving another batch size (which the IR's -1 allows): flatten's view (bound
    # once, from x and the rule's shape) cannot be made, so binding fails before the checked
    # run; the compiled pool kernel's write into its buffer raises (pool2d); either way the
    # first run is the generic one, and right
    from tostatic.ops.manipulation import Flatten
    from tostatic.ops.pooling import Pool2D

    cls = {"pd.flatten": Flatten, "pd.pool2d": Pool2D}[where]
    real = cls.infer_results.__func__

    def wrong(klass, inputs, attrs):
        out = real(klass, inputs, attrs)
        return [type(a)((a.shape[0] + 1,) + tuple(a.shape[1:]), a.dtype) for a in out]
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
    got, generic, checked = _first_runs(
        saved, monkeypatch, x,
        after_load=lambda: monkeypatch.setattr(cls, "infer_results", classmethod(wrong)))
    assert checked == {"pd.flatten": [], "pd.pool2d": ["ran"]}[where]
    np.testing.assert_allclose(got, generic, rtol=1e-5, atol=1e-6 * np.abs(generic).max())


def test_importing_tostatic_leaves_the_collector_threshold_as_it_was():
    import subprocess
    import sys

    code = ("import gc; gc.set_threshold(1234, 7, 3); import tostatic; "
            "print(gc.get_threshold(), gc.isenabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "(1234, 7, 3) True"
