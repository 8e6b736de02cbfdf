"""The transformer inference passes (remove-test-dropout, fold-matmul-scale, fuse-qkv) on
the BERT example and on small models: outputs with each pass on and off agree (rtol 1e-5;
the reference is the plan without that pass, itself checked against the unoptimised plan),
each pass changes what it claims, and each shows in the dumps."""
import sys
from pathlib import Path

import numpy as np
import pytest

import tostatic
from tostatic.passes.base import CompileState, entry
from tostatic.passes.manager import PassManager
from tostatic.passes.pipeline import PIPELINES
from tostatic.runtime.loaded_model import load_model
from tostatic.runtime.plan import ExecutionPlan
from tostatic.static import InputSpec

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
import bert_classifier  # noqa: E402

nn = tostatic.nn
INFERENCE = PIPELINES["inference"].split(",")


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    config = bert_classifier.BertConfig(hidden_size=64, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=128)
    model = bert_classifier.BertForSequenceClassification(tostatic, config)
    prefix = str(tmp_path_factory.mktemp("bert") / "bert")
    tostatic.jit.save(model, prefix, input_spec=bert_classifier.input_spec(tostatic))
    feeds = bert_classifier.example_inputs(3, 24, config.vocab_size)
    return prefix, [feeds["input_ids"], feeds["token_type_ids"]]


def planned(prefix, passes):
    """The module after `passes` (a list of pass names) and its bound plan's outputs."""
    raw = load_model(prefix + ".pdmodel", prefix + ".pdiparams", optimize=False)
    module = raw.module.clone()
    state = CompileState(weights=dict(raw.weights))
    PassManager(",".join(passes), verify="end").run(module, state, first_stage="loaded")
    return module, ExecutionPlan(entry(module), state.weights, raw.feed_names,
                                 specialize=True)


def outputs(plan, feeds):
    return [plan.run(feeds), plan.run(feeds)]  # the generic run, then the bound one


def assert_agree(got_runs, want_runs):
    for got, want in zip(got_runs, want_runs):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * max(np.abs(w).max(), 1))


def count(module, name):
    return sum(1 for op in module.walk() if op.name == name)


@pytest.mark.parametrize("name", ["remove-test-dropout", "fold-matmul-scale", "fuse-qkv"])
def test_each_pass_leaves_the_bert_outputs_unchanged(bert, name):
    prefix, feeds = bert
    assert name in INFERENCE
    _, plain = planned(prefix, ["dead-op-elimination"])
    without_mod, without = planned(prefix, [p for p in INFERENCE if p != name])
    with_mod, with_ = planned(prefix, INFERENCE)
    want = outputs(plain, feeds)
    assert_agree(outputs(without, feeds), want)
    assert_agree(outputs(with_, feeds), want)
    changed = {"remove-test-dropout": "pd.dropout", "fold-matmul-scale": "pd.scale",
               "fuse-qkv": "pd.fused_matmul"}[name]
    assert count(with_mod, changed) < count(without_mod, changed)


def test_dropout_goes_and_the_residual_add_joins_the_epilogue(bert):
    prefix, _ = bert
    module, _ = planned(prefix, INFERENCE)
    assert count(module, "pd.dropout") == 0
    epilogues = [op.attr_values()["epilogue"] for op in module.walk()
                 if op.name == "pd.fused_matmul"]
    assert epilogues.count(("bias", "add")) == 4  # attention output and FFN, 2 layers
    # query, key and value: one GEMM a layer, 3 * hidden wide, sliced
    widths = [op.results[0].type.get_shape()[-1] for op in module.walk()
              if op.name == "pd.fused_matmul"]
    assert widths.count(3 * 64) == 2 and count(module, "pd.slice") == 2 * 3 + 1
    # the attention scale is in the query weights: no pd.scale outside the mask's fusion
    assert count(module, "pd.scale") == sum(1 for op in module.walk()
                                            if op.name == "pd.fused_elementwise") - 1


