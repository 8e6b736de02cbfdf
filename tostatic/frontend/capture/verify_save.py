"""Verify on save: jit.save runs the program it is about to write against the eager model.

The exported program (the legacy ProgramDesc, raised back to `pd` exactly as jit.load reads
it) and the eager Layer run on the same inputs drawn within the input spec: every dynamic
(-1) dim at two sizes (2 and 3), floats standard normal, integers in [0, 3) (valid ids for
any embedding), bools at random. Outputs must agree (floats to rtol 1e-4 and an atol of
1e-5 x the largest eager value; integers and bools exactly; values, whatever their dtypes). On a mismatch nothing is
written, and the error names the first op of the exported program whose value differs from
the same variable in the traced program (both run op by op), the user's line that op came
from (`pd.loc`), and the largest difference.

Skipped (jit.save's `verify=None`, the default, decides): models with more than
`MAX_VERIFY_BYTES` of parameters (running them twice more costs about as much as the save;
`verify=True` forces it), programs with random ops (dropout in training, random creation),
input specs that are not all InputSpecs or Tensors, and inputs the eager model itself
refuses (dims tied to each other: it raises on the drawn sizes).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, StringAttr

from tostatic.dialects.program import ProgramOp
from tostatic.frontend.capture.input_spec import InputSpec
from tostatic.frontend.tensor.tensor import Tensor
from tostatic.ir import dtypes
from tostatic.ir.attr_keys import LOC_ATTR, NAMES_ATTR
from tostatic.ir.errors import ToStaticError
from tostatic.ir.opdef import PdOp
from tostatic.ops.control_flow import RegionOp
from tostatic.ops.core import Constant, Persistable, dense_to_array
from tostatic.passes.base import entry
from tostatic.passes.raise_from_program import raise_program
from tostatic.runtime.plan import BlockPlan, ExecutionPlan

__all__ = ["MAX_VERIFY_BYTES", "SaveVerificationError", "verify_export"]

MAX_VERIFY_BYTES = int(os.environ.get("TOSTATIC_VERIFY_MAX_BYTES", 256 << 20))
DYNAMIC_SIZES = (2, 3)


class SaveVerificationError(ToStaticError, AssertionError):
    """The program jit.save would write computes something else than the eager model."""


def _shapes(specs: Sequence[Any], size: int) -> list[tuple[tuple[int, ...], Any]]:
    out = []
    for s in specs:
        shape = [size if d is None or d < 0 else int(d) for d in s.shape]
        out.append((tuple(shape), dtypes.convert_dtype(s.dtype)))
    return out


def _draw(shape: tuple[int, ...], dtype: Any, rng: np.random.Generator) -> np.ndarray:
    npd = dtype.numpy
    if npd is None:
        raise ToStaticError(f"cannot draw inputs of dtype {dtype.name}")
    if npd == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(npd, np.integer):
        return rng.integers(0, 3, size=shape).astype(npd)
    if np.issubdtype(npd, np.complexfloating):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(npd)
    return rng.standard_normal(shape).astype(npd)


def _close(got: np.ndarray, want: np.ndarray) -> tuple[bool, float]:
    """(agree, max abs difference). Values, not dtypes: Paddle's own legacy ops differ from
    its eager API in places (the shape op gives int32, paddle.shape int64)."""
    if want.ndim == 0 and got.size == 1:  # a Python number against its one-element tensor
        got = got.reshape(())
    if got.shape != want.shape:
        return False, float("inf")
    if got.size == 0:
        return True, 0.0
    if got.dtype.kind in "fc" or want.dtype.kind in "fc":
        g, w = got.astype(np.complex128 if got.dtype.kind == "c" else np.float64), \
            want.astype(np.complex128 if want.dtype.kind == "c" else np.float64)
        finite = np.isfinite(w) & np.isfinite(g)
        same_special = (np.isnan(g) & np.isnan(w)) | (g == w)
        diff = np.where(finite, np.abs(g - w), np.where(same_special, 0.0, np.inf))
        scale = float(np.max(np.abs(np.where(np.isfinite(w), w, 0)))) if w.size else 0.0
        ok = bool(np.all(diff <= 1e-5 * max(1.0, scale) + 1e-4 * np.abs(np.where(finite, w, 0))))
        return ok, float(np.max(diff))
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return bool(np.array_equal(got, want)), float(np.max(diff))  # ints and bools: exactly


def _has_random_ops(fn: func.FuncOp) -> bool:
    return any(isinstance(op, PdOp) and not isinstance(op, RegionOp) and op.EFFECTS
               for op in fn.walk())


def raised_export(program: ProgramOp) -> func.FuncOp:
    """The exported program raised as jit.load raises it (raise-from-program's function, on
    the program itself: no copy, no pruning, no IR verifier, which costs as much as raising)."""
    module, *_ = raise_program(program)
    return entry(module)


def _values_by_name(fn: func.FuncOp, weights: dict[str, Any],
                    feeds: list[np.ndarray]) -> list[tuple[Any, str, np.ndarray]]:
    """Run the function's top-level ops one by one: (op, variable name, value) for every
    named result, in order."""
    env: dict[Any, Any] = dict(zip(fn.body.block.args, feeds))
    out = []
    for op in fn.body.block.ops:
        if isinstance(op, func.ReturnOp):
            break
        if isinstance(op, Persistable):
            w = weights[op.attr_values()["var_name"]]
            results = [w.numpy() if hasattr(w, "numpy") else w]
        elif isinstance(op, Constant):
            results = [dense_to_array(op.attr_values()["value"])]
        elif isinstance(op, RegionOp):
            nested = [BlockPlan(r.block, weights).run for r in op.regions]
            results = op.kernel(nested)([env[v] for v in op.operands])
        elif isinstance(op, PdOp):
            results = type(op).run_eager([env[v] for v in op.operands], op.attr_values())
        else:
            return out
        names = op.attributes.get(NAMES_ATTR)
        names = [a.data for a in names.data] if isinstance(names, ArrayAttr) else []
        for r, value, name in zip(op.results, results, names + [None] * len(op.results)):
            env[r] = np.asarray(value)
            if name:
                out.append((op, name, env[r]))
    return out


def _locate(reference: func.FuncOp, exported: func.FuncOp, weights: dict[str, Any],
            feeds: list[np.ndarray]) -> str:
    """The first op of the exported program whose value differs from the traced one's."""
    try:
        ref = {name: (op, v) for op, name, v in _values_by_name(reference, weights, feeds)}
        steps = _values_by_name(exported, weights, feeds)
    except Exception as e:  # noqa: BLE001 - a kernel failing on one of them: say so
        return f"(running the programs op by op failed: {type(e).__name__}: {e})"
    position = {op: i for i, op in enumerate(exported.body.block.ops)}
    for op, name, value in steps:
        if name not in ref:
            continue
        ref_op, want = ref[name]
        ok, diff = _close(value, want)
        if not ok:
            loc = ref_op.attributes.get(LOC_ATTR)
            where = f" at {loc.data}" if isinstance(loc, StringAttr) else ""
            shapes = "" if value.shape == want.shape else \
                f" (shape {list(value.shape)}, traced {list(want.shape)})"
            return (f"first diverging op: {op.name} (op {position[op]} of the exported "
                    f"program) writing {name!r}, traced from {ref_op.name}{where}: max "
                    f"difference {diff:.4g}{shapes}")
    return "no single op differs from the traced program (the difference comes from tracing " \
           "or the optimisation passes, not the lowering)"


