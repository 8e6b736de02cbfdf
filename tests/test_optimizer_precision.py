"""multi_precision: a float16 parameter is updated through a float32 master copy, as Paddle
keeps it. Real Paddle 3.3.1 on CPU has no float16 adam kernel, so its update is checked
against the kernel's formula in numpy (float32 master, float16 rounding after each step);
the state_dict keys and dtypes against real Paddle's own accumulators (created without a
step), and a save / load resumes exactly."""
from __future__ import annotations

import numpy as np
import pytest

import tostatic

STEPS = 10


def grads():
    rng = np.random.default_rng(4)
    return [(rng.standard_normal((3, 2)) * 1e-2).astype(np.float16) for _ in range(STEPS)]


def adam_reference(w0, gs, lr=0.01, b1=0.9, b2=0.999, eps=1e-8, amsgrad=False, coeff=0.0):
    """Paddle's CPU/GPU adam(w) kernel in float32 on the master weight."""
    w = w0.astype(np.float32)
    m1, m2, mx = (np.zeros_like(w) for _ in range(3))
    b1p, b2p = np.float32(b1), np.float32(b2)
    out = []
    for g in gs:
        g = g.astype(np.float32)
        w = w * np.float32(1 - lr * coeff)
        m1 = np.float32(b1) * m1 + np.float32(1 - b1) * g
        m2 = np.float32(b2) * m2 + np.float32(1 - b2) * g * g
        mx = np.maximum(mx, m2)
        lr_t = np.float32(lr) * np.sqrt(1 - b2p) / (1 - b1p)
        w = w - lr_t * (m1 / (np.sqrt(mx if amsgrad else m2) + np.float32(eps) * np.sqrt(1 - b2p)))
        b1p, b2p = b1p * np.float32(b1), b2p * np.float32(b2)
        out.append(w.copy())
    return out


def make(P, **kw):
    with P.utils.unique_name.guard():
        lin = P.nn.Linear(3, 2)
        lin.to(dtype="float16")
        opt = P.optimizer.AdamW(0.01, parameters=[lin.weight], weight_decay=0.1,
                                multi_precision=True, **kw)
    return lin, opt


@pytest.mark.parametrize("amsgrad", [False, True])
def test_float16_parameter_follows_a_float32_master(amsgrad):
    lin, opt = make(tostatic, amsgrad=amsgrad)
    w0 = lin.weight.numpy().copy()
    want = adam_reference(w0, grads(), amsgrad=amsgrad, coeff=0.1)
    for g, w in zip(grads(), want):
        lin.weight.grad = tostatic.to_tensor(g)
        opt.step()
        opt.clear_grad()
        master = opt.state_dict()["master_weights"][lin.weight.name]
        assert master.dtype == tostatic.float32 and lin.weight.dtype == tostatic.float16
        np.testing.assert_allclose(master.numpy(), w, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(lin.weight.numpy(), master.numpy().astype(np.float16))
    # the master keeps what float16 alone would round away
    assert not np.array_equal(want[-1].astype(np.float16).astype(np.float32), want[-1])


@pytest.mark.interop
def test_state_dict_keys_are_paddles(real_paddle):
    lin, opt = make(real_paddle, amsgrad=True)
    with real_paddle.utils.unique_name.guard():  # names counted from 0 on both sides
        opt._create_accumulators(real_paddle.static.default_main_program().global_block(),
                                 [lin.weight])
    want = opt.state_dict()
    tlin, topt = make(tostatic, amsgrad=True)
    tlin.weight.grad = tostatic.to_tensor(grads()[0])
    with tostatic.utils.unique_name.guard():
        topt.step()
    got = topt.state_dict()
    assert list(got) == list(want)
    for key, value in want.items():
        if key == "master_weights":
            assert list(got[key]) == list(value)
            assert [v.name for v in got[key].values()] == [v.name for v in value.values()]
        else:
            assert got[key].dtype.name == str(value.dtype).split(".")[-1].upper().lower()


def test_save_and_load_resume_with_the_master(tmp_path):
    def steps(lin, opt, gs):
        for g in gs:
            lin.weight.grad = tostatic.to_tensor(g)
            opt.step()

    with tostatic.utils.unique_name.guard():  # each side names its state from 0
        lin, opt = make(tostatic)
        steps(lin, opt, grads()[:4])
        tostatic.save(opt.state_dict(), str(tmp_path / "o.pdopt"))
        mid = lin.weight.numpy().copy()
        steps(lin, opt, grads()[4:])
    with tostatic.utils.unique_name.guard():
        lin2, opt2 = make(tostatic)
        lin2.weight.set_value(mid)
        opt2.set_state_dict(tostatic.load(str(tmp_path / "o.pdopt")))
        steps(lin2, opt2, grads()[4:])
    np.testing.assert_array_equal(lin2.weight.numpy(), lin.weight.numpy())
    name = lin.weight.name
    np.testing.assert_array_equal(opt2.state_dict()["master_weights"][name].numpy(),
                                  opt.state_dict()["master_weights"][name].numpy())
