"""The Transformer / NLP public functions (paddle.nn.functional gelu, layer_norm, embedding,
one_hot, log_softmax; paddle.erf, rsqrt, square, log, tril, triu, bmm, einsum, gather_nd,
index_select, take_along_axis, expand_as, logical_*, cast, matmul) against real Paddle 3.3.1:

- eager: the same call on the same inputs gives Paddle's dygraph values, dtype and shape;
- captured: jit.save of the function writes the program Paddle's own jit.save writes (op for
  op, variable for variable; Paddle 2.x's branch where 3.3.1 has none, tests/paddle_2x.py),
  with a dynamic first dim, and paddle.inference runs ours with our eager results.
"""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.ir.errors import UnsupportedError

from transformer_harness import ours_save, paddle_save, predict, program_differences

rng = np.random.default_rng(13)


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def ints(high, *shape, low=0, dtype=np.int64):
    return rng.integers(low, high, size=shape).astype(dtype)


def F(p):
    return p.nn.functional


X = f32(3, 5, 6)
POS = (np.abs(f32(3, 5)) + 0.1).astype(np.float32)
B1, B2 = f32(3, 4) > 0, f32(3, 4) > 0
IDS = np.array([[0, 3, 9, 0], [1, 2, 3, 4], [9, 9, 0, 5]], np.int64)
W = f32(10, 6)

