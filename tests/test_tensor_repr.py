"""Tensor repr must match paddle 3.3.1 string-for-string."""

import os

import numpy as np
import pytest

from tostatic.frontend.tensor import repr as tensor_repr
from tostatic.frontend.tensor.repr import format_tensor, get_printoptions, set_printoptions


def _cases():
    rng = np.random.default_rng(1234)
    f32, f64, f16 = np.float32, np.float64, np.float16

    def randn(*s, dtype=f32, scale=1.0):
        return (rng.standard_normal(s) * scale).astype(dtype)

    outlier = np.arange(100, dtype=f32)
    outlier[50] = -12345.5
    c = {
        # 0-D
        "0d_f32": np.array(1.5, f32),
        "0d_f32_neg_int": np.array(-2.0, f32),
        "0d_f64_nan": np.array(np.nan, f64),
        "0d_f16": np.array(0.1, f16),
        "0d_i64": np.array(7, np.int64),
        "0d_i32_neg": np.array(-3, np.int32),
        "0d_bool": np.array(True),
        # 1-D
        "1d_rand": rng.random(5).astype(f32),
        "1d_randn": randn(7),
        "1d_f64": randn(6, dtype=f64),
        "1d_f16": randn(6, dtype=f16),
        "1d_i32": rng.integers(-50, 50, 9).astype(np.int32),
        "1d_i64_big": rng.integers(-(2**40), 2**40, 6),
        "1d_i8": rng.integers(-100, 100, 10).astype(np.int8),
        "1d_u8": rng.integers(0, 255, 10).astype(np.uint8),
        "1d_i16": rng.integers(-3000, 3000, 10).astype(np.int16),
        "1d_bool": rng.random(8) > 0.5,
        "1d_integral": np.array([0.0, 1.0, 2.0], f32),
        "1d_integral_neg": np.array([-1.0, 100.0, 3.0], f32),
        "1d_neg_zero": np.array([-0.0, 1.0], f32),
        "1d_nan_inf": np.array([-0.0, 1.5, np.inf, -np.inf, np.nan], f32),
        "1d_mixed_mag": np.array([1e-9, 1e9, 1.5], f32),
        "1d_mixed_mag2": np.array([1e-5, 3.3e5, -7.25, 1e20], f64),
        "1d_tiny": np.array([1e-12, -3e-10], f32),
        "1d_single": np.array([4.0], f32),
        # 1-D wrapping and summarising
        "1d_wrap_arange": np.arange(100, dtype=f32),
        "1d_wrap_randn": randn(50),
        "1d_wrap_i64": np.arange(-100, 200),
        "1d_wrap_bool": rng.random(40) > 0.5,
        "1d_width_outlier": outlier,
        "1d_summary_1001": randn(1001),
        "1d_summary_i64": np.arange(2000),
        "1d_summary_f16": randn(1500, dtype=f16),
        # 2-D
        "2d_zeros": np.zeros((1, 2), f32),
        "2d_randn": randn(3, 4),
        "2d_f64": randn(4, 3, dtype=f64, scale=100),
        "2d_f16": randn(3, 3, dtype=f16),
        "2d_int": rng.integers(-9, 99, (5, 5)),
        "2d_bool": rng.random((3, 3)) > 0.5,
        "2d_wrap": randn(2, 20),
        "2d_nan_inf": np.array([[np.nan, 1.0], [-np.inf, 2.5]], f32),
        "2d_summary": randn(40, 30),
        "2d_summary_tall": randn(1000, 2),
        "2d_summary_int": rng.integers(0, 1000, (31, 33)).astype(np.int32),
        "2d_summary_rows_only": randn(1001, 1),
        "2d_mixed_mag": np.array([[1e-3, 12345.678], [-1e6, 0.5]], f32),
        # 3-D
        "3d_randn": randn(2, 3, 4),
        "3d_int": rng.integers(-5, 5, (2, 2, 2)).astype(np.int32),
        "3d_summary": randn(12, 12, 12),
        "3d_wide": randn(3, 1, 20, scale=1000),
        "3d_bool": rng.random((2, 3, 2)) > 0.5,
        # 4-D
        "4d_small": randn(2, 2, 2, 2),
        "4d_mid": rng.random((3, 4, 5, 6)).astype(f32),
        "4d_summary": randn(10, 10, 10, 10),
        "4d_int_summary": rng.integers(-1000, 1000, (8, 8, 8, 8)),
        # empty
        "empty_1d": np.zeros((0,), f32),
        "empty_2d_col": np.zeros((2, 0), f32),
        "empty_2d_row": np.zeros((0, 3), f32),
        "empty_3d": np.zeros((2, 0, 3), f32),
        "empty_int": np.zeros((0,), np.int64),
        "empty_bool": np.zeros((3, 0), bool),
        # complex (not required, but cheap)
        "complex": (randn(3) + 1j * randn(3)).astype(np.complex64),
    }
    return c


