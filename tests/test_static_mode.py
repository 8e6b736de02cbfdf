"""Static-graph mode as the guide's section 2 uses it, checked against Paddle 3.3.1's own
output (the static_fc fixture: its printed program, saved files and io.npz)."""
import os

import numpy as np
import pytest

import tostatic as paddle
from tostatic.ir.errors import ShapeError
from tostatic.utils import unique_name

from conftest import (FIXTURES, assert_all_close, assert_close, describe_program, fixture_cases,
                      guide_simple_net, paddle_predict)

STATIC_FC = FIXTURES / "static_fc"



def _guide_section_2_2():
    x = paddle.static.data(shape=[None, 10], dtype="float32", name="x")
    y = paddle.static.data(shape=[None, 3], dtype="float32", name="y")
    out = paddle.static.nn.fc(x, 3)
    out = paddle.add(out, y)
    return x, y, out


def test_mode_switches():
    assert paddle.in_dynamic_mode()
    paddle.enable_static()
    try:
        assert not paddle.in_dynamic_mode()
    finally:
        paddle.disable_static()
    assert paddle.in_dynamic_mode()
    assert isinstance(paddle.zeros([2]), paddle.Tensor)  # eager again


def test_zeros_is_a_symbolic_variable_printed_like_paddle(static):
    zeros = paddle.zeros(shape=[1, 2], dtype="float32")
    assert str(zeros) == ("var fill_constant_1.tmp_0 : DENSE_TENSOR.shape(1, 2)"
                          ".dtype(float32).stop_gradient(True)")
    with pytest.raises(TypeError, match="has no data"):
        zeros.numpy()


def test_print_program_equals_paddles_text(static):
    main, _ = static
    _guide_section_2_2()
    assert str(main) + "\n" == (STATIC_FC / "program.txt").read_text()


def test_startup_program_initialises_parameters_as_paddle_writes_it(static):
    _, startup = static
    _guide_section_2_2()
    text = str(startup)
    # Paddle 3.3.1 prints exactly these two init ops for fc(x[-1, 10], 3)
    assert ("{Out=['fc_0.w_0']} = uniform_random(inputs={ShapeTensor=[], ShapeTensorList=[]}, "
            "diag_num = 0, diag_step = 0, diag_val = 1.0, dtype = 5, max = 0.6793662309646606, "
            "min = -0.6793662309646606, op_device = , op_namescope = /, op_role = 0, "
            "op_role_var = [], seed = 0, shape = [10, 3], with_quant_attr = False)") in text
    assert ("{Out=['fc_0.b_0']} = fill_constant(inputs={}, dtype = 5, force_cpu = False, "
            "op_device = , op_namescope = /, op_role = 0, op_role_var = [], place_type = -1, "
            "shape = [3], str_value = 0.0, value = 0.0, with_quant_attr = False)") in text


def test_program_views_have_paddles_attributes(static):
    main, _ = static
    x, y, out = _guide_section_2_2()
    block = main.global_block()
    assert main.num_blocks == 1 and main.blocks[0] is block
    assert list(block.vars) == ["x", "y", "fc_0.w_0", "fc_0.tmp_0", "fc_0.b_0", "fc_0.tmp_1",
                                "elementwise_add_0.tmp_0"]
    w = block.var("fc_0.w_0")
    assert (w.name, w.shape, w.persistable, w.stop_gradient, w.trainable) == \
        ("fc_0.w_0", (10, 3), True, False, True)
    assert isinstance(w, paddle.static.Parameter)
    assert (x.shape, x.dtype, x.persistable, x.stop_gradient) == \
        ((-1, 10), paddle.float32, False, True)
    assert out.name == "elementwise_add_0.tmp_0" and not out.stop_gradient
    mul, bias_add, add = block.ops
    assert (mul.type, mul.input("X"), mul.input("Y"), mul.output("Out")) == \
        ("mul", ["x"], ["fc_0.w_0"], ["fc_0.tmp_0"])
    assert mul.attr("x_num_col_dims") == 1 and bias_add.attr("axis") == 1
    assert add.attr("axis") == -1 and add.input_arg_names == ["fc_0.tmp_1", "y"]
    assert mul.output_names == ["Out"]
    with pytest.raises(ValueError, match="var nothing not in this block"):
        block.var("nothing")
    assert [p.name for p in main.all_parameters()] == ["fc_0.w_0", "fc_0.b_0"]