def verify_export(eager: Callable[..., Any], specs: Sequence[Any], program: ProgramOp,
                  weights: dict[str, Any], layer: Any,
                  reference: Callable[[], func.FuncOp]) -> str | None:
    """Compare; raise SaveVerificationError on a mismatch. Returns why it skipped, or None.
    `reference()` traces the program again up to before lowering (only on a mismatch)."""
    if not all(isinstance(s, (InputSpec, Tensor)) for s in specs):
        return "the input spec holds values other than InputSpecs and Tensors"
    exported = raised_export(program)
    if _has_random_ops(exported):
        return "the program has random ops"
    plan = ExecutionPlan(exported, weights)
    modes = [(m, m.training) for m in _sublayers(layer)]
    rng = np.random.default_rng(0)
    sizes = DYNAMIC_SIZES if any(d is None or d < 0 for s in specs for d in s.shape) else (2,)
    verified = 0
    try:
        for m, _ in modes:
            m.training = False
        for size in sizes:
            feeds = [_draw(shape, dt, rng) for shape, dt in _shapes(specs, size)]
            try:
                result = eager(*[Tensor(f) for f in feeds])
            except Exception:  # noqa: BLE001 - sizes the model does not take: not verifiable
                continue
            got = plan.run(feeds)
            leaves: list[Any] = []
            _leaves(result, leaves)
            if len(got) != len(leaves):
                # a Python number the eager model returns is an output of the program when
                # it came out of converted control flow (a loop counter)
                with_numbers: list[Any] = []
                _leaves(result, with_numbers, numbers=True)
                if len(got) == len(with_numbers):
                    leaves = with_numbers
            verified += 1
            for i, (g, w) in enumerate(zip(got, leaves)):
                ok, diff = _close(np.asarray(g), w)
                if not ok:
                    where = _locate(reference(), exported, weights, feeds)
                    sizes_text = ", ".join(f"{list(f.shape)}" for f in feeds)
                    raise SaveVerificationError(
                        f"jit.save: the exported program's output {i} differs from the "
                        f"eager model's (max difference {diff:.4g}) on inputs of shapes "
                        f"{sizes_text}; {where}. Nothing was written; jit.save(..., "
                        f"verify=False) writes it anyway")
            if len(got) != len(leaves):
                raise SaveVerificationError(f"jit.save: the exported program has {len(got)} "
                                            f"outputs, the eager model returns {len(leaves)}")
    finally:
        for m, training in modes:
            m.training = training
    return None if verified else "the eager model refused every input drawn from the spec"


def _sublayers(layer: Any) -> list[Any]:
    if layer is None or not hasattr(layer, "sublayers"):
        return []
    return [layer, *layer.sublayers()]


def _leaves(tree: Any, out: list[np.ndarray], numbers: bool = False) -> None:
    if isinstance(tree, (list, tuple)):
        for t in tree:
            _leaves(t, out, numbers)
    elif isinstance(tree, dict):
        for t in tree.values():
            _leaves(t, out, numbers)
    elif numbers and isinstance(tree, (bool, int, float)):
        out.append(np.asarray(tree))
    elif isinstance(tree, Tensor):
        out.append(np.asarray(tree.numpy()))
    elif isinstance(tree, np.ndarray):
        out.append(tree)
