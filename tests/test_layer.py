"""nn.Layer, ParamAttr, initializers and the common layers: hand-written expectations, then the
same model definitions built with real Paddle 3.3.1 (interop) and compared."""
from __future__ import annotations

import math
import os
import pickle
import re
import types
import warnings
from collections import OrderedDict

import numpy as np
import pytest

from tostatic.frontend.nn import initializer as I
from tostatic.ops import random as trandom
from tostatic.ir import names as unique_name
from tostatic.frontend.nn.layer import Layer, _convert_camel_to_snake
from tostatic.frontend.nn.common import (
    Flatten,
    Identity,
    LayerDict,
    LayerList,
    Linear,
    ReLU,
    Sequential,
)
from tostatic.frontend.nn.param_attr import ParamAttr
from tostatic.frontend.tensor.tensor import Parameter, Tensor

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "paddle-3.3.1")


@pytest.fixture(autouse=True)
def fresh_names():
    """Every test starts its counters at 0, as a fresh Python process would."""
    with unique_name.guard():
        yield


def _zeros(shape):
    return Tensor(np.zeros(shape, dtype=np.float32))


# The namespace the shared model definitions are written against; the interop tests build
# the same definitions from real `paddle.nn`.
OURS = types.SimpleNamespace(Layer=Layer, Linear=Linear, ReLU=ReLU, Sequential=Sequential,
                             LayerList=LayerList, LayerDict=LayerDict, Identity=Identity,
                             Flatten=Flatten, ParamAttr=ParamAttr, zeros=_zeros)


def build_mlp(nn):
    """The model of tests/fixtures/paddle-3.3.1/mlp."""

    class MLP(nn.Layer):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32),
                                        nn.ReLU(), nn.Linear(32, 4))

        def forward(self, x):
            return self.layers(x)

    return MLP()


