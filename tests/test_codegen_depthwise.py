"""codegen's depthwise convolution (register-accumulated taps, scratch-padded planes, vector
epilogue, masked tail stores) and the one-pass conv epilogue (RowsEpilogue), against the numpy
reference kernels of ops/conv.py and ops/fused.py on random shapes: strides 1, 2 and 3, odd
sizes, asymmetric paddings, dilations, channel multipliers, float32 and float64."""
from __future__ import annotations

import numpy as np
import pytest

from tostatic.codegen import depthwise, engine
from tostatic.codegen.epilogue import RowsEpilogue, epilogue_expr
from tostatic.ops import conv
from tostatic.ops.fused import FusedConv2D, apply_epilogue

SEED = 20261207


def random_case(rng):
    c, m = int(rng.integers(2, 9)), int(rng.choice([1, 1, 2, 3]))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pads = [int(rng.integers(0, 4)) for _ in range(4)]
    h, w = int(rng.integers(1, 41)), int(rng.integers(1, 41))
    n = int(rng.integers(1, 3))
    dtype = str(rng.choice(["float32", "float64"]))
    return c, m, (kh, kw), strides, dil, pads, (n, c, h, w), dtype


def test_depthwise_agrees_bit_for_bit_with_the_numpy_kernel():
    """Taps are added in the numpy kernel's order, without fused multiply-adds."""
    rng = np.random.default_rng(SEED)
    checked = 0
    while checked < 40:
        c, m, k, st, dil, pads, shape, dtype = random_case(rng)
        x = rng.standard_normal(shape).astype(dtype)
        w = rng.standard_normal((c * m, 1, *k)).astype(dtype)
        try:
            want = conv.conv2d_kernel(x, w, st, tuple(pads), "EXPLICIT", dil, c, "NCHW")
        except Exception:
            continue  # an empty output
        bias = rng.standard_normal(c * m).astype(dtype)
        got = depthwise.depthwise_conv2d(x, w, st, ((pads[0], pads[1]), (pads[2], pads[3])),
                                         dil, bias)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want + bias.reshape(1, -1, 1, 1)), (k, st, dil, pads, shape)
        checked += 1


EPILOGUES = [("bias", "relu6"), ("bias", "add", "relu"), ("add",), ("bias", "hardswish"),
             ("bias", "gelu"), ("swish", "bias"), ("bias", "sigmoid", "add")]


@pytest.mark.parametrize("steps", EPILOGUES, ids="-".join)
def test_depthwise_epilogues_match_the_fused_ops_eager(steps):
    """Vector epilogues, and the lane-by-lane ones (gelu's erf, swish's exp)."""
    rng = np.random.default_rng([SEED, len(steps), len(steps[-1])])
    for _ in range(3):
        c, m, k, st, dil, pads, shape, dtype = random_case(rng)
        x = rng.standard_normal(shape).astype(dtype)
        w = rng.standard_normal((c * m, 1, *k)).astype(dtype)
        attrs = FusedConv2D.normalize_attrs(dict(strides=st, paddings=tuple(pads),
                                                 dilations=dil, groups=c))
        try:
            y = FusedConv2D.run_eager([x, w], {**attrs, "epilogue": ()})[0]
        except Exception:
            continue
        extras = [rng.standard_normal(c * m if s == "bias" else y.shape).astype(dtype)
                  for s in steps if s in ("bias", "add")]
        want = apply_epilogue(y, steps, extras, 1)
        k_ = depthwise.Depthwise(shape, w, st, ((pads[0], pads[1]), (pads[2], pads[3])), dil,
                                 *epilogue_expr(steps, dtype))
        got = np.empty(k_.shape, dtype)
        k_.run(x, extras, got)
        k_.run(x, extras, got)  # the prepared call again
        tol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_depthwise_is_vector_code():
    """The taps load whole vectors (stride 2: de-interleaved by shuffles), no scalar loop."""
    features = engine.host()["features"].split(",")
    register = "%zmm" if "+avx512f" in features else "%ymm" if "+avx2" in features else None
    if register is None:
        pytest.skip("the host CPU has neither AVX-512 nor AVX2")
    expr, kinds = epilogue_expr(("bias", "relu6"), "float32")
    for s in (1, 2):
        km = depthwise._module("float32", (3, 3), (s, s), (1, 1), expr, kinds)
        asm = engine.assembly(km.text().replace("__NAME__", "probe_"))
        assert sum(register in line and "vmulps" in line for line in asm.splitlines()) >= 9


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rows_epilogue_in_place_and_between_strided_blocks(dtype):
    rng = np.random.default_rng([SEED, 5])
    steps = ("bias", "add", "relu6")
    e = RowsEpilogue(steps, dtype)
    y = rng.standard_normal((6, 37)).astype(dtype) * 8
    bias = rng.standard_normal(3).astype(dtype)  # a period of 3 rows (channels)
    res = rng.standard_normal((6, 50)).astype(dtype)
    want = np.clip(y + np.tile(bias, 2)[:, None] + res[:, 5:42], 0, 6)
    dst = np.zeros((6, 45), dtype)
    e.run(y, dst[:, 3:40], [bias, res[:, 5:42]], 3)
    np.testing.assert_array_equal(dst[:, 3:40], want)
    assert not dst[:, :3].any() and not dst[:, 40:].any()
    e.run(y, y, [bias, res[:, 5:42]], 3)
    np.testing.assert_array_equal(y, want)
