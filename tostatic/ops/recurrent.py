"""Recurrent networks: Paddle's `rnn` op, what nn.LSTM / nn.GRU / nn.SimpleRNN write.

One op runs a whole stack: `num_layers` layers, each forward or bidirectional, of one cell
kind (`mode`), over a time-major input [T, B, I] (batch-first layers transpose around it).

Slots, as Paddle 3.3.1 writes them:
- Input [T, B, I]; PreState: [h0] or, for an LSTM, [h0, c0], each [L*D, B, H] (D = 2 when
  is_bidirec), row `layer*D + direction`; SequenceLength [B] (int32/int64, optional);
- WeightList: every weight first, then every bias, each list by layer then direction:
  [w_ih, w_hh] * (L*D) + [b_ih, b_hh] * (L*D); w_ih is [G*H, I] for layer 0 and [G*H, D*H]
  above, w_hh [G*H, H], biases [G*H] (G = 4 for LSTM, 3 for GRU, 1 for a simple RNN);
- Out [T, B, D*H] (the directions concatenated on the last axis); State: [h_n] or [h_n, c_n]
  (PreState's shapes); Reserve and DropoutState (uint8, declared with shape [], as Paddle's
  file declares them): what Paddle's kernel keeps for the backward pass and the training
  dropout mask. Reserve is a zero scalar here; DropoutState the mask in training.

Gates, in the order the weight rows hold them:
- LSTM i, f, g, o: c = sigmoid(f) * c + sigmoid(i) * tanh(g), h = sigmoid(o) * tanh(c);
- GRU r, z, c with the reset gate applied after the hidden matmul (Paddle's GRUCell):
  r, z = sigmoid(x_rz + h W_hrz + b_hrz), c = tanh(x_c + r * (h W_hc + b_hc)),
  h = (h - c) * z + c;
- RNN_TANH / RNN_RELU: h = act(x W_ih + b_ih + h W_hh + b_hh).

SequenceLength: step t of sequence b counts when t < length[b]; past it the state stops
updating and the output is zero, so the reverse direction starts at each sequence's last
step (Paddle's kernel masks the same way). Training (is_test false) applies dropout between
layers, upscaled by 1 / (1 - p); like Paddle's CPU kernel it draws one mask and reuses it for
every layer boundary.

The kernel is vectorised over batch and gates: the input projection of every time step is one
matmul per layer and direction; only the recurrence loops over time in Python.

PreState and State hold a fixed number of tensors per form, so each form is its own pd op
(as layer_norm's are): pd.lstm (h0, c0), pd.rnn (h0; modes GRU, RNN_TANH, RNN_RELU), and
their `_with_lengths` forms reading SequenceLength too.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, FLOAT, INT, STR, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, Fixed, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.attr_checks import check_choice, unsupported
from tostatic.ops.creation import _generator

MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
SCALAR_U8 = Abstract((), dtypes.uint8)


# --- the kernel ------------------------------------------------------------------------------

def _sigmoid(x: np.ndarray) -> np.ndarray:
    """sigmoid in place, as 0.5 * tanh(x / 2) + 0.5 (no overflow for large |x|)."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _direction(proj: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray | None, h: np.ndarray,
               c: np.ndarray | None, mode: str, valid: np.ndarray | None,
               reverse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One layer in one direction. proj [T, B, G*H]: the input projection with the biases
    folded in (GRU: b_ih only; its b_hh is `b_hh`, added to the hidden matmul each step);
    valid [T, B, 1] bool or None. Returns (out [T, B, H], h_n, c_n)."""
    steps, hidden = proj.shape[0], h.shape[-1]
    out = np.empty(proj.shape[:2] + (hidden,), dtype=proj.dtype)
    w_t = np.ascontiguousarray(w_hh.T)
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        hh = h @ w_t
        if mode == "LSTM":
            gates = proj[t] + hh
            _sigmoid(gates[:, :2 * hidden])
            _sigmoid(gates[:, 3 * hidden:])
            cand = np.tanh(gates[:, 2 * hidden:3 * hidden])
            c_new = gates[:, hidden:2 * hidden] * c + gates[:, :hidden] * cand
            h_new = gates[:, 3 * hidden:] * np.tanh(c_new)
        elif mode == "GRU":
            hh += b_hh
            rz = _sigmoid(proj[t, :, :2 * hidden] + hh[:, :2 * hidden])
            cand = np.tanh(proj[t, :, 2 * hidden:] + rz[:, :hidden] * hh[:, 2 * hidden:])
            h_new = (h - cand) * rz[:, hidden:] + cand
        else:
            h_new = proj[t] + hh
            if mode == "RNN_TANH":
                np.tanh(h_new, out=h_new)
            else:
                np.maximum(h_new, 0, out=h_new)
        if valid is None:
            h = h_new
            if mode == "LSTM":
                c = c_new
            out[t] = h
            continue
        h = np.where(valid[t], h_new, h)
        if mode == "LSTM":
            c = np.where(valid[t], c_new, c)
        out[t] = np.where(valid[t], h_new, 0)
    return out, h, c


def run_rnn(x: np.ndarray, pre_h: np.ndarray, pre_c: np.ndarray | None,
            weights: list[np.ndarray], lengths: np.ndarray | None, mode: str,
            hidden_size: int, num_layers: int, is_bidirec: bool, dropout_prob: float,
            is_test: bool, seed: int) -> list[np.ndarray]:
    """[Out, h_n, (c_n,) Reserve, DropoutState] of the rnn op (module docstring)."""
    steps, batch = x.shape[0], x.shape[1]
    dirs = 2 if is_bidirec else 1
    n = num_layers * dirs
    valid = None
    if lengths is not None:
        valid = (np.arange(steps)[:, None] < lengths.reshape(1, -1).astype(np.int64))[..., None]
    h_n = np.empty_like(pre_h)
    c_n = np.empty_like(pre_c) if pre_c is not None else None
    dropout_state = np.zeros((), np.uint8)
    inp = x
    p = float(np.float32(dropout_prob))
    for layer in range(num_layers):
        if layer > 0 and not is_test and p > 0:
            if dropout_state.ndim == 0:  # one mask, drawn once, for every boundary
                draw = np.random.default_rng(seed) if seed else _generator(0)
                dropout_state = (draw.random(inp.shape, dtype=np.float32) >= p).astype(np.uint8)
            inp = (inp * x.dtype.type(0) if p == 1.0
                   else inp * dropout_state * x.dtype.type(1.0 / (1.0 - p)))
        flat = inp.reshape(steps * batch, inp.shape[-1])
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            w_ih, w_hh = weights[2 * k], weights[2 * k + 1]
            b_ih, b_hh = weights[2 * n + 2 * k], weights[2 * n + 2 * k + 1]
            proj = flat @ w_ih.T
            proj += b_ih if mode == "GRU" else b_ih + b_hh
            out, h, c = _direction(proj.reshape(steps, batch, -1), w_hh, b_hh, pre_h[k],
                                   pre_c[k] if pre_c is not None else None, mode, valid, d == 1)
            outs.append(out)
            h_n[k] = h
            if c_n is not None:
                c_n[k] = c
        inp = outs[0] if dirs == 1 else np.concatenate(outs, axis=-1)
    states = [h_n] if c_n is None else [h_n, c_n]
    return [inp, *states, np.zeros((), np.uint8), dropout_state]


# --- the shape rule --------------------------------------------------------------------------

def _same(a: int, b: int) -> bool:
    return a < 0 or b < 0 or a == b


def check_rnn(op: str, x: Abstract, states: list[Abstract], weights: list[Abstract],
              lengths: Abstract | None, mode: str, hidden_size: int, input_size: int,
              num_layers: int, is_bidirec: bool, dropout_prob: float) -> None:
    """Every shape and attribute rule of the rnn op; raises naming op, attribute and value."""
    check_choice(op, "mode", mode, MODES)
    if hidden_size < 1:
        raise unsupported(op, "hidden_size", hidden_size, "a positive size")
    if num_layers < 1:
        raise unsupported(op, "num_layers", num_layers, "at least 1")
    if not 0.0 <= dropout_prob <= 1.0:
        raise unsupported(op, "dropout_prob", dropout_prob, "a probability in [0, 1]")
    if not x.dtype.is_floating:
        raise ShapeError(f"{op}: Input must be a floating tensor, got {x.dtype.name}")
    if x.ndim != 3:
        raise ShapeError(f"{op}: Input must be [time, batch, input_size], got {list(x.shape)}")
    if not _same(x.shape[2], input_size):
        raise ShapeError(f"{op}: Input has {x.shape[2]} features, input_size is {input_size}")
    dirs = 2 if is_bidirec else 1
    want = (num_layers * dirs, x.shape[1], hidden_size)
    for i, s in enumerate(states):
        if s.dtype != x.dtype or s.ndim != 3 or not all(map(_same, s.shape, want)):
            raise ShapeError(f"{op}: PreState {i} must be {x.dtype.name} "
                             f"[num_layers * directions, batch, hidden_size] = {list(want)}, "
                             f"got {s.dtype.name} {list(s.shape)}")
    n = num_layers * dirs
    if len(weights) != 4 * n:
        raise ShapeError(f"{op}: WeightList must hold {4 * n} tensors (w_ih, w_hh per layer "
                         f"and direction, then b_ih, b_hh), got {len(weights)}")
    rows = GATES[mode] * hidden_size
    for k in range(n):
        fan_in = input_size if k < dirs else dirs * hidden_size
        for j, shape in ((2 * k, (rows, fan_in)), (2 * k + 1, (rows, hidden_size)),
                         (2 * n + 2 * k, (rows,)), (2 * n + 2 * k + 1, (rows,))):
            w = weights[j]
            if w.dtype != x.dtype or w.shape != shape:
                raise ShapeError(f"{op}: WeightList[{j}] must be {x.dtype.name} {list(shape)} "
                                 f"for mode {mode}, got {w.dtype.name} {list(w.shape)}")
    if lengths is not None:
        if lengths.dtype not in (dtypes.int32, dtypes.int64) or lengths.ndim != 1 \
                or not _same(lengths.shape[0], x.shape[1]):
            raise ShapeError(f"{op}: SequenceLength must be int32 or int64 [batch], got "
                             f"{lengths.dtype.name} {list(lengths.shape)}")


# --- the forms -------------------------------------------------------------------------------

COMMON_ATTRS = {"hidden_size": attr(INT, 100), "input_size": attr(INT, 10),
                "num_layers": attr(INT, 1), "is_bidirec": attr(BOOL, False),
                "dropout_prob": attr(FLOAT, 0.0), "is_test": attr(BOOL, False),
                "seed": attr(INT, 0)}  # Paddle's op defaults


class RnnBase(PdOp):
    """The rule and kernel every form shares: STATES names the PreState inputs, LENGTHS says
    whether SequenceLength is read; the LSTM forms fix mode, the others carry it."""

    STATES: ClassVar[tuple[str, ...]] = ()
    LENGTHS: ClassVar[bool] = False
    NAME_HINT = "rnn"

    @property
    def EFFECTS(self) -> bool:  # noqa: N802  (read as op.EFFECTS like the class constants)
        """Random when training with dropout between layers."""
        a = self.attr_values()
        return not a["is_test"] and a["dropout_prob"] > 0 and a["num_layers"] > 1

    @classmethod
    def split(cls, inputs: tuple[Any, ...]) -> tuple[Any, list[Any], list[Any], Any]:
        """(x, states, weights, lengths) from the grouped inputs."""
        k = len(cls.STATES)
        x, states, weights = inputs[0], list(inputs[1:1 + k]), list(inputs[1 + k])
        return x, states, weights, (inputs[2 + k] if cls.LENGTHS else None)

    @classmethod
    def infer(cls, *inputs: Any, mode: str = "LSTM", hidden_size: int, input_size: int,
              num_layers: int, is_bidirec: bool, dropout_prob: float, is_test: bool,
              seed: int) -> list[Abstract]:
        x, states, weights, lengths = cls.split(inputs)
        if len(states) == 1 and mode == "LSTM":
            raise ShapeError(f"{cls.name}: mode LSTM needs two PreState tensors (h, c); "
                             f"use pd.lstm")
        check_rnn(cls.name, x, states, weights, lengths, mode, hidden_size, input_size,
                  num_layers, is_bidirec, dropout_prob)
        dirs = 2 if is_bidirec else 1
        out = Abstract(x.shape[:2] + (dirs * hidden_size,), x.dtype)
        return [out, *states, SCALAR_U8, SCALAR_U8]

    @classmethod
    def eager(cls, *inputs: Any, mode: str = "LSTM", hidden_size: int, input_size: int,
              num_layers: int, is_bidirec: bool, dropout_prob: float, is_test: bool,
              seed: int) -> list[np.ndarray]:
        x, states, weights, lengths = cls.split(inputs)
        return run_rnn(x, states[0], states[1] if len(states) > 1 else None, weights, lengths,
                       mode, hidden_size, num_layers, is_bidirec, dropout_prob, is_test, seed)

    @classmethod
    def vjp(cls, e: Any, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
            cts: list[Any], needs: list[Any]) -> list[Any]:
        """One pd.rnn_grad (ops/recurrent_grad.py), given the forward's DropoutState."""
        x, states, weights, seq = cls.split(tuple(inputs))
        k = len(states)
        args = [x, *states, *weights] + ([seq] if seq is not None else []) + [outputs[-1]]
        grads = A.e(e, "pd.rnn_grad", *args, *cts[:1 + k], mode=attrs.get("mode", "LSTM"),
                    num_states=k, lengths=seq is not None,
                    **{a: attrs[a] for a in COMMON_ATTRS})
        return [grads[0], *grads[1:1 + k], list(grads[1 + k:])] + \
            ([None] if seq is not None else [])


