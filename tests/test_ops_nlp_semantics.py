"""The Transformer / NLP ops beyond one case each: random shapes and attributes against Paddle,
shapes with a dynamic batch *and* sequence length, ids and indices out of range at run time,
refused attribute values and inputs (by op, attribute and value), Paddle's embed_ln fixture op
for op, and programs Paddle writes around these ops."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tostatic.ir import dtypes
from tostatic.ir.errors import OutOfRangeError, ShapeError, UnsupportedError
from tostatic.ir.opdef import Abstract
from tostatic.ops import creation_from_tensors as C
from tostatic.ops import einsum as ES
from tostatic.ops import embedding as E
from tostatic.ops import gathering as G
from tostatic.ops import layer_norm as L
from tostatic.ops import linalg as LA
from tostatic.ops import loss as LS
from tostatic.ops import manipulation as M
from tostatic.ops import math_unary as U
from tostatic.ops import slicing as S
from tostatic.ops.activation import Gelu, Softmax
from tostatic.ops.core import array_to_dense
from tostatic.ops.special import erf, erf_float32
from tostatic.passes.base import entry
from tostatic.passes.lower_to_program import lower_function
from tostatic.passes.raise_from_program import raise_program
from tostatic.runtime.loaded_model import load_model
from tostatic.serialization.program_desc import load_program, save_program

from conftest import FIXTURES, assert_close, fixture_cases
from nlp_cases import Case, appended, f32, op_descs, paddle_saved, paddle_static

F32, I64, I32, BOOL = dtypes.float32, dtypes.int64, dtypes.int32, dtypes.bool_


def ab(*shape, dtype=F32):
    return Abstract(tuple(shape), dtype)


def run(cls, *arrays, **attrs):
    return cls.run_eager(list(arrays), cls.normalize_attrs(attrs))


def infer(cls, *inputs, **attrs):
    return [r.shape for r in cls.infer_results(list(inputs), cls.normalize_attrs(attrs))]


# --- the error function --------------------------------------------------------------------------

def test_erf_is_within_a_few_ulps_of_the_c_library_and_keeps_the_dtype():
    xs = np.concatenate([np.linspace(-7, 7, 20001), [0.0, -0.0, 1e-300, -1e-30, 0.5, -0.5,
                                                       4.0, -4.0, 30.0, -30.0, 5e-8]])
    want = np.array([math.erf(v) for v in xs])
    got = erf(xs)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    assert np.array_equal(np.signbit(got), np.signbit(want))  # erf(-0.0) is -0.0
    x32 = np.linspace(-6, 6, 20001, dtype=np.float32)
    want32 = np.array([math.erf(v) for v in x32.astype(np.float64)]).astype(np.float32)
    assert erf(x32).dtype == np.float32 and np.array_equal(erf(x32), want32)
    special = erf(np.array([np.nan, np.inf, -np.inf]))
    assert np.isnan(special[0]) and special[1] == 1.0 and special[2] == -1.0
    # a 0-D input, past the |x| = 1 boundary (the tail is written into the result in place)
    zero_d = erf_float32(np.array(-2.3, np.float32))
    assert zero_d.shape == () and abs(float(zero_d) - math.erf(-2.3)) < 1e-7


def test_float32_erf_is_within_1e7_relative_of_the_c_library():
    """gelu's float32 erf (two fitted polynomials evaluated in float32) against math.erf:
    dense over both regions, their boundary at |x| = 1, tiny and denormal inputs, specials."""
    xs = np.concatenate([np.linspace(-6, 6, 300001), np.nextafter(np.float32(1), [0, 2]),
                         10.0 ** np.linspace(-40, 0.7, 20001), -(10.0 ** np.linspace(-40, 0.7, 2001)),
                         [0.0, -0.0, 4.0, -4.0, 3.99]]).astype(np.float32)
    got = erf_float32(xs)
    assert got.dtype == np.float32
    want = np.array([math.erf(float(v)) for v in xs])
    normal = np.abs(want) >= np.finfo(np.float32).tiny  # denormals: float32's own spacing
    rel = np.abs(got - want)[normal] / np.abs(want)[normal]
    assert rel.max() < 1e-7 and np.array_equal(np.signbit(got), np.signbit(want))
    assert np.abs(got - want)[~normal].max() <= 2 * 2.0 ** -149
    special = erf_float32(np.array([np.nan, np.inf, -np.inf], np.float32))
    assert np.isnan(special[0]) and special[1] == 1.0 and special[2] == -1.0


def test_float32_gelu_agrees_with_the_float64_reference():
    x = np.linspace(-12, 12, 200001, dtype=np.float32)
    (ours,) = run(Gelu, x)
    want = 0.5 * x.astype(np.float64) * (1.0 + erf(x.astype(np.float64) / np.sqrt(2.0)))
    assert ours.dtype == np.float32
    # (for x << 0, 1 + erf cancels in float32 as in Paddle's kernel: an absolute error)
    np.testing.assert_allclose(ours, want, rtol=3e-7, atol=1e-7)


@pytest.mark.interop
def test_gelu_and_erf_match_paddle_over_a_dense_range(real_paddle):
    x = np.linspace(-9, 9, 40001, dtype=np.float32)
    t = real_paddle.to_tensor(x)
    np.testing.assert_allclose(run(U.Erf, x)[0], real_paddle.erf(t).numpy(), rtol=1e-6,
                               atol=1e-7)
    for approximate in (False, True):
        (ours,) = run(Gelu, x, approximate=approximate)
        theirs = real_paddle.nn.functional.gelu(t, approximate).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


# --- a dynamic batch and sequence length ---------------------------------------------------------

B, T = -1, -1  # batch and sequence length, both dynamic
DYNAMIC = [
    (E.LookupTableV2, [ab(B, T, dtype=I64), ab(100, 16)], {}, [(B, T, 16)]),
    (L.LayerNorm, [ab(B, T, 16), ab(16), ab(16)], {"begin_norm_axis": 2},
     [(B, T, 16), (B, T), (B, T)]),
    (LA.Matmul, [ab(B, 4, T, 8), ab(B, 4, T, 8)], {"transpose_y": True}, [(B, 4, T, T)]),
    (LA.ScaledMatmul, [ab(B, 4, T, 8), ab(B, 4, T, 8)], {"transpose_y": True, "alpha": 0.5},
     [(B, 4, T, T)]),
    (LA.Bmm, [ab(B, T, 8), ab(B, 8, T)], {}, [(B, T, T)]),
    (ES.Einsum, [ab(B, 4, T, 8), ab(B, 4, T, 8)], {"equation": "bhqd,bhkd->bhqk"},
     [(B, 4, T, T)]),
    (Softmax, [ab(B, 4, T, T)], {"axis": -1}, [(B, 4, T, T)]),
    (U.LogSoftmax, [ab(B, T, 30)], {}, [(B, T, 30)]),
    (E.OneHot, [ab(B, T, dtype=I64)], {"depth": 5}, [(B, T, 5)]),
    (S.StridedSlice, [ab(B, T, 16)], {"axes": (1,), "starts": (0,), "ends": (2147483647,),
                                      "strides": (2,)}, [(B, -1, 16)]),
    (S.StridedSlice, [ab(B, T, 16)], {"axes": (1, 2), "starts": (0, 0), "ends": (1, 8),
                                      "strides": (1, 2), "decrease_axis": (1,)}, [(B, 4)]),
    (S.SetValueTensor, [ab(B, T, 16), ab(B, 16)],
     {"axes": (1,), "starts": (0,), "ends": (1,), "steps": (1,), "decrease_axes": (1,)},
     [(B, T, 16)]),
    (G.GatherNd, [ab(B, T, 16), ab(B, 2, dtype=I64)], {}, [(B, 16)]),
    (G.IndexSelect, [ab(B, T, 16), ab(3, dtype=I64)], {"dim": 1}, [(B, 3, 16)]),
    (G.TakeAlongAxis, [ab(B, T, 16), ab(B, T, 1, dtype=I64)], {"axis": 2}, [(B, T, 1)]),
    (M.ExpandAs, [ab(B, 1, T), ab(B, 4, T)], {}, [(B, 4, T)]),
    (M.ExpandAs, [ab(1, 1, 4), ab(B, T, 4)], {}, [(B, T, 4)]),
    (LA.TrilTriu, [ab(B, T, T)], {"lower": True}, [(B, T, T)]),
    (C.FullBatchSizeLike, [ab(B, T)], {"shape": (-1, 1, 6)}, [(B, 1, 6)]),
    (C.FullFromShapeTensor, [ab(3, dtype=I32)], {}, [(-1, -1, -1)]),
    (LS.SoftmaxWithCrossEntropy, [ab(B, T, 30), ab(B, T, 1, dtype=I64)], {},
     [(B, T, 30), (B, T, 1)]),
]


@pytest.mark.parametrize("cls,inputs,attrs,want", DYNAMIC,
                         ids=[f"{c[0].name}-{i}" for i, c in enumerate(DYNAMIC)])
def test_shapes_with_dynamic_batch_and_sequence_length(cls, inputs, attrs, want):
    assert infer(cls, *inputs, **attrs) == want


# --- random shapes and attributes against Paddle --------------------------------------------------

def _py_len(d, s, e, st):
    return len(range(*slice(s, e, st).indices(d)))


@pytest.mark.interop
def test_strided_slice_bounds_follow_paddle_for_random_attributes(real_paddle):
    rng = np.random.default_rng(5)
    sentinels = [2147483647, -2147483648]
    for _ in range(60):
        x = f32(*[int(d) for d in rng.integers(1, 7, size=rng.integers(1, 4))])
        axes = sorted(rng.choice(x.ndim, size=rng.integers(1, x.ndim + 1), replace=False))
        axes = [int(a) for a in axes]
        starts, ends, strides = [], [], []
        for a in axes:
            st = int(rng.choice([-3, -2, -1, 1, 2, 3]))
            pick = lambda: int(rng.choice([rng.integers(-9, 9), rng.choice(sentinels)]))
            starts.append(pick())
            ends.append(pick())
            strides.append(st)
        if any(_py_len(x.shape[a], s, e, st) == 0
               for a, s, e, st in zip(axes, starts, ends, strides)):
            continue  # Paddle 3.3.1 refuses empty results
        (ours,) = run(S.StridedSlice, x, axes=tuple(axes), starts=tuple(starts),
                      ends=tuple(ends), strides=tuple(strides))
        theirs = real_paddle._C_ops.strided_slice(real_paddle.to_tensor(x), axes, starts,
                                                  ends, strides).numpy()
        assert_close(ours, theirs)
        (shape,) = infer(S.StridedSlice, Abstract.of_array(x), axes=tuple(axes),
                         starts=tuple(starts), ends=tuple(ends), strides=tuple(strides))
        assert shape == ours.shape


def _random_set_value(rng):
    """A random `x[index] = value` as set_value attributes and the literal."""
    x = f32(*[int(d) for d in rng.integers(1, 6, size=rng.integers(1, 4))])
    axes, starts, ends, steps, dec = [], [], [], [], []
    for a in range(x.ndim):
        kind = rng.integers(3)
        if kind == 0:
            continue
        d = x.shape[a]
        if kind == 1:  # an integer index: a decreased axis
            i = int(rng.integers(-d, d))
            axes.append(a)
            starts.append(i)
            ends.append(i + 1 if i != -1 else 2147483647)
            steps.append(1)
            dec.append(a)
        else:
            st = int(rng.choice([-2, -1, 1, 2]))
            s, e = (int(v) for v in rng.integers(-d - 1, d + 2, size=2))
            if _py_len(d, s, e, st) == 0:
                continue
            axes += [a]
            starts += [s]
            ends += [e]
            steps += [st]
    if not axes:
        axes, starts, ends, steps = [0], [0], [1], [1]
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        index[a] = slice(s, e, st)
    target = x[tuple(index)].shape
    kept = [n for i, n in enumerate(target) if i not in dec]
    shape = [1] if not kept or rng.random() < 0.4 else [kept[-1]]
    values = rng.standard_normal(int(np.prod(shape))).round(3)
    attrs = {"axes": axes, "starts": starts, "ends": ends, "steps": steps,
             "decrease_axes": dec, "shape": shape}
    return x, attrs, values


@pytest.mark.interop
def test_set_value_writes_what_paddles_kernel_writes_for_random_slices(tmp_path, real_paddle):
    rng = np.random.default_rng(8)
    for k in range(16):
        x, attrs, values = _random_set_value(rng)
        legacy = {**attrs, "dtype": 5, "none_axes": [], "values": [float(v) for v in values]}
        case = Case(f"set_value{k}", S.SetValue, [x], {}, None,
                    appended("set_value", ["Input"], legacy), batched=())
        _, (expected,) = paddle_saved(case, real_paddle, tmp_path)
        (ours,) = run(S.SetValue, x, **{k: tuple(v) for k, v in attrs.items()},
                      values=array_to_dense(values))
        assert_close(ours, expected)


@pytest.mark.interop
def test_layer_norm_statistics_match_paddle_for_random_shapes(tmp_path, real_paddle):
    rng = np.random.default_rng(3)
    for _ in range(6):
        x = f32(*[int(d) for d in rng.integers(1, 6, size=rng.integers(2, 5))], scale=3.0)
        axis = int(rng.integers(1, x.ndim))
        cols = int(np.prod(x.shape[axis:]))
        w, b = f32(cols), f32(cols)
        case = Case("ln", L.LayerNorm, [x, w, b], {}, None, appended(
            "layer_norm", ["X", "Scale", "Bias"], {"begin_norm_axis": axis, "epsilon": 1e-5},
            {"Y": "float32", "Mean": "float32", "Variance": "float32"}), batched=())
        _, expected = paddle_saved(case, real_paddle, tmp_path)
        ours = run(L.LayerNorm, x, w, b, begin_norm_axis=axis)
        for o, e in zip(ours, expected):
            np.testing.assert_allclose(o, e, rtol=1e-4, atol=1e-5)
            assert o.shape == e.shape and o.dtype == e.dtype


@pytest.mark.interop
def test_einsum_contractions_match_paddle(real_paddle):
    sizes = dict(zip("bhijkqd", (2, 3, 4, 5, 6, 3, 4)))
    for eq in ("bij,bjk->bik", "bhqd,bhkd->bhqk", "bhqk,bhkd->bhqd", "ij,jk", "ij,kj",
               "bij,jk->bik", "i,j->ij", "ij,ij->", "ij->ji", "ij->", "ii->i", "bij->bj",
               "ij,ij->ij", "bid,bjd->bij"):
        lhs = eq.split("->")[0].split(",")
        ops = [f32(*[sizes[c] for c in term]) for term in lhs]
        (ours,) = run(ES.Einsum, *ops, equation=eq)
        theirs = real_paddle.einsum(eq, *[real_paddle.to_tensor(o) for o in ops]).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5, err_msg=eq)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        inferred = infer(ES.Einsum, *[Abstract.of_array(o) for o in ops], equation=eq)
        assert inferred == [ours.shape], eq


@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk->ki", [(2, 3), (3, 4)]), ("bij,bjk->kib", [(2, 3, 4), (2, 4, 5)]),
    ("ijk,k->ij", [(2, 3, 4), (4,)]), ("ij,k->", [(2, 3), (4,)]),
    ("ij,kl->jk", [(2, 3), (4, 5)]), ("bij,bjk->bik", [(1, 3, 4), (2, 4, 5)]),
    ("ij,jk->ik", [(2, 1), (3, 4)]), ("ii->i", [(3, 3)]), ("iij,jk->ik", [(2, 2, 3), (3, 4)]),
])
def test_einsum_kernel_agrees_with_numpy(equation, shapes):
    """Contractions run as one batched matmul; repeated labels and contracted dims of
    sizes 1 and n fall back to numpy's einsum."""
    ops = [f32(*s) for s in shapes]
    (ours,) = run(ES.Einsum, *ops, equation=equation)
    want = np.einsum(equation, *ops)
    assert ours.shape == want.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-5)


