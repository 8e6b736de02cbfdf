"""Recurrent networks: Paddle's `rnn` op (ops/recurrent.py) and nn.LSTM / nn.GRU / nn.SimpleRNN,
their cells and the RNN / BiRNN layers (frontend/nn/rnn.py, rnn_cells.py).

- eager against real Paddle: weights copied by state_dict (same keys), every mode, 1 and 2
  layers, forward and bidirectional, batch-first and time-major, initial states given or not,
  sequence lengths; dropout between layers in training; static mode as eager;
- export: the program jit.save writes is Paddle's op for op, and runs in paddle.inference
  with eager's outputs at two sequence lengths and batch sizes;
- programs Paddle wrote (static mode, and jit.save of an Embedding -> LSTM -> Linear
  classifier) run natively with Paddle Inference's outputs and lower back to Paddle's rnn op;
- refusals name the op, the attribute and the value.
"""
from __future__ import annotations


import numpy as np
import pytest

from tostatic.serialization.pdiparams_info import load_info
import tostatic
from tostatic.frontend.capture.jit_save import write_inference_model
from tostatic.frontend.capture.static_function import trace
from tostatic.ir.errors import ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract
from tostatic.ops import recurrent as R
from tostatic.passes.base import entry
from tostatic.passes.lower_to_program import lower_function
from tostatic.passes.raise_from_program import raise_program
from tostatic.runtime.loaded_model import load_model
from tostatic.serialization import framework_pb2 as fpb
from tostatic.serialization.program_desc import load_program, save_program
from tostatic.utils import unique_name

from conftest import assert_close, describe_program, paddle_predict
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


def copy_weights(theirs, ours):
    """ours.set_state_dict(theirs.state_dict()): Paddle's keys must be ours, in order."""
    state = theirs.state_dict()
    assert list(state) == list(ours.state_dict())
    ours.set_state_dict({k: v.numpy() for k, v in state.items()})


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


def call(lib, layer, x, states, lengths):
    t = lib.to_tensor
    init = None if states is None else (
        tuple(t(s) for s in states) if len(states) > 1 else t(states[0]))
    return flat(layer(t(x), init, None if lengths is None else t(lengths)))


# --- eager against Paddle ------------------------------------------------------------------------

