"""Raising Paddle's conditional_block / while programs into pd.if / pd.while, checked against
the fixture's outputs and, for hand-built programs, against real paddle.inference."""
from __future__ import annotations

import numpy as np
import pytest

from tostatic.ir.errors import UnsupportedError
from tostatic.ops.control_flow import If, While
from tostatic.passes import raise_control_flow
from tostatic.passes.raise_from_program import raise_program
from tostatic.runtime.loaded_model import load_model
from tostatic.serialization.program_desc import load_program, save_program

import legacy_programs as L
from conftest import FIXTURES, assert_all_close, fixture_cases, paddle_predict


def top_level_ops(module):
    return [o.name for o in module.body.block.first_op.body.block.ops]


def test_static_nn_cond_becomes_one_if_and_while_loop_one_while():
    module, *_ = raise_program(load_program(FIXTURES / "control_flow/model.pdmodel"))
    module.verify()
    names = top_level_ops(module)
    assert names.count("pd.if") == 1 and names.count("pd.while") == 1
    assert not {"pd.select_input", "pd.logical_not", "pd.cast", "pd.undefined"} & set(names)
    if_op = next(o for o in module.walk() if isinstance(o, If))
    assert [n.data for n in if_op.attributes["pd.names"].data] == ["_generated_var_4"]
    loop = next(o for o in module.walk() if isinstance(o, While))
    # state: the condition, then what the body writes back; invariants: what it only reads
    assert [n.data for n in loop.attributes["pd.names"].data] == [
        "tmp_4", "fill_constant_1.tmp_0", "_generated_var_4"]
    assert len(loop.operands) == 5


def test_unfused_faithful_form_computes_the_same(monkeypatch):
    """Without the fusion: two pd.ifs whose outputs are undefined when they do not run, and
    pd.select_input choosing between them, as Paddle runs it."""
    monkeypatch.setattr(raise_control_flow, "fuse_conditional_pairs", lambda block: None)
    d = FIXTURES / "control_flow"
    model = load_model(str(d / "model.pdmodel"), str(d / "model.pdiparams"))
    module, *_ = raise_program(model.program)
    assert {"pd.select_input", "pd.undefined"} <= {o.name for o in module.walk()}
    for _, feeds, expected in fixture_cases("control_flow"):
        assert_all_close(model.run([feeds[n] for n in model.feed_names]), expected)


def _run_both(tmp_path, program, feeds, real_paddle=None):
    path = tmp_path / "m.pdmodel"
    save_program(path, program)
    ours = load_model(str(path), None).run(list(feeds.values()))
    if real_paddle is not None:
        theirs = paddle_predict(path, None, feeds)
        assert_all_close(ours, theirs)
    return ours


X = np.array([[3.0, 1.0, -2.0, 0.5], [1.0, 2.0, 3.0, 4.0]], np.float32)


@pytest.mark.parametrize("sign,want", [(1, X + 1), (-1, -X * 2)])
def test_conditional_block_that_does_not_run_keeps_the_previous_value(tmp_path, sign, want):
    (y,) = _run_both(tmp_path, L.lone_conditional_block(), {"x": sign * X})
    np.testing.assert_array_equal(y, want)


@pytest.mark.interop
@pytest.mark.parametrize("sign", [1, -1])
def test_lone_conditional_block_matches_real_paddle(tmp_path, real_paddle, sign):
    _run_both(tmp_path, L.lone_conditional_block(), {"x": sign * X}, real_paddle)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_loop_variable_whose_shape_changes_gets_dynamic_dims(tmp_path, n):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out, i = _run_both(tmp_path, L.transposing_loop(), {"x": x, "n": np.array([n])})
    np.testing.assert_array_equal(out, x.T if n % 2 else x)
    assert i.tolist() == [n]
    module, *_ = raise_program(L.transposing_loop())
    loop = next(o for o in module.walk() if isinstance(o, While))
    assert str(loop.results[1].type) == "tensor<?x?xf32>"


@pytest.mark.interop
@pytest.mark.parametrize("n", [0, 3])
def test_transposing_loop_matches_real_paddle(tmp_path, real_paddle, n):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    _run_both(tmp_path, L.transposing_loop(), {"x": x, "n": np.array([n])}, real_paddle)


def test_conditional_block_without_scalar_condition_is_refused():
    prog = L.lone_conditional_block()
    cb = next(o for o in prog.blocks[0].ops if o.op_type == "conditional_block")
    from tostatic.dialects import program as P

    new = P.OpOp.build("conditional_block", {s: cb.input(s) for s in cb.input_slots},
                       {s: cb.output(s) for s in cb.output_slots},
                       {**{k: cb.attrs_attr.data[k] for k in cb.attr_names},
                        "is_scalar_condition": ("BOOLEAN", False)})
    cb.parent.insert_op_before(new, cb)
    cb.parent.erase_op(cb)
    with pytest.raises(UnsupportedError, match="is_scalar_condition"):
        raise_program(prog)