CASES = _cases()

OPTION_CASES = [
    (dict(precision=4), "2d_summary"),
    (dict(precision=2), "1d_nan_inf"),
    (dict(sci_mode=True), "1d_mixed_mag2"),
    (dict(sci_mode=True, precision=3), "3d_randn"),
    (dict(threshold=10, edgeitems=2), "2d_randn"),
    (dict(threshold=5, edgeitems=1), "3d_int"),
    (dict(threshold=10, edgeitems=0), "1d_wrap_arange"),
    (dict(linewidth=40), "1d_wrap_randn"),
    (dict(linewidth=200), "2d_summary"),
    (dict(linewidth=5), "1d_i32"),
]

_DEFAULTS = dict(precision=8, threshold=1000, edgeitems=3, sci_mode=False, linewidth=80)


def _ours(a):
    return format_tensor(a, a.dtype.name, True)


@pytest.fixture(autouse=True)
def _reset_options():
    yield
    set_printoptions(**_DEFAULTS)


@pytest.fixture(scope="module")
def paddle():
    os.environ.setdefault("FLAGS_enable_pir_api", "0")
    paddle = pytest.importorskip("paddle")
    yield paddle
    paddle.set_printoptions(**_DEFAULTS)


@pytest.mark.interop
@pytest.mark.parametrize("name", list(CASES))
def test_matches_paddle(paddle, name):
    a = CASES[name]
    assert _ours(a) == str(paddle.to_tensor(a))


@pytest.mark.interop
@pytest.mark.parametrize("opts,name", OPTION_CASES, ids=[str(o) for o, _ in OPTION_CASES])
def test_matches_paddle_with_printoptions(paddle, opts, name):
    a = CASES[name]
    paddle.set_printoptions(**opts)
    set_printoptions(**opts)
    try:
        assert _ours(a) == str(paddle.to_tensor(a))
    finally:
        paddle.set_printoptions(**_DEFAULTS)


@pytest.mark.interop
def test_stop_gradient_false(paddle):
    a = np.array([1.0, -2.5], np.float32)
    t = paddle.to_tensor(a, stop_gradient=False)
    assert format_tensor(a, "float32", False) == str(t) == repr(t)


def test_zeros_1x2():
    assert _ours(np.zeros((1, 2), np.float32)) == (
        "Tensor(shape=[1, 2], dtype=float32, place=Place(cpu), stop_gradient=True,\n"
        "       [[0., 0.]])"
    )


def test_0d_int():
    assert _ours(np.array(5, np.int64)) == (
        "Tensor(shape=[], dtype=int64, place=Place(cpu), stop_gradient=True,\n"
        "       5)"
    )


def test_bool_1d():
    assert _ours(np.array([True, False, True])) == (
        "Tensor(shape=[3], dtype=bool, place=Place(cpu), stop_gradient=True,\n"
        "       [True , False, True ])"
    )


def test_negative_and_fractional():
    assert format_tensor(np.array([-1.0, 0.5], np.float32), "float32", False, "Place(gpu:0)") == (
        "Tensor(shape=[2], dtype=float32, place=Place(gpu:0), stop_gradient=False,\n"
        "       [-1.       , 0.50000000])"  # widest cell gets no sign column
    )


def test_set_printoptions_state():
    set_printoptions(precision=3, sci_mode=True)
    assert get_printoptions() == dict(_DEFAULTS, precision=3, sci_mode=True)
    assert tensor_repr.DEFAULT_PRINT_OPTIONS.precision == 3
    set_printoptions()  # all None: no change
    assert get_printoptions()["precision"] == 3
    with pytest.raises(TypeError):
        set_printoptions(precision=2.5)
    with pytest.raises(TypeError):
        set_printoptions(sci_mode=1)
