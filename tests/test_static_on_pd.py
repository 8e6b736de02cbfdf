"""Static mode on the same compiler as to_static: a Program is a `pd` function, lowered by
lower-to-program (live / save modes) through the PassManager, pruned by dead-op-elimination;
Variable is one class for static and traced symbolic tensors."""
import numpy as np

import tostatic as paddle
from tostatic.dialects.context import parse_ir
from tostatic.dialects.program import ProgramOp
from tostatic.frontend.tensor.variable import Variable
from tostatic.ir.text import print_ir
from tostatic.ops.control_flow import If, While
from tostatic.passes.manager import PassManager
from tostatic.serialization.program_desc import load_program


def _control_flow_program():
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    n = paddle.static.data(shape=[1], dtype="int64", name="n")
    h = paddle.static.nn.fc(x, 4)
    out = paddle.static.nn.cond(paddle.mean(x) > 0.0, lambda: h * 2.0, lambda: h - 1.0)
    i, acc = paddle.static.nn.while_loop(lambda i, acc: i < n,
                                         lambda i, acc: [i + 1, acc * 0.5 + h],
                                         [paddle.zeros([1], dtype="int64"), out])
    return x, n, acc, i


def _ops(desc):
    return [(b.idx, b.parent_idx, [(o.op_type, o.input_names, o.output_names) for o in b.ops])
            for b in desc.blocks]


def test_a_program_is_a_pd_function_whose_text_lowers_to_the_same_program(static):
    main, _ = static
    _control_flow_program()
    module = main.pd_module()
    kinds = [type(op) for op in module.walk()]
    assert If in kinds and While in kinds
    assert not any(op.name.startswith("program.") for op in module.walk())
    # the IR carries every name Paddle gave: its text, lowered alone, is the same program
    replayed = parse_ir(print_ir(module))
    PassManager("lower-to-program{mode=live}").run(replayed)
    (desc,) = [op for op in replayed.body.block.ops if isinstance(op, ProgramOp)]
    assert _ops(desc) == _ops(main.desc)


def test_printing_a_static_program_runs_the_live_lowering_through_the_pass_manager(
        static, monkeypatch, capsys):
    main, _ = static
    paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    monkeypatch.setenv("TOSTATIC_DUMP", "after-all")
    text = str(main)
    err = capsys.readouterr().err
    assert "After lower-to-program" in err and '"program.program"' in err
    assert str(main) == text  # lowered once per version: no second dump
    assert "After lower-to-program" not in capsys.readouterr().err


def test_saving_prunes_with_dead_op_elimination_inside_branches_too(static, tmp_path):
    main, startup = static
    x = paddle.static.data(shape=[None, 3], dtype="float32", name="x")
    t = x * 3.0

    def true_fn():
        paddle.nn.functional.relu(t)  # unused: pruned from its block
        return x * 2.0

    kept = paddle.static.nn.cond(paddle.mean(x) > 0.0, true_fn, lambda: x - 1.0)
    paddle.static.nn.cond(paddle.mean(x) > 1.0, lambda: x * 5.0, lambda: x * 6.0)  # not fetched
    exe = paddle.static.Executor()
    exe.run(startup)
    paddle.static.save_inference_model(str(tmp_path / "m"), [x], [kept], exe, program=main)
    desc = load_program(tmp_path / "m.pdmodel")
    assert len(desc.blocks) == 3
    assert [o.op_type for o in desc.blocks[1].ops] == ["scale", "assign"]
    (then_op, _) = [o for o in desc.blocks[0].ops if o.op_type == "conditional_block"]
    # the slot stays as the program built it, and so does what it lists (Paddle's prune)
    live = [o for o in main.desc.blocks[0].ops if o.op_type == "conditional_block"][0]
    assert then_op.input("Input") == live.input("Input") and t.name in then_op.input("Input")
    assert t.name in [o.output("Out")[0] for o in desc.blocks[0].ops if o.op_type == "scale"]
    program, feeds, fetches = paddle.static.load_inference_model(str(tmp_path / "m"), exe)
    for sign in (1.0, -1.0):
        xs = sign * np.ones((2, 3), "float32")
        (got,) = exe.run(program, feed={"x": xs}, fetch_list=fetches)
        np.testing.assert_array_equal(got, xs * 2 if sign > 0 else xs - 1)


