"""Every op's VJP against central differences in float64, on small generated cases.

The table below has a case for every op that defines `vjp`; `test_every_op_has_a_vjp_or_says_why`
fails for an op with neither a rule nor `NONDIFF = True` (outside the listed gaps), and
`test_every_vjp_is_checked` for a rule without a case here.
"""
from __future__ import annotations

import numpy as np
import pytest

import tostatic as paddle
from tostatic.frontend.tensor.dispatch import apply
from tostatic.ir.opdef import REGISTRY
from tostatic.ops.core import array_to_dense

RNG = np.random.default_rng(0)

# differentiable ops without a rule yet (the report lists them): control flow
NO_VJP_YET = {"pd.if", "pd.while"}


def F(*shape, lo=-1.0, hi=1.0):
    return RNG.uniform(lo, hi, shape)


def P(*shape):
    return F(*shape, lo=0.5, hi=2.0)


def I(values, dtype="int64"):
    return np.array(values, dtype=dtype)


def C(name, inputs, h=1e-6, tol=1e-5, no_grad=(), **attrs):
    """A case; `no_grad`: float inputs the op gives no gradient (soft labels, as Paddle)."""
    return pytest.param(name, inputs, attrs, h, tol, no_grad, id=f"{name}-{len(CASES)}")


# results that carry no gradient, as in Paddle (the statistics normalisations also return)
STATS_ONLY = {"pd.batch_norm", "pd.instance_norm", "pd.group_norm", "pd.layer_norm",
              "pd.layer_norm_scale_only", "pd.layer_norm_bias_only", "pd.layer_norm_plain"}


CASES: list = []
_add = CASES.append
for name in ("pd.add", "pd.subtract", "pd.multiply", "pd.maximum", "pd.minimum"):
    _add(C(name, [F(2, 3, 4), F(3, 1)]))
_add(C("pd.add", [F(2, 3, 4), F(3)], axis=1))
_add(C("pd.multiply", [F(2, 3, 4), F(3, 4)], axis=1))
_add(C("pd.divide", [F(2, 3), P(3)]))
_add(C("pd.pow", [P(2, 3), F(2, 3)]))
_add(C("pd.remainder", [P(2, 3) * 3, P(2, 3)]))
for name, x in [("pd.relu", F(3, 4)), ("pd.sigmoid", F(3, 4)), ("pd.tanh", F(3, 4)),
                ("pd.exp", F(3, 4)), ("pd.sqrt", P(3, 4)), ("pd.abs", F(3, 4)),
                ("pd.neg", F(3, 4)), ("pd.relu6", F(3, 4, lo=-2, hi=8)),
                ("pd.hardswish", F(3, 4, lo=-5, hi=5)), ("pd.swish", F(3, 4)),
                ("pd.silu", F(3, 4)), ("pd.erf", F(3, 4)), ("pd.rsqrt", P(3, 4)),
                ("pd.square", F(3, 4)), ("pd.log", P(3, 4))]:
    _add(C(name, [x]))
