"""The optimizer update ops in a static Program: tostatic writes each as Paddle's legacy op
(slots, attributes, ParamOut written into Param's variable ...) and runs it in its Executor;
real Paddle 3.3.1 parses the same program bytes and runs them with its own kernels: the same
new parameter and accumulators. Non-default attributes throughout (Nesterov with l2_decay,
centered RMSProp with momentum, AdamW's decay and lr_ratio, Lamb's weight decay), and moments
and beta powers as after a few steps."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic as paddle
from tostatic.frontend.tensor.dispatch import apply
from tostatic.ops import optimizer as O

rng = np.random.default_rng(0)
SHAPE = (3, 4)
P = rng.standard_normal(SHAPE).astype(np.float32)
G = rng.standard_normal(SHAPE).astype(np.float32)
M = (rng.standard_normal(SHAPE) * 0.1).astype(np.float32)
V = rng.random(SHAPE).astype(np.float32) * 0.01
LR = np.array([0.05], np.float32)
B1 = np.array([0.9 ** 3], np.float32)
B2 = np.array([0.999 ** 3], np.float32)

ADAM_IN = {"param": P, "grad": G, "learning_rate": LR, "moment1": M, "moment2": V,
           "beta1_pow": B1, "beta2_pow": B2}
CASES = {
    "sgd": (O.Sgd, {"param": P, "learning_rate": LR, "grad": G}, {}),
    "momentum": (O.Momentum, {"param": P, "grad": G, "velocity": M, "learning_rate": LR},
                 {"mu": 0.8, "use_nesterov": True, "regularization_method": "l2_decay",
                  "regularization_coeff": 0.01}),
    "adam": (O.Adam, ADAM_IN, {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-6}),
    "adamw": (O.AdamW, ADAM_IN, {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-6,
                                 "coeff": 0.1, "with_decay": True, "lr_ratio": 1.0}),
    "rmsprop": (O.Rmsprop, {"param": P, "mean_square": V, "grad": G, "moment": M,
                            "learning_rate": LR, "mean_grad": M * 0.1},
                {"epsilon": 1e-6, "decay": 0.9, "momentum": 0.5, "centered": True}),
    "adagrad": (O.Adagrad, {"param": P, "grad": G, "moment": V, "learning_rate": LR},
                {"epsilon": 1e-6}),
    "lamb": (O.Lamb, ADAM_IN, {"weight_decay": 0.02, "beta1": 0.9, "beta2": 0.999,
                               "epsilon": 1e-6}),
}

def run_in_paddle(paddle_, cases):
    """Real Paddle parses each saved program and runs it in its Executor."""
    out = {}
    paddle_.enable_static()
    try:
        for name, case in cases.items():
            prog = paddle_.static.Program.parse_from_string(open(case["file"], "rb").read())
            exe = paddle_.static.Executor(paddle_.CPUPlace())
            with paddle_.static.scope_guard(paddle_.static.Scope()):
                out[name] = exe.run(prog, feed=case["feed"], fetch_list=case["fetch"])
    finally:
        paddle_.disable_static()
    return out


def build(name):
    """The op in a static Program; returns the program, its feeds and the updated vars."""
    op_cls, inputs, attrs = CASES[name]
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.utils.unique_name.guard(), paddle.static.program_guard(main, startup):
        data = {k: paddle.static.data(k, list(v.shape), "float32") for k, v in inputs.items()}
        apply(op_cls, *[data[k] for k in op_cls.INPUTS], **attrs)
    fetch = list(dict.fromkeys(op_cls.UPDATES.values()))  # written in place: fetch by name
    return main, {k: inputs[k] for k in op_cls.INPUTS}, fetch


@pytest.mark.interop
def test_update_ops_run_in_paddles_executor(real_paddle, tmp_path):
    ours, cases = {}, {}
    paddle.enable_static()
    try:
        for name in CASES:
            main, feed, fetch = build(name)
            exe = paddle.static.Executor(paddle.CPUPlace())
            ours[name] = exe.run(main, feed=feed, fetch_list=fetch)
            path = tmp_path / f"{name}.pdmodel"
            paddle.save(main, str(path))
            cases[name] = {"file": str(path), "feed": feed, "fetch": fetch}
    finally:
        paddle.disable_static()
    theirs = run_in_paddle(real_paddle, cases)
    for name in CASES:
        for var, got, want in zip(cases[name]["fetch"], ours[name], theirs[name]):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want, np.float32),
                                       rtol=2e-6, atol=1e-7, err_msg=f"{name} {var}")
        changed = np.asarray(ours[name][0])
        assert not np.allclose(changed, CASES[name][1]["param"]), name  # it updated
