"""floor, ceil, round, sign, log1p, argsort / sort, flip, p_norm, pixel_shuffle and nonzero
(where_index), one table of cases read by every check (the machinery of nlp_cases.py):

- eager: our kernel against real Paddle's dygraph (its public API: paddle.floor, argsort,
  linalg.norm, F.pixel_shuffle, nonzero, ...) on the same inputs;
- shape rule: a dynamic batch stays dynamic and the eager result has the inferred dims;
- export: a one-op function lowered to a .pdmodel runs natively and in paddle.inference;
- raise: the program Paddle wrote (its static API, or the op appended as Paddle 2.x's
  LayerHelper did where 3.3.1 writes none) runs with Paddle's outputs and lowers back to
  Paddle's very op desc and variables.
"""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.ir import dtypes
from tostatic.ops import math_unary as U
from tostatic.ops import norms as N
from tostatic.ops import ordering as O
from tostatic.ops.advanced_indexing import WhereIndex
from tostatic.ops import rearrange as RA
from tostatic.ops import rounding as R
from tostatic.runtime.loaded_model import load_model

from conftest import assert_close
from nlp_cases import (Case, runs_and_lowers_back, abstracts, appended, eager, exported, f32, feeds_of, ints,
                       op_descs, output_vars, outs, paddle_saved, predict)

X = f32(3, 5, 6, scale=3.0)
# halves and near-halves at every sign: round's tie rule (to even, as C's nearbyint) shows
HALVES = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, -2.5], [0.49, -0.51, 3.0, -0.0, 7.25, -7.25],
                   [1.005, 2.675, -1.125, 0.0, 1e-3, -1e-3]], np.float32)
IMG = f32(2, 8, 3, 3)
INF = float("inf")


def unary(op_type, **attrs):
    return appended(op_type, ["X"], attrs)


def norm_case(id, x, p, axis, keepdim=False, asvector=False):
    attrs = {"porder": float(p), "axis": -1 if axis is None else axis, "keepdim": keepdim,
             "asvector": asvector}

    def call(P, t):
        return P.linalg.norm(t, p=p, axis=axis, keepdim=keepdim)
    return Case(id, N.PNorm, [x], attrs, call, call, dyn=() if asvector else (0,))