def test_infer_shape_runs_at_build_time_and_names_both_shapes_and_the_line(static):
    x = paddle.static.data(shape=[None, 10], dtype="float32", name="x")
    y = paddle.static.data(shape=[None, 3], dtype="float32", name="y")
    with pytest.raises(ShapeError) as info:
        paddle.add(x, y)  # the line the error must name
    msg = str(info.value)
    assert "[-1, 10]" in msg and "[-1, 3]" in msg
    assert f"{__file__}:" in msg


def test_executor_runs_startup_then_main(static):
    main, startup = static
    x, y, out = _guide_section_2_2()
    exe = paddle.static.Executor(paddle.CPUPlace())
    assert exe.run(startup) == []
    state = main.state_dict()
    assert sorted(state) == ["fc_0.b_0", "fc_0.w_0"]
    w = np.array(state["fc_0.w_0"])  # a DenseTensor, as Paddle's static state_dict gives
    assert np.abs(w).max() <= 0.6793663 and np.all(np.array(state["fc_0.b_0"]) == 0)
    xs, ys = np.random.rand(4, 10).astype("float32"), np.random.rand(4, 3).astype("float32")
    (got,) = exe.run(main, feed={"x": xs, "y": ys}, fetch_list=[out])
    np.testing.assert_allclose(got, xs @ w + ys, rtol=1e-5)
    (again,) = exe.run(main, feed={"x": xs, "y": ys}, fetch_list=[out.name])
    np.testing.assert_array_equal(again, got)


def test_executor_with_paddles_weights_equals_the_fixture(static):
    main, startup = static
    x, y, out = _guide_section_2_2()
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    from tostatic.serialization.pdiparams import load_combine

    main.set_state_dict(load_combine(STATIC_FC / "model.pdiparams", ["fc_0.b_0", "fc_0.w_0"]))
    for _, feeds, expected in fixture_cases("static_fc"):
        (got,) = exe.run(main, feed=feeds, fetch_list=[out])
        assert_close(got, expected[0])


def test_executor_feed_errors_name_the_variable(static):
    main, startup = static
    _, _, out = _guide_section_2_2()
    exe = paddle.static.Executor()
    exe.run(startup)
    with pytest.raises(ValueError, match=r"'x' expects shape \[-1, 10\]"):
        exe.run(main, feed={"x": np.ones((2, 9), "float32"), "y": np.ones((2, 3), "float32")},
                fetch_list=[out])
    feeds = {"x": np.ones((2, 10), "float32"), "y": np.ones((2, 3), "float32")}
    (want,) = exe.run(main, feed=feeds, fetch_list=[out])
    with pytest.warns(UserWarning, match="The variable z is not found in program"):
        (got,) = exe.run(main, feed={**feeds, "z": np.ones(1, "float32")}, fetch_list=[out])
    np.testing.assert_array_equal(got, want)  # as Paddle: a feed with no variable is ignored


def test_main_program_before_startup_is_a_clear_error(static):
    main, _ = static
    _, _, out = _guide_section_2_2()
    with pytest.raises(RuntimeError, match=r"fc_0\.[wb]_0.*run the startup program"):
        paddle.static.Executor().run(main, feed={"x": np.ones((1, 10), "float32"),
                                                 "y": np.ones((1, 3), "float32")},
                                     fetch_list=[out])


def test_save_inference_model_writes_what_paddle_wrote(static, tmp_path):
    main, startup = static
    x, y, out = _guide_section_2_2()
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    prefix = str(tmp_path / "model")
    paddle.static.save_inference_model(prefix, [x, y], [out], exe, program=main)
    assert describe_program(prefix + ".pdmodel") == describe_program(STATIC_FC / "model.pdmodel")
    program, feeds, fetches = paddle.static.load_inference_model(prefix, exe)
    assert feeds == ["x", "y"] and [f.name for f in fetches] == ["elementwise_add_0.tmp_0"]
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((2, 10), "float32"), rng.standard_normal((2, 3), "float32")
    state = main.state_dict()
    want = xs @ np.array(state["fc_0.w_0"]) + np.array(state["fc_0.b_0"]) + ys
    assert_all_close(exe.run(program, feed={"x": xs, "y": ys}, fetch_list=fetches), [want])