# (id, fn(paddle, *tensors), inputs, indices of inputs whose first dim is dynamic when
# captured). Functions with a user name= check that the name prefixes the variables.
CASES = [
    ("gelu", lambda p, x: F(p).gelu(x), [X * 3], (0,)),
    ("gelu_true", lambda p, x: F(p).gelu(x, True), [X * 3], (0,)),
    ("gelu_tanh_named", lambda p, x: F(p).gelu(x, "tanh", name="act"), [X * 3], (0,)),
    ("layer_norm", lambda p, x, w, b: F(p).layer_norm(x, [5, 6], w, b), [X * 2 + 1, f32(30),
                                                                        f32(30)], (0,)),
    ("layer_norm_eps_last", lambda p, x, w, b: F(p).layer_norm(x, 6, w, b, 1e-3),
     [X, f32(6), f32(6)], (0,)),
    ("layer_norm_plain", lambda p, x: F(p).layer_norm(x, (6,)), [X], (0,)),
    ("layer_norm_weight_only", lambda p, x, w: F(p).layer_norm(x, 6, weight=w), [X, f32(6)],
     (0,)),
    ("layer_norm_bias_only", lambda p, x, b: F(p).layer_norm(x, 6, bias=b), [X, f32(6)], (0,)),
    ("embedding", lambda p, i, w: F(p).embedding(i, w), [IDS, W], (0,)),
    ("embedding_padding", lambda p, i, w: F(p).embedding(i, w, padding_idx=0), [IDS, W], (0,)),
    ("embedding_negative_padding_sparse",
     lambda p, i, w: F(p).embedding(i, w, padding_idx=-1, sparse=True), [IDS, W], (0,)),
    ("one_hot", lambda p, i: F(p).one_hot(i, 10), [IDS], (0,)),
    ("log_softmax", lambda p, x: F(p).log_softmax(x), [X * 3], (0,)),
    ("log_softmax_axis_dtype", lambda p, x: F(p).log_softmax(x, 1, "float64"), [X * 3], (0,)),
    ("erf", lambda p, x: p.erf(x), [X], (0,)),
    ("rsqrt", lambda p, x: p.rsqrt(x), [POS], (0,)),
    ("square", lambda p, x: p.square(x), [X], (0,)),
    ("square_int", lambda p, x: p.square(x), [IDS], (0,)),
    ("log", lambda p, x: p.log(x), [POS], (0,)),
    ("tril", lambda p, x: p.tril(x), [X], (0,)),
    ("tril_diag", lambda p, x: p.tril(x, 1), [X], (0,)),
    ("triu_diag_named", lambda p, x: p.triu(x, -1, name="upper"), [X], (0,)),
    ("bmm", lambda p, x, y: p.bmm(x, y), [f32(3, 4, 5), f32(3, 5, 2)], (0, 1)),
    ("einsum_attention", lambda p, x, y: p.einsum("bhqd,bhkd->bhqk", x, y),
     [f32(2, 3, 5, 4), f32(2, 3, 7, 4)], (0, 1)),
    ("einsum_spaces_implicit", lambda p, x, y: p.einsum("ij, kj", x, y),
     [f32(3, 4), f32(5, 4)], ()),
    ("einsum_ellipsis", lambda p, x, y: p.einsum("...ij,...jk->...ik", x, y),
     [f32(2, 3, 4, 5), f32(3, 5, 6)], (0,)),
    ("einsum_one_operand", lambda p, x: p.einsum("bij->bji", x), [X], (0,)),
    ("gather_nd", lambda p, x, i: p.gather_nd(x, i), [X, np.array([[0, 4], [2, 1]])], ()),
    ("index_select", lambda p, x, i: p.index_select(x, i, axis=1),
     [X, np.array([4, 0, 2])], (0,)),
    ("take_along_axis_broadcast", lambda p, x, i: p.take_along_axis(x, i, 1),
     [X, ints(5, 1, 2, 6)], ()),
    ("take_along_axis", lambda p, x, i: p.take_along_axis(x, i, 2, broadcast=False),
     [X, ints(6, 3, 5, 2)], ()),
    ("expand_as", lambda p, x, y: p.expand_as(x, y), [f32(1, 5, 1), X], (1,)),
    ("logical_and", lambda p, x, y: p.logical_and(x, y), [B1, B2], (0, 1)),
    ("logical_or", lambda p, x, y: p.logical_or(x, y), [B1, B2], (0, 1)),
    ("logical_xor", lambda p, x, y: p.logical_xor(x, y), [B1, B2], (0, 1)),
    ("logical_not", lambda p, x: p.logical_not(x), [B1], (0,)),
    ("cast", lambda p, x: p.cast(x, "int64"), [X * 3], (0,)),
    ("matmul_broadcast", lambda p, x, y: p.matmul(x, y, transpose_y=True),
     [f32(2, 3, 5, 4), f32(3, 6, 4)], (0,)),
]
IDS_ = [c[0] for c in CASES]
# Differences known and meant, by case: Paddle picks the letters for '...' by popping a set
# (they change from run to run; tostatic takes the unused ones in alphabetical order), and
# declares the broadcast batch dim of the result as 1 where tostatic declares it dynamic.
KNOWN = {"einsum_ellipsis": ("block 0 op 4:", "block 0 var einsum_0.tmp_0:")}


def _outs(y):
    return [t.numpy() for t in y] if isinstance(y, (list, tuple)) else [y.numpy()]


def _close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert (got.shape, got.dtype) == (want.shape, want.dtype), (got.shape, got.dtype,
                                                                 want.shape, want.dtype)
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=IDS_)
def test_eager_matches_paddle(real_paddle, case):
    _, fn, inputs, _ = case
    want = _outs(fn(real_paddle, *[real_paddle.to_tensor(a) for a in inputs]))
    got = _outs(fn(tostatic, *[tostatic.to_tensor(a) for a in inputs]))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        _close(g, w)


def _specs(module, inputs, batched):
    return [module.static.InputSpec([None if i in batched and j == 0 else d
                                     for j, d in enumerate(a.shape)], str(a.dtype), f"x{i}")
            for i, a in enumerate(inputs)]


def _function(p, fn, n):
    """fn bound to module p as a function of n tensors (what to_static traces)."""
    if n == 1:
        def f1(x0):
            return fn(p, x0)
        return f1
    if n == 2:
        def f2(x0, x1):
            return fn(p, x0, x1)
        return f2

    def f3(x0, x1, x2):
        return fn(p, x0, x1, x2)
    return f3


