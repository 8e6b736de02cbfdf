"""`Tensor.__getitem__` / `__setitem__` over the table in indexing_cases.py: eager against
numpy and real Paddle 3.3.1's eager mode; traced, saved and run by jit.load and by
paddle.inference against eager; static mode; a set_value file Paddle wrote run here."""
import numpy as np
import pytest

import tostatic as paddle
from conftest import assert_close
from indexing_cases import GETITEM, GETITEM_ERRORS, SETITEM, SETITEM_ERRORS, tensors


def _get(mod, expr):
    return eval(expr, {"np": np, "paddle": mod}, tensors(mod))


def _set(mod, index, value):
    env = tensors(mod)
    scope = {"np": np, "paddle": mod, **env}
    x = env["x"]
    x[eval(index, scope)] = eval(value, scope)
    return x


@pytest.mark.parametrize("expr", [e for e, n in GETITEM.items() if n is not None])
def test_getitem_matches_numpy(expr):
    assert_close(_get(paddle, expr).numpy(), eval(GETITEM[expr], {"np": np}, tensors(None)))


@pytest.mark.parametrize("index,value", [(i, v) for i, v, same in SETITEM if same])
def test_setitem_matches_numpy(index, value):
    env = tensors(None)
    scope = {"np": np, **env}
    want = env["x"]
    want[eval(index, scope)] = eval(value, scope)
    assert_close(_set(paddle, index, value).numpy(), want)


@pytest.mark.interop
def test_getitem_and_setitem_match_paddle_eager(real_paddle):
    for expr in GETITEM:
        got, want = _get(paddle, expr), _get(real_paddle, expr)
        assert got.shape == list(want.shape), expr
        assert_close(got.numpy(), want.numpy())
    for expr in GETITEM_ERRORS:
        for mod in (paddle, real_paddle):
            with pytest.raises((IndexError, ValueError)):
                _get(mod, expr)
    for index, value in SETITEM_ERRORS:
        for mod in (paddle, real_paddle):
            with pytest.raises(ValueError):
                _set(mod, index, value)
    for index, value, _ in SETITEM:
        assert_close(_set(paddle, index, value).numpy(), _set(real_paddle, index, value).numpy())


NAMES = ["x", "v", "w", "i", "s", "n", "b", "m"]


def _program(exprs, setitems):
    """One function returning every expression of the table (getitems, then each setitem on
    a copy of x), its input specs, and the inputs."""
    def fn(x, v, w, i, s, n, b, m):
        scope = {"np": np, "paddle": paddle, **dict(zip(NAMES, (x, v, w, i, s, n, b, m)))}
        outs = [eval(e, scope) for e in exprs]
        for index, value in setitems:
            y = x * 1.0
            scope["x"] = y
            y[eval(index, scope)] = eval(value, scope)
            scope["x"] = x
            outs.append(y)
        return tuple(outs)
    arrays = tensors(None)
    specs = [paddle.static.InputSpec(list(arrays[k].shape), str(arrays[k].dtype), k)
             for k in NAMES]
    return fn, specs, [arrays[k] for k in NAMES]


@pytest.mark.interop
def test_traced_indexing_runs_as_eager_in_jit_load_and_paddle_inference(tmp_path, real_paddle):
    from conftest import assert_all_close, paddle_predict

    fn, specs, arrays = _program(list(GETITEM), [(i, v) for i, v, _ in SETITEM])
    eager = [t.numpy() for t in fn(*[paddle.to_tensor(a) for a in arrays])]
    static_fn = paddle.jit.to_static(fn, input_spec=specs)
    assert_all_close([t.numpy() for t in static_fn(*[paddle.to_tensor(a) for a in arrays])],
                     eager)
    paddle.jit.save(static_fn, str(tmp_path / "m"))
    loaded = paddle.jit.load(str(tmp_path / "m"))
    assert_all_close([t.numpy() for t in loaded(*[paddle.to_tensor(a) for a in arrays])], eager)
    params = tmp_path / "m.pdiparams"
    theirs = paddle_predict(tmp_path / "m.pdmodel", params if params.exists() else None,
                            dict(zip(NAMES, arrays)), onednn=False)
    assert_all_close(theirs, eager)