_add(C("pd.scale", [F(3, 4)], scale=2.5, bias=1.0))
_add(C("pd.gelu", [F(3, 4, lo=-3, hi=3)]))
_add(C("pd.gelu", [F(3, 4, lo=-3, hi=3)], approximate=True))
_add(C("pd.hardsigmoid", [F(3, 4, lo=-4, hi=4)], slope=0.2, offset=0.5))
_add(C("pd.leaky_relu", [F(3, 4)], alpha=0.1))
_add(C("pd.elu", [F(3, 4)], alpha=0.7))
_add(C("pd.prelu", [F(2, 3, 4), F(1)], mode="all"))
_add(C("pd.prelu", [F(2, 3, 4), F(3)], mode="channel"))
_add(C("pd.prelu", [F(2, 3, 4), F(3, 4)], mode="element"))
_add(C("pd.clip", [F(3, 4)], min=-0.5, max=0.5))
_add(C("pd.softmax", [F(2, 3, 4)], axis=1))
_add(C("pd.log_softmax", [F(2, 3, 4)], axis=-1))
_add(C("pd.sum", [F(2, 3, 4)], axis=(1,)))
_add(C("pd.mean", [F(2, 3, 4)], axis=(0, 2), keepdim=True))
_add(C("pd.max", [F(2, 3, 4)], axis=(1,)))
_add(C("pd.min", [F(2, 3, 4)], reduce_all=True))
_add(C("pd.prod", [P(2, 3, 4)], axis=(1,)))
_add(C("pd.cumsum", [F(2, 3, 4)], axis=1))
_add(C("pd.cumsum", [F(2, 3)], axis=0, flatten=True, exclusive=True, reverse=True))
_add(C("pd.matmul", [F(2, 3, 4), F(4, 5)]))
_add(C("pd.matmul", [F(4), F(2, 4, 3)]))
_add(C("pd.matmul", [F(2, 4, 3), F(4)], transpose_x=True))
_add(C("pd.matmul", [F(3, 4), F(2, 5, 4)], transpose_y=True))
_add(C("pd.matmul", [F(4, 3), F(5, 4)], transpose_x=True, transpose_y=True))
_add(C("pd.flatten_matmul", [F(2, 3, 4), F(12, 5)], x_num_col_dims=1, y_num_col_dims=1))
_add(C("pd.bmm", [F(2, 3, 4), F(2, 4, 5)]))
_add(C("pd.scaled_matmul", [F(2, 3, 4), F(2, 5, 4)], transpose_y=True, alpha=0.5))
_add(C("pd.tril_triu", [F(2, 4, 4)], diagonal=1, lower=True))
_add(C("pd.reshape", [F(2, 3, 4)], shape=(4, 0, 2)))
_add(C("pd.reshape_from_shape_tensor", [F(2, 3, 4), I([6, 4])]))
_add(C("pd.transpose", [F(2, 3, 4)], perm=(2, 0, 1)))
_add(C("pd.cast", [F(2, 3)], h=1e-2, tol=1e-4, dtype=paddle.float32))
_add(C("pd.assign", [F(2, 3)]))
_add(C("pd.flatten", [F(2, 3, 4, 2)], start_axis=1, stop_axis=2))
_add(C("pd.squeeze", [F(2, 1, 3)], axes=(1,)))
_add(C("pd.unsqueeze", [F(2, 3)], axes=(0, 2)))
_add(C("pd.expand", [F(2, 1)], shape=(4, 2, 3)))
_add(C("pd.expand_as", [F(1, 3), F(2, 3)]))
_add(C("pd.expand_as_shape", [F(1, 3)], target_shape=(2, 2, 3)))
_add(C("pd.tile", [F(2, 3)], repeat_times=(2, 1, 3)))
_add(C("pd.flatten_to_2d", [F(2, 3, 4)], axis=2))
_add(C("pd.expand_times", [F(2, 3)], expand_times=(2, 2)))
_add(C("pd.concat", [F(2, 1), F(2, 3), F(2, 2)], axis=1))
_add(C("pd.split", [F(2, 6)], num=3, axis=1))
_add(C("pd.split", [F(6, 2)], sections=(1, 2, 3), axis=0))
_add(C("pd.stack", [F(2, 3), F(2, 3)], axis=1))
_add(C("pd.meshgrid", [F(3), F(4)]))
_add(C("pd.slice", [F(3, 4, 2)], axes=(1,), starts=(1,), ends=(3,)))
_add(C("pd.slice", [F(3, 4)], axes=(0, 1), starts=(1, -3), ends=(2, 10), decrease_axis=(0,)))
_add(C("pd.gather", [F(3, 4), I([2, 0, 2])], axis=0))
_add(C("pd.gather", [F(3, 4), I([[1], [3]])], axis=1))
_add(C("pd.where", [F(3, 4) > 0, F(3, 4), F(3, 4)]))
_add(C("pd.gather_nd", [F(3, 4, 2), I([[0, 1], [2, 3], [0, 1]])]))
_add(C("pd.index_select", [F(3, 4), I([0, 2, 2])], dim=1))
_add(C("pd.take_along_axis", [F(3, 4), I([[0, 3], [1, 1], [2, 0]])], axis=1))
_add(C("pd.index_add", [F(3, 4), I([0, 2, 0]), F(3, 4)], axis=0))
_add(C("pd.scatter_nd_add", [F(3, 4), I([[0], [2], [0]]), F(3, 4)]))
_add(C("pd.put_along_axis_add", [F(3, 4), I([[0, 3], [1, 1], [2, 0]]), F(3, 2)], axis=1))
_add(C("pd.strided_slice", [F(5, 4)], axes=(0, 1), starts=(0, 3), ends=(5, 0),
       strides=(2, -1)))
