"""The activation functions of paddle.nn.functional (relu6, hardswish, hardsigmoid, swish,
silu, leaky_relu, elu, prelu, softmax, sigmoid, tanh, relu) and their layers (ReLU6,
Hardswish, Hardsigmoid, Swish, Silu, LeakyReLU, ELU, PReLU, Softmax, Sigmoid, Tanh) against
real Paddle 3.3.1: eager values; the program jit.save writes, op for op as Paddle's; run in
paddle.inference with Paddle's outputs; constructors, full names, parameters and state-dict
keys."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic

from api_harness import Case, check_eager, check_export, ids

rng = np.random.default_rng(9)


def f32(*shape):
    return (rng.standard_normal(shape) * 3).astype(np.float32)


X = f32(2, 3, 4, 5)
NHWC = f32(2, 4, 5, 3)


def relu6(P, x): return P.nn.functional.relu6(x)
def hardswish(P, x): return P.nn.functional.hardswish(x)
def hardsigmoid(P, x): return P.nn.functional.hardsigmoid(x)
def hardsigmoid_args(P, x): return P.nn.functional.hardsigmoid(x, slope=0.2, offset=0.4)
def swish(P, x): return P.nn.functional.swish(x)
def silu(P, x): return P.nn.functional.silu(x)
def leaky_relu(P, x): return P.nn.functional.leaky_relu(x)
def leaky_relu_slope(P, x): return P.nn.functional.leaky_relu(x, 0.2, name="leaky")
def elu(P, x): return P.nn.functional.elu(x, alpha=0.5)
def prelu_all(P, x, w): return P.nn.functional.prelu(x, w)
def prelu_channel(P, x, w): return P.nn.functional.prelu(x, w)
def prelu_nhwc(P, x, w): return P.nn.functional.prelu(x, w, data_format="NHWC")
def prelu_ncl(P, x, w): return P.nn.functional.prelu(x, w, data_format="NCL")
def softmax(P, x): return P.nn.functional.softmax(x)
def softmax_axis(P, x): return P.nn.functional.softmax(x, axis=1)
def softmax_dtype(P, x): return P.nn.functional.softmax(x, dtype="float64")
def relu(P, x): return P.nn.functional.relu(x)
# Paddle 3.3.1 builds these in the new IR only: tostatic writes them as Paddle 2.x did
def sigmoid(P, x): return P.nn.functional.sigmoid(x)
def tanh(P, x): return P.nn.functional.tanh(x)
def tanh_method(P, x): return x.tanh()


FUNCTIONS = [
    Case("relu6", relu6, [X]),
    Case("hardswish", hardswish, [X]),
    Case("hardsigmoid", hardsigmoid, [X]),
    Case("hardsigmoid_args", hardsigmoid_args, [X]),
    Case("swish", swish, [X]),
    Case("silu", silu, [X]),
    Case("leaky_relu", leaky_relu, [X]),
    Case("leaky_relu_slope", leaky_relu_slope, [X]),
    Case("elu", elu, [X]),
    Case("prelu_all", prelu_all, [X, np.array([0.2], np.float32)], specs=[[None, 3, 4, 5], [1]]),
    Case("prelu_channel", prelu_channel, [X, f32(3)], specs=[[None, 3, 4, 5], [3]]),
    Case("prelu_nhwc", prelu_nhwc, [NHWC, f32(3)], specs=[[None, 4, 5, 3], [3]]),
    Case("prelu_ncl", prelu_ncl, [f32(2, 3, 4), np.array([0.2], np.float32)],
         specs=[[None, 3, 4], [1]]),
    Case("softmax", softmax, [X]),
    Case("softmax_axis", softmax_axis, [X]),
    Case("softmax_dtype", softmax_dtype, [X]),
    Case("relu", relu, [X]),
    Case("sigmoid", sigmoid, [X], paddle_writes=False, ops=["sigmoid"]),
    Case("tanh", tanh, [X], paddle_writes=False, ops=["tanh"]),
    Case("tanh_method", tanh_method, [X], paddle_writes=False, ops=["tanh"]),
]


@pytest.mark.interop
@pytest.mark.parametrize("case", FUNCTIONS, ids=ids(FUNCTIONS))
def test_function_eager_and_exported_as_paddle(real_paddle, tmp_path, case):
    want = check_eager(real_paddle, case)
    check_export(real_paddle, tmp_path, case, want)


# --------------------------------------------------------------------------- layers

LAYERS = [  # (id, constructor given a `nn` module, input, whether Paddle writes it)
    ("relu6", lambda nn: nn.ReLU6(), X, True),
    ("hardswish", lambda nn: nn.Hardswish(), X, True),
    ("hardsigmoid", lambda nn: nn.Hardsigmoid(), X, True),
    ("swish", lambda nn: nn.Swish(), X, True),
    ("silu", lambda nn: nn.Silu(), X, True),
    ("leaky_relu", lambda nn: nn.LeakyReLU(0.1), X, True),
    ("leaky_relu_named", lambda nn: nn.LeakyReLU(name="act"), X, True),
    ("elu", lambda nn: nn.ELU(0.3), X, True),
    ("prelu", lambda nn: nn.PReLU(), X, True),
    ("prelu_channels", lambda nn: nn.PReLU(3, 0.1), X, True),
    ("prelu_nhwc", lambda nn: nn.PReLU(3, data_format="NHWC"), NHWC, True),
    ("softmax", lambda nn: nn.Softmax(axis=1), X, True),
    ("sigmoid", lambda nn: nn.Sigmoid(), X, False),
    ("tanh", lambda nn: nn.Tanh(), X, False),
]


def make_pair(paddle, make):
    """The layer built by both libraries (names from _0), tostatic's given Paddle's
    (randomised) parameters through its state dict."""
    with paddle.utils.unique_name.guard():
        theirs = make(paddle.nn)
    with tostatic.utils.unique_name.guard():
        ours = make(tostatic.nn)
    for p in theirs.parameters():
        p.set_value(paddle.to_tensor(rng.uniform(0.05, 0.5, p.shape).astype(np.float32)))
    missing, unexpected = ours.set_state_dict({k: v.numpy()
                                               for k, v in theirs.state_dict().items()})
    assert not missing and not unexpected
    return ours, theirs


@pytest.mark.interop
@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_matches_paddle(real_paddle, tmp_path, case):
    _, make, x, paddle_writes = case
    ours, theirs = make_pair(real_paddle, make)
    assert ours.full_name() == theirs.full_name()
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [(p.name, p.shape) for p in ours.parameters()] == \
        [(p.name, list(p.shape)) for p in theirs.parameters()]
    layer_case = Case(case[0], None, [x], paddle_writes=paddle_writes,
                      ops=[] if paddle_writes else [case[0]])
    want = [theirs(real_paddle.to_tensor(x)).numpy()]
    np.testing.assert_allclose(ours(tostatic.to_tensor(x)).numpy(), want[0], rtol=1e-5,
                               atol=1e-6)
    check_export(real_paddle, tmp_path, layer_case, want,
                 make=lambda P: ours if P is tostatic else theirs)


def test_prelu_layer_defaults_and_errors():
    layer = tostatic.nn.PReLU(4, init=0.3)
    assert layer._weight.shape == [4] and np.all(layer._weight.numpy() == np.float32(0.3))
    x = tostatic.to_tensor(f32(2, 3, 4))
    with pytest.raises(ValueError, match="weight size should be equal to x input channel"):
        layer(x)
    with pytest.raises(ValueError, match="data_format must be one of"):
        tostatic.nn.functional.prelu(x, tostatic.to_tensor(f32(3)), data_format="CHW")
    y = tostatic.nn.functional.silu(x, inplace=True)
    assert y is x