@pytest.mark.interop
def test_gathers_match_paddle_for_random_shapes(real_paddle):
    p = real_paddle
    rng = np.random.default_rng(6)
    for _ in range(12):
        x = f32(*[int(d) for d in rng.integers(1, 6, size=rng.integers(1, 4))])
        t = p.to_tensor(x)
        k = int(rng.integers(1, x.ndim + 1))
        lead = [int(d) for d in rng.integers(1, 4, size=rng.integers(1, 3))]
        index = np.stack([rng.integers(-x.shape[d], x.shape[d], size=lead)
                          for d in range(k)], -1)
        assert_close(run(G.GatherNd, x, index)[0], p.gather_nd(t, p.to_tensor(index)).numpy())
        dim = int(rng.integers(-x.ndim, x.ndim))
        n = x.shape[dim]
        idx = rng.integers(-n, n, size=int(rng.integers(1, 6)))
        assert_close(run(G.IndexSelect, x, idx, dim=dim)[0],
                     p.index_select(t, p.to_tensor(idx), axis=dim).numpy())
        shape = [int(rng.integers(1, d + 1)) for d in x.shape]
        shape[dim] = int(rng.integers(1, 6))
        along = rng.integers(-n, n, size=shape)
        assert_close(run(G.TakeAlongAxis, x, along, axis=dim)[0],
                     p.take_along_axis(t, p.to_tensor(along), dim, broadcast=False).numpy())


