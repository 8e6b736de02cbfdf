"""The Transformer layers (LayerNorm, Embedding, GELU, MultiHeadAttention,
TransformerEncoderLayer / Encoder, TransformerDecoderLayer / Decoder, Transformer) against
real Paddle 3.3.1:

- construction: the same repr, state_dict keys in the same order, parameter names (in a
  fresh name scope), Paddle's initial values where they are fixed (LayerNorm ones / zeros,
  the zeroed padding row) and the same parameters when weight_attr / bias_attr are False;
- eager: Paddle's weights copied in through state_dict give Paddle's dygraph outputs, at two
  sequence lengths, with attention masks of bool, int and float dtype, need_weights, kdim /
  vdim, dropout in eval, and the incremental Cache and the StaticCache of decoding;
- captured: jit.save writes the program Paddle's jit.save writes (Paddle 2.x's matmul_v2 /
  gelu branches, tests/paddle_2x.py), and paddle.inference runs ours with tostatic's eager
  outputs at two sequence lengths from one export.
"""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.ir import names

from transformer_harness import ours_save, paddle_save, predict, program_differences

rng = np.random.default_rng(7)
D, H, FF = 8, 2, 16


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def pad_mask(batch, seq, dtype):
    """[batch, 1, 1, seq]: the last position of sample 0 and the last two of sample 1 are
    padding (False / 0 / -1e4), as BERT-style masks are made."""
    keep = np.ones((batch, 1, 1, seq), bool)
    keep[0, ..., -1:] = False
    keep[1, ..., -2:] = False
    if dtype == "bool":
        return keep
    if dtype == "int64":
        return keep.astype(np.int64)
    return np.where(keep, 0.0, -1e4).astype(np.float32)


def causal(seq):
    return np.triu(np.full((seq, seq), -np.inf, np.float32), 1)