_add(C("pd.set_value", [F(4, 5)], axes=(0,), starts=(1,), ends=(3,), steps=(1,),
       values=array_to_dense(np.array([5.0])), shape=(1,)))
_add(C("pd.set_value_tensor", [F(4, 5), F(1, 5)], axes=(0,), starts=(1,), ends=(4,),
       steps=(2,)))
_add(C("pd.add_n", [F(2, 3), F(2, 3), F(2, 3)]))
_add(C("pd.increment", [F(1)], step=2.0))
# sorting, rounding, norms, rearranging (the PIR reader's ops)
for name in ("pd.floor", "pd.ceil", "pd.round"):
    _add(C(name, [F(3, 4) * 3]))
_add(C("pd.log1p", [P(3, 4)]))
_add(C("pd.flip", [F(2, 3, 4)], axis=(0, 2)))
_add(C("pd.pixel_shuffle", [F(1, 8, 2, 3)], upscale_factor=2))
_add(C("pd.pixel_shuffle", [F(1, 2, 3, 8)], upscale_factor=2, data_format="NHWC"))
_add(C("pd.argsort", [F(3, 5)], axis=1))
_add(C("pd.argsort", [F(4, 3)], axis=0, descending=True))
for p in (2.0, 3.0, 1.5):
    _add(C("pd.p_norm", [F(3, 4)], porder=p, axis=1))
_add(C("pd.p_norm", [F(2, 3, 2)], porder=2.0, asvector=True, keepdim=True))
_add(C("pd.p_norm", [F(3, 4)], porder=float("inf"), axis=0))
_add(C("pd.p_norm", [F(3, 4)], porder=float("-inf"), axis=1))
# slice / clip with bounds read when they run (runtime_bounds.py), one case a form
for starts, ends in [("list", "attr"), ("tensor", "attr"), ("attr", "list"), ("attr", "tensor"),
                     ("list", "list"), ("list", "tensor"), ("tensor", "list"),
                     ("tensor", "tensor")]:
    bounds = {"list": {"starts": [I([1]), I([-3])], "ends": [I([3]), I([4])]},
              "tensor": {"starts": [I([1, -3])], "ends": [I([3, 4])]}}
    ins = [F(4, 5)] + [b for side in ("starts", "ends")
                       for b in (bounds[(starts, ends)[side == "ends"]][side]
                                 if (starts, ends)[side == "ends"] != "attr" else [])]
    tag = "_".join(f"{side}_{form}" for side, form in (("starts", starts), ("ends", ends))
                   if form != "attr")
    attrs = {"axes": (0, 1)}
    attrs.update({"starts": (1, -3)} if starts == "attr" else {})
    attrs.update({"ends": (3, 4)} if ends == "attr" else {})
    _add(C(f"pd.slice_{tag}", ins, **attrs))
# the bounds tensors get no gradient (as Paddle's clip_grad); the attributes they override
# are ignored
_add(C("pd.clip_tensor_min", [F(3, 4), np.array([-0.3])], no_grad=(1,), min=-9.0, max=0.5))
_add(C("pd.clip_tensor_max", [F(3, 4), np.array([0.2])], no_grad=(1,), min=-0.5, max=9.0))
_add(C("pd.clip_tensor_min_max", [F(3, 4), np.array([-0.4]), np.array([0.4])],
       no_grad=(1, 2), min=0.0, max=0.0))
