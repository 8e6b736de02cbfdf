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


PADDLE_SAVES = """
import sys, numpy as np, paddle
paddle.enable_static()
x = paddle.static.data('x', [4, 5, 6], 'float32')
v = paddle.static.data('v', [6], 'float32')
s = paddle.static.data('s', [], 'int64')
b = paddle.static.data('b', [4, 5], 'bool')
y = paddle.static.setitem(x, 1, 2.0)
y = paddle.static.setitem(y, (None, -1), 3)
y = paddle.static.setitem(y, (slice(None), slice(None, None, -2), -1), v[:3])
y = paddle.static.setitem(y, s, 1.5)
y = paddle.static.setitem(y, s + 1, v)
y = paddle.static.setitem(y, (2, slice(1, 3)), np.ones([2, 6], 'float32') * 7)
outs = [y, y[s], y[b], y[:, [0, 2]], y[y > 3.0], y[::-1, 1::2], y[1:s], y[s:], y[:, s:s + 2]]
exe = paddle.static.Executor(paddle.CPUPlace())
sys.path.insert(0, sys.argv[2])
from indexing_cases import tensors
a = tensors(None)
for k in (2, -2):
    feeds = {'x': a['x'], 'v': a['v'], 's': np.array(k, 'int64'), 'b': a['b']}
    got = exe.run(feed=feeds, fetch_list=outs)
    np.savez(sys.argv[1] + f'_{k}.npz', **{f'out{i}': o for i, o in enumerate(got)})
paddle.static.save_inference_model(sys.argv[1], [x, v, s, b], outs, exe)
"""


@pytest.mark.interop
def test_set_value_and_indexing_files_paddle_wrote_run_here(tmp_path, real_paddle):
    """save_inference_model of Paddle's static setitem / getitem (set_value with literals,
    a ValueTensor, tensor bounds; slice, strided_slice, where_index, masked_select, ...),
    against Paddle's Executor, for s = 2 and s = -2 (where `y[s + 1] = v` writes nothing:
    Paddle's set_value kernel reads the bounds -1:0 as empty, unlike its eager mode)."""
    import os
    import subprocess
    import sys

    from conftest import assert_all_close

    prefix = str(tmp_path / "paddle_setitem")
    done = subprocess.run([sys.executable, "-c", PADDLE_SAVES, prefix,
                           os.path.dirname(__file__)], capture_output=True, text=True,
                          env={**os.environ, "FLAGS_enable_pir_api": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    arrays = tensors(None)
    for k in (2, -2):
        feeds = {"x": arrays["x"], "v": arrays["v"], "s": np.array(k, "int64"),
                 "b": arrays["b"]}
        saved = np.load(f"{prefix}_{k}.npz")
        want = [saved[f"out{i}"] for i in range(len(saved.files))]
        config = paddle.inference.Config(prefix + ".pdmodel")
        predictor = paddle.inference.create_predictor(config)
        assert_all_close(predictor.run([feeds[n] for n in predictor.get_input_names()]), want)
        loaded = paddle.jit.load(prefix)
        got = loaded(*[paddle.to_tensor(feeds[n]) for n in ("x", "v", "s", "b")])
        assert_all_close([t.numpy() for t in got], want)


DYNAMIC = ["x[-1]", "x[:, ::-2, 1:]", "x[..., None, 2]", "x[s]", "x[i[:2]]", "x[x > 0.0]",
           "x[:, [4, 0]]", "x[b[:, 0]]" ]


def test_traced_indexing_with_a_dynamic_batch_runs_at_two_sizes():
    def fn(x, i, s, b):
        y = x * 1.0
        y[0] = 5.0
        y[:, ::2, -1] = x[:, 1, :3]
        env = {"x": x, "i": i, "s": s, "b": b}
        return tuple(eval(e, {}, env) for e in DYNAMIC) + (y,)
    spec = paddle.static.InputSpec
    static_fn = paddle.jit.to_static(fn, input_spec=[
        spec([None, 5, 6], "float32", "x"), spec([3], "int64", "i"), spec([], "int64", "s"),
        spec([None, 5], "bool", "b")])
    arrays = tensors(None)
    for n in (4, 2):
        args = [paddle.to_tensor(a) for a in (arrays["x"][:n], arrays["i"] % n,
                                              np.array(1, "int64"), arrays["b"][:n])]
        for got, want in zip(static_fn(*args), fn(*args)):
            assert_close(got.numpy(), want.numpy())


def test_static_mode_setitem_is_refused_as_paddle_does(static):
    x = paddle.static.data("x", [2, 3], "float32")
    with pytest.raises(RuntimeError, match="paddle.static.setitem"):
        x[0] = 1.0
    y = paddle.static.setitem(x, 0, 1.0)
    assert y.name == "set_value_0.tmp_0" and x.name == "x"