def test_an_empty_batch_gives_empty_results():
    x = np.zeros((0, 5, 6), np.float32)
    y, mean, var = run(L.LayerNorm, x, f32(6), f32(6), begin_norm_axis=2)
    assert y.shape == (0, 5, 6) and mean.shape == var.shape == (0, 5)
    (out,) = run(E.LookupTableV2, np.zeros((0, 4), np.int64), f32(10, 3))
    assert out.shape == (0, 4, 3)
    (out,) = run(LS.SoftmaxWithCrossEntropy, np.zeros((0, 5), np.float32),
                 np.zeros((0, 1), np.int64))[1:]
    assert out.shape == (0, 1)


# --- ids and indices out of range, when the op runs ----------------------------------------------

@pytest.mark.parametrize("cls,arrays,attrs,message", [
    (E.LookupTableV2, [np.array([[1, 10]]), f32(10, 4)], {},
     "pd.lookup_table_v2: id 10 is out of range [0, 10)"),
    (E.LookupTableV2, [np.array([[1, -2]]), f32(10, 4)], {"padding_idx": 3},
     "pd.lookup_table_v2: id -2 is out of range"),
    (E.LookupTable, [np.array([[1], [-1]]), f32(10, 4)], {},
     "pd.lookup_table: id -1 is out of range [0, 10)"),
    (E.OneHot, [np.array([0, 7])], {"depth": 5}, "pd.one_hot: id 7 is out of range [0, 5)"),
    (G.GatherNd, [f32(3, 4), np.array([[0, 1], [3, 0]])], {},
     "pd.gather_nd: index of dim 0 3 is out of range [-3, 3)"),
    (G.IndexSelect, [f32(3, 4), np.array([1, -5])], {"dim": 1},
     "pd.index_select: index -5 is out of range [-4, 4)"),
    (G.TakeAlongAxis, [f32(3, 4), np.array([[4]])], {"axis": 1},
     "pd.take_along_axis: index 4 is out of range [-4, 4)"),
    (LS.SoftmaxWithCrossEntropy, [f32(2, 5), np.array([[3], [5]])], {},
     "pd.softmax_with_cross_entropy: label 5 is out of range [0, 5)"),
])
def test_indices_out_of_range_name_the_op_and_the_index(cls, arrays, attrs, message):
    with pytest.raises(OutOfRangeError) as e:
        run(cls, *arrays, **attrs)
    assert message in str(e.value)
    assert isinstance(e.value, IndexError)


