"""Whole Transformer models both ways between tostatic and Paddle 3.3.1 (and OpenVINO):

- a 4-layer TransformerEncoder model and the BERT-class classifier of
  examples/bert_classifier.py, built with tostatic and exported once with a dynamic
  [batch, seq_len] spec, give tostatic's eager outputs in paddle.inference and in OpenVINO's
  Paddle reader at two sequence lengths, and natively (jit.load, paddle.inference's API);
- the same architectures built by real Paddle and saved by its jit.save (legacy format) run
  in tostatic with Paddle Inference's outputs, at two sequence lengths;
- Paddle's weights copied in by state_dict give Paddle's eager outputs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import tostatic
from tostatic.ir import names

from transformer_harness import openvino_run, paddle_save, predict, program_differences

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import bert_classifier  # noqa: E402

VOCAB, HIDDEN, HEADS, FFN, LAYERS = 60, 32, 4, 64, 4
SEQS = (7, 12)


def encoder_model(P):
    """ids [batch, seq] and a 0/1 int64 mask [batch, seq] -> [batch, seq, HIDDEN]."""

    class EncoderModel(P.nn.Layer):
        def __init__(self):
            super().__init__()
            self.embedding = P.nn.Embedding(VOCAB, HIDDEN, padding_idx=0)
            layer = P.nn.TransformerEncoderLayer(HIDDEN, HEADS, FFN, dropout=0.1,
                                                 activation="gelu")
            self.encoder = P.nn.TransformerEncoder(layer, LAYERS, P.nn.LayerNorm(HIDDEN))

        def forward(self, ids, mask):
            mask = P.reshape(mask, [0, 1, 1, -1])  # int: 1 attends, 0 is masked
            return self.encoder(self.embedding(ids), mask)

    return EncoderModel()


def bert_model(P):
    return bert_classifier.BertForSequenceClassification(
        P, bert_classifier.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN,
                                      num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                      intermediate_size=FFN, max_position_embeddings=40,
                                      num_labels=3))


def encoder_feeds(seq, batch=2):
    rng = np.random.default_rng(seq)
    ids = rng.integers(1, VOCAB, (batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), np.int64)
    mask[1, -3:] = 0
    ids[mask == 0] = 0
    return {"ids": ids, "mask": mask}


def bert_feeds(seq, batch=2):
    return bert_classifier.example_inputs(batch, seq, VOCAB, seed=seq)


MODELS = {
    "encoder": (encoder_model, encoder_feeds,
                lambda P: [P.static.InputSpec([None, None], "int64", "ids"),
                           P.static.InputSpec([None, None], "int64", "mask")]),
    "bert": (bert_model, bert_feeds, lambda P: bert_classifier.input_spec(P)),
}


def _ours(make):
    with names.guard():
        model = make(tostatic)
    model.eval()
    return model


def _eager(model, lib, feeds):
    out = model(*[lib.to_tensor(v) for v in feeds.values()])
    return [t.numpy() for t in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each model built by tostatic and jit.saved once: {name: (model, prefix)}."""
    out = {}
    for name, (make, _, specs) in MODELS.items():
        model = _ours(make)
        prefix = str(tmp_path_factory.mktemp(name) / name)
        tostatic.jit.save(model, prefix, input_spec=specs(tostatic))
        out[name] = (model, prefix)
    return out


@pytest.mark.interop
@pytest.mark.parametrize("name", MODELS)
def test_ours_in_paddle_inference_at_two_lengths(exported, name, real_paddle):
    model, prefix = exported[name]
    feeds_of = MODELS[name][1]
    for seq in SEQS:
        feeds = feeds_of(seq)
        eager = _eager(model, tostatic, feeds)
        got = predict(prefix + ".pdmodel", prefix + ".pdiparams", feeds)
        assert len(got) == len(eager)
        for g, e in zip(got, eager):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.interop
@pytest.mark.parametrize("name", MODELS)
def test_ours_in_openvino_at_two_lengths(exported, name):
    pytest.importorskip("openvino")
    model, prefix = exported[name]
    feeds_of = MODELS[name][1]
    for seq in SEQS:
        feeds = feeds_of(seq)
        eager = _eager(model, tostatic, feeds)
        got = openvino_run(prefix + ".pdmodel", feeds)
        for g, e in zip(got, eager):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_ours_run_natively_at_two_lengths(exported, name):
    model, prefix = exported[name]
    feeds_of = MODELS[name][1]
    loaded = tostatic.jit.load(prefix)
    config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    predictor = tostatic.inference.create_predictor(config)
    for seq in SEQS:
        feeds = feeds_of(seq)
        eager = _eager(model, tostatic, feeds)
        jitted = loaded(*feeds.values())
        jitted = [t.numpy() for t in (jitted if isinstance(jitted, (list, tuple)) else [jitted])]
        for name_, value in feeds.items():
            handle = predictor.get_input_handle(name_)
            handle.reshape(value.shape)
            handle.copy_from_cpu(value)
        predictor.run()
        predicted = [predictor.get_output_handle(n).copy_to_cpu()
                     for n in predictor.get_output_names()]
        for j, p, e in zip(jitted, predicted, eager):
            np.testing.assert_allclose(j, e, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(p, e, rtol=1e-5, atol=1e-6)


@pytest.mark.interop
@pytest.mark.parametrize("name", MODELS)
def test_paddles_saved_model_runs_in_tostatic_with_paddle_inference_outputs(name, real_paddle,
                                                                            tmp_path):
    make, feeds_of, specs = MODELS[name]
    prefix = str(tmp_path / "paddle")
    theirs = paddle_save(real_paddle, lambda: make(real_paddle), specs(real_paddle), prefix)
    loaded = tostatic.jit.load(prefix)
    for seq in SEQS:
        feeds = feeds_of(seq)
        want = predict(prefix + ".pdmodel", prefix + ".pdiparams", feeds)
        got = loaded(*feeds.values())
        got = [t.numpy() for t in (got if isinstance(got, (list, tuple)) else [got])]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    # and Paddle's weights in tostatic's model give Paddle's eager outputs, and the program
    # tostatic writes for it is the one Paddle wrote
    ours = _ours(make)
    ours.set_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for seq in SEQS:
        feeds = feeds_of(seq)
        for g, w in zip(_eager(ours, tostatic, feeds), _eager(theirs, real_paddle, feeds)):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    with names.guard():
        tostatic.jit.save(ours, str(tmp_path / "ours"), input_spec=specs(tostatic))
    assert program_differences(str(tmp_path / "ours.pdmodel"), prefix + ".pdmodel") == []


def test_the_example_runs_and_checks_itself(tmp_path, capsys):
    bert_classifier.main([str(tmp_path), "--layers", "1", "--hidden", "32", "--heads", "2"])
    out = capsys.readouterr().out
    assert "matches eager mode at two sequence lengths: OK" in out
    assert (tmp_path / "bert_classifier.pdiparams.info").exists()