def _form(class_name: str, op_name: str, lstm: bool, lengths: bool, doc: str) -> type[PdOp]:
    states = ("pre_h", "pre_c") if lstm else ("pre_h",)
    attrs = dict(COMMON_ATTRS) if lstm else {"mode": attr(STR, "RNN_TANH"), **COMMON_ATTRS}
    legacy_attrs: dict[str, Any] = {key: From(kind, key) for key, kind in (
        ("dropout_prob", "FLOAT"), ("hidden_size", "INT"), ("input_size", "INT"),
        ("is_bidirec", "BOOLEAN"), ("is_test", "BOOLEAN"), ("num_layers", "INT"),
        ("seed", "INT"))}
    legacy_attrs["mode"] = Fixed("STRING", "LSTM") if lstm else From("STRING", "mode")
    k = len(states)
    slots = {"Input": "x", "PreState": states, "WeightList": "*weights"}
    if lengths:
        slots["SequenceLength"] = "sequence_length"
    legacy = Legacy("rnn", slots,
                    {"Out": 0, "State": tuple(range(1, 1 + k)), "Reserve": k + 1,
                     "DropoutState": k + 2}, legacy_attrs,
                    optional_inputs=() if lengths else ("SequenceLength",),
                    keeps_extra_attrs=True, out_lod_level=False)
    body: dict[str, Any] = {
        "name": op_name, "INPUTS": ("x", *states, "*weights")
        + (("sequence_length",) if lengths else ()), "ATTRS": attrs, "STATES": states,
        "LENGTHS": lengths, "NUM_RESULTS": k + 3, "PADDLE": legacy, "__module__": __name__,
        "__doc__": doc}
    return pd_op(type(class_name, (RnnBase,), body))


# the LSTM forms first: raising tries the forms in this order, and an LSTM's two PreState
# tensors fit those alone (the other forms' fixed mode check would not be reached)
Lstm = _form("Lstm", "pd.lstm", True, False, "An LSTM stack (rnn, mode LSTM).")
LstmWithLengths = _form("LstmWithLengths", "pd.lstm_with_lengths", True, True,
                        "An LSTM stack over padded sequences (rnn with SequenceLength).")
Rnn = _form("Rnn", "pd.rnn", False, False,
            "A GRU or simple-RNN stack (rnn, mode GRU, RNN_TANH or RNN_RELU).")
RnnWithLengths = _form("RnnWithLengths", "pd.rnn_with_lengths", False, True,
                       "A GRU or simple-RNN stack over padded sequences (SequenceLength).")
