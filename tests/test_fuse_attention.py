"""fuse-attention on the BERT example and small attention models: the chain from q k^T to the
heads' merge becomes one pd.fused_attention where (and only where) nothing else reads its
intermediates; outputs with the pass on and off agree (rtol 1e-5) in the generic and the bound
plan, at two batch sizes; the pass shows in the dumps."""
import numpy as np
import pytest
from test_transformer_passes import INFERENCE, assert_agree, count, outputs, planned

import tostatic
from tostatic import codegen
from tostatic.runtime.loaded_model import load_model
from tostatic.static import InputSpec

nn = tostatic.nn
WITHOUT = [p for p in INFERENCE if p != "fuse-attention"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    import bert_classifier

    config = bert_classifier.BertConfig(hidden_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, intermediate_size=96)
    model = bert_classifier.BertForSequenceClassification(tostatic, config)
    prefix = str(tmp_path_factory.mktemp("bert") / "bert")
    tostatic.jit.save(model, prefix, input_spec=bert_classifier.input_spec(tostatic))
    return prefix, config


@pytest.mark.parametrize("batch,seq", [(1, 16), (5, 23)])
def test_bert_attention_fuses_and_outputs_agree(bert, batch, seq):
    import bert_classifier

    prefix, config = bert
    feeds = bert_classifier.example_inputs(batch, seq, config.vocab_size)
    feeds = [feeds["input_ids"], feeds["token_type_ids"]]
    assert "fuse-attention" in INFERENCE
    without_mod, without = planned(prefix, WITHOUT)
    with_mod, with_ = planned(prefix, INFERENCE)
    assert count(with_mod, "pd.fused_attention") == 2 and count(without_mod,
                                                                "pd.fused_attention") == 0
    for name in ("pd.softmax", "pd.transpose", "pd.matmul"):
        assert count(with_mod, name) == 0 < count(without_mod, name)
    fused = [op for op in with_mod.walk() if op.name == "pd.fused_attention"]
    assert all(op.attr_values()["num_heads"] == 4 and len(op.operands) == 4 for op in fused)
    assert_agree(outputs(with_, feeds), outputs(without, feeds))
    bound = next(iter(with_.bound.values()))
    kind = "attention" if codegen.enabled() else "numpy"  # TOSTATIC_KERNELS=numpy: eager
    assert ("pd.fused_attention", kind) in bound.labels


def test_the_pass_shows_in_the_dumps(bert, capfd, monkeypatch):
    prefix, _ = bert
    monkeypatch.setenv("TOSTATIC_DUMP", "after=fuse-attention")
    load_model(prefix + ".pdmodel", prefix + ".pdiparams")
    err = capfd.readouterr()
    text = err.out + err.err
    assert "After fuse-attention" in text and "pd.fused_attention" in text


class Attention(nn.Layer):
    """Self-attention written out (no mask); `probs`: the probabilities are a second
    output, so the softmax has two readers and the chain must stay."""

    def __init__(self, probs):
        super().__init__()
        self.qkv = nn.Linear(12, 36)
        self.probs = probs

    def forward(self, x):
        def heads(t):
            return tostatic.transpose(tostatic.reshape(t, [0, 0, 3, 4]), [0, 2, 1, 3])
        qkv = self.qkv(x)
        q, k, v = (heads(qkv[:, :, i * 12:(i + 1) * 12]) for i in range(3))
        p = nn.functional.softmax(tostatic.matmul(q, k, transpose_y=True), axis=-1)
        o = tostatic.reshape(tostatic.transpose(tostatic.matmul(p, v), [0, 2, 1, 3]),
                             [0, 0, 12])
        return (o, p) if self.probs else o


@pytest.mark.parametrize("probs", [False, True])
def test_fuses_only_when_nothing_else_reads_the_chain(tmp_path, probs):
    model = Attention(probs)
    model.eval()
    prefix = str(tmp_path / "a")
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, None, 12], "float32", "x")])
    x = np.random.default_rng(1).standard_normal((2, 7, 12)).astype(np.float32)
    module, opt = planned(prefix, INFERENCE)
    assert count(module, "pd.fused_attention") == (0 if probs else 1)
    want = model(tostatic.to_tensor(x))
    want = [w.numpy() for w in want] if probs else [want.numpy()]
    for got in outputs(opt, [x]):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