def test_padding_ids_follow_each_ops_kernel():
    """lookup_table_v2 zeroes every id equal to padding_idx, -1 included (Paddle 3.3.1's
    kernel has no 'no padding' test), lookup_table only when padding_idx is not -1."""
    w = np.arange(1, 16, dtype=np.float32).reshape(5, 3)
    (out,) = run(E.LookupTableV2, np.array([2, -1, 4]), w, padding_idx=-1)
    np.testing.assert_array_equal(out, [w[2], [0, 0, 0], w[4]])
    (out,) = run(E.LookupTableV2, np.array([[2, 4]]), w, padding_idx=4)
    np.testing.assert_array_equal(out, [[w[2], [0, 0, 0]]])
    (out,) = run(E.LookupTable, np.array([[2], [4]]), w, padding_idx=4)
    np.testing.assert_array_equal(out, [w[2], [0, 0, 0]])
    with pytest.raises(OutOfRangeError):
        run(E.LookupTable, np.array([[-1]]), w, padding_idx=-1)


@pytest.mark.interop
def test_a_loaded_embedding_refuses_an_out_of_range_id_when_it_runs(tmp_path, real_paddle):
    case = Case("emb", E.LookupTableV2, [np.array([[1, 2]]), f32(10, 4)], {}, None,
                lambda p, i, w: p.nn.functional.embedding(i, w, padding_idx=0), batched=(0,))
    path, _ = paddle_saved(case, real_paddle, tmp_path)
    model = load_model(path, None)
    (out,) = model.run([np.array([[3, 0]]), case.inputs[1]])
    assert out.shape == (1, 2, 4) and not out[0, 1].any()
    with pytest.raises(OutOfRangeError, match=r"pd.lookup_table_v2: id 12 is out of range"):
        model.run([np.array([[3, 12]]), case.inputs[1]])


