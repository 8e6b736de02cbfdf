"""Paddle 2.x's legacy static branches for the APIs whose branch Paddle 3.3.1 dropped.

With FLAGS_enable_pir_api=0, Paddle 3.3.1 still builds legacy programs, but a few of its
Python APIs now call the C++ op directly, which refuses a legacy Variable ("argument must be
Value, but got Variable"): matmul, gelu, tanh, rsqrt, log, tril, triu, bmm, expand_as and the
logical ops. Inside `legacy_branches()` they append the op Paddle 2.x's branch appended,
named by the LayerHelper it used (`matmul_v2_0.tmp_0`, `gelu_0.tmp_0`, `tril_0.tmp_0`,
`expand_as_0.tmp_0`, ...), so that Paddle's own jit.save of a Transformer writes a legacy
.pdmodel: the reference tostatic's captured programs are compared with. Dygraph calls go to
3.3.1's own functions.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator


def _branches(paddle: Any) -> dict[str, Callable[..., Any]]:
    from paddle.base.layer_helper import LayerHelper

    def one(op_type: str, key: str, inputs: dict[str, Any], attrs: dict[str, Any] | None = None,
            dtype: Any = None, name: str | None = None) -> Any:
        helper = LayerHelper(key, name=name) if name else LayerHelper(key)
        x = next(iter(inputs.values()))
        x = x[0] if isinstance(x, list) else x
        out = helper.create_variable_for_type_inference(dtype=dtype or x.dtype)
        helper.append_op(type=op_type, inputs=inputs, outputs={"Out": out}, attrs=attrs or {})
        return out

    def matmul(x, y, transpose_x=False, transpose_y=False, name=None):
        return one("matmul_v2", "matmul_v2", {"X": [x], "Y": [y]},
                   {"trans_x": transpose_x, "trans_y": transpose_y}, name=name)

    def gelu(x, approximate=False, name=None):
        approximate = {"tanh": True, "none": False}.get(approximate, approximate)
        return one("gelu", "gelu", {"X": x}, {"approximate": bool(approximate)}, name=name)

    def unary(op_type):
        return lambda x, name=None: one(op_type, op_type, {"X": x}, name=name)

    def tril_triu(lower):
        key = "tril" if lower else "triu"
        return lambda x, diagonal=0, name=None: one(
            "tril_triu", key, {"X": x}, {"diagonal": diagonal, "lower": lower}, name=name)

    def logical(op_type, binary=True):
        if binary:
            return lambda x, y, name=None: one(op_type, op_type, {"X": x, "Y": y},
                                               dtype="bool", name=name)
        return lambda x, name=None: one(op_type, op_type, {"X": x}, dtype="bool", name=name)

    def expand_as(x, y, name=None):
        return one("expand_as_v2", "expand_as", {"X": [x], "Y": [y]},
                   {"target_shape": list(y.shape)}, name=name)

    return {
        "matmul": matmul, "gelu": gelu, "tanh": unary("tanh"), "rsqrt": unary("rsqrt"),
        "log": unary("log"), "tril": tril_triu(True), "triu": tril_triu(False),
        "bmm": lambda x, y, name=None: one("bmm", "bmm", {"X": x, "Y": y}, name=name),
        "expand_as": expand_as, "logical_and": logical("logical_and"),
        "logical_or": logical("logical_or"), "logical_xor": logical("logical_xor"),
        "logical_not": logical("logical_not", binary=False),
    }


@contextlib.contextmanager
def legacy_branches(paddle: Any) -> Iterator[None]:
    """Every paddle module attribute holding one of those APIs (paddle.matmul,
    paddle.tensor.matmul, F.gelu, ...) calls the 2.x branch in static mode meanwhile."""
    from paddle.base.framework import in_dygraph_mode

    import paddle.nn.layer.transformer  # noqa: F401  (its module-level aliases too)

    saved: list[tuple[Any, str, Any]] = []
    for name, branch in _branches(paddle).items():
        for mod_name, mod in list(sys.modules.items()):
            if not mod_name.startswith("paddle") or mod is None:
                continue
            original = mod.__dict__.get(name)
            if original is None or getattr(original, "__name__", None) not in (name, "_" + name):
                continue

            def patched(*args, _original=original, _branch=branch, **kwargs):
                if in_dygraph_mode():
                    return _original(*args, **kwargs)
                return _branch(*args, **kwargs)

            patched.__name__ = name
            saved.append((mod, name, original))
            setattr(mod, name, patched)
    try:
        yield
    finally:
        for mod, name, original in reversed(saved):
            setattr(mod, name, original)
