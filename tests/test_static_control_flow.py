"""paddle.static.nn.cond and while_loop in static mode, checked against Paddle 3.3.1's legacy
static graph: the printed program, Executor results and saved inference models.

Paddle lists the Input / X / Out slots of conditional_block and while in Python-set order, which
follows str hashing; scripts that compare programs therefore run in subprocesses with one
PYTHONHASHSEED (Paddle's names are process-global too)."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tostatic as paddle
from tostatic.ir.errors import UnsupportedError

from conftest import (FIXTURES, assert_all_close, assert_close, describe_program, fixture_cases,
                      paddle_predict)

CONTROL_FLOW = FIXTURES / "control_flow"

# Paddle 3.3.1's legacy cond calls paddle.logical_not, which has no old-IR branch; this is the
# op Paddle's LayerHelper would write (the control_flow fixture was made the same way).
PADDLE_PRELUDE = """
import paddle
from paddle.base.layer_helper import LayerHelper

def _logical_not(x, out=None, name=None):
    helper = LayerHelper("logical_not")
    res = helper.create_variable_for_type_inference(dtype=x.dtype)
    helper.append_op(type="logical_not", inputs={"X": [x]}, outputs={"Out": [res]})
    return res

paddle.logical_not = _logical_not
"""

# cond with one and two results, branches reading outer vars, a while_loop with two loop vars
# and a cond in its body; run on feeds taking both branches and zero iterations; saved whole and
# pruned (the unused op of true_fn and the while go).
SCRIPT = """
import numpy as np
paddle.enable_static()
main, startup = paddle.static.Program(), paddle.static.Program()
with paddle.static.program_guard(main, startup):
    x = paddle.static.data(shape=[None, 4], dtype='float32', name='x')
    n = paddle.static.data(shape=[1], dtype='int64', name='n')
    h = paddle.static.nn.fc(x, 4)
    pred = paddle.mean(x) > 0.0

    def true_fn():
        unused = paddle.nn.functional.relu(x) + 3.0
        return paddle.nn.functional.relu(h) * 2.0

    out = paddle.static.nn.cond(pred, true_fn, lambda: h - 1.0)
    a, b = paddle.static.nn.cond(pred, lambda: (h + 1.0, paddle.mean(h)),
                                 lambda: (h * 3.0, paddle.mean(x) * 2.0))

    def body(i, acc):
        acc = paddle.static.nn.cond(paddle.mean(acc) > 1.0, lambda: acc * 0.5,
                                    lambda: acc + h)
        return [i + 1, acc]

    i, acc = paddle.static.nn.while_loop(lambda i, acc: i < n, body,
                                         [paddle.zeros([1], dtype='int64'), out])
print(main)
exe = paddle.static.Executor(paddle.CPUPlace())
exe.run(startup)
rng = np.random.RandomState(0)
for name, shape in (("fc_0.w_0", (4, 4)), ("fc_0.b_0", (4,))):
    value = rng.rand(*shape).astype("float32") - 0.3
    paddle.static.global_scope().find_var(name).get_tensor().set(value, paddle.CPUPlace())
results = {}
for k, (xs, ns) in enumerate([(rng.rand(3, 4) + 0.5, 4), (rng.rand(2, 4) - 1.5, 3),
                              (rng.rand(5, 4), 0)]):
    feed = {"x": xs.astype("float32"), "n": np.array([ns], "int64")}
    for j, v in enumerate(exe.run(main, feed=feed, fetch_list=[out, a, b, i, acc])):
        results[f"case{k}_out{j}"] = np.asarray(v)
    results[f"case{k}_x"], results[f"case{k}_n"] = feed["x"], feed["n"]