# --- refused attribute values ----------------------------------------------------------------------

@pytest.mark.parametrize("cls,inputs,attrs,words", [
    (LA.ScaledMatmul, [ab(2, 3), ab(3, 4)], {"head_number": 2},
     ["pd.scaled_matmul", "head_number=2"]),
    (ES.Einsum, [ab(2, 3, 4), ab(4, 5)], {"equation": "...ij,jk->...ik"},
     ["pd.einsum", "equation='...ij,jk->...ik'", "spell the broadcast dims"]),
    (ES.Einsum, [ab(2, 3), ab(3, 4)], {"equation": "Ab,bC->AC"},
     ["pd.einsum", "equation='Ab,bC->AC'", "lowercase"]),
    (ES.Einsum, [ab(2, 3), ab(3, 4), ab(4, 5)], {"equation": "ij,jk,kl->il"},
     ["pd.einsum", "3 operands"]),
    (C.FullFromShapeTensor, [ab(-1, dtype=I32)], {}, ["pd.full_from_shape_tensor", "length"]),
])
def test_unsupported_attribute_values_name_op_attribute_and_value(cls, inputs, attrs, words):
    with pytest.raises(UnsupportedError) as err:
        cls.infer_results(inputs, cls.normalize_attrs(attrs))
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("cls,inputs,attrs,match", [
    (L.LayerNorm, [ab(-1, 4), ab(4), ab(4)], {"begin_norm_axis": 0}, "must be in \\[1, 1\\]"),
    (L.LayerNorm, [ab(-1, 4, 6), ab(6), ab(6)], {"begin_norm_axis": 1}, "must have shape \\[24"),
    (L.LayerNormPlain, [ab(-1, 4, dtype=I64)], {}, "floating"),
    (E.LookupTableV2, [ab(-1, 4), ab(10, 3)], {}, "ids must be int32 or int64"),
    (E.LookupTableV2, [ab(-1, 4, dtype=I64), ab(10, 3, 2)], {}, "must be 2-D"),
    (E.LookupTable, [ab(-1, 3, dtype=I64), ab(10, 3)], {}, "end in a dim of 1"),
    (E.OneHot, [ab(-1, dtype=I64)], {"depth": 0}, "at least 1"),
    (LA.Bmm, [ab(-1, 3, 4), ab(-1, 5, 2)], {}, "do not fit"),
    (LA.Bmm, [ab(3, 4), ab(4, 2)], {}, "3-D"),
    (LA.ScaledMatmul, [ab(2, 1, 5, 3), ab(3, 3, 4)], {}, "batch dims differ"),
    (LA.TrilTriu, [ab(4)], {"lower": True}, "at least 2 dims"),
    (ES.Einsum, [ab(2, 3), ab(4, 5)], {"equation": "ij,jk->ik"}, "label 'j' has sizes 3 and 4"),
    (ES.Einsum, [ab(2, 3)], {"equation": "ijk->i"}, "does not fit an operand of rank 2"),
    (ES.Einsum, [ab(2, 3)], {"equation": "ij->ii"}, "must each appear once"),
    (G.GatherNd, [ab(3, 4), ab(-1, 3, dtype=I64)], {}, "longer than the rank"),
    (G.IndexSelect, [ab(3, 4), ab(2, 2, dtype=I64)], {}, "index must be 1-D"),
    (G.TakeAlongAxis, [ab(3, 4), ab(5, 2, dtype=I64)], {"axis": 1}, "longer than x"),
    (G.TakeAlongAxis, [ab(3, 4), ab(2, dtype=I64)], {"axis": 0}, "rank of x"),
    (M.ExpandAs, [ab(-1, 3), ab(-1, 4)], {}, "cannot expand dim 1 of size 3"),
    (M.ExpandAsShape, [ab(1, 3)], {"target_shape": (-1, 3)}, "must be given"),
    (S.StridedSlice, [ab(-1, 6)], {"axes": (1,), "starts": (0,), "ends": (4,), "strides": (2,),
                                   "decrease_axis": (1,)}, "must keep exactly 1"),
    (S.StridedSlice, [ab(-1, 6)], {"axes": (1,), "starts": (0,), "ends": (4,),
                                   "strides": (0,)}, "must not be 0"),
    (S.StridedSlice, [ab(-1, 6)], {"axes": (1, 1), "starts": (0, 0), "ends": (4, 4),
                                   "strides": (1, 1)}, "sliced twice"),
    (S.SetValueTensor, [ab(-1, 6), ab(4)], {"axes": (1,), "starts": (0,), "ends": (3,),
                                            "steps": (1,)}, "does not broadcast"),
    (S.SetValueTensor, [ab(-1, 6), ab(3, dtype=I64)],
     {"axes": (1,), "starts": (0,), "ends": (3,), "steps": (1,)}, "cast it first"),
    (S.SetValue, [ab(-1, 6)], {"axes": (1,), "starts": (0,), "ends": (3,), "steps": (1,),
                               "values": array_to_dense(np.array([1.0, 2.0])), "shape": (3,)},
     "2 values do not fill shape \\[3\\]"),
    (C.FullFromShapeList, [ab(2, dtype=I32)], {"shape": (-1,)}, "must hold one value"),
    (C.FullBatchSizeLike, [ab(-1, 3)], {"shape": (4,), "input_dim_idx": 2},
     "out of range"),
    (LS.SoftmaxWithCrossEntropy, [ab(-1, 5), ab(-1, 5, dtype=I64)], {},
     "label must have shape \\[-1, 1\\]"),
    (LS.SoftmaxWithCrossEntropy, [ab(-1, 5), ab(-1, 1)], {}, "int32 or int64"),
    (LS.SoftmaxWithCrossEntropy, [ab(-1, 5), ab(-1, 5, dtype=I64)], {"soft_label": True},
     "soft labels must be float32"),
])
def test_inputs_that_do_not_fit_are_shape_errors(cls, inputs, attrs, match):
    with pytest.raises(ShapeError, match=match):
        cls.infer_results(inputs, cls.normalize_attrs(attrs))


