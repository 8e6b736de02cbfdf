"""Dropout: Paddle's dropout op.

Results: Out, and Mask (uint8, 1 where an element was kept). Paddle's saved inference files
drop the Mask slot from the op (an extra output) but keep its variable declared, which is
what lowering a result no slot names gives. `seed` / `fix_seed` are extra attributes Paddle
strips from saved files: they steer the eager kernel only (fix_seed: a generator of its own
seeded with `seed`; otherwise the global generator of paddle.seed).

- is_test: 'upscale_in_train' -> Out = X; 'downgrade_in_infer' -> Out = X * (1 - p).
- training: each element is dropped with probability p; 'upscale_in_train' -> kept elements
  are divided by 1 - p (all zeros when p == 1); 'downgrade_in_infer' -> kept as they are.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, FLOAT, INT, STR, attr
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops.conv import check_choice
from tostatic.ops.creation import _generator
from tostatic.ops import autodiff as A

IMPLEMENTATIONS = ("downgrade_in_infer", "upscale_in_train")


def _dropout_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """The cotangent through the kept elements (the mask result), scaled as the forward."""
    g = cts[0]
    p, impl = float(np.float32(attrs["dropout_prob"])), attrs["dropout_implementation"]
    if attrs["is_test"]:
        return [g if impl == "upscale_in_train" else A.scale(e, g, 1.0 - p)]
    kept = A.mul(e, g, A.cast(e, outputs[1], e.dtype(g)))
    if impl == "upscale_in_train":
        return [A.scale(e, kept, 0.0 if p >= 1.0 else 1.0 / (1.0 - p))]
    return [kept]


@pd_op
class Dropout(PdOp):
    name = "pd.dropout"
    INPUTS = ("x",)
    ATTRS = {"dropout_prob": attr(FLOAT, 0.5), "is_test": attr(BOOL, False),
             "dropout_implementation": attr(STR, "downgrade_in_infer"),
             "seed": attr(INT, 0), "fix_seed": attr(BOOL, False)}
    NUM_RESULTS = 2
    PADDLE = Legacy("dropout", {"X": "x"}, {"Out": 0, "Mask": 1},
                    {"dropout_prob": From("FLOAT", "dropout_prob"),
                     "is_test": From("BOOLEAN", "is_test"),
                     "dropout_implementation": From("STRING", "dropout_implementation")},
                    optional_inputs=("Seed",), out_lod_level=(True, False),
                    live_outputs=("Mask",), optional_outputs=("Mask",))  # saved: no Mask
    NAME_HINT = "dropout"
    vjp = classmethod(_dropout_vjp)

    @property
    def EFFECTS(self) -> bool:  # noqa: N802  (read as op.EFFECTS like the class constants)
        """Random in training only: an is_test dropout may be folded, merged or removed."""
        return not self.attr_values()["is_test"]

    @staticmethod
    def infer(x: Abstract, dropout_prob: float, is_test: bool, dropout_implementation: str,
              seed: int, fix_seed: bool) -> list[Abstract]:
        check_choice("pd.dropout", "dropout_implementation", dropout_implementation,
                     IMPLEMENTATIONS)
        if not 0.0 <= dropout_prob <= 1.0:
            raise ShapeError(f"pd.dropout: dropout_prob must be in [0, 1], got {dropout_prob}")
        return [x, Abstract(x.shape, dtypes.uint8)]

    @staticmethod
    def eager(x: np.ndarray, dropout_prob: float, is_test: bool, dropout_implementation: str,
              seed: int, fix_seed: bool) -> list[Any]:
        p = float(np.float32(dropout_prob))
        upscale = dropout_implementation == "upscale_in_train"
        if is_test:
            out = x if upscale else x * x.dtype.type(1.0 - p)
            return [out, np.broadcast_to(np.uint8(1), x.shape)]  # Paddle leaves Mask unset
        rng = np.random.default_rng(seed) if fix_seed else _generator(0)
        keep = rng.random(x.shape, dtype=np.float32) >= p
        mask = keep.astype(np.uint8)
        if upscale:
            if p == 1.0:
                return [np.zeros_like(x), mask]
            return [x * keep * x.dtype.type(1.0 / (1.0 - p)), mask]
        return [x * keep, mask]