class Dropouts(nn.Layer):
    """A downscale_in_infer dropout (a scale by 1 - p at inference, which then folds into the
    first use of the shared weight), and a scale that cannot fold (its matmul has a relu)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        y = nn.functional.dropout(self.fc(x), 0.3, training=False, mode="downscale_in_infer")
        return tostatic.scale(nn.functional.relu(self.fc(y)), 0.5)


def test_a_downscale_dropout_becomes_a_folded_scale_and_a_scale_after_relu_stays(tmp_path):
    prefix = str(tmp_path / "d")
    model = Dropouts()
    model.eval()
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, 8], "float32", "x")])
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    raw, plain = planned(prefix, ["dead-op-elimination"])
    module, opt = planned(prefix, INFERENCE)
    assert count(raw, "pd.dropout") == 1 and count(raw, "pd.scale") == 1
    assert count(module, "pd.dropout") == 0 and count(module, "pd.scale") == 1
    assert "@scaled" in str(module)
    assert_agree(outputs(opt, [x]), outputs(plain, [x]))
    np.testing.assert_allclose(opt.run([x])[0], model(tostatic.to_tensor(x)).numpy(),
                               rtol=1e-5, atol=1e-6)


class Heads(nn.Layer):
    """Three projections of one input (widths 16, 8, 24), a fourth with a relu (not a
    column-wise epilogue: left alone) and a projection of another input."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(12, 16), nn.Linear(12, 8), nn.Linear(12, 24)
        self.d, self.e = nn.Linear(12, 4), nn.Linear(16, 4)

    def forward(self, x):
        a, b, c = self.a(x), self.b(x), self.c(x)
        d = nn.functional.relu(self.d(x))
        return tostatic.concat([a[:, :8] * b, self.e(a) + d], axis=-1), c


def test_projections_of_one_input_become_one_gemm_and_slices(tmp_path):
    prefix = str(tmp_path / "h")
    model = Heads()
    model.eval()
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, 12], "float32", "x")])
    x = np.random.default_rng(1).standard_normal((5, 12)).astype(np.float32)
    without_mod, without = planned(prefix, [p for p in INFERENCE if p != "fuse-qkv"])
    module, opt = planned(prefix, INFERENCE)
    widths = sorted(op.results[0].type.get_shape()[-1] for op in module.walk()
                    if op.name == "pd.fused_matmul")
    assert widths == [4, 4, 48] and count(module, "pd.slice") == count(without_mod,
                                                                       "pd.slice") + 3
    assert_agree(outputs(opt, [x]), outputs(without, [x]))
    for got, want in zip(opt.run([x]), model(tostatic.to_tensor(x))):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


class Transposed(nn.Layer):
    """Projections by weights stored [N, K] (matmul with transpose_y): concatenated along
    their first dim; one more by a [K, N] weight of the same input stays apart."""

    def __init__(self):
        super().__init__()
        self.p = self.create_parameter([6, 12])
        self.q = self.create_parameter([10, 12])
        self.r = self.create_parameter([12, 4])

    def forward(self, x):
        a = tostatic.matmul(x, self.p, transpose_y=True)
        b = tostatic.matmul(x, self.q, transpose_y=True)
        return tostatic.concat([a, b, tostatic.matmul(x, self.r)], axis=-1)


def test_projections_by_transposed_weights_concatenate_along_n(tmp_path):
    prefix = str(tmp_path / "t")
    model = Transposed()
    model.eval()
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, 3, 12], "float32", "x")])
    x = np.random.default_rng(2).standard_normal((2, 3, 12)).astype(np.float32)
    module, opt = planned(prefix, INFERENCE)
    shapes = sorted(tuple(op.operands[1].type.get_shape()) for op in module.walk()
                    if op.name in ("pd.matmul", "pd.fused_matmul"))
    assert shapes == [(12, 4), (16, 12)] and count(module, "pd.slice") == 2
    want = model(tostatic.to_tensor(x)).numpy()
    for got in outputs(opt, [x]):
        np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)


def test_the_passes_show_in_the_dumps(bert, capfd, monkeypatch):
    prefix, _ = bert
    monkeypatch.setenv("TOSTATIC_DUMP", "after=remove-test-dropout+fold-matmul-scale+fuse-qkv")
    load_model(prefix + ".pdmodel", prefix + ".pdiparams")
    err = capfd.readouterr()
    text = err.out + err.err
    assert "After remove-test-dropout" in text and "After fold-matmul-scale" in text
    assert "After fuse-qkv" in text and "@scaled" in text and "@concat" in text


def test_reshapes_transposes_and_slices_run_as_views_in_the_bound_plan(bert):
    prefix, feeds = bert
    _, plain = planned(prefix, ["dead-op-elimination"])
    # without fuse-attention, which takes attention's head splits and merges into its op
    _, opt = planned(prefix, [p for p in INFERENCE if p != "fuse-attention"])
    assert_agree(outputs(opt, feeds), outputs(plain, feeds))
    bound = next(iter(opt.bound.values()))
    labels = set(bound.labels) | set(bound.at_bind)  # views of planned buffers: at bind
    assert {("pd.reshape", "view"), ("pd.transpose", "view"),
            ("pd.slice", "view")} <= labels  # the pooler's x[:, 0] drops an axis
    assert ("pd.reshape", "numpy") not in labels
    # the heads' merge (a reshape of a transposed view) is a copy: a step every run
    assert ("pd.reshape", "view") in bound.labels and ("pd.slice", "view") in bound.at_bind