# --- loading what these ops cannot run -------------------------------------------------------------

def _load_one_op(tmp_path, op, extra_vars=(), feeds=()):
    import legacy_programs as P

    vs = [P.var("x", shape=(2, 6)), P.var("out", shape=(-1, -1)), *extra_vars]
    ops = [*[P.feed(n, i + 1) for i, n in enumerate(feeds)], P.feed("x", 0), op,
           P.fetch("out", 0)]
    path = tmp_path / "m.pdmodel"
    save_program(path, P.program((vs, ops)))
    return load_model(str(path), None)


def test_loading_refuses_bounds_and_values_given_as_tensors(tmp_path):
    import legacy_programs as P

    def t():
        return P.var("t", "int64", (1,))

    slicing = {"axes": ("LONGS", [1]), "starts": ("LONGS", [0]), "ends": ("LONGS", [2]),
               "steps": ("LONGS", [1]), "decrease_axes": ("LONGS", []),
               "none_axes": ("LONGS", []), "dtype": ("INT", 5), "shape": ("LONGS", [1]),
               "values": ("SCALARS", [1.0])}
    with pytest.raises(UnsupportedError, match=r"no pd op handles set_value with inputs "
                                               r"\['Input', 'StartsTensorList'\]"):
        _load_one_op(tmp_path, P.op("set_value", {"Input": ["x"], "StartsTensorList": ["t"]},
                                    {"Out": ["out"]}, **slicing), [t()], ["t"])
    strided = {"axes": ("INTS", [1]), "starts": ("INTS", [0]), "ends": ("INTS", [4]),
               "strides": ("INTS", [2]), "decrease_axis": ("INTS", [])}
    with pytest.raises(UnsupportedError, match=r"infer_flags=\[-1\] is not supported"):
        _load_one_op(tmp_path, P.op("strided_slice", {"Input": ["x"]}, {"Out": ["out"]},
                                    infer_flags=("INTS", [-1]), **strided))
    fill = {"dtype": ("INT", 5), "shape": ("LONGS", [2, 2]), "value": ("FLOAT", 0.0),
            "str_value": ("STRING", ""), "force_cpu": ("BOOLEAN", False),
            "place_type": ("INT", -1)}
    with pytest.raises(UnsupportedError, match=r"no pd op handles fill_constant with inputs "
                                               r"\['ValueTensor'\]"):
        _load_one_op(tmp_path, P.op("fill_constant", {"ValueTensor": ["t"]}, {"Out": ["out"]},
                                    **fill), [t()], ["t"])
    with pytest.raises(UnsupportedError, match=r"no pd op handles one_hot_v2 with inputs "
                                               r"\['X', 'depth_tensor'\]"):
        _load_one_op(tmp_path, P.op("one_hot_v2", {"X": ["x"], "depth_tensor": ["t"]},
                                    {"Out": ["out"]}, depth=("INT", -1), dtype=("INT", 5),
                                    allow_out_of_range=("BOOLEAN", False)), [t()], ["t"])
    old_set_value = {k: v for k, v in slicing.items() if k not in ("values", "shape")}
    with pytest.raises(UnsupportedError, match=r"pd.set_value: no `values` attribute .*"
                                               r"fp32_values .*\(raising op 1 \(set_value\)"):
        _load_one_op(tmp_path, P.op("set_value", {"Input": ["x"]}, {"Out": ["out"]},
                                    fp32_values=("FLOATS", [1.0]), shape=("INTS", [1]),
                                    **old_set_value))
    with pytest.raises(UnsupportedError, match=r"pd.scaled_matmul: head_number=4 .*"
                                               r"\(raising op 1 \(matmul\) of block 0\)"):
        _load_one_op(tmp_path, P.op("matmul", {"X": ["x"], "Y": ["x"]}, {"Out": ["out"]},
                                    transpose_X=("BOOLEAN", False),
                                    transpose_Y=("BOOLEAN", True), alpha=("FLOAT", 1.0),
                                    head_number=("INT", 4)))