# advanced indexing: bounds and indices from tensors (Paddle's variable_index.py forms)
_add(C("pd.slice_starts_list_ends_list", [F(4, 3), I([2]), I([3])], axes=(0,),
       starts=(-1,), ends=(-1,), decrease_axis=(0,), infer_flags=(-1,)))
_add(C("pd.slice_starts_list_ends_list", [F(3, 5), I([-4]), I([-1])], axes=(1,),
       starts=(-1,), ends=(-1,), infer_flags=(-1,)))
_add(C("pd.slice_starts_list", [F(3, 5), I([1])], axes=(1,), starts=(-1,),
       ends=(2147483647,), infer_flags=(-1,)))
_add(C("pd.slice_ends_list", [F(5, 2), I([-2])], axes=(0,), starts=(1,), ends=(-1,),
       infer_flags=(-1,)))
_add(C("pd.masked_select", [F(3, 4), np.array([[True, False, True, True]] * 3)]))
_add(C("pd.masked_select", [F(3, 1), RNG.uniform(size=(3, 4)) > 0.4]))
_add(C("pd.broadcast_tensors", [F(3, 1), F(1, 4), F(4)]))
_add(C("pd.index_put", [F(4, 3), I([0, 2]), I([1, 1]), F(2)]))
_add(C("pd.index_put", [F(4, 3), I([3, 1]), F(1, 3)]))
_add(C("pd.index_put", [F(2, 3), np.array([[True, False, True], [False, True, True]]), F(1)]))
_add(C("pd.index_put", [F(4, 3), I([0, 0, 2]), F(3, 3)], accumulate=True))
_add(C("pd.set_value_at", [F(4, 3), I([1]), I([2])], axes=(0,), decrease_axes=(0,),
       values=array_to_dense(np.array([5.0])), shape=(1,)))
_add(C("pd.set_value_tensor_at", [F(4, 3), F(3), I([-2]), I([-1])], axes=(0,),
       decrease_axes=(0,)))
for mode in ("constant", "reflect", "replicate", "circular"):
    _add(C("pd.pad3d", [F(1, 2, 2, 3, 4)], paddings=(1, 2, 0, 1, 1, 0), mode=mode, value=0.5))
_add(C("pd.pad", [F(2, 3)], paddings=(1, 0, 2, 1), pad_value=0.5))
_add(C("pd.dropout", [F(4, 5)], dropout_prob=0.3, fix_seed=True, seed=3,
       dropout_implementation="upscale_in_train"))
_add(C("pd.dropout", [F(4, 5)], dropout_prob=0.3, fix_seed=True, seed=3))
_add(C("pd.dropout", [F(4, 5)], dropout_prob=0.3, is_test=True))
_add(C("pd.softmax_with_cross_entropy", [F(4, 5), I([[1], [4], [-100], [0]])]))
_add(C("pd.softmax_with_cross_entropy", [F(2, 3, 4), I([[[0, 2, 1, 1]], [[2, 2, 0, 1]]])],
       axis=1))