@pytest.mark.parametrize("name", ["static_fc", "control_flow"])
def test_load_inference_model_runs_paddles_files(static, name):
    exe = paddle.static.Executor(paddle.CPUPlace())
    program, feeds, fetches = paddle.static.load_inference_model(str(FIXTURES / name / "model"),
                                                                 exe)
    assert str(program) + "\n" == (FIXTURES / name / "inference_program.txt").read_text()
    for _, feed, expected in fixture_cases(name):  # control_flow: both branches of its `if`
        assert_all_close(exe.run(program, feed=feed, fetch_list=fetches), expected)


def test_to_static_main_program_is_reachable_and_prints_like_paddle():
    with unique_name.guard():
        net = guide_simple_net()()
    specs = [paddle.static.InputSpec([None, 10], "float32", "x"),
             paddle.static.InputSpec([3], "float32", "y")]
    static_net = paddle.jit.to_static(net, input_spec=specs, full_graph=True)
    program = static_net.forward.concrete_program.main_program
    assert str(program) == str(static_net.forward.main_program)
    # what Paddle 3.3.1 prints for the same network (legacy IR)
    assert str(program).splitlines()[:8] == [
        "{ // block_idx:0  parent_idx:-1  forward_idx:-1  backward_idx:-1",
        "    var x : DENSE_TENSOR.shape(-1, 10).dtype(float32).stop_gradient(False)",
        "    var y : DENSE_TENSOR.shape(3,).dtype(float32).stop_gradient(False)",
        "    persist trainable param linear_0.w_0 : DENSE_TENSOR.shape(10, 3).dtype(float32)"
        ".stop_gradient(False)",
        "    persist trainable param linear_0.b_0 : DENSE_TENSOR.shape(3,).dtype(float32)"
        ".stop_gradient(False)",
        "    var linear_0.tmp_0 : DENSE_TENSOR.shape(-1, 3).dtype(float32).stop_gradient(False)",
        "    var linear_0.tmp_1 : DENSE_TENSOR.shape(-1, 3).dtype(float32).stop_gradient(False)",
        "    var tmp_0 : DENSE_TENSOR.shape(-1, 3).dtype(float32).stop_gradient(False)",
    ]
    assert [op.type for op in program.global_block().ops] == \
        ["matmul_v2", "elementwise_add", "elementwise_add"]


@pytest.mark.interop
def test_our_static_model_runs_in_paddle_inference(static, tmp_path, real_paddle):
    main, startup = static
    x, y, out = _guide_section_2_2()
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    prefix = tmp_path / "model"
    paddle.static.save_inference_model(str(prefix), [x, y], [out], exe, program=main)
    feeds = {"x": np.random.rand(3, 10).astype("float32"),
             "y": np.random.rand(3, 3).astype("float32")}
    (want,) = exe.run(main, feed=feeds, fetch_list=[out])
    (got,) = paddle_predict(f"{prefix}.pdmodel", f"{prefix}.pdiparams", feeds)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_paddle_save_of_a_program_and_its_state_dict(static, tmp_path):
    main, startup = static
    _guide_section_2_2()
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    paddle.save(main, str(tmp_path / "main_program.pdimodel"))
    paddle.save(main.state_dict(), str(tmp_path / "main_program.pdiparams"))
    loaded = paddle.load(str(tmp_path / "main_program.pdimodel"))
    assert isinstance(loaded, paddle.static.Program)
    assert [op.type for op in loaded.global_block().ops] == ["mul", "elementwise_add",
                                                             "elementwise_add"]
    state = paddle.load(str(tmp_path / "main_program.pdiparams"))
    assert sorted(state) == sorted(main.state_dict()) == ["fc_0.b_0", "fc_0.w_0"]
    for name, tensor in main.state_dict().items():
        np.testing.assert_array_equal(state[name].numpy(), np.array(tensor))