@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=IDS_)
def test_captured_program_is_paddles_and_runs_in_paddle_inference(real_paddle, case, tmp_path):
    _, fn, inputs, batched = case
    n = len(inputs)
    paddle_save(real_paddle, lambda: _function(real_paddle, fn, n),
                _specs(real_paddle, inputs, batched), str(tmp_path / "paddle"))
    ours_save(lambda: _function(tostatic, fn, n), _specs(tostatic, inputs, batched),
              str(tmp_path / "ours"))
    found = program_differences(str(tmp_path / "ours.pdmodel"), str(tmp_path / "paddle.pdmodel"))
    assert [d for d in found if not d.startswith(KNOWN.get(case[0], ()))] == []
    eager = _outs(fn(tostatic, *[tostatic.to_tensor(a) for a in inputs]))
    got = predict(tmp_path / "ours.pdmodel", None, {f"x{i}": a for i, a in enumerate(inputs)},
                  onednn=False)
    for g, w in zip(got, eager):
        _close(g, w)


def test_errors_are_paddles():
    x = tostatic.to_tensor(X)
    with pytest.raises(ValueError, match=r"Given normalized_shape is \[5\], expected input "
                                         r"with shape \[\*, 5\], but got input shape"):
        F(tostatic).layer_norm(x, 5)
    with pytest.raises(ValueError, match=r"padding_idx must be within \[-10, 10\)"):
        F(tostatic).embedding(tostatic.to_tensor(IDS), tostatic.to_tensor(W), padding_idx=10)
    with pytest.raises(UnsupportedError, match="max_norm"):
        F(tostatic).embedding(tostatic.to_tensor(IDS), tostatic.to_tensor(W), max_norm=1.0)
    with pytest.raises(ValueError, match="approximate"):
        F(tostatic).gelu(x, "fast")
    with pytest.raises(ValueError, match="missing ellipsis"):
        tostatic.einsum("...ij->ij", x)
    with pytest.raises(ValueError, match="same number of dimensions"):
        tostatic.take_along_axis(x, tostatic.to_tensor(IDS), 1)


def test_one_hot_depth_from_the_ids_eagerly_and_refused_when_traced(tmp_path):
    assert F(tostatic).one_hot(tostatic.to_tensor(IDS)).shape == [3, 4, 10]
    spec = [tostatic.static.InputSpec([None, 4], "int64", "ids")]
    with pytest.raises(UnsupportedError, match="num_classes=-1"):
        tostatic.jit.save(tostatic.jit.to_static(lambda i: F(tostatic).one_hot(i),
                                                 input_spec=spec), str(tmp_path / "m"))


def test_einsum_ellipsis_takes_unused_letters_in_order(tmp_path):
    """Paddle pops its letters from a set (any order); tostatic takes them alphabetically,
    after unsqueezing y to the broadcast rank; the result labels are inferred as Paddle does
    ('...' first, then the letters used once, sorted)."""
    from tostatic.serialization import framework_pb2 as fpb

    spec = [tostatic.static.InputSpec([None, 3, 4, 5], "float32", "x"),
            tostatic.static.InputSpec([4, 5, 6], "float32", "y")]
    ours_save(lambda: (lambda x, y: tostatic.einsum("A...j, ...jk", x, y)), spec,
              str(tmp_path / "m"))
    prog = fpb.ProgramDesc.FromString((tmp_path / "m.pdmodel").read_bytes())
    ops = {op.type: op for op in prog.blocks[0].ops}
    attrs = {a.name: a for a in ops["einsum"].attrs}
    assert attrs["equation"].s == "abcj,bcjk->bcak"
    assert [a.ints for a in ops["unsqueeze2"].attrs if a.name == "axes"] == [[0]]
    x, y = f32(2, 3, 4, 5), f32(4, 5, 6)
    got = tostatic.jit.load(str(tmp_path / "m"))(x, y).numpy()
    np.testing.assert_allclose(got, np.einsum("a...j,...jk->...ak", x, y), rtol=1e-5,
                               atol=1e-5)
