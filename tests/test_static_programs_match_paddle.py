"""Static-mode programs that exercise how static mode builds `pd` and how lowering writes it
back (variables declared late, parameters made inside a branch, nested and one-sided control
flow, stop_gradient changed after use, loop variables retyped, feeds that ops compute),
printed and saved by real Paddle 3.3.1 and by tostatic: the texts and files must be Paddle's.

Both run the same code in a fresh process with one PYTHONHASHSEED (Paddle's names are
process-global and its sub-block slots follow str hashing)."""
import os
import subprocess
import sys

import pytest

from conftest import describe_program

PRELUDE = """
import numpy as np
from paddle.base.layer_helper import LayerHelper

def _logical_not(x, out=None, name=None):  # Paddle 3.3.1's legacy cond needs it (no old-IR branch)
    helper = LayerHelper("logical_not")
    res = helper.create_variable_for_type_inference(dtype=x.dtype)
    helper.append_op(type="logical_not", inputs={"X": [x]}, outputs={"Out": [res]})
    return res

paddle.logical_not = _logical_not
"""

CASES = {}


def case(source):
    CASES[source.__name__] = source.__doc__
    return source


@case
def late_data_and_parameters_in_a_branch():
    """
x = paddle.static.data(shape=[None, 4], dtype='float32', name='x')
h = x * 2.0
y = paddle.static.data(shape=[None, 4], dtype='float32', name='y')
pred = paddle.mean(y) > 0.0
r = paddle.static.nn.cond(pred, lambda: paddle.static.nn.fc(h, 3),
                          lambda: paddle.static.nn.fc(y, 3, activation='relu'))
FEEDS, FETCHES = [x, y], [r]
"""


@case
def nested_control_flow():
    """
x = paddle.static.data(shape=[None, 3], dtype='float32', name='x')
n = paddle.static.data(shape=[1], dtype='int64', name='n')

def outer_true():
    return paddle.static.nn.cond(paddle.mean(x) > 1.0, lambda: x * 3.0, lambda: x * 4.0)

r = paddle.static.nn.cond(paddle.mean(x) > 0.0, outer_true, lambda: x - 2.0)

def body(i, s):
    j, t = paddle.static.nn.while_loop(lambda j, t: j < 2, lambda j, t: [j + 1, t + 1.0],
                                       [paddle.zeros([1], dtype='int64'), s])
    return [i + 1, t]

i, s = paddle.static.nn.while_loop(lambda i, s: i < n, body,
                                   [paddle.zeros([1], dtype='int64'), r])
FEEDS, FETCHES = [x, n], [s, i]
"""


@case
def one_sided_cond_and_results_reused():
    """
x = paddle.static.data(shape=[None, 3], dtype='float32', name='x')
pred = paddle.mean(x) > 0.0
paddle.static.nn.cond(pred, lambda: None)
a, (b,) = paddle.static.nn.cond(pred, lambda: (x + 1.0, [paddle.mean(x)]),
                                lambda: [x * 3.0, (paddle.mean(x) * 2.0,)])
c = paddle.static.nn.cond(pred, lambda: a * b, lambda: a - b)
FEEDS, FETCHES = [x], [c, b]
"""


@case
def stop_gradient_changed_after_use():
    """
x = paddle.static.data(shape=[None, 4], dtype='float32', name='x')
x.stop_gradient = False
a = x * 2.0
y = paddle.static.data(shape=[None, 4], dtype='float32', name='y')
b = paddle.static.nn.cond(paddle.mean(y) > 0.0, lambda: y + 1.0, lambda: a)
a.stop_gradient = True
d = a + b
FEEDS, FETCHES = [x, y], [d]
"""


@case
def loop_variables_retyped_and_kept():
    """
x = paddle.static.data(shape=[None, 4], dtype='float32', name='x')
i = paddle.zeros([1], dtype='int64')
z = paddle.zeros([5, 4])
ten = paddle.full([1], 3, dtype='int64')
i2, t2, z2 = paddle.static.nn.while_loop(lambda i, t, z: i < t,
                                         lambda i, t, z: [i + 1, t, x * 2.0], [i, ten, z])
w = z2 + paddle.cast(paddle.full([1, 4], 7, 'int64'), 'float32')
FEEDS, FETCHES = [x], [w, i2]
"""


@case
def feeding_a_computed_variable():
    """
x = paddle.static.data(shape=[None, 4], dtype='float32', name='x')
h = paddle.static.nn.fc(x, 4)
out = paddle.nn.functional.relu(h) + 1.0
FEEDS, FETCHES = [h], [out]
"""


