"""Layer normalisation: Paddle's layer_norm, the normalisation of Transformers.

x is seen as a matrix: the dims before `begin_norm_axis` are its rows, the dims from it on its
columns. Each row is normalised over its columns in one vectorised pass over the whole matrix
(mean, then the biased variance of the centred values), then scaled and shifted by a weight of
one value per column. Three results, in Paddle's slot order: Y (x's shape), Mean and Variance
(both of shape x.shape[:begin_norm_axis], as Paddle 3.3.1 declares and computes them).

Scale and Bias are optional slots: `nn.LayerNorm(weight_attr=False)` writes `Scale: []`. Each
combination is a pd op of its own (one name each, as the slots are filled), so lowering writes
the empty slots and raising picks the one whose slots the file fills.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tostatic.ir.attributes import FLOAT, INT, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.op_rules import LAYER_NORM_WEIGHTS
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops.shapes import numel
from tostatic.ops import autodiff as A

SLOTS = {"scale": "Scale", "bias": "Bias"}


def layer_norm_legacy(weights: tuple[str, ...]) -> Legacy:
    return Legacy("layer_norm", {"X": "x", **{SLOTS[w]: w for w in weights}},
                  {"Y": 0, "Mean": 1, "Variance": 2},
                  {"begin_norm_axis": From("INT", "begin_norm_axis"),
                   "epsilon": From("FLOAT", "epsilon")},
                  optional_inputs=tuple(s for w, s in SLOTS.items() if w not in weights),
                  out_lod_level=(True, False, False))  # Mean / Variance: no LoD shared


def _layer_norm_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    x, weights = inputs[0], dict(zip(cls.WEIGHTS, inputs[1:]))
    shape = e.shape(x)
    k = attrs["begin_norm_axis"]
    rows, cols = 1, 1
    for d in shape[:k]:
        rows *= d
    for d in shape[k:]:
        cols *= d
    x2, g2 = A.reshape(e, x, (rows, cols)), A.reshape(e, cts[0], (rows, cols))
    xhat, rstd = A.standardized(e, x2, (1,), attrs["epsilon"])
    scale = weights.get("scale")
    gxhat = g2 if scale is None else A.mul(e, g2, A.reshape(e, scale, (1, cols)))
    grads = {"x": A.reshape(e, A.standardized_back(e, xhat, rstd, gxhat, (1,)), shape)}
    if scale is not None:
        grads["scale"] = A.reshape(e, A.sum_axes(e, A.mul(e, g2, xhat), (0,)), e.shape(scale))
    if "bias" in weights:
        grads["bias"] = A.reshape(e, A.sum_axes(e, g2, (0,)), e.shape(weights["bias"]))
    return [grads["x"]] + [grads[w] for w in cls.WEIGHTS]


class LayerNormBase(PdOp):
    """The rule and kernel every form shares; WEIGHTS names the weight inputs it has."""

    WEIGHTS: ClassVar[tuple[str, ...]] = ()
    ATTRS = {"epsilon": attr(FLOAT, 1e-5), "begin_norm_axis": attr(INT, 1)}
    NUM_RESULTS = 3
    NAME_HINT = "layer_norm"
    vjp = classmethod(_layer_norm_vjp)

    @classmethod
    def infer(cls, x: Abstract, *weights: Abstract, epsilon: float,
              begin_norm_axis: int) -> list[Abstract]:
        if not x.dtype.is_floating:
            raise ShapeError(f"{cls.name}: expects a floating tensor, got {x.dtype.name}")
        if not 0 < begin_norm_axis < x.ndim:  # Paddle's rule: at least one row dim
            raise ShapeError(f"{cls.name}: begin_norm_axis {begin_norm_axis} must be in "
                             f"[1, {x.ndim - 1}] for an input of shape {list(x.shape)}")
        cols = numel(x.shape[begin_norm_axis:])
        for what, w in zip(cls.WEIGHTS, weights):
            n = numel(w.shape)
            if w.ndim != 1 or (n >= 0 and cols >= 0 and n != cols):
                raise ShapeError(f"{cls.name}: {what} must have shape [{cols}] (the "
                                 f"normalised dims {list(x.shape[begin_norm_axis:])} of input "
                                 f"{list(x.shape)}), got {list(w.shape)}")
            if w.dtype != x.dtype:
                raise ShapeError(f"{cls.name}: {what} is {w.dtype.name}, input "
                                 f"{x.dtype.name}")
        stat = Abstract(x.shape[:begin_norm_axis], x.dtype)
        return [x, stat, stat]

    @classmethod
    def eager(cls, x: np.ndarray, *weights: np.ndarray, epsilon: float,
              begin_norm_axis: int) -> list[np.ndarray]:
        given = dict(zip(cls.WEIGHTS, weights))
        return layer_norm(x, given.get("scale"), given.get("bias"), epsilon, begin_norm_axis)


def layer_norm(x: np.ndarray, scale: np.ndarray | None, bias: np.ndarray | None,
               epsilon: float, begin_norm_axis: int) -> list[np.ndarray]:
    """[Y, Mean, Variance] for every row at once: the row means as one matrix-vector product
    (BLAS), the variances as one contraction of the centred rows, then Y in place."""
    rows_shape = x.shape[:begin_norm_axis]
    n = int(np.prod(x.shape[begin_norm_axis:]))
    m = x.reshape(int(np.prod(rows_shape)), n)
    mean = m @ np.full(n, 1.0 / max(n, 1), dtype=x.dtype)
    y = m - mean[:, None]
    var = np.einsum("ij,ij->i", y, y)
    var /= x.dtype.type(max(n, 1))
    inv_std = var + x.dtype.type(epsilon)
    np.sqrt(inv_std, out=inv_std)
    np.divide(1, inv_std, out=inv_std)
    y *= inv_std[:, None]
    if scale is not None:
        y *= scale.reshape(-1)
    if bias is not None:
        y += bias.reshape(-1)
    return [y.reshape(x.shape), mean.reshape(rows_shape), var.reshape(rows_shape)]


def _form(class_name: str, op_name: str, doc: str) -> type[PdOp]:
    """One of the four ops, taking the weights ir/op_rules.py's table gives it."""
    weights = LAYER_NORM_WEIGHTS[op_name]
    body: dict[str, Any] = {"name": op_name, "INPUTS": ("x",) + weights, "WEIGHTS": weights,
                            "PADDLE": layer_norm_legacy(weights), "__module__": __name__,
                            "__doc__": doc}
    return pd_op(type(class_name, (LayerNormBase,), body))


LayerNorm = _form("LayerNorm", "pd.layer_norm",
                  "Layer normalisation with a per-column scale and bias (nn.LayerNorm).")
LayerNormScaleOnly = _form("LayerNormScaleOnly", "pd.layer_norm_scale_only",
                           "Layer normalisation with a scale and no bias (`Bias: []`).")
LayerNormBiasOnly = _form("LayerNormBiasOnly", "pd.layer_norm_bias_only",
                          "Layer normalisation with a bias and no scale (`Scale: []`).")
LayerNormPlain = _form("LayerNormPlain", "pd.layer_norm_plain",
                       "Layer normalisation without weights (`Scale: []`, `Bias: []`).")