def build_simple_net(nn):
    class SimpleNet(nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.register_buffer("running", nn.zeros([3]))
            self.register_buffer("scratch", nn.zeros([2]), persistable=False)
            self.act = nn.ReLU()
            self.scale = self.create_parameter([3], is_bias=True)
            self.w = self.create_parameter([3, 3])
            self.head = nn.Sequential(OrderedDict([("proj", nn.Linear(3, 2, bias_attr=False)),
                                                   ("out", nn.Identity())]))

        def forward(self, x):
            return self.head(self.act(self.fc(x)))

    return SimpleNet()


def build_containers(nn):
    class Containers(nn.Layer):
        def __init__(self):
            super().__init__()
            self.blocks = nn.LayerList([nn.Linear(2, 2), nn.ReLU()])
            self.blocks.append(nn.Linear(2, 3, name="tail"))
            self.heads = nn.LayerDict({"a": nn.Linear(3, 1), "b": nn.Flatten()})
            self.pairs = nn.Sequential(("first", nn.Linear(3, 3)), ("second", nn.ReLU()))
            self.shared = self.pairs[0]  # the same Linear under a second name

    return Containers()


def build_named(nn):
    class Named(nn.Layer):
        def __init__(self):
            super().__init__(name_scope="my_scope")
            self.fc = nn.Linear(2, 2, weight_attr=nn.ParamAttr(name="fc_w"),
                                bias_attr=nn.ParamAttr(name="fc_b", trainable=False))

    return Named()


BUILDERS = {"mlp": build_mlp, "simple_net": build_simple_net,
            "containers": build_containers, "named": build_named}


def _read_info(path):
    """A .pdiparams.info pickle: a dict of dicts of str/bool; allow no classes at all."""

    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    with open(path, "rb") as f:
        return Restricted(f).load()


def _program_param_shapes(path):
    shapes = {}
    for m in re.finditer(r"persist trainable param (\S+) : DENSE_TENSOR\.shape\(([^)]*)\)",
                         open(path).read()):
        shapes[m.group(1)] = [int(s) for s in m.group(2).split(",") if s.strip()]
    return shapes


# --------------------------------------------------------------------------------------------
# Names


def test_parameter_names_and_counters():
    a, b = Linear(3, 4), Linear(4, 5)
    assert a.full_name() == "linear_0" and b.full_name() == "linear_1"
    assert (a.weight.name, a.bias.name, b.weight.name, b.bias.name) == (
        "linear_0.w_0", "linear_0.b_0", "linear_1.w_0", "linear_1.b_0")
    assert a.weight.shape == [3, 4] and a.bias.shape == [4]
    assert isinstance(a.weight, Parameter) and a.weight.persistable
    assert a.weight.stop_gradient is False and a.weight.trainable

    class Custom(Layer):
        def __init__(self):
            super().__init__()
            self.w1 = self.create_parameter([2, 2])
            self.w2 = self.create_parameter([2])
            self.b1 = self.create_parameter([2], is_bias=True)

    c = Custom()
    assert c.full_name() == "custom_0"
    assert [c.w1.name, c.w2.name, c.b1.name] == ["custom_0.w_0", "custom_0.w_1", "custom_0.b_0"]


def test_camel_to_snake_is_paddles():
    cases = {"SimpleNet": "simple_net", "Linear": "linear", "BatchNorm2D": "batch_norm2d",
             "ReLU": "re_lu", "GELU": "gelu", "LayerList": "layer_list", "Conv2D": "conv2d",
             "HTTPServerNet": "http_server_net", "MLPv2Net": "ml_pv2_net"}
    for name, snake in cases.items():
        assert _convert_camel_to_snake(name) == snake, name

    class BatchNorm2D(Layer):
        pass

    assert BatchNorm2D().full_name() == "batch_norm2d_0"
    assert ReLU().full_name() == "re_lu_0"
    assert Layer(name_scope="demo_linear_net").full_name() == "demo_linear_net_0"


def test_guard_resets_names_and_duplicate_parameter_names_fail():
    Linear(1, 1)
    with unique_name.guard():
        assert Linear(1, 1).weight.name == "linear_0.w_0"
    lay = Layer()
    p = lay.create_parameter([2], attr=ParamAttr(name="myp"))
    assert p.name == "myp"
    with pytest.raises(ValueError, match=r"parameter name \[myp\] have be been used"):
        lay.create_parameter([2], attr="myp")
    with unique_name.guard():  # a new guard forgets used names, as Paddle's does
        assert lay.create_parameter([2], attr="myp").name == "myp"


def test_param_attr_forms():
    lay = Layer()
    assert lay.create_parameter([2], attr=False) is None
    q = lay.create_parameter([2, 3], attr=ParamAttr(trainable=False, learning_rate=0.5),
                             is_bias=True)
    assert q.stop_gradient is True and q.trainable is False
    assert q.optimize_attr == {"learning_rate": 0.5}
    np.testing.assert_array_equal(q.numpy(), np.zeros([2, 3], np.float32))
    r = lay.create_parameter([2], attr=I.Constant(7.0))
    np.testing.assert_array_equal(r.numpy(), [7.0, 7.0])
    s = lay.create_parameter([2], dtype="float64", default_initializer=I.Constant(1.0))
    assert s.numpy().dtype == np.float64 and s.numpy().tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="default initializer"):
        lay.create_parameter([2], dtype="int64")
    t = lay.create_parameter([2], dtype="int64", default_initializer=I.Constant(3))
    assert t.numpy().dtype == np.int64
    with pytest.raises(ValueError):
        ParamAttr(name="")
    with pytest.raises(TypeError):
        ParamAttr(trainable=1)


def test_linear_without_bias_and_attrs():
    lin = Linear(2, 3, bias_attr=False)
    assert lin.bias is None and list(lin.state_dict()) == ["weight"]
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    lin2 = Linear(2, 2, weight_attr=I.Assign([[1, 2], [3, 4]]),
                  bias_attr=ParamAttr(initializer=I.Constant(0.5)))
    np.testing.assert_array_equal(lin2.weight.numpy(), [[1, 2], [3, 4]])
    assert lin2.weight.numpy().dtype == np.float32
    np.testing.assert_array_equal(lin2.bias.numpy(), [0.5, 0.5])


def test_mlp_structured_names_match_fixture():
    model = build_mlp(OURS)
    info = _read_info(os.path.join(FIXTURES, "mlp", "model.pdiparams.info"))
    shapes = _program_param_shapes(os.path.join(FIXTURES, "mlp", "program.txt"))
    ours = {p.name: key for key, p in model.state_dict().items()}
    assert ours == {name: v["structured_name"] for name, v in info.items()}
    for key, p in model.state_dict().items():
        assert p.shape == shapes[p.name], key
    assert list(model.state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.2.weight",
                                        "layers.2.bias", "layers.4.weight", "layers.4.bias"]


