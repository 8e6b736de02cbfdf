"""What the Transformer / NLP API tests share: saving the same model or function with
Paddle 3.3.1's jit.save (legacy format, Paddle 2.x's branches where 3.3.1 dropped them) and
with tostatic's, and comparing the two programs op for op and variable for variable."""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np

from tostatic.serialization import framework_pb2 as fpb

from paddle_2x import legacy_branches

# Variables whose `legacy_lod_level: 0` tostatic writes where Paddle's files do not, or the
# other way round (how the op definitions in tostatic/ops declare these outputs, not what
# the API writes; values and shapes are the same): none left (the op definitions declare
# legacy_lod_level per result as Paddle does); a test may name its own. Anything else fails.
KNOWN_LOD = re.compile(r"(?!)")


def spec_of(module: Any, shape: Sequence[int | None], dtype: str, name: str) -> Any:
    return module.static.InputSpec(list(shape), dtype, name)


def paddle_save(paddle: Any, make: Callable[[], Any], specs: list[Any], prefix: str) -> Any:
    """Paddle's jit.save of what make() builds (a Layer, put in eval mode, or a function),
    built and traced inside legacy_branches, names starting at _0. Returns the object."""
    with legacy_branches(paddle), paddle.utils.unique_name.guard():
        obj = make()
        if isinstance(obj, paddle.nn.Layer):
            obj.eval()
            paddle.jit.save(obj, prefix, input_spec=specs)
        else:
            paddle.jit.save(paddle.jit.to_static(obj, input_spec=specs, full_graph=True),
                            prefix)
    return obj


def ours_save(make: Callable[[], Any], specs: list[Any], prefix: str) -> Any:
    import tostatic
    from tostatic.ir import names

    with names.guard():
        obj = make()
        if isinstance(obj, tostatic.nn.Layer):
            obj.eval()
            tostatic.jit.save(obj, prefix, input_spec=specs)
        else:
            tostatic.jit.save(tostatic.jit.to_static(obj, input_spec=specs), prefix)
    return obj


def _program(path: str) -> fpb.ProgramDesc:
    return fpb.ProgramDesc.FromString(open(path, "rb").read())


def _op_text(op: fpb.OpDesc) -> str:
    kept = fpb.OpDesc()
    kept.CopyFrom(op)
    del kept.attrs[:]
    kept.attrs.extend(a for a in op.attrs if a.name != "op_callstack")
    return str(kept)


def program_differences(ours: str, theirs: str, known: re.Pattern = KNOWN_LOD) -> list[str]:
    """Where the .pdmodel at `ours` differs from the one at `theirs`: ops in order (without
    op_callstack), variables by name, versions; [] when they agree but for `known`."""
    a, b = _program(ours), _program(theirs)
    found = []
    if a.version.version != b.version.version:
        found.append(f"version {a.version.version} != {b.version.version}")
    if len(a.blocks) != len(b.blocks):
        return found + [f"{len(a.blocks)} blocks, Paddle {len(b.blocks)}"]
    for i, (ba, bb) in enumerate(zip(a.blocks, b.blocks)):
        ops_a, ops_b = [_op_text(o) for o in ba.ops], [_op_text(o) for o in bb.ops]
        for j, (x, y) in enumerate(zip(ops_a, ops_b)):
            if x != y:
                found.append(f"block {i} op {j}:\n--- tostatic\n{x}--- Paddle\n{y}")
                break
        if len(ops_a) != len(ops_b):
            found.append(f"block {i}: {len(ops_a)} ops, Paddle {len(ops_b)}: "
                         f"{[o.type for o in ba.ops]} vs {[o.type for o in bb.ops]}")
        va, vb = {v.name: v for v in ba.vars}, {v.name: v for v in bb.vars}
        only_paddle = sorted(set(vb) - set(va))
        if set(va) - set(vb) or only_paddle:
            found.append(f"block {i} vars only in tostatic {sorted(set(va) - set(vb))}, only "
                         f"in Paddle {only_paddle}")
        for name in sorted(set(va) & set(vb)):
            x, y = va[name], vb[name]
            if x == y:
                continue
            if known.match(name):
                x, y = fpb.VarDesc(), fpb.VarDesc()
                x.CopyFrom(va[name])
                y.CopyFrom(vb[name])
                for v in (x, y):
                    v.type.dense_tensor.ClearField("legacy_lod_level")
                if x == y:
                    continue
            found.append(f"block {i} var {name}:\n--- tostatic\n{va[name]}--- Paddle\n"
                         f"{vb[name]}")
    return found


def predict(model: str, params: str | None, feeds: dict[str, np.ndarray],
            onednn: bool = True) -> list[np.ndarray]:
    from conftest import paddle_predict

    return paddle_predict(model, params, feeds, onednn=onednn)


def openvino_run(model: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """OpenVINO's Paddle frontend: read_model(path.pdmodel), compiled for the CPU in float32
    (its default on this CPU is bfloat16, off by 1e-2)."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(model)), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    results = compiled(feeds)
    return [np.asarray(results[out]) for out in compiled.outputs]
