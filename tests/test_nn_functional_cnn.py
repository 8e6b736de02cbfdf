"""The CNN functions of paddle.nn.functional (conv2d, conv2d_transpose, the 2-D poolings,
batch_norm, instance_norm, group_norm, dropout) against real Paddle 3.3.1 on the same
inputs, with Paddle's argument forms (paddings as int / pairs / four values / 'SAME' /
'VALID', NHWC, ceil_mode, exclusive, return_mask, ...) and Paddle's errors."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic
from tostatic.ir.errors import UnsupportedError

rng = np.random.default_rng(11)


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def close(got, want, rtol=1e-5, atol=1e-5):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype,
                                                                 want.shape, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def outputs(y):
    return [t.numpy() for t in y] if isinstance(y, (tuple, list)) else [y.numpy()]


X = rand(2, 4, 9, 9)
W = rand(6, 2, 3, 3)
FUNCTIONAL = [  # (id, function name, positional args (arrays), keyword args)
    ("conv2d_int_padding", "conv2d", [X, W], dict(padding=1, groups=2)),
    ("conv2d_pairs", "conv2d", [X, W, rand(6)],
     dict(padding=[[0, 0], [0, 0], [1, 2], [0, 1]], stride=[2, 1], groups=2)),
    ("conv2d_same_dilated", "conv2d", [X, rand(6, 4, 3, 3)],
     dict(padding="same", dilation=2, stride=2)),
    ("conv2d_valid_nhwc", "conv2d", [rand(2, 9, 9, 4), rand(6, 4, 2, 2), rand(6)],
     dict(padding="VALID", data_format="NHWC")),
    ("conv2d_depthwise", "conv2d", [X, rand(8, 1, 3, 3), rand(8)], dict(groups=4, padding=1)),
    ("conv2d_transpose", "conv2d_transpose", [X, rand(4, 3, 3, 3), rand(3)],
     dict(stride=2, padding=1, output_size=[18, 17])),
    ("conv2d_transpose_groups", "conv2d_transpose", [X, rand(4, 2, 3, 2)],
     dict(stride=[2, 1], padding=[1, 0, 0, 1], output_padding=[1, 0], groups=2)),
    ("conv2d_transpose_nhwc", "conv2d_transpose", [rand(2, 9, 9, 4), rand(4, 3, 3, 3), rand(3)],
     dict(padding="SAME", stride=2, data_format="NHWC")),
    ("max_pool2d", "max_pool2d", [X], dict(kernel_size=3, stride=2, padding=[1, 0, 2, 1])),
    ("max_pool2d_mask_ceil", "max_pool2d", [X],
     dict(kernel_size=[3, 2], stride=2, padding=1, return_mask=True, ceil_mode=True)),
    ("max_pool2d_mask_same", "max_pool2d", [X],
     dict(kernel_size=3, stride=2, padding="SAME", return_mask=True)),
    ("avg_pool2d_exclusive", "avg_pool2d", [X], dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d_ceil_inclusive", "avg_pool2d", [X],
     dict(kernel_size=2, padding=[1, 1], ceil_mode=True, exclusive=False)),
    ("avg_pool2d_nhwc_valid", "avg_pool2d", [rand(2, 9, 9, 4)],
     dict(kernel_size=2, stride=1, padding="VALID", data_format="NHWC")),
    ("avg_pool2d_divisor", "avg_pool2d", [X], dict(kernel_size=3, divisor_override=4)),
    ("adaptive_avg_pool2d", "adaptive_avg_pool2d", [X], dict(output_size=[4, 3])),
    ("adaptive_avg_pool2d_nhwc", "adaptive_avg_pool2d", [rand(2, 9, 9, 4)],
     dict(output_size=[None, 2], data_format="NHWC")),
    ("adaptive_max_pool2d", "adaptive_max_pool2d", [X], dict(output_size=5, return_mask=True)),
    ("batch_norm_eval", "batch_norm", [X, rand(4), np.abs(rand(4)) + 0.5, rand(4), rand(4)],
     dict(momentum=0.8)),
    ("batch_norm_nhwc_no_affine", "batch_norm",
     [rand(2, 9, 9, 4), rand(4), np.abs(rand(4)) + 0.5], dict(data_format="NHWC")),
    ("batch_norm_train_global_stats", "batch_norm",
     [X, rand(4), np.abs(rand(4)) + 0.5, rand(4), rand(4)],
     dict(training=True, use_global_stats=True)),
    ("batch_norm_eval_batch_stats", "batch_norm",
     [rand(5, 4, 3), rand(4), np.abs(rand(4)) + 0.5, rand(4), rand(4)],
     dict(use_global_stats=False, data_format="NCL")),
    ("instance_norm", "instance_norm", [X], dict(weight=rand(4), bias=rand(4), eps=1e-3)),
    ("instance_norm_no_affine", "instance_norm", [X], {}),
    ("group_norm", "group_norm", [X, 2], dict(weight=rand(4), bias=rand(4), epsilon=1e-4)),
    ("group_norm_torch_order_nhwc", "group_norm", [rand(2, 5, 4), 2, rand(4), rand(4)],
     dict(data_format="NLC")),
    ("dropout_eval", "dropout", [X], dict(p=0.4, training=False)),
    ("dropout_eval_downscale", "dropout", [X], dict(p=0.4, training=False,
                                                    mode="downscale_in_infer")),
]


def _args(module, args):
    return [module.to_tensor(a) if isinstance(a, np.ndarray) else a for a in args]


def _kwargs(module, kwargs):
    return {k: module.to_tensor(v) if isinstance(v, np.ndarray) else v
            for k, v in kwargs.items()}


@pytest.mark.interop
@pytest.mark.parametrize("case", FUNCTIONAL, ids=[c[0] for c in FUNCTIONAL])
def test_functional_matches_paddle(real_paddle, case):
    _, fname, args, kwargs = case
    ours_args, their_args = _args(tostatic, args), _args(real_paddle, args)
    got = getattr(tostatic.nn.functional, fname)(*ours_args, **_kwargs(tostatic, kwargs))
    want = getattr(real_paddle.nn.functional, fname)(*their_args, **_kwargs(real_paddle, kwargs))
    got, want = outputs(got), outputs(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        close(g, w)
    if fname == "batch_norm":  # running statistics: as Paddle left them
        for o, t in zip(ours_args[1:3], their_args[1:3]):
            close(o.numpy(), t.numpy())


@pytest.mark.interop
def test_functional_batch_norm_training_updates_the_running_tensors(real_paddle):
    x, mean, var = rand(6, 3, 4) * 2 + 1, rand(3), np.abs(rand(3)) + 0.5
    ours = [tostatic.to_tensor(a) for a in (x, mean, var)]
    theirs = [real_paddle.to_tensor(a) for a in (x, mean, var)]
    got = tostatic.nn.functional.batch_norm(*ours, training=True, momentum=0.7)
    want = real_paddle.nn.functional.batch_norm(*theirs, training=True, momentum=0.7)
    close(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)
    close(ours[1].numpy(), theirs[1].numpy())
    close(ours[2].numpy(), theirs[2].numpy())


def test_functional_errors_name_the_argument():
    F = tostatic.nn.functional
    x = tostatic.to_tensor(X)
    with pytest.raises(ValueError, match="Unknown padding: 'FULL'"):
        F.conv2d(x, tostatic.to_tensor(W), padding="full", groups=2)
    with pytest.raises(ValueError, match="divisible by groups"):
        F.conv2d(x, tostatic.to_tensor(W), groups=3)
    with pytest.raises(ValueError, match=r"ceil_mode\) must be False"):
        F.max_pool2d(x, 2, padding="VALID", ceil_mode=True)
    with pytest.raises(ValueError, match="return_mask to true, data_format must be set to NCHW"):
        F.max_pool2d(x, 2, return_mask=True, data_format="NHWC")
    with pytest.raises(Exception, match="paddings needs 2 values"):
        F.max_pool2d(x, 2, padding=[1, 0, 2, 1], return_mask=True)
    with pytest.raises(ValueError, match="mode argument should be"):
        F.dropout(x, 0.5, mode="scale")
    with pytest.raises(ValueError, match="data_format must be one of"):
        F.batch_norm(x, x, x, data_format="CHWN")
    with pytest.raises(UnsupportedError, match="output_size must hold Python ints"):
        F.adaptive_avg_pool2d(x, [2, 2.5])



def test_dropout_along_an_axis_drops_whole_slices():
    F = tostatic.nn.functional
    x = np.abs(rand(8, 200, 3)) + 0.5
    y = F.dropout(tostatic.to_tensor(x), p=0.5, axis=1).numpy()
    kept = (y != 0).all(axis=(0, 2))
    assert ((y == 0).all(axis=(0, 2)) | kept).all()  # a slice is dropped whole or kept whole
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(y[:, kept], 2 * x[:, kept], rtol=1e-6)
    close(F.dropout(tostatic.to_tensor(x), p=0.4, axis=[0, 2], training=False,
                    mode="downscale_in_infer").numpy(), x * np.float32(0.6))
    t = tostatic.to_tensor(x)
    assert F.dropout(t, p=0.0) is t  # as Paddle: p == 0 returns the input itself
