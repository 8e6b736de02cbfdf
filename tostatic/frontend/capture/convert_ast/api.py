"""`paddle.static.nn.cond` and `while_loop` called while to_static traces: the same pd.if /
pd.while the converted `if` / `while` build (static mode has its own, frontend/static)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from tostatic.frontend.capture.convert_ast.loops import convert_while
from tostatic.frontend.capture.convert_ast.runtime import IfExp


def traced_cond(pred: Any, true_fn: Callable[[], Any] | None,
                false_fn: Callable[[], Any] | None) -> Any:
    return IfExp(pred, true_fn or (lambda: None), false_fn or (lambda: None))


def traced_while_loop(cond: Callable[..., Any], body: Callable[..., Any],
                      loop_vars: Sequence[Any]) -> list[Any]:
    state = list(loop_vars)

    def set_args(values: tuple) -> None:
        state[:] = list(values)

    def body_fn() -> None:
        out = body(*state)
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        if len(out) != len(state):
            raise ValueError(f"body in while_loop should return the same arity (length and "
                             f"structure) as loop_vars: it returns {len(out)} values for "
                             f"{len(state)} loop variables")
        state[:] = out
    convert_while(lambda: cond(*state), body_fn, lambda: tuple(state), set_args,
                  tuple(f"loop_vars[{i}]" for i in range(len(state))))
    return state