@pytest.mark.interop
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("given", [False, True], ids=["zero_states", "states"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("mode", list(LAYERS))
def test_eager_outputs_and_final_states_match_paddle(mode, layout, given, lengths, real_paddle):
    p = real_paddle
    theirs, ours = make(p, mode, layout), make(tostatic, mode, layout)
    theirs.eval()
    ours.eval()
    copy_weights(theirs, ours)
    x, states, lens = inputs(mode, layout)
    want = call(p, theirs, x, states if given else None, lens if lengths else None)
    got = call(tostatic, ours, x, states if given else None, lens if lengths else None)
    assert len(got) == len(want) == (3 if mode == "LSTM" else 2)
    for g, w in zip(got, want):
        assert_close(g.numpy(), w.numpy())


@pytest.mark.interop
@pytest.mark.parametrize("mode", list(LAYERS))
def test_parameters_are_made_as_paddle_makes_them(mode, real_paddle):
    p = real_paddle
    with p.utils.unique_name.guard():
        theirs = make(p, mode, "2bi")
    with unique_name.guard():
        ours = make(tostatic, mode, "2bi")
    assert [(q.name, tuple(q.shape)) for q in theirs.parameters()] == \
        [(q.name, tuple(q.shape)) for q in ours.parameters()]
    assert len(ours.parameters()) == 16 and len(ours.state_dict()) == 32  # two names each
    bound = 1 / np.sqrt(HIDDEN)
    for q in ours.parameters():
        assert np.all(np.abs(q.numpy()) <= bound) and q.numpy().std() > 0 and q.trainable
    assert ours.weight_ih_l1_reverse is ours[1].cell_bw.weight_ih
    assert [w.name for w in ours._all_weights] == [w.name for w in theirs._all_weights]


def test_a_false_weight_attr_gives_a_constant_that_does_not_train():
    layer = tostatic.nn.GRU(INPUT, HIDDEN, weight_hh_attr=False)
    np.testing.assert_array_equal(layer.weight_hh_l0.numpy(), np.ones((3 * HIDDEN, HIDDEN)))
    assert layer.weight_hh_l0.stop_gradient and not layer.weight_ih_l0.stop_gradient


@pytest.mark.interop
@pytest.mark.parametrize("cell", ["LSTMCell", "GRUCell", "SimpleRNNCell"])
def test_cells_and_the_rnn_layers_running_them_match_paddle(cell, real_paddle):
    p = real_paddle
    rng = np.random.default_rng(1)
    step = rng.standard_normal((3, INPUT)).astype("float32")
    theirs, ours = getattr(p.nn, cell)(INPUT, 5), getattr(tostatic.nn, cell)(INPUT, 5)
    copy_weights(theirs, ours)
    for g, w in zip(flat(ours(tostatic.to_tensor(step))), flat(theirs(p.to_tensor(step)))):
        assert_close(g.numpy(), w.numpy())
    x = rng.standard_normal((3, 6, INPUT)).astype("float32")
    lens = np.array([6, 2, 4], "int64")
    for kind in ("RNN", "reverse", "BiRNN"):
        if kind == "BiRNN":
            theirs = p.nn.BiRNN(getattr(p.nn, cell)(INPUT, 5), getattr(p.nn, cell)(INPUT, 5))
            ours = tostatic.nn.BiRNN(getattr(tostatic.nn, cell)(INPUT, 5),
                                     getattr(tostatic.nn, cell)(INPUT, 5))
        else:
            theirs = p.nn.RNN(getattr(p.nn, cell)(INPUT, 5), is_reverse=kind == "reverse")
            ours = tostatic.nn.RNN(getattr(tostatic.nn, cell)(INPUT, 5),
                                   is_reverse=kind == "reverse")
        copy_weights(theirs, ours)
        for s in (None, lens):
            want = flat(theirs(p.to_tensor(x), sequence_length=None if s is None
                               else p.to_tensor(s)))
            got = flat(ours(tostatic.to_tensor(x), sequence_length=None if s is None
                            else tostatic.to_tensor(s)))
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert_close(g.numpy(), w.numpy())


# --- dropout between layers, in training -----------------------------------------------------

@pytest.mark.interop
@pytest.mark.parametrize("mode", ["LSTM", "RNN_RELU"])
def test_training_with_dropout_one_zeroes_what_the_second_layer_reads(mode, real_paddle):
    """p = 1 is deterministic: the second layer reads zeros, in Paddle as here."""
    p = real_paddle
    theirs, ours = make(p, mode, "2bi"), make(tostatic, mode, "2bi")
    theirs.dropout = ours.dropout = 1.0
    copy_weights(theirs, ours)
    x, _, _ = inputs(mode, "2bi")
    for g, w in zip(call(tostatic, ours, x, None, None), call(p, theirs, x, None, None)):
        assert_close(g.numpy(), w.numpy())
    ours.eval()
    assert not np.allclose(call(tostatic, ours, x, None, None)[0].numpy(),
                           call(p, theirs, x, None, None)[0].numpy())


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

def net(lib, mode, layout):
    """A Layer around one recurrent layer: forward(x, states=None, lengths=None) -> (out,
    final states)."""

    class Net(lib.nn.Layer):
        def __init__(self):
            super().__init__()
            self.rnn = make(lib, mode, layout)

        def forward(self, x, states=None, lengths=None):
            return self.rnn(x, states, lengths)

    return Net()


def specs(lib, mode, layout, given, lengths, batch=None):
    num_layers, direction, time_major, _ = LAYOUTS[layout]
    spec = lib.static.InputSpec
    n = num_layers * (2 if direction != "forward" else 1)
    out = [spec([None, batch, INPUT] if time_major else [batch, None, INPUT], "float32", "x")]
    if given:
        out.append([spec([n, batch, HIDDEN], "float32", name)
                    for name in (("h", "c") if mode == "LSTM" else ("h",))])
    if lengths:
        out.append(spec([batch], "int64", "sl"))
    return out


def feeds(mode, layout, given, lengths, batch, steps, seed=3):
    x, states, lens = inputs(mode, layout, batch, steps, seed)
    out = {"x": x}
    if given:
        out.update(zip(("h", "c"), states))
    if lengths:
        out["sl"] = lens
    return out


def eager_outputs(layer, mode, f):
    t = tostatic.to_tensor
    states = [t(f[k]) for k in ("h", "c") if k in f] or None
    return [o.numpy() for o in flat(layer(t(f["x"]), states,
                                          t(f["sl"]) if "sl" in f else None))]


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


@pytest.mark.interop
@pytest.mark.parametrize("case", list(EXPORTS))
def test_export_runs_in_paddle_inference_as_eager_at_two_lengths(case, tmp_path, real_paddle):
    mode, layout, given, lengths = EXPORTS[case]
    layer = net(tostatic, mode, layout)
    layer.eval()
    prefix = str(tmp_path / "m")
    tostatic.jit.save(layer, prefix, input_spec=specs(tostatic, mode, layout, given, lengths))
    native = load_model(prefix + ".pdmodel", prefix + ".pdiparams")
    for batch, steps in ((2, 5), (3, 9)):
        f = feeds(mode, layout, given, lengths, batch, steps)
        want = eager_outputs(layer.rnn, mode, f)
        theirs = paddle_predict(prefix + ".pdmodel", prefix + ".pdiparams", f)
        ours = native.run([f[n] for n in native.feed_names])
        assert len(theirs) == len(ours) == len(want)
        for a, b, w in zip(theirs, ours, want):
            assert_close(a, w)
            assert_close(b, w)


class CellNet:
    """BiRNN(LSTMCell, GRUCell) with sequence lengths: the cells' own ops, unrolled."""

    @staticmethod
    def build():
        class Net(tostatic.nn.Layer):
            def __init__(self):
                super().__init__()
                self.rnn = tostatic.nn.BiRNN(tostatic.nn.LSTMCell(INPUT, HIDDEN),
                                             tostatic.nn.GRUCell(INPUT, HIDDEN))

            def forward(self, x, sl):
                out, ((h, c), bw) = self.rnn(x, sequence_length=sl)
                return out, c, bw

        return Net()


@pytest.mark.interop
def test_cells_unrolled_over_known_steps_export_and_run_in_paddle_inference(tmp_path,
                                                                           real_paddle):
    layer = CellNet.build()
    spec = tostatic.static.InputSpec
    prefix = str(tmp_path / "cells")
    tostatic.jit.save(layer, prefix, input_spec=[spec([None, 6, INPUT], "float32", "x"),
                                                 spec([None], "int64", "sl")])
    for batch in (2, 3):
        x, _, lens = inputs("GRU", "1fwd", batch, 6)
        want = [o.numpy() for o in layer(tostatic.to_tensor(x), tostatic.to_tensor(lens))]
        got = paddle_predict(prefix + ".pdmodel", prefix + ".pdiparams", {"x": x, "sl": lens})
        assert len(got) == len(want) == 3
        for g, w in zip(got, want):
            assert_close(g, w)
    with pytest.raises(UnsupportedError, match=r"LSTMCell over time: the number of time steps "
                                               r"must be known .* \[-1, -1, 4\]"):
        tostatic.jit.save(layer, prefix, input_spec=[spec([None, None, INPUT], "float32", "x"),
                                                     spec([None], "int64", "sl")])


# variables whose declarations differ from Paddle's jit.save: not the rnn op's own
KNOWN_VAR_DIFFERENCES = (
    "dropout_state__non_persistable",  # Paddle's dims are those of the buffer given above
)


@pytest.mark.interop
@pytest.mark.parametrize("case, batch", [("lstm_2bi", None), ("gru_tm_states_lengths", None),
                                         ("relu_tm", 2), ("tanh_lengths_states", 3)])
def test_export_writes_the_ops_paddles_jit_save_writes(case, batch, tmp_path, real_paddle):
    """Op for op (op_callstack aside), the same .pdiparams bytes and .pdiparams.info; with
    tostatic's default pipeline less cse, which merges an LSTM's two identical zero states
    (Paddle writes two fill_constant ops; one is read twice, see the test above)."""
    p = real_paddle
    mode, layout, given, lengths = EXPORTS[case]
    with p.utils.unique_name.guard():  # names from lstm_0, lstm_cell_0, ... in both
        theirs = net(p, mode, layout)
        theirs.eval()
        paddle_jit_save(p, theirs, str(tmp_path / "paddle"),
                        specs(p, mode, layout, given, lengths, batch))
    with unique_name.guard():
        ours = net(tostatic, mode, layout)
    ours.eval()
    copy_weights(theirs, ours)
    concrete = trace(ours.forward, specs(tostatic, mode, layout, given, lengths, batch), ours,
                     pipeline="persistable-extraction,canonicalize,constant-folding,"
                              "dead-op-elimination,lower-to-program,set-is-test")
    write_inference_model(str(tmp_path / "ours"), concrete.module, concrete.state)
    a = describe_program(tmp_path / "paddle.pdmodel")
    b = describe_program(tmp_path / "ours.pdmodel")
    assert a["ops0"] == b["ops0"]
    va = {fpb.VarDesc.FromString(v).name: v for v in a["vars0"]}
    vb = {fpb.VarDesc.FromString(v).name: v for v in b["vars0"]}
    assert sorted(va) == sorted(vb)
    assert {n: v for n, v in va.items() if not any(k in n for k in KNOWN_VAR_DIFFERENCES)} == \
        {n: v for n, v in vb.items() if not any(k in n for k in KNOWN_VAR_DIFFERENCES)}
    assert (tmp_path / "paddle.pdiparams").read_bytes() == \
        (tmp_path / "ours.pdiparams").read_bytes()
    assert load_info(tmp_path / "paddle.pdiparams.info") == \
        load_info(tmp_path / "ours.pdiparams.info")


# --- programs Paddle wrote ---------------------------------------------------------------------

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


@pytest.mark.interop
def test_a_paddle_2_style_lstm_program_with_fill_constant_batch_size_like_states_runs(
        tmp_path, real_paddle):
    """Paddle 2.x's nn.LSTM made its zero states with one fill_constant_batch_size_like
    (batch from the time-major input's dim 1) read twice by PreState: files it wrote run."""
    p = real_paddle
    with paddle_static(p) as (main, startup):
        layer = make(p, "LSTM", "2bi")
        layer.eval()
        x = p.static.data("x", [None, None, INPUT], "float32")
        helper = p.base.layer_helper.LayerHelper("lstm_v2")
        xt = p.transpose(x, [1, 0, 2])
        zero = helper.create_variable_for_type_inference("float32")
        helper.append_op(type="fill_constant_batch_size_like", inputs={"Input": xt},
                         outputs={"Out": zero},
                         attrs={"shape": [4, -1, HIDDEN], "dtype": 5, "value": 0.0,
                                "input_dim_idx": 1, "output_dim_idx": 1})
        out = helper.create_variable_for_type_inference("float32")
        states = [helper.create_variable_for_type_inference("float32") for _ in range(2)]
        reserve = helper.create_variable_for_type_inference("uint8")
        dropout_state = helper.create_variable_for_type_inference("uint8")
        helper.append_op(type="rnn", inputs={"Input": xt, "PreState": [zero, zero],
                                             "WeightList": layer._all_weights},
                         outputs={"Out": out, "State": states, "Reserve": reserve,
                                  "DropoutState": dropout_state},
                         attrs={"mode": "LSTM", "hidden_size": HIDDEN, "input_size": INPUT,
                                "num_layers": 2, "is_bidirec": True, "dropout_prob": 0.0,
                                "is_test": True})
        results = [p.transpose(out, [1, 0, 2]), *states]
        exe = p.static.Executor(p.CPUPlace())
        exe.run(startup)
        p.static.save_inference_model(str(tmp_path / "v2"), [x], results, exe, program=main)
    model, params = str(tmp_path / "v2.pdmodel"), str(tmp_path / "v2.pdiparams")
    assert "fill_constant_batch_size_like" in {o.type for o in fpb.ProgramDesc.FromString(
        open(model, "rb").read()).blocks[0].ops}
    native = load_model(model, params)
    for batch, steps in ((2, 4), (3, 7)):
        x, _, _ = inputs("LSTM", "2bi", batch, steps)
        want = paddle_predict(model, params, {"x": x})
        got = native.run([x])
        assert len(got) == len(want) == 3
        for g, w in zip(got, want):
            assert_close(g, w)


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


@pytest.mark.parametrize("make_layer, error, words", [
    (lambda: tostatic.nn.LSTM(4, 3, proj_size=2), UnsupportedError,
     ["nn.LSTM", "proj_size=2"]),
    (lambda: tostatic.nn.GRU(4, 3, bias_ih_attr=False), UnsupportedError,
     ["nn.GRU", "bias_ih_attr=False"]),
    (lambda: tostatic.nn.LSTM(4, 3, direction="backward"), ValueError,
     ["direction", "backward"]),
    (lambda: tostatic.nn.SimpleRNN(4, 3, activation="sigmoid"), ValueError,
     ["activation", "sigmoid"]),
])
def test_layers_refuse_what_they_cannot_export(make_layer, error, words):
    with pytest.raises(error) as e:
        make_layer()
    for w in words:
        assert w in str(e.value)


def test_an_input_of_the_wrong_size_names_the_op_and_input_size():
    layer = tostatic.nn.LSTM(4, 3)
    with pytest.raises(ShapeError, match="pd.lstm: Input has 5 features, input_size is 4"):
        layer(tostatic.to_tensor(np.zeros((2, 3, 5), "float32")))


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_static_mode_program_computes_what_eager_does(mode, static):
    main, startup = static
    layer = make(tostatic, mode, "2bi")
    layer.eval()
    x = tostatic.static.data("x", [None, None, INPUT], "float32")
    results = flat(layer(x))
    exe = tostatic.static.Executor()
    exe.run(startup)
    f = feeds(mode, "2bi", False, False, 2, 5)
    got = exe.run(main, feed=f, fetch_list=results)
    scope = tostatic.static.global_scope()
    tostatic.disable_static()
    try:
        eager = make(tostatic, mode, "2bi")
        eager.eval()
        # state_dict: the layer's own names, then the cells' names, of the same parameters
        eager.set_state_dict({k: np.asarray(scope.find_var(p.name).get_tensor())
                              for k, p in zip(eager.state_dict(), layer._cell_parameters() * 2)})
        want = eager_outputs(eager, mode, f)
    finally:
        tostatic.enable_static()
    for g, w in zip(got, want):
        assert_close(g, w)
