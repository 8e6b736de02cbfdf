"""Shared checks of the public API against real Paddle 3.3.1, for the test_api_* files.

A case is a module-level function `fn(P, *tensors)` written once for both libraries (P is
`paddle` or `tostatic`), its numpy inputs and its InputSpec shapes. `check_eager` runs it
eagerly in both; `check_export` wraps it in a Layer, saves it with both libraries' jit.save
(Paddle's in the legacy format), compares the two programs op for op (types, slots, variable
names, attributes) and variable for variable, and runs tostatic's file in paddle.inference
against Paddle's eager outputs, and Paddle's file in tostatic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import re

import numpy as np

import tostatic
from conftest import describe_program, export_forms


@dataclass
class Case:
    id: str
    fn: Callable[..., Any]
    inputs: list[np.ndarray]
    specs: list[list[int | None]] | None = None  # None: every input's shape, batch dynamic
    # False where Paddle 3.3.1 cannot write the function in the legacy format (it builds it in
    # the new IR only): tostatic's program is then checked against `ops` alone
    paddle_writes: bool = True
    # the op types tostatic writes, where its program is not Paddle's op for op
    ops: list[str] = field(default_factory=list)
    onednn: bool = True  # False: paddle.inference with oneDNN off (see check_export)
    rtol: float = 1e-5
    atol: float = 1e-6
    # where Paddle's eager result and its static program's differ by design (paddle.shape:
    # int64 eagerly, the `shape` op's int32 in a file): eager outputs -> the file's outputs
    file_outputs: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None
    # variables whose declared dims are not compared: Paddle's compile-time InferShape leaves
    # some dims -1 that tostatic's shape rules know (affine_grid's H and W), and declares
    # nn.BatchNorm2D's unread SavedMean / SavedVariance without dims
    dims_not_compared: tuple[str, ...] = ()

    def spec_shapes(self) -> list[list[int | None]]:
        if self.specs is not None:
            return self.specs
        return [[None, *a.shape[1:]] if a.ndim else [] for a in self.inputs]


def ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def to_tensors(P: Any, arrays: list[np.ndarray]) -> list[Any]:
    return [P.to_tensor(a) for a in arrays]


def flat(y: Any) -> list[np.ndarray]:
    if isinstance(y, (list, tuple)):
        return [np.asarray(t.numpy()) for t in y]
    return [np.asarray(y.numpy())]


def assert_same(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-5,
                atol: float = 1e-6) -> None:
    assert len(got) == len(want) and want, (len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, (i, g.shape, g.dtype, w.shape, w.dtype)
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")


def check_eager(paddle: Any, case: Case) -> list[np.ndarray]:
    """The function run eagerly by both libraries gives the same values, shapes and dtypes;
    returns Paddle's outputs."""
    want = flat(case.fn(paddle, *to_tensors(paddle, case.inputs)))
    got = flat(case.fn(tostatic, *to_tensors(tostatic, case.inputs)))
    assert_same(got, want, case.rtol, case.atol)
    return want


def make_layer(P: Any, fn: Callable[..., Any], n_inputs: int) -> Any:
    """A Layer whose forward(x0, ...) is `fn(P, x0, ...)` (Paddle's to_static needs the
    arguments named, not *args)."""

    class Wrapped(P.nn.Layer):
        def __init__(self):
            super().__init__()
            self.fn = fn

    def forward1(self, x0):
        return self.fn(P, x0)

    def forward2(self, x0, x1):
        return self.fn(P, x0, x1)

    def forward3(self, x0, x1, x2):
        return self.fn(P, x0, x1, x2)

    Wrapped.forward = {1: forward1, 2: forward2, 3: forward3}[n_inputs]
    return Wrapped()


def specs_for(module: Any, case: Case) -> list[Any]:
    return [module.static.InputSpec(shape, str(a.dtype), f"x{i}")
            for i, (shape, a) in enumerate(zip(case.spec_shapes(), case.inputs))]


def save_both(paddle: Any, tmp_path: Any, case: Case, make: Callable[[Any], Any] | None = None
              ) -> tuple[Any, Any | None]:
    """tostatic's and (if it writes it) Paddle's jit.save of the case; the file prefixes."""
    make = make or (lambda P: make_layer(P, case.fn, len(case.inputs)))
    save_ours(tmp_path / "ours", case, make)
    if not case.paddle_writes:
        return tmp_path / "ours", None
    with paddle.utils.unique_name.guard():
        theirs = make(paddle)
    theirs.eval()
    paddle.jit.save(theirs, str(tmp_path / "theirs"), input_spec=specs_for(paddle, case))
    return tmp_path / "ours", tmp_path / "theirs"


def save_ours(prefix: Any, case: Case, make: Callable[[Any], Any]) -> None:
    with tostatic.utils.unique_name.guard():
        ours = make(tostatic)
    ours.eval()
    tostatic.jit.save(ours, str(prefix), input_spec=specs_for(tostatic, case))