def test_saving_drops_random_draws_nothing_reads_as_paddle_prunes(static, tmp_path):
    main, startup = static
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    paddle.rand([4])  # effects (the random state), but not needed by the fetch
    y = paddle.static.nn.cond(paddle.mean(x) > 0.0, lambda: x + paddle.rand([4]) * 0.0,
                              lambda: x * 2.0)
    exe = paddle.static.Executor()
    exe.run(startup)
    paddle.static.save_inference_model(str(tmp_path / "a"), [x], [x * 2.0], exe, program=main)
    assert [o.op_type for o in load_program(tmp_path / "a.pdmodel").blocks[0].ops] == \
        ["feed", "scale", "fetch"]
    paddle.static.save_inference_model(str(tmp_path / "b"), [x], [y], exe, program=main)
    desc = load_program(tmp_path / "b.pdmodel")  # the draw the fetch needs stays
    assert "uniform_random" in [o.op_type for o in desc.blocks[1].ops]
    assert "uniform_random" not in [o.op_type for o in desc.blocks[0].ops]


def test_a_fed_variable_an_op_computes_is_read_from_the_feed(static, tmp_path):
    main, startup = static
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    h = paddle.static.nn.fc(x, 4)
    out = paddle.nn.functional.relu(h) + 1.0
    exe = paddle.static.Executor()
    exe.run(startup)
    paddle.static.save_inference_model(str(tmp_path / "m"), [h], [out], exe, program=main)
    program, feeds, fetches = paddle.static.load_inference_model(str(tmp_path / "m"), exe)
    assert feeds == [h.name]
    assert [op.type for op in program.global_block().ops] == ["feed", "relu", "scale", "fetch"]
    hs = np.array([[-1.0, 0.0, 2.0, 3.0]], "float32")
    (got,) = exe.run(program, feed={h.name: hs}, fetch_list=fetches)
    np.testing.assert_array_equal(got, np.maximum(hs, 0) + 1.0)


def test_fetches_that_need_a_variable_not_fed_are_refused(static, tmp_path):
    main, startup = static
    x = paddle.static.data(shape=[None, 4], dtype="float32", name="x")
    y = paddle.static.data(shape=[None, 4], dtype="float32", name="y")
    out = x + y
    exe = paddle.static.Executor()
    exe.run(startup)
    try:
        paddle.static.save_inference_model(str(tmp_path / "m"), [x], [out], exe, program=main)
    except ValueError as e:
        assert "'y'" in str(e) and "feed_vars" in str(e)
    else:
        raise AssertionError("saved a program that reads a variable nobody feeds")


def test_variable_is_one_class_for_static_and_traced_tensors(static):
    main, _ = static
    x = paddle.static.data(shape=[None, 10], dtype="float32", name="x")
    w = paddle.static.nn.fc(x, 3).block.program.global_block().var("fc_0.w_0")
    assert paddle.static.Variable is Variable
    assert isinstance(x, paddle.static.Variable) and isinstance(w, paddle.static.Parameter)
    assert isinstance(w, Variable) and w.persistable and w.trainable
    seen = []

    def f(t):
        seen.append(t)
        return t * 2.0

    paddle.disable_static()
    try:
        paddle.jit.to_static(f, input_spec=[paddle.static.InputSpec([None, 2], "float32", "t")],
                             full_graph=True).concrete_program
    finally:
        paddle.enable_static()
    assert type(seen[0]) is paddle.static.Variable and seen[0].block is None
    assert str(seen[0]) == "var t : DENSE_TENSOR.shape(-1, 2).dtype(float32).stop_gradient(False)"