# --------------------------------------------------------------------------------------------
# state_dict


def test_state_dict_order_params_then_buffers_then_sublayers():
    net = build_simple_net(OURS)
    assert list(net.state_dict()) == ["scale", "w", "running", "fc.weight", "fc.bias",
                                      "head.proj.weight"]
    assert [n for n, _ in net.named_parameters()] == ["scale", "w", "fc.weight", "fc.bias",
                                                      "head.proj.weight"]
    assert [n for n, _ in net.named_buffers()] == ["running", "scratch"]
    assert "scratch" in net.to_static_state_dict()
    sd = net.state_dict()
    assert sd["fc.weight"] is net.fc.weight  # keep_vars=True: the Parameters themselves
    assert [n for n, _ in net.named_parameters(prefix="m")][0] == "m.scale"
    assert [n for n, _ in net.named_parameters(include_sublayers=False)] == ["scale", "w"]
    assert net.state_dict(structured_name_prefix="p.")["p.fc.weight"] is net.fc.weight
    assert net.state_dict(include_sublayers=False).keys() == {"scale", "w", "running"}


def test_shared_sublayer_listed_once_by_iterators_but_twice_in_state_dict():
    c = build_containers(OURS)
    assert [n for n, _ in c.named_sublayers()] == [
        "blocks", "blocks.0", "blocks.1", "blocks.2", "heads", "heads.a", "heads.b", "pairs",
        "pairs.first", "pairs.second"]
    assert "shared.weight" in c.state_dict() and "pairs.first.weight" in c.state_dict()
    assert len(c.parameters()) == 8  # 4 Linears with bias, the shared one counted once
    assert [n for n, _ in c.named_children()] == ["blocks", "heads", "pairs", "shared"]


def test_set_state_dict_round_trip():
    src, dst = build_simple_net(OURS), build_simple_net(OURS)
    for k, v in src.state_dict().items():
        v.set_value(np.random.default_rng(0).standard_normal(v.shape).astype(np.float32))
    missing, unexpected = dst.set_state_dict(src.state_dict())
    assert missing == [] and unexpected == []
    assert list(dst.state_dict()) == list(src.state_dict()) == [
        "scale", "w", "running", "fc.weight", "fc.bias", "head.proj.weight"]
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    # numpy values, and the parameter-name form
    arrays = {k: v.numpy() * 2 for k, v in src.state_dict().items()}
    dst.set_dict(arrays)
    np.testing.assert_array_equal(dst.fc.weight.numpy(), src.fc.weight.numpy() * 2)
    by_name = {p.name: np.ones(p.shape, np.float32) for p in dst.parameters()}
    with pytest.warns(UserWarning, match="Skip loading for running"):
        missing, unexpected = dst.load_dict(by_name, use_structured_name=False)
    np.testing.assert_array_equal(dst.fc.weight.numpy(), np.ones([4, 3]))
    assert unexpected == [] and len(missing) == 1  # the buffer's name isn't in by_name


def test_set_state_dict_missing_unexpected_and_shape_errors():
    lin = Linear(2, 3)
    before = lin.weight.numpy().copy()
    with pytest.warns(UserWarning, match="bias is not found"):
        missing, unexpected = lin.set_state_dict({"weight": np.ones([2, 3], np.float32),
                                                  "extra": np.zeros(1)})
    assert (missing, unexpected) == (["bias"], ["extra"])
    np.testing.assert_array_equal(lin.weight.numpy(), np.ones([2, 3]))
    with pytest.raises(ValueError, match=re.escape(
            "weight receives a shape [3, 2], but the expected shape is [2, 3]")):
        lin.set_state_dict({"weight": np.zeros([3, 2], np.float32),
                            "bias": np.full([3], 5, np.float32)})
    assert lin.bias.numpy().tolist() != [5, 5, 5]  # nothing written when a shape is wrong
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias"'):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lin.load_state_dict({"weight": before})
    assert lin.load_state_dict({"weight": before, "bias": np.zeros(3, np.float32)}) == ([], [])


# --------------------------------------------------------------------------------------------
# Attribute routing, modes, hooks


