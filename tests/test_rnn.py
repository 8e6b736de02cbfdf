"""Recurrent networks: Paddle's `rnn` op (ops/recurrent.py).

- dropout between layers in training; the op's effects;
- programs Paddle wrote for nn.LSTM / GRU / SimpleRNN (static mode, and jit.save of an
  Embedding -> LSTM -> Linear classifier) run natively with Paddle Inference's outputs at two
  sequence lengths and lower back to Paddle's rnn op;
- refusals name the op, the attribute and the value.
"""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract
from tostatic.ops import recurrent as R
from tostatic.passes.base import entry
from tostatic.passes.lower_to_program import lower_function
from tostatic.passes.raise_from_program import raise_program
from tostatic.runtime.loaded_model import load_model
from tostatic.serialization import framework_pb2 as fpb
from tostatic.serialization.program_desc import load_program, save_program

from conftest import assert_close, paddle_predict
from nlp_cases import op_descs, paddle_static

INPUT, HIDDEN = 4, 3
LAYERS = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "SimpleRNN", "RNN_RELU": "SimpleRNN"}
# (num_layers, direction, time_major, dropout): the layouts every mode is checked in
LAYOUTS = {"1fwd": (1, "forward", False, 0.0), "2bi_tm": (2, "bidirect", True, 0.5),
           "2bi": (2, "bidirectional", False, 0.0)}


def make(lib, mode, layout, **extra):
    num_layers, direction, time_major, dropout = LAYOUTS[layout]
    kw = dict(num_layers=num_layers, direction=direction, time_major=time_major,
              dropout=dropout, **extra)
    if mode.startswith("RNN_"):
        kw["activation"] = mode[4:].lower()
    return getattr(lib.nn, LAYERS[mode])(INPUT, HIDDEN, **kw)


def flat(x):
    return [z for y in x for z in flat(y)] if isinstance(x, (tuple, list)) else [x]


def inputs(mode, layout, batch=3, steps=5, seed=0):
    """x (in the layer's layout), initial states, lengths (one full, the others shorter)."""
    num_layers, direction, time_major, _ = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, batch, INPUT) if time_major else (batch, steps, INPUT))
    n = num_layers * (2 if direction != "forward" else 1)
    states = [rng.standard_normal((n, batch, HIDDEN)).astype("float32")
              for _ in range(2 if mode == "LSTM" else 1)]
    lengths = np.array([steps] + [max(1, steps - 2 - i) for i in range(batch - 1)], "int64")
    return x.astype("float32"), states, lengths


# --- eager against Paddle ------------------------------------------------------------------------


# --- dropout between layers, in training -----------------------------------------------------


def test_training_dropout_draws_one_mask_upscaled_and_only_between_layers():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, INPUT)).astype("float32")
    h0 = np.zeros((2, 3, HIDDEN), "float32")
    w = [rng.standard_normal(s).astype("float32") for s in
         [(HIDDEN, INPUT), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN)]
         + [(HIDDEN,)] * 4]
    attrs = dict(mode="RNN_TANH", hidden_size=HIDDEN, input_size=INPUT, num_layers=2,
                 dropout_prob=0.5, is_test=False, seed=7)
    out, _, _, mask = R.Rnn.run_eager([x, h0, *w], R.Rnn.normalize_attrs(attrs))
    assert mask.shape == (5, 3, HIDDEN) and 0 < mask.mean() < 1
    mid, *_ = R.run_rnn(x, h0[:1], None, [w[0], w[1], w[4], w[5]], None, "RNN_TANH", HIDDEN, 1,
                        False, 0.0, True, 0)
    want, *_ = R.run_rnn(mid * mask * 2, h0[1:], None, [w[2], w[3], w[6], w[7]], None,
                         "RNN_TANH", HIDDEN, 1, False, 0.0, True, 0)
    assert_close(out, want)
    one = [x, h0[:1], w[0], w[1], w[4], w[5]]  # one layer: no boundary, no dropout
    train = R.Rnn.run_eager(one, R.Rnn.normalize_attrs(dict(attrs, num_layers=1)))
    test = R.Rnn.run_eager(one, R.Rnn.normalize_attrs(dict(attrs, num_layers=1, is_test=True)))
    assert_close(train[0], test[0])


def test_the_op_has_effects_only_when_training_drops_between_layers():
    def op(**attrs):
        x = Abstract((5, 3, INPUT), tostatic.float32)
        return R.Rnn.make([], R.Rnn.normalize_attrs(attrs), [x.tensor_type()])

    assert op(num_layers=2, dropout_prob=0.5).EFFECTS
    assert not op(num_layers=2, dropout_prob=0.5, is_test=True).EFFECTS
    assert not op(num_layers=1, dropout_prob=0.5).EFFECTS
    assert not op(num_layers=2, dropout_prob=0.0).EFFECTS