# (id, make(P) -> layer, inputs(seq) -> arrays, call(layer, *tensors), capture: spec dims
# of each input with None for the dynamic ones, or None to skip the jit.save comparison)
CASES = [
    ("layer_norm", lambda P: P.nn.LayerNorm(D), lambda s: [f32(2, s, D)],
     lambda m, x: m(x), [(None, None, D)]),
    ("layer_norm_2d_eps", lambda P: P.nn.LayerNorm([3, D], epsilon=1e-3),
     lambda s: [f32(s, 3, D)], lambda m, x: m(x), [(None, 3, D)]),
    ("layer_norm_no_bias", lambda P: P.nn.LayerNorm(D, bias_attr=False),
     lambda s: [f32(2, s, D)], lambda m, x: m(x), [(None, None, D)]),
    ("layer_norm_no_affine", lambda P: P.nn.LayerNorm(D, elementwise_affine=False),
     lambda s: [f32(2, s, D)], lambda m, x: m(x), [(None, None, D)]),
    ("layer_norm_no_weight", lambda P: P.nn.LayerNorm(D, weight_attr=False),
     lambda s: [f32(2, s, D)], lambda m, x: m(x), [(None, None, D)]),
    ("embedding_padding", lambda P: P.nn.Embedding(11, D, padding_idx=0),
     lambda s: [rng.integers(0, 11, (2, s)).astype(np.int64)], lambda m, x: m(x),
     [(None, None)]),
    ("embedding_negative_padding", lambda P: P.nn.Embedding(11, D, padding_idx=-1,
                                                            sparse=True),
     lambda s: [rng.integers(0, 11, (2, s)).astype(np.int32)], lambda m, x: m(x),
     [(None, None)]),
    ("gelu", lambda P: P.nn.GELU(), lambda s: [f32(2, s, D, scale=3)], lambda m, x: m(x),
     [(None, None, D)]),
    ("gelu_tanh", lambda P: P.nn.GELU(approximate=True), lambda s: [f32(2, s, D, scale=3)],
     lambda m, x: m(x), [(None, None, D)]),
    ("mha_self", lambda P: P.nn.MultiHeadAttention(D, H), lambda s: [f32(2, s, D)],
     lambda m, q: m(q), [(None, None, D)]),
    ("mha_float_mask_weights", lambda P: P.nn.MultiHeadAttention(D, H, need_weights=True),
     lambda s: [f32(2, s, D), pad_mask(2, s, "float32")], lambda m, q, k: m(q, attn_mask=k),
     [(None, None, D), (None, 1, 1, None)]),
    ("mha_bool_mask", lambda P: P.nn.MultiHeadAttention(D, H),
     lambda s: [f32(2, s, D), pad_mask(2, s, "bool")], lambda m, q, k: m(q, attn_mask=k),
     [(None, None, D), (None, 1, 1, None)]),
    ("mha_int_mask", lambda P: P.nn.MultiHeadAttention(D, H),
     lambda s: [f32(2, s, D), pad_mask(2, s, "int64")], lambda m, q, k: m(q, q, q, k),
     [(None, None, D), (None, 1, 1, None)]),
    ("mha_kdim_vdim_cross", lambda P: P.nn.MultiHeadAttention(D, H, dropout=0.3, kdim=5,
                                                              vdim=3, need_weights=True),
     lambda s: [f32(2, s, D), f32(2, s + 2, 5), f32(2, s + 2, 3)],
     lambda m, q, k, v: m(q, k, v), [(None, None, D), (None, None, 5), (None, None, 3)]),
    ("mha_no_bias", lambda P: P.nn.MultiHeadAttention(D, H, bias_attr=False),
     lambda s: [f32(2, s, D)], lambda m, q: m(q), [(None, None, D)]),
    ("encoder_layer_post_norm", lambda P: P.nn.TransformerEncoderLayer(D, H, FF),
     lambda s: [f32(2, s, D), pad_mask(2, s, "float32")], lambda m, x, k: m(x, k),
     [(None, None, D), (None, 1, 1, None)]),
    ("encoder_layer_pre_norm_gelu", lambda P: P.nn.TransformerEncoderLayer(
        D, H, FF, dropout=0.2, activation="gelu", attn_dropout=0.0, act_dropout=0.1,
        normalize_before=True, layer_norm_eps=1e-6),
     lambda s: [f32(2, s, D), pad_mask(2, s, "bool")], lambda m, x, k: m(x, k),
     [(None, None, D), (None, 1, 1, None)]),
    ("encoder_with_norm", lambda P: P.nn.TransformerEncoder(
        P.nn.TransformerEncoderLayer(D, H, FF, activation="gelu"), 2, P.nn.LayerNorm(D)),
     lambda s: [f32(2, s, D), pad_mask(2, s, "bool")], lambda m, x, k: m(x, k),
     [(None, None, D), (None, 1, 1, None)]),
    ("decoder_layer", lambda P: P.nn.TransformerDecoderLayer(D, H, FF, normalize_before=True),
     lambda s: [f32(2, s, D), f32(2, s + 1, D), causal(s)],
     lambda m, t, mem, c: m(t, mem, tgt_mask=c), [(None, None, D), (None, None, D),
                                                  (None, None)]),
    ("decoder_with_norm", lambda P: P.nn.TransformerDecoder(
        P.nn.TransformerDecoderLayer(D, H, FF), 2, P.nn.LayerNorm(D)),
     lambda s: [f32(2, s, D), f32(2, s + 1, D), pad_mask(2, s + 1, "bool")],
     lambda m, t, mem, k: m(t, mem, memory_mask=k),
     [(None, None, D), (None, None, D), (None, 1, 1, None)]),
    ("transformer", lambda P: P.nn.Transformer(D, H, 1, 2, FF, weight_attr=[None, None],
                                               bias_attr=[None]),
     lambda s: [f32(2, s + 1, D), f32(2, s, D), causal(s)],
     lambda m, src, tgt, c: m(src, tgt, tgt_mask=c),
     [(None, None, D), (None, None, D), (None, None)]),
]
IDS = [c[0] for c in CASES]
SEQS = (5, 3)


def build(P, make):
    """A fresh name scope for each library, as a new process has (linear_0, ...)."""
    if P is tostatic:
        with names.guard():
            return make(P)
    with P.utils.unique_name.guard():
        return make(P)


def outs(y):
    if isinstance(y, (list, tuple)):
        return [t.numpy() for t in y]
    return [y.numpy()]