def test_setattr_routing():
    class M(Layer):
        def __init__(self):
            super().__init__()
            self.sub = Linear(1, 1)
            self.p = self.create_parameter([1])
            self.t = _zeros([2])  # a plain Tensor attribute is a non-persistable buffer
            self.k = 3

    m = M()
    assert list(m._sub_layers) == ["sub"] and list(m._parameters) == ["p"]
    assert list(m._buffers) == ["t"] and m._non_persistable_buffer_names_set == {"t"}
    assert "t" not in m.state_dict() and m.__dict__["k"] == 3
    with pytest.raises(TypeError, match="assignment to sublayer 'sub'"):
        m.sub = 3
    with pytest.raises(TypeError, match="assignment to parameter 'p'"):
        m.p = _zeros([1])
    m.register_buffer("b", _zeros([1]))
    with pytest.raises(TypeError, match="assignment to buffers 'b'"):
        m.b = 5
    with pytest.raises(KeyError, match="attribute 'p' already exists"):
        m.register_buffer("p", _zeros([1]))
    with pytest.raises(KeyError, match="already exists"):
        m.add_parameter("training", m.create_parameter([1]))
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        m.nosuch
    m.b = _zeros([3])  # re-assigning a registered buffer keeps it persistable
    assert "b" in m.state_dict() and m.b.shape == [3]
    m.sub = None
    assert m._sub_layers == OrderedDict(sub=None) and m.sub is None
    with pytest.raises(TypeError, match="assignment to parameter 'p'"):
        m.p = Linear(1, 1)  # a parameter slot only takes a Parameter or None
    m.p = None
    assert m.p is None and m._parameters["p"] is None and "p" not in m.state_dict()
    del m.b
    assert "b" not in m._buffers
    del m.k
    assert not hasattr(m, "k")

    class Early(Layer):
        def __init__(self):
            self.fc = Linear(1, 1)

    with pytest.raises(ValueError, match="super\\(\\).__init__\\(\\) should be called first"):
        Early()


def test_train_eval_propagate():
    net = build_simple_net(OURS)
    assert net.training and net.fc.training
    assert net.eval() is net
    assert not any(l.training for l in net.sublayers(include_self=True))
    net.train()
    assert all(l.training for l in net.sublayers(include_self=True))
    net.head.eval()
    assert net.training and not net.head.proj.training
    with pytest.raises(ValueError):
        net.train(1)


class AddOne(Layer):
    def forward(self, x, bump=0):
        return x + 1 + bump


def test_forward_hooks():
    lay = AddOne()
    seen = []
    pre = lay.register_forward_pre_hook(lambda layer, inputs: (inputs[0] * 10,))
    post = lay.register_forward_post_hook(lambda layer, inputs, out: seen.append(
        (inputs, out)) or out * 2)
    assert lay(1) == 22 and seen == [((10,), 11)]
    pre.remove()
    assert lay(1) == 4
    post.remove()
    assert lay(1) == 2
    lay.register_forward_pre_hook(lambda layer, a, kw: (a, {"bump": 100}), with_kwargs=True)
    lay.register_forward_pre_hook(lambda layer, inputs: 5, prepend=True)  # scalar → (5,)
    assert lay(1) == 106
    lay2 = AddOne()
    calls = []
    lay2.register_forward_post_hook(lambda l, i, o: calls.append("always"), always_call=True)
    with pytest.raises(TypeError):
        lay2("x")
    assert calls == ["always"]


def test_apply_to_and_casts():
    net = build_mlp(OURS)
    visited = []
    net.apply(lambda l: visited.append(type(l).__name__))
    assert visited == ["Linear", "ReLU", "Linear", "ReLU", "Linear", "Sequential", "MLP"]
    net.apply(lambda l: isinstance(l, Linear) and I.Constant(0.25)(l.weight))
    assert all((l.weight.numpy() == 0.25).all() for l in net.layers if isinstance(l, Linear))
    assert net.to() is net and net.to("cpu") is net
    assert repr(net.layers[0]) == "Linear(in_features=16, out_features=32, dtype=None)"  # Paddle
    net.to(dtype="float64")
    assert net.layers[0].weight.numpy().dtype == np.float64
    assert repr(net.layers[0]) == "Linear(in_features=16, out_features=32, dtype=float64)"
    net.float()
    assert net.layers[0].weight.numpy().dtype == np.float32
    assert repr(net.layers[0]).endswith("dtype=paddle.float32)")


# --------------------------------------------------------------------------------------------
# repr and containers


