"""paddle.nn.functional interpolate / upsample (nearest, bilinear, bicubic, linear; size or
scale_factor, as numbers, lists or Tensors; align_corners, align_mode, data_format), pad
(constant / reflect / replicate / circular, 3-D to 5-D: unsqueeze2 -> pad3d -> squeeze2, and
the all-dims `pad`), grid_sample, affine_grid, and the layers Upsample,
UpsamplingNearest2D, UpsamplingBilinear2D, Pad1D/2D/3D, Flatten, against real Paddle 3.3.1:
eager values, the program jit.save writes (op for op as Paddle's), paddle.inference's
outputs. paddle.inference's oneDNN nearest_interp differs from Paddle's kernel at
fractional scales, and its oneDNN `pad` crashes on Paddle's own files: those cases run it
with oneDNN off."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.ir.errors import UnsupportedError

from api_harness import Case, check_eager, check_export, ids

rng = np.random.default_rng(13)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


X = f32(2, 3, 5, 6)
NHWC = f32(2, 5, 6, 3)
X3 = f32(2, 3, 7)
X5 = f32(1, 2, 3, 4, 5)


def nearest_scale(P, x): return P.nn.functional.interpolate(x, scale_factor=2)
def nearest_fraction(P, x): return P.nn.functional.interpolate(x, scale_factor=[1.5, 0.7])
def nearest_size_nhwc(P, x):
    return P.nn.functional.interpolate(x, size=(8, 9), data_format="NHWC")
def bilinear_scale(P, x): return P.nn.functional.interpolate(x, scale_factor=1.5, mode="bilinear")
def bilinear_size_corners(P, x):
    return P.nn.functional.interpolate(x, size=[7, 4], mode="bilinear", align_corners=True)
def bilinear_align_mode(P, x):
    return P.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_mode=1)
def bilinear_recompute(P, x):
    return P.nn.functional.interpolate(x, scale_factor=1.5, mode="bilinear",
                                       recompute_scale_factor=True)
def bilinear_named(P, x):
    return P.nn.functional.interpolate(x, size=[4, 4], mode="bilinear", name="resize")
def bicubic(P, x): return P.nn.functional.interpolate(x, size=[7, 9], mode="bicubic")
def linear(P, x): return P.nn.functional.interpolate(x, size=[11], mode="linear")
def nearest_3d(P, x): return P.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
def size_tensor(P, x, s): return P.nn.functional.interpolate(x, size=s, mode="bilinear")
def scale_tensor(P, x, s): return P.nn.functional.interpolate(x, scale_factor=s)
def area(P, x): return P.nn.functional.interpolate(x, size=[2, 3], mode="area")
def upsample(P, x): return P.nn.functional.upsample(x, scale_factor=2, mode="bilinear")
def pad_constant(P, x): return P.nn.functional.pad(x, [1, 2, 0, 1])
def pad_value_named(P, x): return P.nn.functional.pad(x, [1, 2, 0, 1], value=1.5, name="p")
def pad_reflect(P, x): return P.nn.functional.pad(x, [1, 1, 2, 0], mode="reflect")
def pad_replicate_nhwc(P, x):
    return P.nn.functional.pad(x, [1, 1, 2, 0], mode="replicate", data_format="NHWC")
def pad_circular(P, x): return P.nn.functional.pad(x, [2, 1, 1, 3], mode="circular")
def pad_crop(P, x): return P.nn.functional.pad(x, [-1, 2, 0, -2], mode="constant")
def pad_all_dims(P, x): return P.nn.functional.pad(x, [0, 0, 0, 0, 1, 2, 0, 1])
def pad_torch_order(P, x): return P.nn.functional.pad(x, [1, 2, 3, 0, 1, 1])
def pad_1d(P, x): return P.nn.functional.pad(x, [1, 2], mode="reflect")
def pad_1d_nlc(P, x): return P.nn.functional.pad(x, [2, 1], mode="replicate", data_format="NLC")
def pad_5d(P, x): return P.nn.functional.pad(x, [1, 0, 1, 1, 0, 2], mode="replicate")
def affine_grid(P, t): return P.nn.functional.affine_grid(t, [2, 3, 4, 5])
def affine_grid_edges(P, t): return P.nn.functional.affine_grid(t, [2, 3, 4, 5], align_corners=False)
# Paddle 3.3.1 builds grid_sample in the new IR only: tostatic writes it as Paddle 2.x did
def grid_sample(P, x, g): return P.nn.functional.grid_sample(x, g)
def grid_sample_nearest(P, x, g):
    return P.nn.functional.grid_sample(x, g, mode="nearest", padding_mode="border",
                                       align_corners=False)


GRID = rng.uniform(-1.2, 1.2, (2, 4, 3, 2)).astype(np.float32)
THETA = f32(2, 2, 3)
FUNCTIONS = [
    Case("nearest_scale", nearest_scale, [X]),
    Case("nearest_fraction", nearest_fraction, [X], onednn=False),
    Case("nearest_size_nhwc", nearest_size_nhwc, [NHWC], onednn=False),
    Case("bilinear_scale", bilinear_scale, [X]),
    Case("bilinear_size_corners", bilinear_size_corners, [X]),
    Case("bilinear_align_mode", bilinear_align_mode, [X]),
    Case("bilinear_recompute", bilinear_recompute, [X], specs=[[2, 3, 5, 6]]),
    Case("bilinear_named", bilinear_named, [X]),
    Case("bicubic", bicubic, [X], rtol=1e-4, atol=1e-5),
    Case("linear", linear, [X3]),
    Case("nearest_3d", nearest_3d, [X5]),
    # Paddle casts an int32 size to int32 too; tostatic's canonicalize drops that no-op cast
    Case("size_tensor", size_tensor, [X, np.array([7, 3], np.int32)],
         specs=[[None, 3, 5, 6], [2]], ops=["bilinear_interp_v2"]),
    Case("size_tensor_int64", size_tensor, [X, np.array([4, 8], np.int64)],
         specs=[[None, 3, 5, 6], [2]]),
    Case("scale_tensor", scale_tensor, [X, np.array([2.0, 3.0], np.float32)],
         specs=[[None, 3, 5, 6], [2]]),
    Case("area", area, [X]),
    Case("upsample", upsample, [X]),
    Case("pad_constant", pad_constant, [X]),
    Case("pad_value_named", pad_value_named, [X]),
    Case("pad_reflect", pad_reflect, [X]),
    Case("pad_replicate_nhwc", pad_replicate_nhwc, [NHWC]),
    Case("pad_circular", pad_circular, [X]),
    Case("pad_crop", pad_crop, [X]),
    # paddle.inference's oneDNN `pad` corrupts the heap (malloc assertion, or a hang) on
    # Paddle's own file of these: run with oneDNN off
    Case("pad_all_dims", pad_all_dims, [X], onednn=False),
    Case("pad_torch_order", pad_torch_order, [X], onednn=False),
    Case("pad_1d", pad_1d, [X3]),
    Case("pad_1d_nlc", pad_1d_nlc, [X3]),
    Case("pad_5d", pad_5d, [X5]),
    Case("affine_grid", affine_grid, [THETA], specs=[[2, 2, 3]],
         dims_not_compared=("affine_grid_0.tmp_0",)),
    Case("affine_grid_edges", affine_grid_edges, [THETA], specs=[[2, 2, 3]],
         dims_not_compared=("affine_grid_0.tmp_0",)),
    Case("grid_sample", grid_sample, [X, GRID], paddle_writes=False, ops=["grid_sampler"]),
    Case("grid_sample_nearest", grid_sample_nearest, [X, GRID], paddle_writes=False,
         ops=["grid_sampler"]),
]


@pytest.mark.interop
@pytest.mark.parametrize("case", FUNCTIONS, ids=ids(FUNCTIONS))
def test_function_eager_and_exported_as_paddle(real_paddle, tmp_path, case):
    want = check_eager(real_paddle, case)
    check_export(real_paddle, tmp_path, case, want)


# --------------------------------------------------------------------------- layers

LAYERS = [  # (id, constructor given a `nn` module, input[, oneDNN on in paddle.inference])
    ("upsample", lambda nn: nn.Upsample(scale_factor=2), X),
    ("upsample_bilinear_size", lambda nn: nn.Upsample(size=[7, 4], mode="bilinear",
                                                      align_corners=True), X),
    ("upsampling_nearest2d", lambda nn: nn.UpsamplingNearest2D(scale_factor=2), X),
    ("upsampling_nearest2d_size", lambda nn: nn.UpsamplingNearest2D(size=10), X, False),
    ("upsampling_bilinear2d", lambda nn: nn.UpsamplingBilinear2D(size=[6, 6]), X),
    ("upsampling_bilinear2d_nhwc", lambda nn: nn.UpsamplingBilinear2D(
        scale_factor=[2, 1.5], data_format="NHWC"), NHWC),
    ("pad2d", lambda nn: nn.Pad2D(1, mode="reflect"), X),
    ("pad2d_value", lambda nn: nn.Pad2D([1, 0, 2, 1], value=0.5, name="pad"), X),
    ("pad2d_nhwc", lambda nn: nn.Pad2D([1, 2, 0, 1], mode="circular", data_format="NHWC"),
     NHWC),
    ("pad1d", lambda nn: nn.Pad1D(2, mode="replicate"), X3),
    ("pad3d", lambda nn: nn.Pad3D([1, 0, 0, 1, 1, 1]), X5),
    ("flatten", lambda nn: nn.Flatten(), X),
    ("flatten_range", lambda nn: nn.Flatten(0, 2), X),
]


@pytest.mark.interop
@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_matches_paddle(real_paddle, tmp_path, case):
    name, make, x = case[:3]
    with real_paddle.utils.unique_name.guard():
        theirs = make(real_paddle.nn)
    with tostatic.utils.unique_name.guard():
        ours = make(tostatic.nn)
    assert ours.full_name() == theirs.full_name()
    want = [theirs(real_paddle.to_tensor(x)).numpy()]
    np.testing.assert_allclose(ours(tostatic.to_tensor(x)).numpy(), want[0], rtol=1e-5,
                               atol=1e-6)
    assert repr(ours) == repr(theirs)  # after a call: Upsample fills in its data_format
    assert not ours.state_dict() and not theirs.state_dict()
    check_export(real_paddle, tmp_path, Case(name, None, [x], onednn=case[3:] != (False,)), want,
                 make=lambda P: make(P.nn))


def test_arguments_paddle_refuses_or_tostatic_cannot_express():
    F = tostatic.nn.functional
    x = tostatic.to_tensor(X)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="Only one of size or scale_factor"):
        F.interpolate(x, size=[4, 4], scale_factor=2)
    with pytest.raises(ValueError, match="'bilinear' and 'bicubic' only support 4-D"):
        F.interpolate(tostatic.to_tensor(X3), size=[4], mode="bilinear")
    with pytest.raises(ValueError, match="rank.x. - 2 == len.size."):
        F.interpolate(x, size=[4])
    with pytest.raises(ValueError, match="only `NCHW` or `NHWC` supported"):
        F.interpolate(x, size=[4, 4], data_format="NCW")
    with pytest.raises(UnsupportedError, match="antialias"):
        F.interpolate(x, size=[4, 4], mode="bilinear", antialias=True)
    with pytest.raises(ValueError, match="mode should be one of constant"):
        F.pad(x, [1, 1, 1, 1], mode="edge")
    with pytest.raises(UnsupportedError, match="pad given as a Tensor"):
        F.pad(x, tostatic.to_tensor([1, 1, 1, 1]))
    with pytest.raises(ValueError, match="padding mode of grid sample"):
        F.grid_sample(x, tostatic.to_tensor(GRID), padding_mode="wrap")
