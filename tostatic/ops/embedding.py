"""Ids to vectors: embedding lookups (Paddle's lookup_table_v2 and the older lookup_table)
and one_hot_v2. Each is one vectorised gather or scatter (np.take, one indexed store);
an id outside the table names the op and the id when it runs (OutOfRangeError), as Paddle's
kernels refuse it."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir import dtypes
from tostatic.ir.attributes import BOOL, DTYPE, INT, attr
from tostatic.ir.errors import OutOfRangeError, ShapeError
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op
from tostatic.ops.attr_checks import written
from tostatic.ops import autodiff as A

INDEX_DTYPES = (dtypes.int32, dtypes.int64)


def check_ids(op: str, what: str, ids: np.ndarray, low: int, high: int,
              allowed: int | None = None) -> None:
    """Raise naming `op` and the first id outside [low, high) (`allowed` is an exception:
    the padding id); one vectorised pass."""
    bad = (ids < low) | (ids >= high)
    if allowed is not None:
        bad &= ids != allowed
    if bad.any():
        first = ids.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
        raise OutOfRangeError(f"{op}: {what} {int(first)} is out of range [{low}, {high})")


def _check_table(op: str, ids: Abstract, w: Abstract) -> None:
    if ids.dtype not in INDEX_DTYPES:
        raise ShapeError(f"{op}: ids must be int32 or int64, got {ids.dtype.name}")
    if w.ndim != 2:
        raise ShapeError(f"{op}: the table W must be 2-D [rows, width], got {list(w.shape)}")


def lookup(op: str, ids: np.ndarray, w: np.ndarray, padding_idx: int,
           padding_always: bool) -> np.ndarray:
    """w's rows at `ids` (np.take), rows of the padding id zeroed. `padding_always`:
    lookup_table_v2's kernel compares every id with padding_idx, -1 included (so an id -1 with
    padding_idx -1 gives zeros); lookup_table's only when padding_idx is not -1."""
    pad = padding_idx if padding_always or padding_idx != -1 else None
    check_ids(op, "id", ids, 0, w.shape[0], pad)
    is_pad = None if pad is None else ids == pad
    if is_pad is None or not is_pad.any():
        return np.take(w, ids, axis=0)
    out = np.take(w, np.where(is_pad, 0, ids), axis=0)
    out[is_pad] = 0
    return out


def _lookup_vjp(cls, e: A.Emitter, inputs: list[Any], outputs: list[Any], attrs: dict[str, Any],
        cts: list[Any], needs: list[Any]) -> list[Any]:
    """The cotangent rows added into the table's rows at the ids (none for padding ids)."""
    ids, w = inputs
    rows = e.shape(ids)[:-1] if cls.name == "pd.lookup_table" else e.shape(ids)
    width = e.shape(w)[1:]
    n = 1
    for d in rows:
        n *= d
    flat = A.reshape(e, ids, (n,))
    g = A.reshape(e, cts[0], (n,) + tuple(width))
    pad = attrs["padding_idx"]
    if pad != -1 or cls.name == "pd.lookup_table_v2":
        keep = A.mask(e, A.e(e, "pd.not_equal", flat, A.full_like(e, flat, pad)), g)
        g = A.mul(e, g, A.reshape(e, keep, (n,) + (1,) * len(width)))
        flat = A.mul(e, flat, A.cast(e, keep, e.dtype(flat)))  # padding ids -> row 0, adding 0
    return [None, A.e(e, "pd.index_add", A.zeros_like(e, w), flat, g, axis=0)]


@pd_op
class LookupTableV2(PdOp):
    """Embedding: out = W[ids] with the shape ids.shape + [width]; ids equal to padding_idx
    (when it is not -1, as the Python API writes it) give rows of zeros."""

    name = "pd.lookup_table_v2"
    INPUTS = ("ids", "w")
    ATTRS = {"padding_idx": attr(INT, -1)}
    PADDLE = Legacy("lookup_table_v2", {"Ids": "ids", "W": "w"}, {"Out": 0},
                    {"padding_idx": From("LONG", "padding_idx")})
    NAME_HINT = "embedding"
    vjp = classmethod(_lookup_vjp)

    @classmethod
    def infer(cls, ids: Abstract, w: Abstract, padding_idx: int) -> Abstract:
        _check_table(cls.name, ids, w)
        return Abstract(ids.shape + w.shape[1:], w.dtype)

    @classmethod
    def eager(cls, ids: np.ndarray, w: np.ndarray, padding_idx: int) -> np.ndarray:
        return lookup(cls.name, ids, w, padding_idx, padding_always=True)