_add(C("pd.softmax_with_cross_entropy", [F(3, 4), P(3, 4)], no_grad=(1,), soft_label=True))
_add(C("pd.lookup_table_v2", [I([[1, 2, 0], [2, 2, 1]]), F(4, 3)], padding_idx=1))
_add(C("pd.lookup_table", [I([[1], [3], [1]]), F(4, 3)]))
_add(C("pd.topk", [F(3, 5)], k=2, axis=1))
_add(C("pd.topk_last_axis", [F(3, 5)], k=2))
_add(C("pd.einsum", [F(2, 3), F(3, 4)], equation="ij,jk->ik"))
_add(C("pd.einsum", [F(2, 3, 4), F(2, 4, 1)], equation="bij,bjk->bik"))
_add(C("pd.einsum", [F(2, 3), F(4)], equation="ij,k->j"))
_add(C("pd.layer_norm", [F(2, 3, 4), F(12), F(12)], begin_norm_axis=1))
_add(C("pd.layer_norm_scale_only", [F(2, 3, 4), F(4)], begin_norm_axis=2))
_add(C("pd.layer_norm_bias_only", [F(2, 3, 4), F(4)], begin_norm_axis=2))
_add(C("pd.layer_norm_plain", [F(2, 3, 4)], begin_norm_axis=2))
_add(C("pd.batch_norm", [F(2, 3, 2, 2), F(3), F(3), F(3), P(3)], no_grad=(3, 4)))
_add(C("pd.batch_norm", [F(2, 2, 2, 3), F(3), F(3), F(3), P(3)], no_grad=(3, 4), data_layout="NHWC"))
_add(C("pd.batch_norm", [F(2, 3, 2, 2), F(3), F(3), F(3), P(3)], no_grad=(3, 4), is_test=True))
_add(C("pd.instance_norm", [F(2, 3, 2, 3), F(3), F(3)]))
_add(C("pd.group_norm", [F(2, 4, 2, 2), F(4), F(4)], groups=2))
_add(C("pd.group_norm", [F(2, 2, 2, 4), F(4), F(4)], groups=2, data_layout="NHWC"))
_add(C("pd.affine_channel", [F(2, 3, 2, 2), F(3), F(3)], data_layout="NCHW"))
_add(C("pd.conv2d", [F(2, 4, 5, 5), F(6, 2, 3, 3)], strides=(2, 2), paddings=(1, 1),
       groups=2))
_add(C("pd.conv2d", [F(1, 2, 5, 6), F(3, 2, 2, 3)], paddings=(0, 1, 1, 2), dilations=(2, 1)))
_add(C("pd.conv2d", [F(1, 5, 6, 2), F(3, 2, 3, 3)], strides=(2, 2), padding_algorithm="SAME",
       data_format="NHWC"))
_add(C("pd.depthwise_conv2d", [F(1, 3, 5, 5), F(6, 1, 3, 3)], paddings=(1, 1), groups=3))
_add(C("pd.conv2d_transpose", [F(1, 4, 3, 3), F(4, 3, 3, 3)], strides=(2, 2),
       paddings=(1, 1), output_padding=(1, 1)))
_add(C("pd.depthwise_conv2d_transpose", [F(1, 3, 3, 3), F(3, 1, 3, 3)], paddings=(1, 1),
       groups=3))
_add(C("pd.pool2d", [F(2, 2, 5, 6)], pooling_type="max", ksize=(3, 3), strides=(2, 2),
       paddings=(1, 1)))
_add(C("pd.pool2d", [F(2, 2, 5, 6)], pooling_type="avg", ksize=(3, 2), strides=(2, 2),
       paddings=(1, 1), exclusive=False, ceil_mode=True))
_add(C("pd.pool2d", [F(2, 2, 5, 6)], pooling_type="avg", ksize=(2, 4), adaptive=True))
_add(C("pd.pool2d", [F(2, 5, 6, 2)], pooling_type="max", ksize=(1, 1), global_pooling=True,
       data_format="NHWC"))
for method, extra in (("nearest", {}), ("bilinear", {}), ("bilinear", {"align_corners": True}),
                      ("bilinear", {"align_mode": 1}), ("bicubic", {})):
    _add(C(f"pd.{method}_interp", [F(1, 2, 3, 4)], out_h=5, out_w=7, interp_method=method,
           **extra))
_add(C("pd.nearest_interp", [F(1, 3, 4, 2)], out_h=8, out_w=6, interp_method="nearest",
       data_layout="NHWC"))
_add(C("pd.bilinear_interp", [F(1, 2, 4, 4)], scale=(1.5, 0.5), interp_method="bilinear"))
_add(C("pd.linear_interp", [F(1, 2, 5)], out_w=8, interp_method="linear"))
_add(C("pd.trilinear_interp", [F(1, 1, 2, 3, 2)], out_d=3, out_h=4, out_w=3,
       interp_method="trilinear"))
