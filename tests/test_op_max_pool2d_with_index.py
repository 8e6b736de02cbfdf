"""pd.max_pool2d_with_index (Paddle's max_pool2d_with_index): values and argmax indices
against Paddle's kernel, ties, NaN and -inf included; its shape rule with dynamic sizes."""
from __future__ import annotations

import numpy as np
import pytest

from tostatic.ir import dtypes
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract
from tostatic.ops.pooling import MaxPool2DWithIndex

rng = np.random.default_rng(3)
CASES = [  # (x shape, attrs)
    ((2, 3, 11, 9), dict(ksize=(3, 3), strides=(2, 2), paddings=(1, 1))),
    ((2, 3, 11, 9), dict(ksize=(3, 2), strides=(2, 3), paddings=(1, 0), ceil_mode=True)),
    ((1, 2, 5, 7), dict(ksize=(2, 2), strides=(3, 3), paddings=(1, 1), ceil_mode=True)),
    ((2, 3, 11, 9), dict(ksize=(4, 5), adaptive=True)),
    ((2, 3, 11, 9), dict(ksize=(7, 3), adaptive=True)),  # overlapping uneven windows
    ((1, 1, 2, 2), dict(ksize=(3, 3), adaptive=True)),  # more outputs than inputs
    ((2, 3, 11, 9), dict(ksize=(2, 2), global_pooling=True)),
]


def case_input(shape):
    x = rng.standard_normal(shape).astype(np.float32)
    x.flat[3] = np.nan  # never the maximum (comparisons with nan are false)
    x[0, 0, :2, :2] = -np.inf
    x[-1, -1, 1:4, 1:4] = 0.5  # ties: the first in row-major order wins
    return x


@pytest.mark.interop
@pytest.mark.parametrize("shape,attrs", CASES)
def test_matches_paddles_kernel(real_paddle, shape, attrs):
    from paddle import _C_ops

    x = case_input(shape)
    a = MaxPool2DWithIndex.normalize_attrs(attrs)
    out, mask = MaxPool2DWithIndex.run_eager([x], a)
    want_out, want_mask = _C_ops.max_pool2d_with_index(
        real_paddle.to_tensor(x), list(a["ksize"]), list(a["strides"]), list(a["paddings"]),
        a["global_pooling"], a["adaptive"], a["ceil_mode"])
    np.testing.assert_array_equal(out, want_out.numpy())
    np.testing.assert_array_equal(mask, want_mask.numpy())
    assert out.dtype == np.float32 and mask.dtype == np.int32
    inferred = MaxPool2DWithIndex.infer_results(
        [Abstract((-1,) + shape[1:], dtypes.float32)], a)
    assert [r.shape for r in inferred] == [(-1,) + out.shape[1:]] * 2
    assert [r.dtype for r in inferred] == [dtypes.float32, dtypes.int32]


def test_shape_rule_keeps_dynamic_sizes_and_wants_symmetric_paddings():
    x = Abstract((-1, 3, -1, -1), dtypes.float32)
    for attrs, want in [(dict(ksize=(2, 2), strides=(2, 2)), (-1, 3, -1, -1)),
                        (dict(ksize=(4, 5), adaptive=True), (-1, 3, 4, 5)),
                        (dict(ksize=(3, 3), global_pooling=True), (-1, 3, 1, 1))]:
        out, mask = MaxPool2DWithIndex.infer_results(
            [x], MaxPool2DWithIndex.normalize_attrs(attrs))
        assert out.shape == mask.shape == want
    with pytest.raises(ShapeError, match="paddings needs 2 values"):
        MaxPool2DWithIndex.infer_results(
            [x], MaxPool2DWithIndex.normalize_attrs(dict(ksize=(2, 2), paddings=(1, 0, 1, 0))))
    with pytest.raises(ShapeError, match="must be 4-D"):
        MaxPool2DWithIndex.infer_results([Abstract((2, 3, 4), dtypes.float32)],
                                         MaxPool2DWithIndex.normalize_attrs(dict(ksize=(2, 2))))
