"""The compiled matmul epilogue (runtime/epilogue_kernels.py) against the fused op's numpy
reference (ops/fused.apply_epilogue: each step with the unfused op's eager kernel)."""
import numpy as np
import pytest

from tostatic.ops.fused import apply_epilogue
from tostatic.runtime.epilogue_kernels import compiled_epilogue


@pytest.mark.parametrize("epilogue", [("bias", "gelu"), ("bias", "gelu_tanh"), ("bias",),
                                      ("bias", "relu", "add"), ("add", "silu"),
                                      ("bias", "tanh"), ("bias", "sigmoid", "add"),
                                      ("swish",), ("bias", "hardswish"), ("bias", "relu6")])
@pytest.mark.parametrize("shape", [(4, 37, 129), (200, 131)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_epilogue_matches_the_reference(epilogue, shape, dtype):
    rng = np.random.default_rng(len(epilogue) + shape[0])
    y = (rng.standard_normal(shape) * 3).astype(dtype)
    extras = [(rng.standard_normal(shape[-1]) if s == "bias" else
               rng.standard_normal(shape)).astype(dtype)
              for s in epilogue if s in ("bias", "add")]
    want = apply_epilogue(y.copy(), epilogue, extras, y.ndim - 1)
    run = compiled_epilogue(epilogue, y, extras)
    assert run is not None  # all these outputs are large enough, or their steps heavy
    got = y.copy()
    run(got, [e.reshape(1, -1) if e.ndim == 1 else e for e in extras])  # any bias shape
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_small_cheap_epilogues_stay_numpy_and_the_switch_turns_codegen_off(monkeypatch):
    y = np.ones((1, 512), np.float32)
    assert compiled_epilogue(("bias", "relu"), y, [np.ones(512, np.float32)]) is None
    assert compiled_epilogue(("bias", "gelu"), y, [np.ones(512, np.float32)]) is not None
    monkeypatch.setenv("TOSTATIC_KERNELS", "numpy")
    assert compiled_epilogue(("bias", "gelu"), y, [np.ones(512, np.float32)]) is None