_add(C("pd.nearest_interp_sizes", [F(1, 2, 3, 3), I([5], "int32"), I([4], "int32")],
       interp_method="nearest"))
_add(C("pd.bilinear_interp_scale", [F(1, 2, 3, 3)], scale=(2.0, 2.0),
       interp_method="bilinear"))
_add(C("pd.nearest_interp_scale", [F(1, 2, 3, 3)], scale=(2.0, 1.5), interp_method="nearest"))
_add(C("pd.linear_interp_sizes", [F(1, 2, 5), I([3], "int32")], interp_method="linear"))
_add(C("pd.trilinear_interp_sizes", [F(1, 1, 2, 2, 2), I([3], "int32"), I([3], "int32"),
                                     I([2], "int32")], interp_method="trilinear"))
_add(C("pd.trilinear_interp_scale", [F(1, 1, 2, 2, 2)], scale=(1.5, 1.5, 2.0),
       interp_method="trilinear"))
_add(C("pd.bicubic_interp_sizes", [F(1, 1, 3, 3), I([4], "int32"), I([5], "int32")],
       interp_method="bicubic"))
_add(C("pd.bicubic_interp_scale", [F(1, 1, 3, 3)], scale=(1.5, 1.5), interp_method="bicubic"))
_add(C("pd.bilinear_interp_sizes", [F(1, 2, 3, 3), I([4], "int32"), I([2], "int32")],
       interp_method="bilinear"))
_add(C("pd.linear_interp_scale", [F(1, 2, 4)], scale=(1.5,), interp_method="linear"))
_add(C("pd.nearest_interp_v1", [F(1, 2, 3, 3)], scale=2.0, interp_method="nearest"))
_add(C("pd.bilinear_interp_v1", [F(1, 2, 3, 3)], out_h=4, out_w=5, interp_method="bilinear"))
_add(C("pd.affine_grid", [F(2, 2, 3)], output_shape=(2, 1, 3, 4), align_corners=False))
_add(C("pd.affine_grid", [F(1, 3, 4)], output_shape=(1, 1, 2, 3, 2)))
for mode, padding, corners in (("bilinear", "zeros", True), ("bilinear", "border", False),
                               ("bilinear", "reflection", False),
                               ("bilinear", "reflection", True), ("nearest", "zeros", False)):
    _add(C("pd.grid_sample", [F(1, 2, 3, 4), F(1, 2, 3, 2, lo=-1.3, hi=1.3)], mode=mode,
           padding_mode=padding, align_corners=corners))
_add(C("pd.grid_sample", [F(1, 1, 2, 3, 2), F(1, 2, 1, 2, 3)], mode="bilinear"))


def _rnn_weights(mode, inp, hidden, layers, dirs):
    gates = {"LSTM": 4, "GRU": 3}.get(mode, 1) * hidden
    ws = [F(gates, inp if k < dirs else dirs * hidden) if j == 0 else F(gates, hidden)
          for k in range(layers * dirs) for j in (0, 1)]
    return ws + [F(gates) for _ in range(2 * layers * dirs)]


_RNN = dict(hidden_size=3, input_size=2, num_layers=2, is_bidirec=True)
_add(C("pd.lstm", [F(4, 2, 2), F(4, 2, 3), F(4, 2, 3), *_rnn_weights("LSTM", 2, 3, 2, 2)],
       **_RNN))
_add(C("pd.lstm_with_lengths", [F(4, 2, 2), F(2, 2, 3), F(2, 2, 3),
                                *_rnn_weights("LSTM", 2, 3, 1, 2), I([4, 2])],
       **{**_RNN, "num_layers": 1}))
_add(C("pd.rnn", [F(3, 2, 2), F(4, 2, 3), *_rnn_weights("GRU", 2, 3, 2, 2)], mode="GRU",
       **_RNN))