# --- programs Paddle writes around these ops -------------------------------------------------------

def test_embed_ln_fixture_runs_and_lowers_back_to_paddles_ops(tmp_path):
    for d, feeds, expected in fixture_cases("embed_ln"):
        model = load_model(str(d / "model.pdmodel"), str(d / "model.pdiparams"))
        got = model.run([feeds[n] for n in model.feed_names])
        assert len(got) == len(expected) == 1
        assert_close(got[0], expected[0])
    path = FIXTURES / "embed_ln" / "model.pdmodel"
    module, *_ = raise_program(load_program(path))
    names = {op.name for op in module.walk()}
    assert {"pd.lookup_table_v2", "pd.layer_norm", "pd.matmul"} <= names
    save_program(tmp_path / "m.pdmodel", lower_function(entry(module)))
    for op_type, n in (("lookup_table_v2", 1), ("layer_norm", 1), ("matmul_v2", 3)):
        theirs = op_descs(path, op_type)
        assert len(theirs) == n and op_descs(tmp_path / "m.pdmodel", op_type) == theirs


def test_embed_ln_runs_at_other_batch_sizes_and_with_padding_ids():
    d = FIXTURES / "embed_ln"
    model = load_model(str(d / "model.pdmodel"), str(d / "model.pdiparams"))
    ids = np.random.default_rng(0).integers(0, 50, size=(5, 6))
    (out,) = model.run([ids])
    assert out.shape == (5, 32) and out.dtype == np.float32 and np.isfinite(out).all()
    with pytest.raises(OutOfRangeError, match="id 50"):
        model.run([np.full((1, 6), 50)])