@pytest.mark.interop
def test_paddle_save_of_a_program_reads_in_real_paddle_and_back(static, tmp_path, real_paddle):
    main, startup = static
    _guide_section_2_2()
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    paddle.save(main, str(tmp_path / "ours.pdimodel"))
    paddle.save(main.state_dict(), str(tmp_path / "ours.pdiparams"))
    real_paddle.enable_static()
    try:
        theirs = real_paddle.load(str(tmp_path / "ours.pdimodel"))
        assert str(theirs) == str(paddle.load(str(tmp_path / "ours.pdimodel")))
        state = real_paddle.load(str(tmp_path / "ours.pdiparams"))
        assert sorted(state) == sorted(main.state_dict()) == ["fc_0.b_0", "fc_0.w_0"]
        for name, tensor in main.state_dict().items():
            np.testing.assert_array_equal(np.array(state[name]), np.array(tensor))
        # and Paddle's own files load here
        real_main, real_startup = real_paddle.static.Program(), real_paddle.static.Program()
        with real_paddle.static.program_guard(real_main, real_startup):
            rx = real_paddle.static.data(shape=[None, 4], dtype="float32", name="x")
            real_paddle.static.nn.fc(rx, 2)
        real_exe = real_paddle.static.Executor(real_paddle.CPUPlace())
        real_exe.run(real_startup)
        real_paddle.save(real_main, str(tmp_path / "theirs.pdimodel"))
        real_paddle.save(real_main.state_dict(), str(tmp_path / "theirs.pdiparams"))
        real_text = str(real_paddle.static.Program.parse_from_string(
            real_main.desc.serialize_to_string()))
        real_state = {k: np.array(v) for k, v in real_main.state_dict().items()}
    finally:
        real_paddle.disable_static()
    ours = paddle.load(str(tmp_path / "theirs.pdimodel"))
    assert str(ours) == real_text
    state = paddle.load(str(tmp_path / "theirs.pdiparams"))
    assert sorted(state) == sorted(real_state) == ["fc_0.b_0", "fc_0.w_0"]
    for name, value in real_state.items():
        np.testing.assert_array_equal(state[name].numpy(), value)


# Static code run by both real Paddle (in a fresh process: its names are process-global) and us.
SCRIPT = """
paddle.enable_static()
x = paddle.static.data(shape=[None, 4], dtype='float32', name='x')
h = paddle.nn.Linear(4, 3)(x)
h = paddle.nn.functional.relu(h) * 2.0
out = paddle.mean(paddle.static.nn.fc(h, 2, activation='sigmoid') - 1.0)
zeros = paddle.zeros([2, 2])
print(paddle.static.default_main_program())
print(paddle.static.default_startup_program())
print(zeros)
paddle.disable_static()
"""


@pytest.mark.interop
def test_static_code_prints_the_programs_paddle_prints(real_paddle, capsys):
    import subprocess
    import sys

    env = {**os.environ, "FLAGS_enable_pir_api": "0", "GLOG_minloglevel": "3"}
    theirs = subprocess.run([sys.executable, "-c", "import paddle\n" + SCRIPT], env=env,
                            capture_output=True, text=True, check=True).stdout
    with unique_name.guard(), \
            paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
        exec(SCRIPT, {"paddle": paddle})
    ours = capsys.readouterr().out
    assert "ValueTensor=[]" in theirs  # paddle.zeros' own form of fill_constant
    assert ours.splitlines() == theirs.splitlines()


def test_each_program_names_its_ops_from_zero_as_paddle_does():
    """What Paddle 3.3.1 gives for this code (fc and op outputs count per Program; layers and
    their parameters count globally, until unique_name.guard())."""
    paddle.enable_static()
    seen = []
    try:
        with unique_name.guard():
            for _ in range(2):
                main, startup = paddle.static.Program(), paddle.static.Program()
                with paddle.static.program_guard(main, startup):
                    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
                    a = paddle.static.nn.fc(x, 2)
                    lin = paddle.nn.Linear(2, 2)
                    lin(a) + 1.0
                    paddle.zeros([1])
                    again = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
                    assert again.name == "x" and again.desc is x.desc
                    with pytest.raises(ValueError, match="previous shape is \\(-1, 4\\), "
                                                         "the new shape is \\(-1, 5\\)"):
                        paddle.static.data(shape=[None, 5], dtype="float32", name="x")
                seen.append((list(main.global_block().vars), lin._full_name))
    finally:
        paddle.disable_static()
    tail = ["tmp_0", "fill_constant_1.tmp_0"]
    assert seen == [
        (["x", "fc_0.w_0", "fc_0.tmp_0", "fc_0.b_0", "fc_0.tmp_1", "linear_0.w_0",
          "linear_0.b_0", "linear_0.tmp_0", "linear_0.tmp_1", *tail], "linear_0"),
        (["x", "fc_0.w_0", "fc_0.tmp_0", "fc_0.b_0", "fc_0.tmp_1", "linear_1.w_0",
          "linear_1.b_0", "linear_0.tmp_0", "linear_0.tmp_1", *tail], "linear_1"),
    ]