# --- export: what jit.save writes, run by Paddle Inference --------------------------------------


def feeds(mode, layout, given, lengths, batch, steps, seed=3):
    x, states, lens = inputs(mode, layout, batch, steps, seed)
    out = {"x": x}
    if given:
        out.update(zip(("h", "c"), states))
    if lengths:
        out["sl"] = lens
    return out


def paddle_jit_save(p, layer, path, input_spec):
    """Paddle 3.3.1's jit.save in the legacy format cannot convert nn.LSTM / GRU / SimpleRNN
    as they are: their `_dropout_state` buffer has no place yet ("ValueError: Unknown place
    type: Place(undefined:0)"). Given an empty CPU tensor of the same name, jit.save writes
    the program it means to write (the buffer is the rnn op's DropoutState output)."""
    for sub in layer.sublayers(include_self=True):
        if isinstance(sub, p.nn.layer.rnn.RNNBase):
            t = p.to_tensor(np.zeros([0], np.uint8))
            t.name = sub._dropout_state.name
            sub._dropout_state = t
    p.jit.save(p.jit.to_static(layer, input_spec=input_spec, full_graph=True), path,
               input_spec=input_spec)


EXPORTS = {"lstm_2bi": ("LSTM", "2bi", False, False), "lstm_states_lengths": ("LSTM", "1fwd",
                                                                            True, True),
           "gru_tm_states_lengths": ("GRU", "2bi_tm", True, True),
           "gru_states": ("GRU", "1fwd", True, False),
           "relu_tm": ("RNN_RELU", "2bi_tm", False, False),
           "tanh_lengths_states": ("RNN_TANH", "2bi", True, True)}


# --- programs Paddle wrote --------------------------------------------------------------------------

def paddle_static_saved(p, mode, layout, given, lengths, path):
    """The layer built in Paddle's static mode and saved with save_inference_model."""
    num_layers, direction, time_major, _ = LAYOUTS[layout]
    with paddle_static(p) as (main, startup):
        layer = make(p, mode, layout)
        layer.eval()
        x = p.static.data("x", [None, None, INPUT], "float32")
        fed, states, sl = [x], None, None
        n = num_layers * (2 if direction != "forward" else 1)
        if given:
            states = [p.static.data(k, [n, None, HIDDEN], "float32")
                      for k in (("h", "c") if mode == "LSTM" else ("h",))]
            fed += states
        if lengths:
            sl = p.static.data("sl", [None], "int64")
            fed.append(sl)
        results = flat(layer(x, states, sl))
        exe = p.static.Executor(p.CPUPlace())
        exe.run(startup)
        p.static.save_inference_model(str(path), fed, results, exe, program=main)
    return str(path) + ".pdmodel", str(path) + ".pdiparams"


@pytest.mark.interop
@pytest.mark.parametrize("case", list(EXPORTS))
def test_program_paddle_wrote_runs_natively_and_lowers_back_to_its_rnn_op(case, tmp_path,
                                                                          real_paddle):
    mode, layout, given, lengths = EXPORTS[case]
    model, params = paddle_static_saved(real_paddle, mode, layout, given, lengths,
                                        tmp_path / "paddle")
    native = load_model(model, params)
    for batch, steps in ((2, 4), (3, 7)):
        f = feeds(mode, layout, given, lengths, batch, steps)
        want = paddle_predict(model, params, f)
        got = native.run([f[n] for n in native.feed_names])
        assert len(got) == len(want) == (3 if mode == "LSTM" else 2)
        for g, w in zip(got, want):
            assert_close(g, w)
    module, *_ = raise_program(load_program(model))
    assert {op.name for op in module.walk()} & {"pd.lstm", "pd.lstm_with_lengths", "pd.rnn",
                                                 "pd.rnn_with_lengths"}
    ours = tmp_path / "ours.pdmodel"
    save_program(ours, lower_function(entry(module)))
    assert op_descs(ours, "rnn") == op_descs(model, "rnn")


class Classifier:
    """Embedding -> 2-layer LSTM -> Linear on the last layer's final hidden state, as Paddle
    code writes it (made on demand: real Paddle is imported by the test's fixture)."""

    @staticmethod
    def build(p):
        class LSTMClassifier(p.nn.Layer):
            def __init__(self):
                super().__init__()
                self.emb = p.nn.Embedding(50, 8, padding_idx=0)
                self.lstm = p.nn.LSTM(8, 6, num_layers=2, dropout=0.2)
                self.fc = p.nn.Linear(6, 3)

            def forward(self, ids):
                out, (h, c) = self.lstm(self.emb(ids))
                return self.fc(h[-1])

        return LSTMClassifier()