@case
def pruning_keeps_what_a_branch_listed():
    """
x = paddle.static.data(shape=[None, 4], dtype='float32', name='x')
t = x * 3.0
pred = paddle.mean(x) > 0.0

def true_fn():
    unused = paddle.nn.functional.relu(t)  # pruned from its block; t stays, listed in Input
    return x * 2.0

out = paddle.static.nn.cond(pred, true_fn, lambda: x - 1.0)
FEEDS, FETCHES = [x], [out]
"""


@case
def layer_norm_equal_and_einsum_outputs():
    """
x = paddle.static.data(shape=[None, 3], dtype='float32', name='x')
a = paddle.nn.functional.layer_norm(x, 3)
b = paddle.nn.LayerNorm(3)(x * 2.0)
e = paddle.equal(x, 1.0)
y = paddle.static.data(shape=[3, 4], dtype='float32', name='y')
z = paddle.einsum('ij,jk->ik', x, y)
FEEDS, FETCHES = [x, y], [a, b, e, z]
"""


@case
def indexing_and_setitem():
    """
x = paddle.static.data(shape=[4, 5, 6], dtype='float32', name='x')
v = paddle.static.data(shape=[6], dtype='float32', name='v')
i = paddle.static.data(shape=[3], dtype='int64', name='i')
s = paddle.static.data(shape=[], dtype='int64', name='s')
b = paddle.static.data(shape=[4, 5], dtype='bool', name='b')
outs = [x[1], x[-1], x[1:3], x[::2], x[::-1], x[1, None, ::-2], x[..., 1], x[None], x[:100],
        x[i], x[[0, 2]], x[:, [0, 2]], x[[0, 1], [1, 2]], x[b], x[x > 0.0], x[s], x[:, s],
        x[1, [0, 2]], x[:, [0, 2], 1:3], x[[True, False, True, True]], x[i, :, i],
        x[..., [1, 2]], x[0, b[0]], x[:, b[0]], x[1:s], x[s:], x[:, s:s + 2]]
y = paddle.static.setitem(x, 1, 2.0)
y = paddle.static.setitem(y, (None, 1), 3)
y = paddle.static.setitem(y, (slice(None), slice(None, None, 2), -1), v[:3])
y = paddle.static.setitem(y, s, 1.0)
y = paddle.static.setitem(y, s, v)
y = paddle.static.setitem(y, (1, slice(1, 3)), np.ones([2, 6], 'float32'))
FEEDS, FETCHES = [x, v, i, s, b], outs + [y]
"""


DRIVER = """
import os
for name, code in CASES.items():
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.utils.unique_name.guard(), paddle.static.program_guard(main, startup):
        scope = {"paddle": paddle, "np": np}
        exec(code, scope)
    print("=== " + name)
    print(main)
    print(startup)
    exe = paddle.static.Executor(paddle.CPUPlace())
    with paddle.static.scope_guard(paddle.static.Scope()):
        exe.run(startup)
        paddle.static.save_inference_model(os.path.join(OUT, name), scope["FEEDS"],
                                           scope["FETCHES"], exe, program=main)
"""


def _run(prelude: str, out_dir, env: dict[str, str]) -> str:
    code = (f"OUT = {str(out_dir)!r}\nCASES = {CASES!r}\n{prelude}\n"
            "paddle.enable_static()\n" + DRIVER)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": "0", **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def both(tmp_path_factory, real_paddle):
    theirs, ours = tmp_path_factory.mktemp("theirs"), tmp_path_factory.mktemp("ours")
    their_text = _run("import paddle\n" + PRELUDE, theirs,
                      {"FLAGS_enable_pir_api": "0", "GLOG_minloglevel": "3"})
    our_text = _run("import tostatic as paddle\nimport numpy as np\n", ours, {})
    return (their_text, theirs), (our_text, ours)


def _section(text: str, name: str) -> list[str]:
    return text.split(f"=== {name}\n")[1].split("=== ")[0].splitlines()


@pytest.mark.interop
@pytest.mark.parametrize("name", list(CASES))
def test_printed_programs_are_paddles(both, name):
    (theirs, _), (ours, _) = both
    assert _section(ours, name) == _section(theirs, name)


@pytest.mark.interop
@pytest.mark.parametrize("name", list(CASES))
def test_saved_models_are_paddles(both, name):
    (_, theirs), (_, ours) = both
    assert describe_program(ours / f"{name}.pdmodel") == \
        describe_program(theirs / f"{name}.pdmodel")
    params = [d / f"{name}.pdiparams" for d in (ours, theirs)]  # the same tensors' bytes
    assert [p.exists() and p.stat().st_size for p in params[:1]] == \
        [p.exists() and p.stat().st_size for p in params[1:]]
