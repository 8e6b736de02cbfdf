"""Time of each `pd` optimisation pass on its own, on the MLP of export_time.py (200 x
(Linear + ReLU): 1,001 ops after persistable-extraction) and on the same MLP traced inside a
pd.while body and both branches of a pd.if (the passes then work inside regions).

    python benchmarks/pass_time.py [--layers 200] [--width 64] [--repeat 21]

Each pass runs on a fresh clone of the same module; the best and the median of `repeat` runs
of the process's CPU time are printed (the passes are single-threaded Python: CPU time is what
they cost, and stays steady when other work shares the machine).
"""
from __future__ import annotations

import argparse
import statistics
import time

PASSES = ("canonicalize", "constant-folding", "cse", "dead-op-elimination")


def mlp(nn, layers: int, width: int):
    blocks = []
    for _ in range(layers):
        blocks += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*blocks)


def count_ops(module) -> int:
    return sum(1 for _ in module.walk()) - 1  # without the module itself


def time_passes(module, repeat: int) -> dict[str, tuple[float, float]]:
    from tostatic.passes.base import CompileState
    from tostatic.passes.pipeline import parse_pipeline

    out = {}
    for name in PASSES:
        (p,) = parse_pipeline(name)
        times = []
        for _ in range(repeat):
            m = module.clone()
            start = time.process_time()
            p.apply(m, CompileState())
            times.append(time.process_time() - start)
        out[name] = (min(times), statistics.median(times))
    return out


def in_regions(module):
    """The MLP's function body moved into both branches of a `pd.if` on a constant true
    condition: every op of the model then sits inside a region."""
    import numpy as np
    from xdsl.ir import Block, Region

    from tostatic.ir import dtypes
    from tostatic.ir.opdef import Abstract
    from tostatic.ops.control_flow import If, Yield
    from tostatic.ops.core import Constant, array_to_dense
    from tostatic.passes.base import entry

    module = module.clone()
    block = entry(module).body.block
    ret = block.last_op
    body = Block(arg_types=[a.type for a in block.args])
    for outer, inner in zip(block.args, body.args):
        outer.replace_all_uses_with(inner)  # the ops move into `body`; the return reads none
    for op in [op for op in block.ops if op is not ret]:
        op.detach()
        body.add_op(op)
    body.add_op(Yield.make(list(ret.operands), {}, []))
    cond = Constant.make([], {"value": array_to_dense(np.array(True))},
                         [Abstract((), dtypes.bool_).tensor_type()])
    then = Region(body)
    op = If(operands=[[cond.results[0], *block.args]],
            result_types=[[v.type for v in ret.operands]], regions=[then, then.clone()])
    block.insert_op_before(cond, ret)
    block.insert_op_before(op, ret)
    ret.operands = list(op.results)
    module.verify()
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=200)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()

    import tostatic
    from tostatic.frontend.capture.static_function import trace

    model = mlp(tostatic.nn, args.layers, args.width)
    spec = [tostatic.static.InputSpec([None, args.width], "float32", "x")]
    module = trace(model.forward, spec, model, pipeline="persistable-extraction").module
    for label, m in (("entry block", module), ("inside pd.if", in_regions(module))):
        times = time_passes(m, args.repeat)
        print(f"MLP {args.layers} x (Linear({args.width}) + ReLU), {label}: "
              f"{count_ops(m)} ops, best / median of {args.repeat}")
        for name, (best, median) in times.items():
            print(f"  {name:<22} {best * 1e3:8.2f} ms {median * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