# `x[1:]` is named `x_slice_<N>` by a counter Paddle's jit keeps for the whole process (its
# LayerHelper names restart with each program); tostatic counts per program, as a fresh Paddle
# process does: the number is left out of the comparison
PROCESS_COUNTED = re.compile(r"_slice_[0-9]+")


def uncounted(text: str) -> str:
    return PROCESS_COUNTED.sub("_slice_N", text)


def op_types(prefix: Any) -> list[str]:
    from tostatic.serialization import framework_pb2 as fpb

    prog = fpb.ProgramDesc.FromString(open(f"{prefix}.pdmodel", "rb").read())
    return [op.type for op in prog.blocks[0].ops if op.type not in ("feed", "fetch")]


def comparable_vars(prefix: Any, dims_not_compared: tuple[str, ...] = ()) -> list[bytes]:
    """The block's variables as bytes, minus `legacy_lod_level` of non-persistable ones
    (Paddle sets it only where an op's InferShape shares the input's LoD, tostatic's lowering
    on every output of a Python-API op; no reader of an inference file depends on it), and
    with every negative dim written -1 (Paddle's compile-time shapes multiply a dynamic dim:
    cumsum's flattened [-1, 3, 4] is [-12]; both mean "known at run time"), and
    `persistable: false` dropped (Paddle leaves it unset on `x[1:]`'s variable, which
    block.create_var declares outside any LayerHelper)."""
    from tostatic.serialization import framework_pb2 as fpb

    prog = fpb.ProgramDesc.FromString(open(f"{prefix}.pdmodel", "rb").read())
    out = []
    for v in prog.blocks[0].vars:
        v = fpb.VarDesc.FromString(v.SerializeToString())
        v.name = uncounted(v.name)
        if not v.persistable:
            v.type.dense_tensor.ClearField("legacy_lod_level")
            v.ClearField("persistable")  # `x[1:]`'s variable: Paddle leaves it unset
        if v.type.HasField("dense_tensor"):
            dims = v.type.dense_tensor.tensor.dims
            dims[:] = [] if v.name in dims_not_compared else [-1 if d < 0 else d for d in dims]
        out.append(v.SerializeToString())
    return sorted(out)


def paddle_predict(prefix: Any, feeds: list[np.ndarray], onednn: bool = True
                   ) -> list[np.ndarray]:
    from paddle import inference

    params = f"{prefix}.pdiparams"
    import os

    cfg = inference.Config(f"{prefix}.pdmodel", params if os.path.exists(params) else "")
    cfg.disable_gpu()
    cfg.disable_glog_info()
    if not onednn:
        cfg.disable_mkldnn()
    predictor = inference.create_predictor(cfg)
    for name, a in zip(predictor.get_input_names(), feeds):
        h = predictor.get_input_handle(name)
        h.reshape(a.shape)
        h.copy_from_cpu(a)
    predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


def check_export(paddle: Any, tmp_path: Any, case: Case, want: list[np.ndarray],
                 make: Callable[[Any], Any] | None = None) -> None:
    """tostatic's file is the program Paddle's jit.save writes (every op and variable; or,
    where Paddle cannot write it, has the expected op types) and gives Paddle's eager
    outputs in paddle.inference (`onednn=False`: with oneDNN off, where Paddle Inference's
    oneDNN kernels differ from Paddle's own); Paddle's file gives them in tostatic. Where
    jit.save wrote an op in a form for paddle2onnx (conftest.export_forms), the program
    compared is saved with those forms off, and the file as written is the one run."""
    with export_forms() as forms_used:
        ours, theirs = save_both(paddle, tmp_path, case, make)
    if case.file_outputs is not None:
        want = case.file_outputs(want)
    if theirs is not None and not case.ops:
        compared = ours
        if forms_used:  # written for paddle2onnx (lower_export_forms.py): compare Paddle's form
            compared = tmp_path / "ours_paddle_form"
            with export_forms(enabled=False):
                save_ours(compared, case, make or (lambda P: make_layer(P, case.fn,
                                                                        len(case.inputs))))
        a, b = describe_program(f"{compared}.pdmodel"), describe_program(f"{theirs}.pdmodel")
        assert [uncounted(o) for o in a["ops0"]] == [uncounted(o) for o in b["ops0"]]
        assert (a["version"], a["op_version_map"]) == (b["version"], b["op_version_map"])
        assert comparable_vars(compared, case.dims_not_compared) == \
            comparable_vars(theirs, case.dims_not_compared)
    else:
        assert op_types(ours) == case.ops
    got = paddle_predict(ours, case.inputs, onednn=case.onednn)
    assert_same([np.asarray(g) for g in got], want, case.rtol, case.atol)
    if theirs is not None:
        loaded = tostatic.jit.load(str(theirs))
        assert_same(flat(loaded(*to_tensors(tostatic, case.inputs))), want, case.rtol,
                    case.atol)