np.savez(OUT + "/results.npz", **results)
paddle.static.save_inference_model(OUT + "/model", [x, n], [acc, a, b, i], exe, program=main)
paddle.static.save_inference_model(OUT + "/pruned", [x, n], [a, out], exe, program=main)
"""

# make_fixtures.py's build_control_flow, as plain static code
FIXTURE_SCRIPT = """
from tostatic import static
import tostatic.nn.functional as F
paddle.enable_static()
main, startup = static.Program(), static.Program()
with static.program_guard(main, startup):
    x = static.data(name="x", shape=[None, 4], dtype="float32")
    n = static.data(name="n", shape=[1], dtype="int64")
    y = static.nn.fc(x, 4)
    pred = paddle.mean(x) > 0.0
    out = static.nn.cond(pred, lambda: F.relu(y) * 2.0, lambda: y - 1.0)
    i = paddle.full([1], 0, "int64")
    i_end, acc = static.nn.while_loop(lambda i, acc: i < n,
                                      lambda i, acc: [i + 1, acc * 0.5 + y], [i, out])
print(main)
exe = static.Executor(paddle.CPUPlace())
exe.run(startup)
static.save_inference_model(OUT + "/model", [x, n], [acc, i_end], exe, program=main)
"""


def _run(code: str, out_dir, env: dict[str, str] | None = None) -> str:
    env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    done = subprocess.run([sys.executable, "-c", f"OUT = {str(out_dir)!r}\n" + code], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory, real_paddle):
    """SCRIPT run by real Paddle and by us, each in a fresh process with PYTHONHASHSEED=0."""
    theirs, ours = tmp_path_factory.mktemp("theirs"), tmp_path_factory.mktemp("ours")
    legacy = {"FLAGS_enable_pir_api": "0", "GLOG_minloglevel": "3"}
    their_text = _run(PADDLE_PRELUDE + SCRIPT, theirs, legacy)
    our_text = _run("import tostatic as paddle\n" + SCRIPT, ours)
    return (their_text, theirs), (our_text, ours)



# --- against real Paddle -------------------------------------------------------------------------

@pytest.mark.interop
def test_printed_program_equals_paddles_line_for_line(both_runs):
    (theirs, _), (ours, _) = both_runs
    assert "select_input" in theirs and "while(" in theirs and "block_idx:7" in theirs
    assert ours.splitlines() == theirs.splitlines()


@pytest.mark.interop
def test_executor_results_equal_paddles(both_runs):
    (_, theirs), (_, ours) = both_runs
    want, got = np.load(theirs / "results.npz"), np.load(ours / "results.npz")
    assert sorted(want) == sorted(got)
    for key in want:
        assert_close(got[key], want[key])


@pytest.mark.interop
@pytest.mark.parametrize("name", ["model", "pruned"])
def test_saved_model_equals_paddles_and_runs_in_paddle_inference(both_runs, name):
    (_, theirs), (_, ours) = both_runs
    assert describe_program(ours / f"{name}.pdmodel") == \
        describe_program(theirs / f"{name}.pdmodel")
    results = np.load(theirs / "results.npz")
    for k in range(3):
        feeds = {"x": results[f"case{k}_x"], "n": results[f"case{k}_n"]}
        want = paddle_predict(theirs / f"{name}.pdmodel", theirs / f"{name}.pdiparams", feeds)
        got = paddle_predict(ours / f"{name}.pdmodel", ours / f"{name}.pdiparams", feeds)
        assert_all_close(got, want)


# --- against the control_flow fixture (made by Paddle with PYTHONHASHSEED=0) ----------------

def test_fixture_code_prints_and_saves_what_paddle_did(tmp_path):
    text = _run("import tostatic as paddle\n" + FIXTURE_SCRIPT, tmp_path)
    assert text == (CONTROL_FLOW / "program.txt").read_text()  # what print(main) wrote
    assert describe_program(tmp_path / "model.pdmodel") == \
        describe_program(CONTROL_FLOW / "model.pdmodel")
    # with Paddle's weights, our saved program gives Paddle's outputs on both branches
    shutil.copy(CONTROL_FLOW / "model.pdiparams", tmp_path / "model.pdiparams")
    os.remove(tmp_path / "model.tostatic-manifest")  # else the load refuses the foreign file
    paddle.enable_static()
    try:
        exe = paddle.static.Executor(paddle.CPUPlace())
        with paddle.static.scope_guard(paddle.static.Scope()):
            program, feeds, fetches = paddle.static.load_inference_model(
                str(tmp_path / "model"), exe)
            assert str(program) + "\n" == (CONTROL_FLOW / "inference_program.txt").read_text()
            for _, feed, expected in fixture_cases("control_flow"):
                assert_all_close(exe.run(program, feed=feed, fetch_list=fetches), expected)
    finally:
        paddle.disable_static()


def test_fixture_code_runs_with_paddles_weights_in_process(static):
    from tostatic.serialization.pdiparams import load_combine

    main, startup = static
    x = paddle.static.data(name="x", shape=[None, 4], dtype="float32")
    n = paddle.static.data(name="n", shape=[1], dtype="int64")
    y = paddle.static.nn.fc(x, 4)
    out = paddle.static.nn.cond(paddle.mean(x) > 0.0, lambda: paddle.nn.functional.relu(y) * 2.0,
                                lambda: y - 1.0)
    i_end, acc = paddle.static.nn.while_loop(lambda i, acc: i < n,
                                             lambda i, acc: [i + 1, acc * 0.5 + y],
                                             [paddle.full([1], 0, "int64"), out])
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    main.set_state_dict(load_combine(CONTROL_FLOW / "model.pdiparams", ["fc_0.b_0", "fc_0.w_0"]))
    for _, feed, expected in fixture_cases("control_flow"):
        assert_all_close(exe.run(main, feed=feed, fetch_list=[acc, i_end]), expected)


# --- the program's structure -------------------------------------------------------------------

def test_sub_blocks_their_vars_and_ops(static):
    main, _ = static
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    out = paddle.static.nn.cond(paddle.mean(x) > 0.0, lambda: x * 2.0, lambda: x - 1.0)
    assert main.current_block().idx == 0 and main.num_blocks == 3
    assert [(b.idx, b.parent_idx) for b in main.blocks] == [(0, -1), (1, 0), (2, 0)]
    block0, true_block, false_block = main.blocks
    assert [op.type for op in block0.ops] == ["reduce_mean", "fill_constant", "greater_than",
                                              "conditional_block", "logical_not",
                                              "conditional_block", "cast", "select_input"]
    assert [op.type for op in true_block.ops] == ["scale", "assign"]
    # the branch's temporary lives in its block, the copy it assigns to in block 0
    assert list(true_block.vars) == ["tmp_2"]
    assert true_block.ops[1].output("Out") == ["_generated_var_0"]
    assert block0.var("_generated_var_1").type == "STEP_SCOPES"
    cb = block0.ops[3]
    assert (cb.input("Cond"), cb.input("Input"), cb.output("Out"), cb.output("Scope")) == \
        (["tmp_1"], ["x"], ["_generated_var_0"], ["_generated_var_1"])
    assert cb.desc.attr_type("sub_block") == "BLOCK" and cb.attr("sub_block") == 1
    assert cb.attr("is_scalar_condition") is True
    select = block0.ops[-1]
    assert select.input("X") == ["_generated_var_2", "_generated_var_0"]
    assert select.input("Mask") == ["cast_0.tmp_0"] and out.name == "_generated_var_4"
    assert (out.shape, out.dtype, out.stop_gradient) == ((-1, 4), paddle.float32, True)


def test_while_writes_back_onto_the_loop_vars(static):
    main, _ = static
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    i = paddle.zeros([1], dtype="int64")
    z = paddle.zeros([5, 4])
    ten = paddle.full([1], 3, dtype="int64")
    result = paddle.static.nn.while_loop(lambda i, t, z: i < t,
                                         lambda i, t, z: [i + 1, t, x * 2.0], [i, ten, z])
    assert result == [i, ten, z]
    assert z.shape == (-1, 4)  # assign's InferShape retypes the outer variable, as in Paddle
    body = main.block(1)
    assigned = [(op.input("X")[0], op.output("Out")[0]) for op in body.ops if op.type == "assign"]
    cond = main.global_block().ops[-2].output("Out")[0]
    assert [out for _, out in assigned] == [i.name, z.name, cond]  # none for t: t is ten
    loop = main.global_block().ops[-1]
    assert loop.type == "while" and loop.attr("is_test") is False
    assert loop.input("Condition") == [cond]
    assert sorted(loop.input("X")) == sorted([i.name, ten.name, z.name, "x"])
    assert sorted(loop.output("Out")) == sorted([i.name, z.name, cond])


# --- running -------------------------------------------------------------------------------------

def _run_program(main, startup, feed, fetches):
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    return exe.run(main, feed=feed, fetch_list=fetches)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_runs_the_branch_pred_picks(static, sign):
    main, startup = static
    x = paddle.static.data(shape=[None, 3], dtype="float32", name="x")
    pred = paddle.mean(x) > 0.0
    one = paddle.static.nn.cond(pred, lambda: x * 2.0, lambda: x - 1.0)
    a, (b,) = paddle.static.nn.cond(pred, lambda: (x + 1.0, [paddle.mean(x)]),
                                    lambda: [x * 3.0, (paddle.mean(x) * 2.0,)])
    xs = sign * (np.arange(6, dtype="float32").reshape(2, 3) + 1.0)
    got = _run_program(main, startup, {"x": xs}, [one, a, b])
    want = ([xs * 2, xs + 1, xs.mean()] if sign > 0 else [xs - 1, xs * 3, xs.mean() * 2])
    assert len(got) == 3
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w, "float32"), rtol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_while_loop_with_a_cond_in_its_body(static, n):
    main, startup = static
    x = paddle.static.data(shape=[None, 3], dtype="float32", name="x")
    limit = paddle.static.data(shape=[1], dtype="int64", name="n")

    def body(i, acc):
        acc = paddle.static.nn.cond(paddle.mean(acc) > 4.0, lambda: acc * 0.5,
                                    lambda: acc + x)
        return [i + 1, acc]

    i, acc = paddle.static.nn.while_loop(lambda i, acc: i < limit, body,
                                         [paddle.zeros([1], dtype="int64"), x * 1.0])
    xs = np.array([[1.0, 2.0, 3.0]], "float32")
    got_i, got_acc = _run_program(main, startup, {"x": xs, "n": np.array([n], "int64")},
                                  [i, acc])
    want = xs.copy()
    for _ in range(n):
        want = want * 0.5 if want.mean() > 4.0 else want + xs
    assert got_i.tolist() == [n]
    np.testing.assert_allclose(got_acc, want, rtol=1e-6)


def test_save_inference_model_keeps_and_renumbers_sub_blocks(static, tmp_path):
    main, startup = static
    x = paddle.static.data(shape=[None, 3], dtype="float32", name="x")
    pred = paddle.mean(x) > 0.0
    dropped = paddle.static.nn.cond(pred, lambda: x * 5.0, lambda: x * 6.0)  # not fetched

    def true_fn():
        paddle.nn.functional.relu(x)  # unused: pruned from its block
        return x * 2.0

    kept = paddle.static.nn.cond(pred, true_fn, lambda: x - 1.0)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    paddle.static.save_inference_model(str(tmp_path / "m"), [x], [kept], exe, program=main)
    program, feeds, fetches = paddle.static.load_inference_model(str(tmp_path / "m"), exe)
    assert program.num_blocks == 3 and dropped.name not in program.global_block().vars
    blocks = [op.attr("sub_block") for op in program.global_block().ops
              if op.type == "conditional_block"]
    assert blocks == [1, 2]
    assert [op.type for op in program.block(1).ops] == ["scale", "assign"]
    for sign in (1.0, -1.0):
        xs = sign * np.ones((2, 3), "float32")
        (got,) = exe.run(program, feed={"x": xs}, fetch_list=fetches)
        np.testing.assert_array_equal(got, xs * 2 if sign > 0 else xs - 1)


# --- errors name the user's line ----------------------------------------------------------------

def _line_of(text: str) -> str:
    with open(__file__) as f:
        for number, line in enumerate(f, 1):
            if text in line and "_line_of" not in line:
                return f"{__file__}:{number}"
    raise AssertionError(text)


def test_pred_must_be_a_one_element_bool(static):
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    with pytest.raises(TypeError, match="pred must be a bool Tensor, got a float32") as info:
        paddle.static.nn.cond(paddle.mean(x), lambda: x, lambda: x)  # float pred
    assert _line_of("# float pred") in str(info.value)
    with pytest.raises(TypeError, match=r"one element .* got shape \[-1, 4\]") as info:
        paddle.static.nn.cond(x > 0.0, lambda: x, lambda: x)  # many-element pred
    assert _line_of("# many-element pred") in str(info.value)


def test_branches_must_agree_in_structure_and_dtype(static):
    main, _ = static
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    pred = paddle.mean(x) > 0.0
    with pytest.raises(ValueError, match="true_fn returns tuple of 2") as info:
        paddle.static.nn.cond(pred, lambda: (x, x), lambda: x)  # structures differ
    assert _line_of("# structures differ") in str(info.value)
    with pytest.raises(TypeError, match="float32 .* but false_fn's is int32") as info:
        paddle.static.nn.cond(pred, lambda: x, lambda: paddle.cast(x, "int32"))  # dtypes
    assert _line_of("# dtypes") in str(info.value)
    with pytest.raises(ValueError, match="false_fn returns None"):
        paddle.static.nn.cond(pred, lambda: x, None)
    assert main.current_block().idx == 0


def test_while_body_must_return_every_loop_var(static):
    main, _ = static
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    i = paddle.zeros([1], dtype="int64")
    with pytest.raises(ValueError, match="returns 1 values for 2 loop_vars") as info:
        paddle.static.nn.while_loop(lambda i, a: i < 3, lambda i, a: [i + 1], [i, x])  # arity
    assert _line_of("# arity") in str(info.value)
    with pytest.raises(TypeError, match=r"result 1 is float32 \[\] but loop_vars\[1\]"):
        paddle.static.nn.while_loop(lambda i, a: i < 3, lambda i, a: [i + 1, paddle.mean(a)],
                                    [i, x])
    with pytest.raises(TypeError, match="the value cond returns must be a bool Tensor"):
        paddle.static.nn.while_loop(lambda i, a: paddle.mean(a), lambda i, a: [i, a], [i, x])
    assert main.current_block().idx == 0


def test_a_branch_variable_is_not_visible_outside(static):
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    leaked = []

    def true_fn():
        leaked.append(x * 2.0)
        return x

    paddle.static.nn.cond(paddle.mean(x) > 0.0, true_fn, lambda: x)
    with pytest.raises(ValueError, match="made in block 1 .* not visible in block 0") as info:
        leaked[0] + 1.0  # used outside its branch
    assert _line_of("# used outside its branch") in str(info.value)


# --- other modes ---------------------------------------------------------------------------------

def test_eager_mode_runs_python_control_flow():
    pred = paddle.to_tensor(np.array([True]))
    x = paddle.to_tensor(np.array([2.0], "float32"))
    assert paddle.static.nn.cond(pred, lambda: x * 2.0, lambda: x).numpy().tolist() == [4.0]
    i0, s0 = paddle.to_tensor(np.array([0])), paddle.to_tensor(np.array([0]))
    i, s = paddle.static.nn.while_loop(lambda i, s: i < 4, lambda i, s: [i + 1, s + i],
                                       [i0, s0])
    assert (i.numpy().tolist(), s.numpy().tolist()) == ([4], [6])
    assert i is i0 and s0.numpy().tolist() == [6]  # as Paddle: written back into loop_vars


def test_inside_to_static_cond_builds_a_pd_if():
    def f(x):
        return paddle.static.nn.cond(paddle.mean(x) > 0.0, lambda: x * 2.0, lambda: x - 1.0)

    spec = [paddle.static.InputSpec([None, 2], "float32", "x")]
    sf = paddle.jit.to_static(f, input_spec=spec, full_graph=True)
    assert "pd.if" in str(sf.concrete_program.module)
    for v in ([[1.0, 2.0]], [[-1.0, -2.0]]):  # both branches, against numpy
        x = np.array(v, np.float32)
        want = x * 2 if x.mean() > 0 else x - 1
        np.testing.assert_array_equal(sf(paddle.to_tensor(x)).numpy(), want)