@pytest.mark.interop
def test_embed_ln_saved_again_by_tostatic_runs_in_openvino(tmp_path):
    """Loaded, then written by jit.save: OpenVINO's Paddle reader runs the file
    (lookup_table_v2, layer_norm, matmul_v2, ...) with Paddle's outputs."""
    ov = pytest.importorskip("openvino")
    import tostatic

    d = FIXTURES / "embed_ln"
    tostatic.jit.save(tostatic.jit.load(str(d / "model")), str(tmp_path / "m"))
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(tmp_path / "m.pdmodel")), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    for _, feeds, expected in fixture_cases("embed_ln"):
        (out,) = compiled(feeds).values()
        np.testing.assert_allclose(out, expected[0], rtol=1e-5, atol=1e-5)


@pytest.mark.interop
def test_paddles_full_with_a_dynamic_dim_loads_and_runs(tmp_path, real_paddle):
    """paddle.full([x.shape[0], 3], v): shape, slice and a fill_constant with
    ShapeTensorList (one dim from the shape, one from its own fill_constant)."""
    def build(p, x):
        return x + p.full([p.shape(x)[0], 3], 2.5)

    case = Case("full_dyn", C.FullFromShapeList, [f32(4, 3)], {}, None, build)
    path, expected = paddle_saved(case, real_paddle, tmp_path)
    assert op_descs(path, "fill_constant")
    module, *_ = raise_program(load_program(path))
    assert "pd.full_from_shape_list" in {op.name for op in module.walk()}
    model = load_model(path, None)
    for x in (case.inputs[0], f32(7, 3)):
        (got,) = model.run([x])
        assert_close(got, x + np.float32(2.5))
    assert_close(model.run([case.inputs[0]])[0], expected[0])


@pytest.mark.interop
def test_paddles_cross_entropy_program_loads_and_runs(tmp_path, real_paddle):
    """F.cross_entropy as Paddle writes it: softmax_with_cross_entropy, then the mean."""
    logits = f32(6, 5, scale=2.0)
    label = np.array([[0], [4], [2], [2], [1], [3]])
    case = Case("ce", LS.SoftmaxWithCrossEntropy, [logits, label], {}, None,
                lambda p, x, y: p.nn.functional.cross_entropy(x, y), batched=(0, 1))
    path, expected = paddle_saved(case, real_paddle, tmp_path)
    (got,) = load_model(path, None).run([logits, label])
    assert_close(got, expected[0])


@pytest.mark.interop
def test_a_small_attention_block_paddle_wrote_runs_with_paddles_outputs(tmp_path, real_paddle):
    """Embedding + position ids, layer_norm, scaled dot-product attention with a padding mask
    (one_hot-free: where from not_equal), gelu, written by Paddle's static mode, run here at
    two sequence lengths."""
    vocab, hidden = 20, 8

    def build(p, ids):
        F = p.nn.functional
        w = p.static.create_parameter([vocab, hidden], "float32")
        pos = p.static.create_parameter([16, hidden], "float32")
        g = p.static.create_parameter([hidden], "float32")
        b = p.static.create_parameter([hidden], "float32", is_bias=True)
        x = F.embedding(ids, w, padding_idx=0)
        positions = p.arange(0, p.shape(ids)[1], 1, "int64")
        x = x + F.embedding(positions, pos)
        x = F.layer_norm(x, hidden, g, b)
        scores = appended("matmul_v2", ["X", "Y"], {"trans_x": False, "trans_y": True})(p, x, x)[0]
        scores = p.scale(scores, hidden ** -0.5)
        keep = p.unsqueeze(p.cast(ids != 0, "float32"), 1)
        attn = F.softmax(scores + (keep - 1.0) * 1e4)
        ctx = appended("matmul_v2", ["X", "Y"], {"trans_x": False, "trans_y": False})(
            p, attn, x)[0]
        return appended("gelu", ["X"], {"approximate": False})(p, ctx)[0]

    ids = np.array([[3, 7, 1, 0, 0], [5, 2, 9, 11, 4]])
    case = Case("attn", E.LookupTableV2, [ids], {}, None, build, batched=(0,))
    path, expected = _saved_with_seq_dynamic(case, real_paddle, tmp_path)
    model = load_model(path, path.replace(".pdmodel", ".pdiparams"))
    (got,) = model.run([ids])
    np.testing.assert_allclose(got, expected[0], rtol=1e-4, atol=1e-5)
    (short,) = model.run([ids[:, :3]])
    assert short.shape == (2, 3, hidden)


def _saved_with_seq_dynamic(case, paddle, tmp_path):
    with paddle_static(paddle) as (main, startup):
        ids = paddle.static.data("x0", [None, None], "int64")
        (out,) = [case.static(paddle, ids)]
        exe = paddle.static.Executor(paddle.CPUPlace())
        exe.run(startup)
        expected = exe.run(main, feed={"x0": case.inputs[0]}, fetch_list=[out])
        prefix = str(tmp_path / "attn")
        paddle.static.save_inference_model(prefix, [ids], [out], exe, program=main)
    return prefix + ".pdmodel", expected
