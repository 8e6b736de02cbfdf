"""The legacy ops of Paddle's static `fc`: `mul` (pd.flatten_matmul) and elementwise ops with
a legacy `axis`; the static_fc fixture raised and lowered back writes the ops Paddle wrote."""
from __future__ import annotations

import numpy as np
import pytest

from tostatic.ir import dtypes
from tostatic.ir.errors import ShapeError
from tostatic.ir.opdef import Abstract
from tostatic.ops.elementwise import Add, LessThan
from tostatic.ops.linalg import FlattenMatmul
from tostatic.passes.base import entry
from tostatic.passes.lower_to_program import lower_function
from tostatic.passes.raise_from_program import raise_program
from tostatic.runtime.loaded_model import load_model
from tostatic.serialization import framework_pb2 as fpb
from tostatic.serialization.pdiparams import load_combine, save_combine
from tostatic.serialization.program_desc import load_program, save_program

import legacy_programs as L
from conftest import FIXTURES, assert_close, fixture_cases, paddle_predict


def ab(*shape, dtype=dtypes.float32):
    return Abstract(tuple(shape), dtype)


def test_flatten_matmul_flattens_both_sides_then_multiplies():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y = rng.standard_normal((4, 5, 6)).astype(np.float32)
    (out,) = FlattenMatmul.run_eager([x, y], {"x_num_col_dims": 2, "y_num_col_dims": 2})
    want = (x.reshape(6, 20) @ y.reshape(20, 6)).reshape(2, 3, 6)
    np.testing.assert_allclose(out, want, rtol=1e-5)
    (shape,) = FlattenMatmul.infer_results([ab(-1, 3, 4, 5), ab(4, 5, 6)],
                                           {"x_num_col_dims": 2, "y_num_col_dims": 2})
    assert shape == ab(-1, 3, 6)
    with pytest.raises(ShapeError, match="has 20 columns.*has 4 rows"):
        FlattenMatmul.infer_results([ab(2, 3, 4, 5), ab(4, 5, 6)],
                                    {"x_num_col_dims": 2, "y_num_col_dims": 1})


# (x shape, y shape, axis): Y aligned with X's dims from `axis` (either side may be larger)
AXIS_CASES = [((2, 3, 4, 5), (3, 4), 1), ((2, 3, 4), (3, 1), 1), ((2, 3), (2,), 0),
              ((3, 4), (2, 3, 4, 5), 1), ((2, 3, 4), (4,), -1), ((2, 3, 4), (2, 3), 0)]


@pytest.mark.parametrize("xs,ys,axis", AXIS_CASES)
def test_elementwise_axis_aligns_like_paddle(xs, ys, axis):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(xs), rng.standard_normal(ys)
    big, small, small_shape = (x, y, ys) if len(xs) >= len(ys) else (y, x, xs)
    k = len(big.shape) - len(small_shape) if axis == -1 else axis
    lead = small.reshape(small_shape + (1,) * (big.ndim - k - len(small_shape)))
    (out,) = Add.run_eager([x, y], {"axis": axis})
    np.testing.assert_allclose(out, big + lead)
    (inferred,) = Add.infer_results([ab(*xs), ab(*ys)], {"axis": axis})
    assert inferred.shape == out.shape


def test_elementwise_axis_out_of_range_is_a_shape_error():
    with pytest.raises(ShapeError, match="axis 2 cannot align shape \\[3, 4\\]"):
        Add.infer_results([ab(2, 3, 4), ab(3, 4)], {"axis": 2})
    (c,) = LessThan.infer_results([ab(2, 3), ab(2)], {"axis": 0})
    assert c == ab(2, 3, dtype=dtypes.bool_)


@pytest.mark.interop
@pytest.mark.parametrize("xs,ys,axis", AXIS_CASES)
def test_elementwise_axis_matches_real_paddle(tmp_path, real_paddle, xs, ys, axis):
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal(xs).astype(np.float32),
             "y": rng.standard_normal(ys).astype(np.float32)}
    save_program(tmp_path / "m.pdmodel", L.elementwise_add(xs, ys, axis))
    ours = load_model(str(tmp_path / "m.pdmodel"), None).run([feeds["x"], feeds["y"]])
    (theirs,) = paddle_predict(tmp_path / "m.pdmodel", None, feeds)
    assert_close(ours[0], theirs)


def _ops(path):
    prog = fpb.ProgramDesc.FromString(open(path, "rb").read())
    out = []
    for op in prog.blocks[0].ops:
        kept = fpb.OpDesc()
        kept.CopyFrom(op)
        del kept.attrs[:]
        kept.attrs.extend(a for a in op.attrs if a.name != "op_callstack")
        out.append(str(kept))
    return out


def _round_trip(tmp_path):
    """Raise the static_fc fixture to pd and lower it back to files of our own."""
    d = FIXTURES / "static_fc"
    module, _, _, persistables = raise_program(load_program(d / "model.pdmodel"))
    save_program(tmp_path / "m.pdmodel", lower_function(entry(module)))
    save_combine(tmp_path / "m.pdiparams", load_combine(d / "model.pdiparams", persistables))
    return tmp_path / "m.pdmodel", tmp_path / "m.pdiparams"


def test_static_fc_lowers_back_to_the_ops_paddle_wrote(tmp_path):
    model, _ = _round_trip(tmp_path)
    assert _ops(model) == _ops(FIXTURES / "static_fc/model.pdmodel")  # mul, add axis=1 / -1


@pytest.mark.interop
def test_static_fc_round_trip_runs_in_real_paddle(tmp_path, real_paddle):
    model, params = _round_trip(tmp_path)
    for _, feeds, expected in fixture_cases("static_fc"):
        (got,) = paddle_predict(model, params, feeds)
        assert_close(got, expected[0])