def test_repr():
    assert repr(Linear(10, 3)) == "Linear(in_features=10, out_features=3, dtype=float32)"
    assert repr(Linear(2, 3, name="foo")) == \
        "Linear(in_features=2, out_features=3, dtype=float32, name=foo)"
    assert repr(build_mlp(OURS)) == """MLP(
  (layers): Sequential(
    (0): Linear(in_features=16, out_features=32, dtype=float32)
    (1): ReLU()
    (2): Linear(in_features=32, out_features=32, dtype=float32)
    (3): ReLU()
    (4): Linear(in_features=32, out_features=4, dtype=float32)
  )
)"""

    class Multi(Layer):
        def __init__(self):
            super().__init__()
            self.inner = ReLU(name="r")

        def extra_repr(self):
            return "a=1\nb=2"

    assert repr(Multi()) == "Multi(\n  a=1\n  b=2\n\n  (inner): ReLU(name=r)\n)"
    assert repr(Identity()) == "Identity()" and repr(Layer()) == "Layer()"


def test_sequential():
    a, b, c = Linear(1, 2), ReLU(), Linear(2, 3)
    seq = Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c and seq["1"] is b
    with pytest.raises(IndexError):
        seq[3]
    with pytest.raises(IndexError):
        seq[-4]
    sl = seq[1:]
    assert isinstance(sl, Sequential) and list(sl) == [b, c] and list(sl._sub_layers) == ["0",
                                                                                        "1"]
    d = Identity()
    assert seq.append(d) is seq and seq[3] is d and list(seq._sub_layers) == ["0", "1", "2", "3"]
    seq.insert(0, Identity())
    assert seq[1] is a and len(seq) == 5
    named = Sequential(OrderedDict([("fc", a), ("act", b)]))
    assert list(named._sub_layers) == ["fc", "act"] and named.fc is a
    pairs = Sequential(("fc", a), ("act", b))
    assert list(pairs.state_dict()) == ["fc.weight", "fc.bias"]
    seq[0] = ReLU()
    del seq["4"]
    assert len(seq) == 4