@pytest.mark.interop
def test_lstm_classifier_saved_by_paddles_jit_save_runs_with_paddle_inferences_outputs(
        tmp_path, real_paddle):
    p = real_paddle
    p.seed(5)
    model = Classifier.build(p)
    model.eval()
    prefix = str(tmp_path / "classifier")
    paddle_jit_save(p, model, prefix, [p.static.InputSpec([None, None], "int64", "ids")])
    program = fpb.ProgramDesc.FromString(open(prefix + ".pdmodel", "rb").read())
    types = [op.type for op in program.blocks[0].ops]
    assert {"lookup_table_v2", "rnn", "matmul_v2", "slice"} <= set(types)
    config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    predictor = tostatic.inference.create_predictor(config)
    loaded = tostatic.jit.load(prefix)
    rng = np.random.default_rng(6)
    for batch, steps in ((2, 7), (4, 12)):
        ids = rng.integers(0, 50, (batch, steps)).astype("int64")
        want = paddle_predict(prefix + ".pdmodel", prefix + ".pdiparams", {"ids": ids})
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(ids.shape)
        handle.copy_from_cpu(ids)
        predictor.run()
        got = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
        assert_close(got, want[0])
        assert_close(loaded(tostatic.to_tensor(ids)).numpy(), want[0])
        assert_close(model(p.to_tensor(ids)).numpy(), want[0])  # and Paddle's eager


# --- refusals ----------------------------------------------------------------------------------

def rnn_inputs(num_layers=1, dirs=1, input_size=INPUT, gates=3):
    f = tostatic.float32
    n = num_layers * dirs
    weights = []
    for k in range(n):
        weights += [Abstract((gates * HIDDEN, input_size if k < dirs else dirs * HIDDEN), f),
                    Abstract((gates * HIDDEN, HIDDEN), f)]
    weights += [Abstract((gates * HIDDEN,), f)] * (2 * n)
    return [Abstract((5, -1, INPUT), f), Abstract((n, -1, HIDDEN), f), *weights]


@pytest.mark.parametrize("attrs, error, words", [
    ({"mode": "LSTMP"}, UnsupportedError, ["pd.rnn", "mode='LSTMP'", "'GRU'"]),
    ({"num_layers": 0}, UnsupportedError, ["pd.rnn", "num_layers=0", "at least 1"]),
    ({"dropout_prob": 1.5}, UnsupportedError, ["pd.rnn", "dropout_prob=1.5", "[0, 1]"]),
    ({"hidden_size": 0}, UnsupportedError, ["pd.rnn", "hidden_size=0"]),
    ({"mode": "LSTM"}, ShapeError, ["pd.rnn", "two PreState", "pd.lstm"]),
    ({"input_size": 7}, ShapeError, ["pd.rnn", "4 features", "input_size is 7"]),
])
def test_unsupported_attribute_values_are_refused_by_op_attribute_and_value(attrs, error,
                                                                            words):
    full = R.Rnn.normalize_attrs({"mode": "GRU", "hidden_size": HIDDEN, "input_size": INPUT,
                                  **attrs})
    with pytest.raises(error) as e:
        R.Rnn.infer_results(rnn_inputs(), full)
    for w in words:
        assert w in str(e.value)


def test_weights_of_the_wrong_shape_are_refused_by_slot_and_index():
    bad = rnn_inputs()
    bad[3] = Abstract((9, 2), tostatic.float32)
    with pytest.raises(ShapeError, match=r"pd.rnn: WeightList\[1\] must be float32 \[9, 3\]"):
        R.Rnn.infer_results(bad, R.Rnn.normalize_attrs({"mode": "GRU", "hidden_size": HIDDEN,
                                                         "input_size": INPUT}))


@pytest.mark.interop
def test_a_paddle_file_with_an_unknown_mode_is_refused_when_loaded(tmp_path, real_paddle):
    model, params = paddle_static_saved(real_paddle, "GRU", "1fwd", False, False,
                                        tmp_path / "paddle")
    program = fpb.ProgramDesc.FromString(open(model, "rb").read())
    (op,) = [o for o in program.blocks[0].ops if o.type == "rnn"]
    (mode,) = [a for a in op.attrs if a.name == "mode"]
    mode.s = "LSTMP"
    open(model, "wb").write(program.SerializeToString())
    with pytest.raises(UnsupportedError, match=r"pd.rnn: mode='LSTMP' is not supported .* "
                                               r"\(raising op \d+ \(rnn\) of block 0\)"):
        load_model(model, params)


