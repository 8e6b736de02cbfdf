"""Normalisations over channels: Paddle's batch_norm, instance_norm, group_norm and
affine_channel.

batch_norm has five results, in Paddle's slot order: Y, MeanOut, VarianceOut, SavedMean,
SavedVariance. MeanOut / VarianceOut are the running statistics after this step; Paddle writes
them in place, into the very variables its Mean / Variance inputs read (`UPDATES` says which
result updates which input, so a Layer can write them back and lowering can reuse the input's
variable name). In evaluation (is_test without trainable_statistics, or use_global_stats) the
running statistics normalise and come back unchanged. In training the batch statistics
normalise, and running = momentum * running + (1 - momentum) * batch, with the biased (divide
by N) batch variance, as Paddle does; SavedMean is the batch mean and SavedVariance the inverse
standard deviation 1/sqrt(var + epsilon) (zeros in evaluation, where Paddle leaves them unset).
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir.attributes import BOOL, FLOAT, INT, STR, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops import autodiff as A
from tostatic.ops.conv import check_choice

LAYOUTS = ("NCHW", "NHWC")


def _channel_axis(ndim: int, layout: str) -> int:
    return ndim - 1 if layout == "NHWC" and ndim > 2 else 1


def _check_vector(op: str, what: str, v: Abstract, c: int, x: Abstract) -> None:
    if v.ndim != 1 or (c >= 0 and v.shape[0] >= 0 and v.shape[0] != c):
        raise ShapeError(f"{op}: {what} must have shape [{c}] (the channels of input "
                         f"{list(x.shape)}), got {list(v.shape)}")
    if v.dtype != x.dtype:
        raise ShapeError(f"{op}: {what} is {v.dtype.name}, input {x.dtype.name}")


def _per_channel(v: np.ndarray, ndim: int, axis: int, dtype: np.dtype) -> np.ndarray:
    """A [C] vector shaped to broadcast along `axis` of an ndim tensor."""
    shape = [1] * ndim
    shape[axis] = -1
    return np.asarray(v, dtype=dtype).reshape(shape)


def _inv_std(var: np.ndarray, epsilon: float) -> np.ndarray:
    return 1.0 / np.sqrt(np.asarray(var, np.float64) + np.float32(epsilon))


def _batch_norm_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """Training: through the batch statistics; eval: the affine map of the running ones."""
    x, scale, bias, mean, variance = inputs
    g = cts[0]
    nd = len(e.shape(x))
    axis = _channel_axis(nd, attrs["data_layout"])
    axes = tuple(i for i in range(nd) if i != axis)
    s = A.per_channel(e, scale, nd, axis)
    if (attrs["is_test"] and not attrs["trainable_statistics"]) or attrs["use_global_stats"]:
        rstd = A.e(e, "pd.rsqrt", A.scale(e, A.per_channel(e, variance, nd, axis), 1.0,
                                           attrs["epsilon"]))
        xhat = A.mul(e, A.sub(e, x, A.per_channel(e, mean, nd, axis)), rstd)
        dx = A.mul(e, g, A.mul(e, s, rstd))
    else:
        xhat, rstd = A.standardized(e, x, axes, attrs["epsilon"])
        dx = A.standardized_back(e, xhat, rstd, A.mul(e, g, s), axes)
    dscale = A.reshape(e, A.sum_axes(e, A.mul(e, g, xhat), axes), e.shape(scale))
    dbias = A.reshape(e, A.sum_axes(e, g, axes), e.shape(bias))
    return [dx, dscale, dbias, None, None]


@pd_op
class BatchNorm(PdOp):
    name = "pd.batch_norm"
    INPUTS = ("x", "scale", "bias", "mean", "variance")
    ATTRS = {"epsilon": attr(FLOAT, 1e-5), "momentum": attr(FLOAT, 0.9),
             "data_layout": attr(STR, "NCHW"), "is_test": attr(BOOL, False),
             "use_global_stats": attr(BOOL, False),
             "trainable_statistics": attr(BOOL, False)}
    NUM_RESULTS = 5
    # result index -> the input it is the new value of (Paddle: same variable, in place)
    UPDATES = {1: "mean", 2: "variance"}
    PADDLE = Legacy("batch_norm",
                    {"X": "x", "Scale": "scale", "Bias": "bias", "Mean": "mean",
                     "Variance": "variance"},
                    {"Y": 0, "MeanOut": 1, "VarianceOut": 2, "SavedMean": 3,
                     "SavedVariance": 4},
                    {"epsilon": From("FLOAT", "epsilon"), "momentum": From("FLOAT", "momentum"),
                     "data_layout": From("STRING", "data_layout"),
                     "is_test": From("BOOLEAN", "is_test"),
                     "use_global_stats": From("BOOLEAN", "use_global_stats"),
                     "trainable_statistics": From("BOOLEAN", "trainable_statistics")},
                    optional_inputs=("MomentumTensor",))
    NAME_HINT = "batch_norm"
    vjp = classmethod(_batch_norm_vjp)

    @staticmethod
    def infer(x: Abstract, scale: Abstract, bias: Abstract, mean: Abstract,
              variance: Abstract, epsilon: float, momentum: float, data_layout: str,
              is_test: bool, use_global_stats: bool,
              trainable_statistics: bool) -> list[Abstract]:
        op = "pd.batch_norm"
        check_choice(op, "data_layout", data_layout, LAYOUTS)
        if not 2 <= x.ndim <= 5:
            raise ShapeError(f"{op}: input must have 2 to 5 dims, got {list(x.shape)}")
        c = x.shape[_channel_axis(x.ndim, data_layout)]
        for what, v in (("scale", scale), ("bias", bias), ("mean", mean),
                        ("variance", variance)):
            _check_vector(op, what, v, c, x)
        stat = Abstract((c,), x.dtype)
        return [x, mean, variance, stat, stat]

    @staticmethod
    def eager(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray,
              variance: np.ndarray, epsilon: float, momentum: float, data_layout: str,
              is_test: bool, use_global_stats: bool,
              trainable_statistics: bool) -> list[np.ndarray]:
        axis = _channel_axis(x.ndim, data_layout)
        c = x.shape[axis]
        if (is_test and not trainable_statistics) or use_global_stats:
            # y = x * a + b with a = scale / sqrt(var + eps), b = bias - mean * a
            a = np.asarray(scale, np.float64) * _inv_std(variance, epsilon)
            b = np.asarray(bias, np.float64) - np.asarray(mean, np.float64) * a
            y = x * _per_channel(a, x.ndim, axis, x.dtype)
            y += _per_channel(b, x.ndim, axis, x.dtype)
            zeros = np.zeros(c, x.dtype)
            return [y, mean, variance, zeros, zeros]
        axes = tuple(i for i in range(x.ndim) if i != axis)
        batch_mean = x.mean(axis=axes, dtype=np.float64)
        batch_var = x.var(axis=axes, dtype=np.float64)
        inv_std = _inv_std(batch_var, epsilon)
        a = np.asarray(scale, np.float64) * inv_std
        b = np.asarray(bias, np.float64) - batch_mean * a
        y = x * _per_channel(a, x.ndim, axis, x.dtype)
        y += _per_channel(b, x.ndim, axis, x.dtype)
        m = np.float64(np.float32(momentum))
        mean_out = (m * mean + (1 - m) * batch_mean).astype(x.dtype)
        var_out = (m * variance + (1 - m) * batch_var).astype(x.dtype)
        return [y, mean_out, var_out, batch_mean.astype(x.dtype), inv_std.astype(x.dtype)]


def _instance_norm_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    x, scale, bias = inputs
    shape = e.shape(x)
    n, c = shape[:2]
    x3, g3 = A.reshape(e, x, (n, c, -1)), A.reshape(e, cts[0], (n, c, -1))
    xhat, rstd = A.standardized(e, x3, (2,), attrs["epsilon"])
    dx = A.standardized_back(e, xhat, rstd, A.mul(e, g3, A.per_channel(e, scale, 3, 1)), (2,))
    return [A.reshape(e, dx, shape),
            A.reshape(e, A.sum_axes(e, A.mul(e, g3, xhat), (0, 2)), e.shape(scale)),
            A.reshape(e, A.sum_axes(e, g3, (0, 2)), e.shape(bias))]


@pd_op
class InstanceNorm(PdOp):
    """Normalise each (sample, channel) over its spatial dims, then scale and shift per
    channel (NCHW-style input [N, C, ...]). Results: Y, SavedMean [N*C], SavedVariance [N*C]
    (the inverse standard deviation); Paddle's saved files keep only Y in the op (the other
    two are extra outputs whose variables stay declared)."""

    name = "pd.instance_norm"
    INPUTS = ("x", "scale", "bias")
    ATTRS = {"epsilon": attr(FLOAT, 1e-5)}
    NUM_RESULTS = 3
    PADDLE = Legacy("instance_norm", {"X": "x", "Scale": "scale", "Bias": "bias"}, {"Y": 0},
                    {"epsilon": From("FLOAT", "epsilon")}, keeps_extra_attrs=True)
    NAME_HINT = "instance_norm"
    vjp = classmethod(_instance_norm_vjp)

    @staticmethod
    def infer(x: Abstract, scale: Abstract, bias: Abstract, epsilon: float) -> list[Abstract]:
        op = "pd.instance_norm"
        if not 2 <= x.ndim <= 5:
            raise ShapeError(f"{op}: input must have 2 to 5 dims, got {list(x.shape)}")
        n, c = x.shape[0], x.shape[1]
        _check_vector(op, "scale", scale, c, x)
        _check_vector(op, "bias", bias, c, x)
        nc = n * c if n >= 0 and c >= 0 else -1
        return [x, Abstract((nc,), x.dtype), Abstract((nc,), x.dtype)]

    @staticmethod
    def eager(x: np.ndarray, scale: np.ndarray, bias: np.ndarray,
              epsilon: float) -> list[np.ndarray]:
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        mean = flat.mean(axis=2, dtype=np.float64)
        inv_std = _inv_std(flat.var(axis=2, dtype=np.float64), epsilon)
        a = np.asarray(scale, np.float64)[None, :] * inv_std
        b = np.asarray(bias, np.float64)[None, :] - mean * a
        y = flat * a[:, :, None].astype(x.dtype)
        y += b[:, :, None].astype(x.dtype)
        return [y.reshape(x.shape), mean.reshape(-1).astype(x.dtype),
                inv_std.reshape(-1).astype(x.dtype)]


def _group_norm_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    x, scale, bias = inputs
    g = cts[0]
    nd = len(e.shape(x))
    axis = _channel_axis(nd, attrs["data_layout"])
    perm = [0, axis] + [i for i in range(1, nd) if i != axis]
    xc, gc = A.transpose(e, x, perm), A.transpose(e, g, perm)  # channels first
    shape = e.shape(xc)
    n, c, groups = shape[0], shape[1], attrs["groups"]
    g3 = A.reshape(e, A.mul(e, gc, A.per_channel(e, scale, nd, 1)), (n, groups, -1))
    xhat, rstd = A.standardized(e, A.reshape(e, xc, (n, groups, -1)), (2,), attrs["epsilon"])
    dx = A.reshape(e, A.standardized_back(e, xhat, rstd, g3, (2,)), shape)
    xhat_c = A.reshape(e, xhat, (n, c, -1))
    gcf = A.reshape(e, gc, (n, c, -1))
    return [A.transpose(e, dx, A.inverse_perm(perm)),
            A.reshape(e, A.sum_axes(e, A.mul(e, gcf, xhat_c), (0, 2)), e.shape(scale)),
            A.reshape(e, A.sum_axes(e, gcf, (0, 2)), e.shape(bias))]


@pd_op
class GroupNorm(PdOp):
    """Normalise each sample over groups of channels (and the spatial dims), then scale and
    shift per channel. Results: Y, Mean [N, groups], Variance [N, groups] (the variance)."""

    name = "pd.group_norm"
    INPUTS = ("x", "scale", "bias")
    ATTRS = {"groups": attr(INT), "epsilon": attr(FLOAT, 1e-5),
             "data_layout": attr(STR, "NCHW")}
    NUM_RESULTS = 3
    PADDLE = Legacy("group_norm", {"X": "x", "Scale": "scale", "Bias": "bias"},
                    {"Y": 0, "Mean": 1, "Variance": 2},
                    {"epsilon": From("FLOAT", "epsilon"), "groups": From("INT", "groups"),
                     "data_layout": From("STRING", "data_layout")}, keeps_extra_attrs=True)
    NAME_HINT = "group_norm"
    vjp = classmethod(_group_norm_vjp)

    @staticmethod
    def infer(x: Abstract, scale: Abstract, bias: Abstract, groups: int, epsilon: float,
              data_layout: str) -> list[Abstract]:
        op = "pd.group_norm"
        check_choice(op, "data_layout", data_layout, LAYOUTS)
        if not 2 <= x.ndim <= 5:
            raise ShapeError(f"{op}: input must have 2 to 5 dims, got {list(x.shape)}")
        c = x.shape[_channel_axis(x.ndim, data_layout)]
        if groups <= 0 or (c >= 0 and c % groups):
            raise ShapeError(f"{op}: {c} channels do not split into groups={groups}")
        _check_vector(op, "scale", scale, c, x)
        _check_vector(op, "bias", bias, c, x)
        stat = Abstract((x.shape[0], groups), x.dtype)
        return [x, stat, stat]

    @staticmethod
    def eager(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, groups: int, epsilon: float,
              data_layout: str) -> list[np.ndarray]:
        axis = _channel_axis(x.ndim, data_layout)
        xc = np.moveaxis(x, axis, 1) if axis != 1 else x  # [N, C, ...] view
        n, c = xc.shape[:2]
        g = xc.reshape(n, groups, -1) if xc.flags.c_contiguous else \
            np.ascontiguousarray(xc).reshape(n, groups, -1)
        mean = g.mean(axis=2, dtype=np.float64)
        var = g.var(axis=2, dtype=np.float64)
        inv_std = _inv_std(var, epsilon)  # [N, G]
        cg = c // groups
        a = np.repeat(inv_std, cg, axis=1) * np.asarray(scale, np.float64)[None, :]  # [N, C]
        b = np.asarray(bias, np.float64)[None, :] - np.repeat(mean, cg, axis=1) * a
        shape = [n] + [1] * (x.ndim - 1)
        shape[axis] = c
        y = x * a.reshape(shape).astype(x.dtype)
        y += b.reshape(shape).astype(x.dtype)
        return [y, mean.astype(x.dtype), var.astype(x.dtype)]


def _affine_channel_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    x, scale, bias = inputs
    g = cts[0]
    nd = len(e.shape(x))
    axis = 1 if attrs["data_layout"] == "NCHW" else nd - 1
    axes = tuple(i for i in range(nd) if i != axis)
    return [A.mul(e, g, A.per_channel(e, scale, nd, axis)),
            A.reshape(e, A.sum_axes(e, A.mul(e, g, x), axes), e.shape(scale)),
            A.reshape(e, A.sum_axes(e, g, axes), e.shape(bias))]


@pd_op
class AffineChannel(PdOp):
    """x * scale + bias per channel. Paddle's default data_layout 'AnyLayout' takes the
    channels from the last dim (as 'NHWC' does); 'NCHW' from dim 1."""

    name = "pd.affine_channel"
    INPUTS = ("x", "scale", "bias")
    ATTRS = {"data_layout": attr(STR, "AnyLayout")}
    PADDLE = Legacy("affine_channel", {"X": "x", "Scale": "scale", "Bias": "bias"},
                    {"Out": 0}, {"data_layout": From("STRING", "data_layout")})
    NAME_HINT = "affine_channel"
    vjp = classmethod(_affine_channel_vjp)

    @staticmethod
    def infer(x: Abstract, scale: Abstract, bias: Abstract, data_layout: str) -> Abstract:
        op = "pd.affine_channel"
        check_choice(op, "data_layout", data_layout, ("NCHW", "NHWC", "AnyLayout"))
        if x.ndim < 2:
            raise ShapeError(f"{op}: input must have at least 2 dims, got {list(x.shape)}")
        c = x.shape[1 if data_layout == "NCHW" else -1]
        _check_vector(op, "scale", scale, c, x)
        _check_vector(op, "bias", bias, c, x)
        return x

    @staticmethod
    def eager(x: np.ndarray, scale: np.ndarray, bias: np.ndarray,
              data_layout: str) -> np.ndarray:
        axis = 1 if data_layout == "NCHW" else x.ndim - 1
        y = x * _per_channel(scale, x.ndim, axis, x.dtype)
        y += _per_channel(bias, x.ndim, axis, x.dtype)
        return y