# lookup_table's attributes for distributed training: written with Paddle's values, not read
_V1_WRITTEN: dict[str, Any] = {
    "entry": written("STRING", "none"), "entry_config": written("STRING", ""),
    "epmap": written("STRINGS", []), "grad_inplace": written("BOOLEAN", False),
    "height_sections": written("LONGS", []), "is_distributed": written("BOOLEAN", False),
    "is_sparse": written("BOOLEAN", False), "is_test": written("BOOLEAN", True),
    "remote_prefetch": written("BOOLEAN", False), "table_class": written("STRING", "none"),
    "table_names": written("STRINGS", []), "trainer_id": written("INT", 0)}


@pd_op
class LookupTable(PdOp):
    """lookup_table (Paddle <= 1.8's embedding): ids end in a dim of 1, which the row width
    replaces ([N, 1] -> [N, width]); padding_idx -1 means no padding row."""

    name = "pd.lookup_table"
    INPUTS = ("ids", "w")
    ATTRS = {"padding_idx": attr(INT, -1)}
    PADDLE = Legacy("lookup_table", {"Ids": "ids", "W": "w"}, {"Out": 0},
                    {"padding_idx": From("LONG", "padding_idx"), **_V1_WRITTEN})
    NAME_HINT = "lookup_table"
    vjp = classmethod(_lookup_vjp)

    @classmethod
    def infer(cls, ids: Abstract, w: Abstract, padding_idx: int) -> Abstract:
        _check_table(cls.name, ids, w)
        if ids.ndim < 1 or ids.shape[-1] not in (1, -1):
            raise ShapeError(f"{cls.name}: ids must end in a dim of 1, got {list(ids.shape)}")
        return Abstract(ids.shape[:-1] + w.shape[1:], w.dtype)

    @classmethod
    def eager(cls, ids: np.ndarray, w: np.ndarray, padding_idx: int) -> np.ndarray:
        return lookup(cls.name, ids.reshape(ids.shape[:-1]), w, padding_idx,
                      padding_always=False)


@pd_op
class OneHot(PdOp):
    """x's ids as one-hot rows: shape x.shape + [depth], of `dtype` (float32 by default).
    Paddle 3.3.1's kernel refuses ids outside [0, depth) whatever allow_out_of_range says,
    so this one does too. A depth given as a tensor (depth_tensor) is not supported."""

    name = "pd.one_hot"
    INPUTS = ("x",)
    ATTRS = {"depth": attr(INT), "dtype": attr(DTYPE, "float32"),
             "allow_out_of_range": attr(BOOL, False)}
    PADDLE = Legacy("one_hot_v2", {"X": "x"}, {"Out": 0},
                    {"depth": From("INT", "depth"),
                     "dtype": From("INT", "dtype", lambda d: d.var_type,
                                   lambda n: dtypes.BY_VAR_TYPE[n]),
                     "allow_out_of_range": From("BOOLEAN", "allow_out_of_range")},
                    optional_inputs=("depth_tensor",), keeps_extra_attrs=True)
    NAME_HINT = "one_hot_v2"
    NONDIFF = True

    @classmethod
    def infer(cls, x: Abstract, depth: int, dtype: dtypes.DType,
              allow_out_of_range: bool) -> Abstract:
        if x.dtype not in INDEX_DTYPES:
            raise ShapeError(f"{cls.name}: ids must be int32 or int64, got {x.dtype.name}")
        if depth < 1:
            raise ShapeError(f"{cls.name}: depth must be at least 1, got {depth}")
        return Abstract(x.shape + (depth,), dtypes.convert_dtype(dtype))

    @classmethod
    def eager(cls, x: np.ndarray, depth: int, dtype: dtypes.DType,
              allow_out_of_range: bool) -> np.ndarray:
        check_ids(cls.name, "id", x, 0, depth)
        out = np.zeros(x.shape + (depth,), dtype=dtypes.convert_dtype(dtype).numpy)
        np.put_along_axis(out, x[..., None].astype(np.intp), 1, axis=-1)
        return out