def close(got, want, rtol=2e-5, atol=2e-5):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g.shape, g.dtype) == (w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def copied(real_paddle, make):
    """(Paddle's layer, ours with Paddle's weights), both in eval mode."""
    theirs, ours = build(real_paddle, make), build(tostatic, make)
    theirs.eval()
    ours.eval()
    ours.set_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parameters_and_repr_are_paddles(real_paddle, case):
    _, make, *_ = case
    theirs, ours = build(real_paddle, make), build(tostatic, make)
    want = {k: (v.name, list(v.shape), str(v.dtype).split(".")[-1])
            for k, v in theirs.state_dict().items()}
    got = {k: (v.name, list(v.shape), v.dtype.name) for k, v in ours.state_dict().items()}
    assert list(got) == list(want)
    assert got == want
    assert repr(ours) == repr(theirs)


@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_eager_with_paddles_weights_gives_paddles_outputs(real_paddle, case):
    _, make, inputs, call, _ = case
    theirs, ours = copied(real_paddle, make)
    for seq in SEQS:
        arrays = inputs(seq)
        want = outs(call(theirs, *[real_paddle.to_tensor(a) for a in arrays]))
        got = outs(call(ours, *[tostatic.to_tensor(a) for a in arrays]))
        close(got, want)


def _wrapped(P, make, call, n):
    """make(P) in a Layer whose forward takes the n inputs positionally (what jit.save
    traces)."""
    inner = make(P)

    class Wrap1(P.nn.Layer):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x0):
            return call(self.inner, x0)

    class Wrap2(Wrap1):
        def forward(self, x0, x1):
            return call(self.inner, x0, x1)

    class Wrap3(Wrap1):
        def forward(self, x0, x1, x2):
            return call(self.inner, x0, x1, x2)

    return [Wrap1, Wrap2, Wrap3][n - 1]()


@pytest.mark.interop
@pytest.mark.parametrize("case", [c for c in CASES if c[4] is not None],
                         ids=[c[0] for c in CASES if c[4] is not None])
def test_captured_program_is_paddles_and_runs_at_two_lengths(real_paddle, case, tmp_path):
    _, make, inputs, call, dims = case
    n = len(dims)
    arrays = inputs(SEQS[0])

    def specs(P):
        return [P.static.InputSpec(list(d), str(a.dtype), f"x{i}")
                for i, (d, a) in enumerate(zip(dims, arrays))]

    theirs = paddle_save(real_paddle, lambda: _wrapped(real_paddle, make, call, n),
                         specs(real_paddle), str(tmp_path / "paddle"))
    ours = ours_save(lambda: _wrapped(tostatic, make, call, n), specs(tostatic),
                     str(tmp_path / "ours"))
    assert program_differences(str(tmp_path / "ours.pdmodel"),
                               str(tmp_path / "paddle.pdmodel")) == []
    ours.set_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours_save(lambda: ours, specs(tostatic), str(tmp_path / "ours"))  # Paddle's weights
    for seq in SEQS:
        arrays = inputs(seq)
        eager = outs(call(ours.inner, *[tostatic.to_tensor(a) for a in arrays]))
        feeds = {f"x{i}": a for i, a in enumerate(arrays)}
        params = tmp_path / "ours.pdiparams"
        close(predict(tmp_path / "ours.pdmodel", params if params.exists() else None, feeds),
              eager, rtol=1e-4, atol=1e-4)
        loaded = outs(tostatic.jit.load(str(tmp_path / "ours"))(*arrays))
        close(loaded, eager, rtol=1e-5, atol=1e-5)


def test_initial_values_are_paddles():
    with names.guard():
        ln = tostatic.nn.LayerNorm([2, 3])
        emb = tostatic.nn.Embedding(50, 16, padding_idx=3)
        mha = tostatic.nn.MultiHeadAttention(16, 4)
    np.testing.assert_array_equal(ln.weight.numpy(), np.ones(6, np.float32))
    np.testing.assert_array_equal(ln.bias.numpy(), np.zeros(6, np.float32))
    assert not emb.weight.numpy()[3].any() and emb.weight.numpy()[4].any()
    limit = np.sqrt(6.0 / (50 + 16))  # XavierUniform, as every default weight
    assert np.abs(emb.weight.numpy()).max() <= limit
    assert np.abs(mha.q_proj.weight.numpy()).max() <= np.sqrt(6.0 / 32)
    assert not mha.q_proj.bias.numpy().any()
    assert (emb.weight.name, ln.weight.name, ln.bias.name) == ("embedding_0.w_0",
                                                              "layer_norm_0.w_0",
                                                              "layer_norm_0.b_0")


def test_encoder_layers_after_the_first_are_new_ones_of_the_same_configuration():
    layer = tostatic.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation="gelu",
                                                normalize_before=True)
    enc = tostatic.nn.TransformerEncoder(layer, 3)
    assert enc.layers[0] is layer and len(enc.layers) == 3
    assert enc.layers[2].normalize_before and enc.layers[2].activation is layer.activation
    assert not np.array_equal(enc.layers[1].linear1.weight.numpy(), layer.linear1.weight.numpy())