CASES = [
    Case("floor", R.Floor, [X], {}, lambda p, x: p.floor(x), unary("floor")),
    Case("ceil", R.Ceil, [X], {}, lambda p, x: p.ceil(x), unary("ceil")),
    Case("round", R.Round, [HALVES], {}, lambda p, x: p.round(x), unary("round", decimals=0)),
    Case("round_2", R.Round, [HALVES * 3], {"decimals": 2},
         lambda p, x: p.round(x, decimals=2), unary("round", decimals=2)),
    Case("round_neg", R.Round, [X * 40], {"decimals": -1},
         lambda p, x: p.round(x, decimals=-1), unary("round", decimals=-1)),
    Case("sign", R.Sign, [np.round(X)], {}, lambda p, x: p.sign(x), unary("sign")),
    Case("sign_int64", R.Sign, [ints(5, 3, 4, low=-4)], {}, lambda p, x: p.sign(x),
         unary("sign")),
    Case("log1p", U.Log1p, [np.abs(X) * 1e-3], {}, lambda p, x: p.log1p(x), unary("log1p")),
    Case("argsort", O.Argsort, [X], {"axis": 1},
         lambda p, x: (p.sort(x, axis=1), p.argsort(x, axis=1)),
         appended("argsort", ["X"], {"axis": 1, "descending": False, "stable": False},
                  {"Out": "float32", "Indices": "int64"})),
    Case("argsort_desc_stable", O.Argsort, [np.round(X)], {"axis": -1, "descending": True,
                                                           "stable": True},
         lambda p, x: (p.sort(x, descending=True, stable=True),
                       p.argsort(x, descending=True, stable=True)),
         appended("argsort", ["X"], {"axis": -1, "descending": True, "stable": True},
                  {"Out": "float32", "Indices": "int64"})),
    Case("argsort_int", O.Argsort, [ints(4, 3, 7)], {"axis": 0, "stable": True},
         lambda p, x: (p.sort(x, axis=0, stable=True), p.argsort(x, axis=0, stable=True)),
         None, batched=(), dyn=()),
    Case("flip", RA.Flip, [X], {"axis": (1, -1)}, lambda p, x: p.flip(x, [1, -1]),
         lambda p, x: p.flip(x, [1, -1])),
    Case("flip_batch", RA.Flip, [X], {"axis": (0,)}, lambda p, x: p.flip(x, 0),
         lambda p, x: p.flip(x, 0)),
    norm_case("p_norm_3", X, 3, 1),
    norm_case("p_norm_2_keepdim", X, 2, -1, keepdim=True),
    norm_case("p_norm_inf", X, INF, 1),
    norm_case("p_norm_neg_inf", X, -INF, 2),
    norm_case("p_norm_0", np.round(X), 0, 1),
    norm_case("p_norm_vector", X, 1, None, asvector=True),
    Case("p_norm_fro", N.PNorm, [X], {"porder": 2.0, "asvector": True},
         lambda p, x: p.linalg.norm(x), lambda p, x: p.linalg.norm(x), dyn=()),
    Case("pixel_shuffle", RA.PixelShuffle, [IMG], {"upscale_factor": 2},
         lambda p, x: p.nn.functional.pixel_shuffle(x, 2),
         lambda p, x: p.nn.functional.pixel_shuffle(x, 2)),
    Case("pixel_shuffle_nhwc", RA.PixelShuffle, [IMG.transpose(0, 2, 3, 1).copy()],
         {"upscale_factor": 2, "data_format": "NHWC"},
         lambda p, x: p.nn.PixelShuffle(2, "NHWC")(x),
         lambda p, x: p.nn.functional.pixel_shuffle(x, 2, "NHWC")),
    Case("nonzero", WhereIndex, [X > 0.5], {}, lambda p, x: p.nonzero(x),
         lambda p, x: p.nonzero(x), dyn=None),
]
IDS = [c.id for c in CASES]
WITH_STATIC = [c for c in CASES if c.static is not None]


@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_eager_matches_paddle_dygraph(case, real_paddle):
    p = real_paddle
    theirs = outs(case.dygraph(p, *[p.to_tensor(a) for a in case.inputs]))
    ours = eager(case)
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        t = np.asarray(t.numpy())
        assert o.dtype == t.dtype and o.shape == t.shape, (o.dtype, o.shape, t.dtype, t.shape)
        assert_close(o, t)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_public_api_gives_the_kernels_values(case):
    """tostatic's public function (the dygraph call, with tostatic as paddle) runs the op."""
    got = outs(case.dygraph(tostatic, *[tostatic.to_tensor(a) for a in case.inputs]))
    want = eager(case)
    want = want[:len(got)] if case.cls is not O.Argsort else want
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_infer_keeps_the_batch_dynamic_and_gives_eager_dims(case):
    attrs = case.norm_attrs()
    results = case.cls.infer_results(abstracts(case), attrs)
    values = eager(case)
    assert len(results) == len(values)
    for got, value in zip(results, values):
        assert got.dtype == dtypes.convert_dtype(value.dtype)
        if case.cls is WhereIndex:  # rows known only when it runs
            assert got.shape == (-1, case.inputs[0].ndim) and value.shape[1] == got.shape[1]
            continue
        dyn = case.dyn
        want = tuple(-1 if i in dyn else d for i, d in enumerate(value.shape))
        assert got.shape == want, (got.shape, value.shape)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exported_op_runs_natively_as_eager(case, tmp_path):
    model = load_model(exported(case, tmp_path), None)
    got = model.run(case.inputs)
    want = eager(case)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exported_op_runs_in_paddle_inference_as_eager(case, tmp_path, real_paddle):
    got = predict(exported(case, tmp_path), feeds_of(case), onednn=False)
    want = eager(case)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        assert_close(g, w)