def test_executor_results_are_copies_and_programs_are_cached_safely(static):
    import gc

    main, startup = static
    _, _, out = _guide_section_2_2()
    exe = paddle.static.Executor()
    exe.run(startup)
    feeds = {"x": np.ones((1, 10), "float32"), "y": np.ones((1, 3), "float32")}
    (w,) = exe.run(main, feed=feeds, fetch_list=["fc_0.w_0"])
    w[:] = 0  # must not reach the parameter
    assert np.abs(np.array(main.state_dict()["fc_0.w_0"])).sum() > 0
    # programs built and dropped in a loop never reuse each other's compiled runs
    for k in range(5):
        prog, start = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(prog, start):
            x = paddle.static.data(shape=[1], dtype="float32", name="x")
            y = paddle.scale(x, scale=float(k))
        (got,) = exe.run(prog, feed={"x": np.ones(1, "float32")}, fetch_list=[y])
        assert got[0] == k
        del prog, start, x, y
        gc.collect()


SAVE_SCRIPT = """
paddle.enable_static()
main, startup = paddle.static.Program(), paddle.static.Program()
with paddle.static.program_guard(main, startup):
    x = paddle.static.data(shape=[None, 4], dtype='float32', name='x')
    y = paddle.static.data(shape=[None, 3], dtype='float32', name='y')
    h = paddle.static.nn.fc(x, 3, activation='relu')
    t = h * 2.0 + y
    unused = paddle.nn.functional.relu(t)
    out = paddle.mean(paddle.subtract(t, h))
exe = paddle.static.Executor(paddle.CPUPlace())
exe.run(startup)
paddle.static.save_inference_model(prefix, [x, y], [out, t], exe, program=main)
paddle.disable_static()
"""


@pytest.mark.interop
def test_save_inference_model_equals_paddles_for_operators_and_several_fetches(real_paddle,
                                                                            tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "FLAGS_enable_pir_api": "0", "GLOG_minloglevel": "3"}
    theirs = str(tmp_path / "theirs")
    subprocess.run([sys.executable, "-c", f"import paddle\nprefix = {theirs!r}\n" + SAVE_SCRIPT],
                   env=env, check=True, capture_output=True)
    ours = str(tmp_path / "ours")
    with unique_name.guard():
        exec(SAVE_SCRIPT, {"paddle": paddle, "prefix": ours})
    assert describe_program(ours + ".pdmodel") == describe_program(theirs + ".pdmodel")


def test_scopes_are_not_kept_alive_by_the_executor(static):
    import gc
    import weakref

    main, startup = static
    _guide_section_2_2()
    exe = paddle.static.Executor()
    feeds = {"x": np.ones((1, 10), "float32"), "y": np.ones((1, 3), "float32")}
    refs = []
    for _ in range(3):
        scope = paddle.static.Scope()
        with paddle.static.scope_guard(scope):
            exe.run(startup)
            exe.run(main, feed=feeds, fetch_list=["elementwise_add_0.tmp_0"])
        refs.append(weakref.ref(scope))
        del scope
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_full_writes_value_and_str_value_as_paddle_does(static):
    """Paddle 3.3.1: paddle.full truncates `value` for integer dtypes and writes str_value
    as text; initialisers write float text for every dtype; the kernel reads str_value as a
    double (so 2**62 + 1 comes out as 2**62 in int64, in Paddle as here)."""
    main, startup = static
    a = paddle.full([2], 2.7, "int64")
    b = paddle.full([2], 0.1, "float32")
    c = paddle.full([1], 2 ** 62 + 1, "int64")
    ops = main.global_block().ops
    assert [(o.attr("str_value"), o.attr("value")) for o in ops] == [
        ("2", 2.0), ("0.1", np.float32(0.1).item()), (str(2 ** 62 + 1), float(2 ** 62))]
    got = paddle.static.Executor().run(main, fetch_list=[a, b, c])
    assert got[0].tolist() == [2, 2] and got[2].tolist() == [2 ** 62]
    from tostatic.frontend.nn.initializer import Constant
    from tostatic.frontend.static.mode import create_parameter

    create_parameter("k", [2], "int64", Constant(3))
    (init,) = [o for o in startup.global_block().ops if o.output("Out") == ["k"]]
    assert init.attr("str_value") == "3.0" and init.input_names == []