def test_a_named_weight_attr_is_refused_as_paddle_refuses_it(real_paddle):
    """MultiHeadAttention gives its four projections the same weight_attr: one name twice."""
    for lib in (real_paddle, tostatic):
        with pytest.raises(ValueError, match=r"parameter name \[attn_w\] have be been used"):
            lib.nn.MultiHeadAttention(D, H, weight_attr=lib.ParamAttr(name="attn_w"))


def test_unknown_activation_names_the_choices():
    with pytest.raises(AttributeError, match="has no attribute 'swishy'.*gelu.*relu"):
        tostatic.nn.TransformerEncoderLayer(D, H, FF, activation="swishy")


def test_generate_square_subsequent_mask_is_paddles(real_paddle):
    want = real_paddle.nn.Transformer(D, H, 1, 1, FF).generate_square_subsequent_mask(4)
    got = tostatic.nn.Transformer(D, H, 1, 1, FF).generate_square_subsequent_mask(4)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


# --- decoding with caches ------------------------------------------------------------------------

def test_mha_incremental_cache_matches_paddle(real_paddle):
    """Cache: each step's keys and values are appended to the cache's; gen_cache(key) makes
    an empty one, gen_cache(key, value) wraps given ones; the new cache is returned last."""
    theirs, ours = copied(real_paddle, lambda P: P.nn.MultiHeadAttention(D, H,
                                                                         need_weights=True))
    q0 = f32(2, 1, D)
    caches = {}
    for lib, m in ((real_paddle, theirs), (tostatic, ours)):
        cache = m.gen_cache(lib.to_tensor(q0))
        assert isinstance(cache, m.Cache) and cache.k.shape == [2, H, 0, D // H]
        steps = []
        for step in range(3):
            q = lib.to_tensor(f32(2, 1, D) if False else q0 + step)
            out, weights, cache = m(q, q, q, None, cache)
            steps.append([out.numpy(), weights.numpy(), cache.k.numpy(), cache.v.numpy()])
        caches[lib.__name__] = steps
        given = m.gen_cache(lib.to_tensor(f32(2, H, 2, D // H)), lib.to_tensor(f32(2, H, 2,
                                                                                D // H)))
        assert isinstance(given, m.Cache) and given.k.shape == [2, H, 2, D // H]
    for got, want in zip(caches["tostatic"], caches["paddle"]):
        close(got, want)


def test_mha_static_cache_and_decoder_cache_match_paddle(real_paddle):
    """StaticCache: precomputed keys / values of the memory, used as they are and returned
    unchanged; TransformerDecoder.gen_cache and a step of decoding with it."""
    theirs, ours = copied(real_paddle, lambda P: P.nn.TransformerDecoder(
        P.nn.TransformerDecoderLayer(D, H, FF), 2, P.nn.LayerNorm(D)))
    memory, tgt = f32(2, 4, D), f32(2, 1, D)
    results = {}
    for lib, m in ((real_paddle, theirs), (tostatic, ours)):
        cache = m.gen_cache(lib.to_tensor(memory))
        assert isinstance(cache[0][1], m.layers[0].cross_attn.StaticCache)
        out, new = m(lib.to_tensor(tgt), lib.to_tensor(memory), cache=cache)
        out2, new2 = m(lib.to_tensor(tgt * 2), lib.to_tensor(memory), cache=new)
        assert new2[1][1] is new[1][1] or np.array_equal(new2[1][1].k.numpy(),
                                                         new[1][1].k.numpy())
        results[lib.__name__] = [out.numpy(), out2.numpy(), new2[0][0].k.numpy()]
        zipped = m.gen_cache(lib.to_tensor(memory), do_zip=True)
        assert len(zipped) == 2 and len(zipped[0]) == 2
    close(results["tostatic"], results["paddle"])


def test_encoder_cache_matches_paddle(real_paddle):
    theirs, ours = copied(real_paddle, lambda P: P.nn.TransformerEncoder(
        P.nn.TransformerEncoderLayer(D, H, FF), 2))
    src = f32(2, 3, D)
    results = {}
    for lib, m in ((real_paddle, theirs), (tostatic, ours)):
        cache = m.gen_cache(lib.to_tensor(src))
        out, new = m(lib.to_tensor(src), cache=cache)
        results[lib.__name__] = [out.numpy(), new[1].k.numpy()]
    close(results["tostatic"], results["paddle"])