@pytest.mark.interop
@pytest.mark.parametrize("case", WITH_STATIC, ids=[c.id for c in WITH_STATIC])
def test_program_paddle_wrote_runs_and_lowers_back_to_the_same_op(case, tmp_path, real_paddle):
    path, expected = paddle_saved(case, real_paddle, tmp_path)
    runs_and_lowers_back(case, path, expected, tmp_path)


def test_refusals_name_the_op():
    from tostatic.ir.errors import ShapeError, UnsupportedError
    from tostatic.ir.opdef import Abstract

    with pytest.raises(ShapeError, match="pd.pixel_shuffle: 6 channels do not divide"):
        RA.PixelShuffle.infer(Abstract((1, 6, 2, 2), dtypes.float32), 2, "NCHW")
    with pytest.raises(ShapeError, match="pd.flip: axis \\[1, -1\\] names an axis twice"):
        RA.Flip.infer(Abstract((2, 3), dtypes.float32), (1, -1))
    with pytest.raises(ShapeError, match="pd.floor: expects a floating tensor"):
        R.Floor.infer(Abstract((2,), dtypes.int64))
    with pytest.raises(UnsupportedError, match="matrix norm"):
        tostatic.linalg.norm(tostatic.to_tensor(X), p=2, axis=[1, 2])


# --- randint ---------------------------------------------------------------------------------

def test_randint_draws_in_range_with_paddle_seed():
    tostatic.seed(11)
    a = tostatic.randint(-3, 4, [50, 40]).numpy()
    tostatic.seed(11)
    b = tostatic.randint(-3, 4, [50, 40]).numpy()
    assert a.dtype == np.int64 and a.shape == (50, 40)
    np.testing.assert_array_equal(a, b)
    assert a.min() == -3 and a.max() == 3  # every value of [low, high) is drawn
    assert tostatic.randint(6, shape=[3], dtype="int32").numpy().dtype == np.int32
    with pytest.raises(ValueError, match="low must be greater than 0"):
        tostatic.randint(0)


@pytest.mark.interop
def test_randint_exports_as_paddle_writes_it_and_runs_in_paddle_inference(real_paddle,
                                                                           tmp_path):
    def model(P):
        class Net(P.nn.Layer):
            def forward(self, x):
                return x + P.randint(0, 10, [2, 3]).astype("float32"), P.randint(-5, 5, [4],
                                                                                  "int32")
        return Net()

    spec = [real_paddle.static.InputSpec([None, 3], "float32", "x")]
    real_paddle.jit.save(real_paddle.jit.to_static(model(real_paddle), input_spec=spec),
                         str(tmp_path / "theirs"))
    tostatic.jit.save(model(tostatic), str(tmp_path / "ours"),
                      input_spec=[tostatic.static.InputSpec([None, 3], "float32", "x")])
    assert op_descs(tmp_path / "ours.pdmodel", "randint") == \
        op_descs(tmp_path / "theirs.pdmodel", "randint")
    assert output_vars(tmp_path / "ours.pdmodel", "randint") == \
        output_vars(tmp_path / "theirs.pdmodel", "randint")
    x = np.zeros((2, 3), np.float32)
    a, b = predict(str(tmp_path / "ours.pdmodel"), {"x": x}, onednn=False)
    assert a.shape == (2, 3) and b.shape == (4,) and b.dtype == np.int32
    assert set(np.unique(a)) <= set(range(10)) and -5 <= b.min() and b.max() < 5
    (c,) = [load_model(str(tmp_path / "theirs.pdmodel"), None).run([x])[1]]
    assert c.dtype == np.int32 and c.shape == (4,) and -5 <= c.min() and c.max() < 5
