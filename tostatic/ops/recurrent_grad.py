"""The rnn op's gradient (Paddle's rnn_grad): backpropagation through time.

Each layer and direction is run forward again keeping every step's gates (the forward op
keeps none: its Reserve is empty), then walked backwards; the dropout between layers reuses
the forward's DropoutState. One op, `pd.rnn_grad`, serves every form: its inputs are the
forward's inputs (x, the states, the weights, the lengths when given), then the forward's
DropoutState, then the cotangents of Out and of each state. Second order through recurrent
networks is not supported.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir.attributes import BOOL, INT, STR, attr
from tostatic.ir.opdef import Abstract, PdOp, pd_op
from tostatic.ops.recurrent import COMMON_ATTRS, _direction


def _sig(v: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * v) + 0.5


def _direction_grad(proj: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: np.ndarray,
                    c: np.ndarray | None, mode: str, valid: np.ndarray | None, reverse: bool,
                    d_out: np.ndarray, d_h: np.ndarray, d_c: np.ndarray | None) -> list[Any]:
    """(d_proj, d_w_hh, d_b_hh from the hidden side (GRU), d_h0, d_c0) for one direction."""
    steps, hidden = proj.shape[0], h.shape[-1]
    order = list(range(steps - 1, -1, -1) if reverse else range(steps))
    saved = []
    for t in order:  # the forward again, keeping what the backward needs
        hh = h @ w_hh.T
        if mode == "LSTM":
            a = proj[t] + hh
            i, f, o = _sig(a[:, :hidden]), _sig(a[:, hidden:2 * hidden]), _sig(a[:, 3 * hidden:])
            g = np.tanh(a[:, 2 * hidden:3 * hidden])
            c_new = f * c + i * g
            h_new = o * np.tanh(c_new)
            saved.append((h, c, (i, f, g, o, c_new)))
        elif mode == "GRU":
            hh = hh + b_hh
            r = _sig(proj[t, :, :hidden] + hh[:, :hidden])
            z = _sig(proj[t, :, hidden:2 * hidden] + hh[:, hidden:2 * hidden])
            cand = np.tanh(proj[t, :, 2 * hidden:] + r * hh[:, 2 * hidden:])
            h_new = (h - cand) * z + cand
            saved.append((h, None, (r, z, cand, hh)))
        else:
            h_new = proj[t] + hh
            h_new = np.tanh(h_new) if mode == "RNN_TANH" else np.maximum(h_new, 0)
            saved.append((h, None, (h_new,)))
        if valid is not None:
            h_new = np.where(valid[t], h_new, h)
            if mode == "LSTM":
                c_new = np.where(valid[t], c_new, c)
        h = h_new
        if mode == "LSTM":
            c = c_new
    d_proj = np.zeros_like(proj)
    d_w = np.zeros_like(w_hh)
    d_bhh = np.zeros(w_hh.shape[0], proj.dtype)
    dh, dc = d_h.copy(), (d_c.copy() if d_c is not None else None)
    for t, (h_prev, c_prev, keep) in zip(reversed(order), reversed(saved)):
        live = valid[t] if valid is not None else None
        dh_new = dh + (d_out[t] if live is None else np.where(live, d_out[t], 0))
        if live is not None:
            passthrough, dh_new = np.where(live, 0, dh), np.where(live, dh_new, 0)
        if mode == "LSTM":
            i, f, g, o, c_new = keep
            tc = np.tanh(c_new)
            dc_new = dc if live is None else np.where(live, dc, 0)
            dc_tot = dc_new + dh_new * o * (1 - tc * tc)
            da = np.concatenate([dc_tot * g * i * (1 - i), dc_tot * c_prev * f * (1 - f),
                                 dc_tot * i * (1 - g * g), dh_new * tc * o * (1 - o)], axis=1)
            dc = dc_tot * f + (0 if live is None else np.where(live, 0, dc))
            d_hh = da
        elif mode == "GRU":
            r, z, cand, hh = keep
            d_cand = dh_new * (1 - z)
            da_c = d_cand * (1 - cand * cand)
            da_r = da_c * hh[:, 2 * hidden:] * r * (1 - r)
            da_z = dh_new * (h_prev - cand) * z * (1 - z)
            da = np.concatenate([da_r, da_z, da_c], axis=1)
            d_hh = np.concatenate([da_r, da_z, da_c * r], axis=1)
            d_bhh += d_hh.sum(axis=0)
        else:
            (h_new,) = keep
            act = 1 - h_new * h_new if mode == "RNN_TANH" else (h_new > 0).astype(proj.dtype)
            da = d_hh = dh_new * act
        d_proj[t] = da
        d_w += d_hh.T @ h_prev
        dh = d_hh @ w_hh + (dh_new * keep[1] if mode == "GRU" else 0)
        if live is not None:
            dh = dh + passthrough
    return [d_proj, d_w, d_bhh, dh, dc]


def rnn_grad(x: np.ndarray, pre_h: np.ndarray, pre_c: np.ndarray | None,
             weights: list[np.ndarray], lengths: np.ndarray | None, mask: np.ndarray,
             d_out: np.ndarray, d_hn: np.ndarray, d_cn: np.ndarray | None, mode: str,
             hidden_size: int, num_layers: int, is_bidirec: bool, dropout_prob: float,
             is_test: bool) -> list[Any]:
    steps, batch = x.shape[:2]
    dirs = 2 if is_bidirec else 1
    n = num_layers * dirs
    valid = None
    if lengths is not None:
        valid = (np.arange(steps)[:, None] < lengths.reshape(1, -1).astype(np.int64))[..., None]
    p = float(np.float32(dropout_prob))
    drop = not is_test and p > 0 and mask.ndim > 0
    scale = x.dtype.type(0.0 if p >= 1.0 else 1.0 / (1.0 - p))
    inputs, records = [], []
    inp = x
    for layer in range(num_layers):  # the layers' inputs, as the forward made them
        if layer > 0 and drop:
            inp = inp * mask * scale
        inputs.append(inp)
        flat = inp.reshape(steps * batch, -1)
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            w_ih, w_hh = weights[2 * k], weights[2 * k + 1]
            b_ih, b_hh = weights[2 * n + 2 * k], weights[2 * n + 2 * k + 1]
            proj = (flat @ w_ih.T + (b_ih if mode == "GRU" else b_ih + b_hh)).reshape(
                steps, batch, -1)
            out, _, _ = _direction(proj.copy(), w_hh, b_hh, pre_h[k],
                                   pre_c[k] if pre_c is not None else None, mode, valid, d == 1)
            outs.append(out)
            records.append(proj)
        inp = outs[0] if dirs == 1 else np.concatenate(outs, axis=-1)
    d_weights = [np.zeros_like(w) for w in weights]
    d_pre_h = np.zeros_like(pre_h)
    d_pre_c = np.zeros_like(pre_c) if pre_c is not None else None
    d_layer_out = d_out
    for layer in range(num_layers - 1, -1, -1):
        layer_in = inputs[layer]
        d_in = np.zeros_like(layer_in)
        for d in range(dirs):
            k = layer * dirs + d
            w_ih, w_hh = weights[2 * k], weights[2 * k + 1]
            d_o = d_layer_out[..., d * hidden_size:(d + 1) * hidden_size]
            d_proj, d_whh, d_bhh, d_h0, d_c0 = _direction_grad(
                records[k], w_hh, weights[2 * n + 2 * k + 1], pre_h[k],
                pre_c[k] if pre_c is not None else None, mode, valid, d == 1, d_o, d_hn[k],
                d_cn[k] if d_cn is not None else None)
            flat = d_proj.reshape(steps * batch, -1)
            d_weights[2 * k] = flat.T @ layer_in.reshape(steps * batch, -1)
            d_weights[2 * k + 1] = d_whh
            d_weights[2 * n + 2 * k] = flat.sum(axis=0)
            d_weights[2 * n + 2 * k + 1] = d_bhh if mode == "GRU" else flat.sum(axis=0)
            d_in += (flat @ w_ih).reshape(layer_in.shape)
            d_pre_h[k] = d_h0
            if d_pre_c is not None:
                d_pre_c[k] = d_c0
        d_layer_out = d_in * mask * scale if layer > 0 and drop else d_in
    states = [d_pre_h] if d_pre_c is None else [d_pre_h, d_pre_c]
    return [d_layer_out, *states, *d_weights]


@pd_op
class RnnGrad(PdOp):
    """rnn's gradients for every form: inputs (x, states..., weights..., [lengths], mask,
    d_out, d_states...), results (dx, d_states..., d_weights...)."""

    name = "pd.rnn_grad"
    INPUTS = ("*args",)
    ATTRS = {"mode": attr(STR, "LSTM"), "num_states": attr(INT, 1),
             "lengths": attr(BOOL, False), **COMMON_ATTRS}
    NUM_RESULTS = None
    NONDIFF = True

    @staticmethod
    def split(args: list[Any], num_states: int, lengths: bool) -> tuple[Any, ...]:
        k = num_states
        x, states = args[0], list(args[1:1 + k])
        rest = args[1 + k:]
        cts = rest[-(1 + k):]
        rest = rest[:-(1 + k)]
        mask = rest[-1]
        rest = rest[:-1]
        seq = rest[-1] if lengths else None
        weights = list(rest[:-1] if lengths else rest)
        return x, states, weights, seq, mask, cts

    @classmethod
    def infer(cls, args: list[Abstract], mode: str, num_states: int, lengths: bool,
              **_: Any) -> list[Abstract]:
        x, states, weights, _, _, _ = cls.split(args, num_states, lengths)
        return [x, *states, *weights]

    @classmethod
    def eager(cls, args: list[np.ndarray], mode: str, num_states: int, lengths: bool,
              hidden_size: int, input_size: int, num_layers: int, is_bidirec: bool,
              dropout_prob: float, is_test: bool, seed: int) -> list[np.ndarray]:
        x, states, weights, seq, mask, cts = cls.split(args, num_states, lengths)
        return rnn_grad(x, states[0], states[1] if num_states > 1 else None, weights, seq,
                        mask, cts[0], cts[1], cts[2] if num_states > 1 else None, mode,
                        hidden_size, num_layers, is_bidirec, dropout_prob, is_test)