def test_layer_list_and_dict():
    ll = LayerList([Linear(1, 1), ReLU()])
    ll.append(Identity())
    ll.extend([Linear(1, 2)])
    ll.insert(1, Flatten())
    assert [type(x).__name__ for x in ll] == ["Linear", "Flatten", "ReLU", "Identity", "Linear"]
    assert isinstance(ll[-1], Linear) and len(ll) == 5
    with pytest.raises(IndexError):
        ll[5]
    del ll[1]
    assert list(ll._sub_layers) == ["0", "1", "2", "3"] and isinstance(ll[1], ReLU)
    assert [type(x).__name__ for x in ll[1:3]] == ["ReLU", "Identity"]
    assert list(ll.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias"]

    ld = LayerDict([("a", Linear(1, 1)), ("b", ReLU())])
    ld["c"] = Identity()
    assert list(ld) == ["a", "b", "c"] and "b" in ld and len(ld) == 3
    assert isinstance(ld.pop("b"), ReLU) and list(ld.keys()) == ["a", "c"]
    ld.update({"d": Linear(1, 1)})
    assert list(ld.state_dict()) == ["a.weight", "a.bias", "d.weight", "d.bias"]
    with pytest.raises(ValueError):
        LayerDict([("a", Linear(1, 1), 3)])
    ld.clear()
    assert len(ld) == 0


# --------------------------------------------------------------------------------------------
# Initializers


def _param(shape, init, dtype="float32"):
    return Layer().create_parameter(shape, dtype=dtype, default_initializer=init)


def test_xavier_uniform_bounds_and_fans():
    trandom.seed(1)
    lin = Linear(64, 32)  # default weight init: XavierUniform, bias Constant(0)
    limit = math.sqrt(6.0 / (64 + 32))
    w = lin.weight.numpy()
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    assert abs(w.std() - limit / math.sqrt(3)) < 0.05 * limit
    np.testing.assert_array_equal(lin.bias.numpy(), np.zeros(32))
    conv = _param([8, 4, 3, 3], I.XavierUniform())  # fan_in = 4*9, fan_out = 8*9
    limit = math.sqrt(6.0 / (36 + 72))
    assert np.abs(conv.numpy()).max() <= limit and np.abs(conv.numpy()).max() > 0.9 * limit
    assert I.Initializer()._compute_fans(_zeros([])) == (1, 1)
    assert I.Initializer()._compute_fans(_zeros([7])) == (7, 7)
    g = _param([100, 100], I.XavierUniform(gain=2.0, fan_in=50, fan_out=50))
    assert np.abs(g.numpy()).max() <= 2.0 * math.sqrt(6.0 / 100)
    n = _param([200, 300], I.XavierNormal())
    assert abs(n.numpy().std() - math.sqrt(2.0 / 500)) < 0.03 * math.sqrt(2.0 / 500)


def test_kaiming_normal_uniform_constant_assign():
    k = _param([256, 64, 3, 3], I.KaimingNormal())  # fan_in = 64*9, gain sqrt(2)
    assert abs(k.numpy().std() - math.sqrt(2.0) / math.sqrt(576)) < 0.01 * math.sqrt(2 / 576)
    ku = _param([64, 32], I.KaimingUniform(mode="fan_out"))  # fan = 32
    limit = math.sqrt(2.0) * math.sqrt(3.0 / 32)
    assert np.abs(ku.numpy()).max() <= limit and np.abs(ku.numpy()).max() > 0.95 * limit
    kl = _param([64, 32], I.KaimingUniform(nonlinearity="leaky_relu", negative_slope=0.2))
    assert np.abs(kl.numpy()).max() <= math.sqrt(2 / 1.04) * math.sqrt(3 / 64)
    with pytest.raises(ValueError):
        I.KaimingNormal(mode="fan_out", fan_in=3)
    u = _param([1000], I.Uniform(-0.5, 2.0))
    assert u.numpy().min() >= -0.5 and u.numpy().max() < 2.0
    nrm = _param([20000], I.Normal(3.0, 0.5))
    assert abs(nrm.numpy().mean() - 3.0) < 0.02 and abs(nrm.numpy().std() - 0.5) < 0.02
    tn = _param([5000], I.TruncatedNormal(0.0, 1.0, a=-1.0, b=1.5))
    assert tn.numpy().min() >= -1.0 and tn.numpy().max() <= 1.5
    c = _param([2, 2], I.Constant(1.5), dtype="float64")
    assert c.numpy().dtype == np.float64 and (c.numpy() == 1.5).all()
    a = _param([2], I.Assign(np.array([1.0, 2.0])))
    assert a.numpy().dtype == np.float32 and a.numpy().tolist() == [1.0, 2.0]
    assert I.calculate_gain("tanh") == 5.0 / 3


def test_initializers_follow_seed_and_global_initializer():
    trandom.seed(123)
    w1 = Linear(5, 5).weight.numpy().copy()
    trandom.seed(123)
    w2 = Linear(5, 5).weight.numpy().copy()
    np.testing.assert_array_equal(w1, w2)
    I.set_global_initializer(I.Constant(2.0), I.Constant(3.0))
    try:
        lin = Linear(2, 2)
        assert (lin.weight.numpy() == 2.0).all() and (lin.bias.numpy() == 3.0).all()
        lin2 = Linear(2, 2, weight_attr=I.Constant(9.0))  # the attr still wins
        assert (lin2.weight.numpy() == 9.0).all()
    finally:
        I.set_global_initializer(None, None)
    assert (Linear(2, 2).bias.numpy() == 0).all()


# --------------------------------------------------------------------------------------------
# forward (needs the functional ops)


def test_linear_and_sequential_forward():
    from tostatic.frontend.tensor.tensor import to_tensor

    net = build_mlp(OURS)
    x = np.random.default_rng(0).standard_normal([3, 16]).astype(np.float32)
    h = x
    for lay in net.layers:
        if isinstance(lay, Linear):
            h = h @ lay.weight.numpy() + lay.bias.numpy()
        else:
            h = np.maximum(h, 0)
    out = net(to_tensor(x))
    np.testing.assert_allclose(out.numpy(), h, rtol=1e-5, atol=1e-6)
    no_bias = Linear(16, 2, bias_attr=False)
    np.testing.assert_allclose(no_bias(to_tensor(x)).numpy(), x @ no_bias.weight.numpy(),
                               rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# The same definitions through real Paddle 3.3.1


@pytest.fixture(scope="module")
def paddle():
    os.environ.setdefault("FLAGS_enable_pir_api", "0")
    return pytest.importorskip("paddle")


def _paddle_ns(paddle):
    nn = paddle.nn
    return types.SimpleNamespace(Layer=nn.Layer, Linear=nn.Linear, ReLU=nn.ReLU,
                                 Sequential=nn.Sequential, LayerList=nn.LayerList,
                                 LayerDict=nn.LayerDict, Identity=nn.Identity,
                                 Flatten=nn.Flatten, ParamAttr=paddle.ParamAttr,
                                 zeros=lambda shape: paddle.zeros(shape, "float32"))


def _build_both(paddle, builder):
    with paddle.utils.unique_name.guard():
        theirs = builder(_paddle_ns(paddle))
    with unique_name.guard():
        ours = builder(OURS)
    return ours, theirs


def _describe(model):
    sd = model.state_dict()
    params = {id(p) for p in model.parameters()}
    return [(k, list(v.shape), v.name if id(v) in params else None,
             bool(v.stop_gradient)) for k, v in sd.items()]


@pytest.mark.interop
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_state_dict_matches_paddle(paddle, name):
    ours, theirs = _build_both(paddle, BUILDERS[name])
    assert _describe(ours) == _describe(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_sublayers()] == [n for n, _ in theirs.named_sublayers()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [l.full_name() for l in ours.sublayers(include_self=True)] == \
        [l.full_name() for l in theirs.sublayers(include_self=True)]


@pytest.mark.interop
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_repr_matches_paddle(paddle, name):
    ours, theirs = _build_both(paddle, BUILDERS[name])
    assert repr(ours) == repr(theirs)
    ours.to("cpu")
    theirs.to("cpu")
    assert repr(ours) == repr(theirs)  # both now say dtype=None


@pytest.mark.interop
def test_full_names_match_paddle(paddle):
    def build(nn):
        class SimpleNet(nn.Layer):
            pass

        class BatchNorm2D(nn.Layer):
            pass

        class HTTPServerNet(nn.Layer):
            pass

        class MLPv2Net(nn.Layer):
            pass

        made = [SimpleNet(), SimpleNet(), BatchNorm2D(), HTTPServerNet(), MLPv2Net(),
                nn.Linear(1, 1), nn.ReLU(), nn.Sequential(), nn.LayerList(), nn.LayerDict(),
                nn.Identity(), nn.Flatten(), nn.Layer(), nn.Layer(name_scope="scope")]
        return types.SimpleNamespace(names=[m.full_name() for m in made])

    ours, theirs = _build_both(paddle, build)
    assert ours.names == theirs.names
    assert ours.names[:3] == ["simple_net_0", "simple_net_1", "batch_norm2d_0"]


@pytest.mark.interop
def test_set_state_dict_keys_match_paddle(paddle):
    ours, theirs = _build_both(paddle, build_simple_net)
    sd = {k: v.numpy() for k, v in theirs.state_dict().items() if k != "fc.bias"}
    sd["bogus"] = np.zeros(1, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert tuple(ours.set_state_dict(sd)) == tuple(theirs.set_state_dict(sd))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, b in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k].numpy(), b.numpy(), err_msg=k)


@pytest.mark.interop
def test_xavier_uniform_statistics_match_paddle(paddle):
    paddle.seed(7)
    trandom.seed(7)
    for in_f, out_f in [(64, 32), (300, 100)]:
        limit = math.sqrt(6.0 / (in_f + out_f))  # Paddle's formula, gain 1
        theirs = paddle.nn.Linear(in_f, out_f).weight.numpy()
        ours = Linear(in_f, out_f).weight.numpy()
        for w in (theirs, ours):
            assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
            assert abs(w.mean()) < 0.05 * limit
            assert abs(w.std() - limit / math.sqrt(3)) < 0.05 * limit
        assert abs(ours.std() / theirs.std() - 1) < 0.05
    conv_shape = [8, 4, 3, 3]
    theirs = paddle.create_parameter(conv_shape, "float32",
                                     default_initializer=paddle.nn.initializer.XavierUniform())
    ours = _param(conv_shape, I.XavierUniform())
    limit = math.sqrt(6.0 / (4 * 9 + 8 * 9))
    for w in (theirs.numpy(), ours.numpy()):
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.9 * limit
    theirs = paddle.create_parameter([256, 64, 3, 3], "float32",
                                     default_initializer=paddle.nn.initializer.KaimingNormal())
    ours = _param([256, 64, 3, 3], I.KaimingNormal())
    assert abs(ours.numpy().std() / theirs.numpy().std() - 1) < 0.02