_add(C("pd.rnn", [F(3, 2, 2), F(2, 2, 3), *_rnn_weights("RNN_TANH", 2, 3, 2, 1)],
       mode="RNN_TANH", **{**_RNN, "is_bidirec": False}))
_add(C("pd.rnn", [F(3, 2, 2), F(2, 2, 3), *_rnn_weights("RNN_RELU", 2, 3, 2, 1)],
       mode="RNN_RELU", dropout_prob=0.5, seed=5, **{**_RNN, "is_bidirec": False}))
_add(C("pd.rnn_with_lengths", [F(4, 3, 2), F(2, 3, 3), *_rnn_weights("GRU", 2, 3, 1, 2),
                               I([4, 1, 3])], mode="GRU", **{**_RNN, "num_layers": 1}))
_add(C("pd.select_input", [I([1], "int32"), F(2, 3), F(2, 3)]))
_add(C("pd.select_input", [I([0], "int32"), F(2, 3), F(2, 3)]))
_add(C("pd.max_pool2d_with_index", [F(2, 2, 5, 6)], ksize=(2, 2), strides=(2, 2)))


def _run(name, arrays, attrs):
    return REGISTRY[name].run_eager(arrays, REGISTRY[name].normalize_attrs(dict(attrs)))


@pytest.mark.parametrize("name,inputs,attrs,h,tol,no_grad", CASES)
def test_vjp_matches_central_differences(name, inputs, attrs, h, tol, no_grad):
    op = REGISTRY[name]
    tensors = [paddle.to_tensor(a, stop_gradient=a.dtype.kind != "f") for a in inputs]
    outs = apply(op, *tensors, **attrs)
    outs = outs if isinstance(outs, list) else [outs]
    arrays0 = _run(name, inputs, attrs)
    picked = [i for i, a in enumerate(arrays0) if a.dtype.kind == "f"
              and (i == 0 or name not in STATS_ONLY)]
    weights = [RNG.standard_normal(arrays0[i].shape) for i in picked]
    wrt = [i for i, a in enumerate(inputs) if a.dtype.kind == "f" and i not in no_grad]
    grads = paddle.grad([outs[i] for i in picked], [tensors[i] for i in wrt],
                        grad_outputs=[paddle.to_tensor(w.astype(outs[i].numpy().dtype))
                                      for i, w in zip(picked, weights)], allow_unused=True)

    def loss(arrays):
        res = _run(name, arrays, attrs)
        return sum(float((res[i].astype(np.float64) * w).sum()) for i, w in zip(picked, weights))

    for k, g in zip(wrt, grads):
        numeric = np.zeros(inputs[k].shape)
        for idx in np.ndindex(*inputs[k].shape):
            plus = [a.copy() for a in inputs]
            minus = [a.copy() for a in inputs]
            plus[k][idx] += h
            minus[k][idx] -= h
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * h)
        analytic = np.zeros(inputs[k].shape) if g is None else g.numpy()
        np.testing.assert_allclose(analytic, numeric, rtol=tol, atol=tol,
                                   err_msg=f"{name}: gradient of input {k}")


def test_every_op_has_a_vjp_or_says_why():
    missing = sorted(n for n, c in REGISTRY.items()
                     if not c.NONDIFF and getattr(c, "vjp", None) is None and n not in NO_VJP_YET)
    assert not missing, f"ops with neither a vjp nor NONDIFF = True: {missing}"
    stale = sorted(n for n in NO_VJP_YET if getattr(REGISTRY[n], "vjp", None) is not None)
    assert not stale, f"ops listed as having no vjp yet that have one now: {stale}"


def test_every_vjp_is_checked():
    checked = {p.values[0] for p in CASES}
    unchecked = sorted(n for n, c in REGISTRY.items()
                       if getattr(c, "vjp", None) is not None and not c.NONDIFF
                       and n not in checked)
    assert not unchecked, f"ops with a vjp but no gradient check case: {unchecked}"
