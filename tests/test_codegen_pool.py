"""codegen's max pooling of stride 2 along rows (codegen/pool.py `_rows_module`: three masked
vector loads a row, each tap a shuffle) against the pool2d op's numpy kernel and against the
tap-by-tap kernel it replaces (bit-equal: the max of the same values): random shapes with
rows wider and narrower than a vector, every padding and window width it takes, ceil mode,
NaN and infinities, float32 and float64, batch 1 and 3."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_runtime_kernels import bound_plan
from tostatic.codegen import pool
from tostatic.ir.op_rules import pool_dims
from tostatic.ops.pooling import Pool2D

pytestmark = pytest.mark.usefixtures("compiled_kernels")


def compiled(x, attrs, rows):
    """Pool2d's result for x, the rows kernel on or off, and whether it was taken."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pool, "ROW_MAX", rows)
        dh, dw = pool_dims("pd.pool2d", x.shape[2:], attrs["ksize"], attrs["strides"],
                           attrs["paddings"], attrs["ceil_mode"], "max", False, False,
                           "EXPLICIT")
        k = pool.Pool2d(x.shape, x.dtype, (dh, dw), True, True)
        out = np.empty(k.out_shape, x.dtype)
        k.run(np.ascontiguousarray(x), out)
        return out, ("rows",) == tuple(key[4:] for key in pool._FUNCS
                                        if pool._FUNCS[key] is k._f)[0]


@settings(max_examples=60, deadline=None)
@given(n=st.sampled_from([1, 3]), c=st.integers(1, 4), h=st.integers(1, 21),
       w=st.integers(1, 70), kh=st.integers(1, 4), kw=st.integers(1, 5),
       sh=st.integers(1, 3), pads=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       ceil_mode=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       specials=st.booleans(), seed=st.integers(0, 2**16))
def test_rows_kernel_matches_numpy_and_the_tap_kernel(n, c, h, w, kh, kw, sh, pads, ceil_mode,
                                                      dtype, specials, seed):
    pads = (min(pads[0], kh - 1), min(pads[1], kw - 1))  # Paddle needs pad < ksize
    if h + 2 * pads[0] < kh or w + 2 * pads[1] < kw:
        return
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)
    if specials:
        x.flat[::5] = np.nan
        x.flat[1::7] = -np.inf
        x.flat[2::11] = np.inf
    attrs = dict(pooling_type="max", ksize=(kh, kw), strides=(sh, 2), paddings=pads,
                 ceil_mode=ceil_mode)
    want = Pool2D.run_eager([x], Pool2D.normalize_attrs(attrs))[0]
    got, took = compiled(x, attrs, True)
    old, _ = compiled(x, attrs, False)
    assert took
    np.testing.assert_array_equal(got, old)
    if not specials:  # (numpy's max propagates NaN, Paddle's kernel and ours skip it)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_bound_resnet_pool_takes_the_rows_kernel(ceil_mode):
    """ResNet's 3x3 / stride 2 / padding 1 pool over 112x112 planes, through a bound plan."""
    x = np.random.default_rng(4).standard_normal((3, 5, 112, 112)).astype(np.float32)
    attrs = dict(pooling_type="max", ksize=(3, 3), strides=(2, 2), paddings=(1, 1),
                 ceil_mode=ceil_mode)
    want = Pool2D.run_eager([x], Pool2D.normalize_attrs(attrs))[0]
    _, second, bound = bound_plan(Pool2D, [x], [False], attrs)
    np.testing.assert_array_equal(second, want)
    assert bound.labels[0][1] == "max-windows"
    assert compiled(x, attrs, True)[1]
