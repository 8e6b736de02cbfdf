"""fuse-elementwise and pd.fused_elementwise: which ops it groups, the op's text round trip,
its numpy semantics, un-fusing when lowering back to Paddle's ops, and whole models (BERT-class,
MobileNetV2) giving the same outputs with fusion and generated kernels on as with numpy alone;
the disk cache of generated kernels across processes."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp

import tostatic
from tostatic.dialects.context import parse_ir
from tostatic.ir import names
from tostatic.ops.fused_elementwise import FusedElementwise
from tostatic.passes import pipeline
from tostatic.passes.base import CompileState, entry
from tostatic.passes.manager import PassManager
from tostatic.serialization import framework_pb2 as fpb
from tostatic.serialization.program_desc import load_program
from tostatic.static import InputSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import bert_classifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class Chains(tostatic.nn.Layer):
    """Two elementwise trees around a matmul: sigmoid((x * 2 + b) * x) - 1 feeds the Linear,
    whose matmul + bias goes through gelu(z + b) * 0.5; `x * 2` is also an output, so it is
    read twice and joins no group."""

    def __init__(self):
        super().__init__()
        self.linear = tostatic.nn.Linear(16, 16)

    def forward(self, x, b):
        twice = x * 2.0
        y = tostatic.nn.functional.sigmoid((twice + b) * x) - 1.0
        z = self.linear(y)
        return tostatic.nn.functional.gelu(z + b) * 0.5, twice


def _save(tmp_path, layer, specs, name="m"):
    with names.guard():
        layer.eval()
        tostatic.jit.save(layer, str(tmp_path / name), input_spec=specs)
    return str(tmp_path / name)


def _raised(prefix, fuse):
    module = ModuleOp([load_program(prefix + ".pdmodel").clone()])
    passes = "raise-from-program,dead-op-elimination"
    if fuse:
        passes += ",fuse-elementwise{min-elements=0}"
    PassManager(passes, verify="each").run(module, CompileState(), first_stage="loaded")
    return module


@pytest.fixture
def chains(tmp_path):
    with names.guard():
        layer = Chains()
    prefix = _save(tmp_path, layer, [InputSpec([None, 16], "float32", "x"),
                                     InputSpec([16], "float32", "b")])
    return layer, prefix


def test_trees_of_single_use_results_become_one_op(chains):
    _, prefix = chains
    module = _raised(prefix, fuse=True)
    fused = [op for op in entry(module).walk() if isinstance(op, FusedElementwise)]
    inner = sorted(sorted(o.name for o in f.inner_ops()) for f in fused)
    assert inner == [["pd.add", "pd.add", "pd.gelu", "pd.scale"],  # the Linear's bias add too
                     ["pd.add", "pd.multiply", "pd.scale", "pd.sigmoid"]], inner
    text = str(module)
    assert parse_ir(text).is_structurally_equivalent(module)  # prints and parses back


def test_min_elements_keeps_small_tensors_apart(chains):
    """[?, 16] may be large: fused; [4, 16] is known to be small: left alone."""
    _, prefix = chains
    for dim, fuses in (("?", True), ("4", False)):
        module = ModuleOp([load_program(prefix + ".pdmodel").clone()])
        PassManager("raise-from-program", verify="each").run(module, CompileState(),
                                                              first_stage="loaded")
        module = parse_ir(str(module).replace("?x16", f"{dim}x16"))
        PassManager("fuse-elementwise", verify="each").run(module, CompileState(),
                                                           first_stage="raised")
        assert fuses == any(isinstance(op, FusedElementwise) for op in entry(module).walk())


def test_lowering_writes_the_original_ops_back(chains, tmp_path):
    _, prefix = chains
    plain = _raised(prefix, fuse=False)
    fused = _raised(prefix, fuse=True)
    texts = []
    for module in (plain, fused):
        PassManager("lower-to-program", verify="each").run(module, CompileState(),
                                                            first_stage="raised")
        texts.append(str(module))
    assert texts[0] == texts[1]
    # and jit.save of the loaded (fused) model writes the original program's ops again (the
    # plan runs the fused ops: fuse-elementwise is in the `inference` pipeline on its copy)
    loaded = tostatic.jit.load(prefix)
    assert any(isinstance(op, FusedElementwise) for op in loaded._model.plan.body.ops)
    tostatic.jit.save(loaded, str(tmp_path / "again"))
    assert _op_types(str(tmp_path / "again.pdmodel")) == _op_types(prefix + ".pdmodel")


def _op_types(path):
    return [op.type for op in fpb.ProgramDesc.FromString(open(path, "rb").read()).blocks[0].ops]


def test_fused_op_eager_is_the_ops_one_by_one(chains, monkeypatch):
    layer, prefix = chains
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 16)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    want = [t.numpy() for t in layer(tostatic.to_tensor(x), tostatic.to_tensor(b))]
    for kernels in ("numpy", "llvm"):
        monkeypatch.setenv("TOSTATIC_KERNELS", kernels)
        monkeypatch.setitem(pipeline.PIPELINES, "load",
                            "raise-from-program,dead-op-elimination,"
                            "fuse-elementwise{min-elements=0}")
        got = tostatic.jit.load(prefix)(tostatic.to_tensor(x), tostatic.to_tensor(b))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-5, atol=1e-6)


def _outputs(prefix, feeds, fused_and_compiled):
    """The model's outputs through paddle.inference, with fusion (of any size) and generated
    kernels, or with neither (numpy kernels op by op)."""
    from tostatic import inference
    with pytest.MonkeyPatch.context() as mp:
        if fused_and_compiled:
            mp.setenv("TOSTATIC_KERNELS", "llvm")
            mp.setitem(pipeline.PIPELINES, "load", pipeline.PIPELINES["load"].replace(
                "fuse-elementwise", "fuse-elementwise{min-elements=0}"))
        else:
            mp.setenv("TOSTATIC_KERNELS", "numpy")
            mp.setitem(pipeline.PIPELINES, "load", "raise-from-program,dead-op-elimination")
        predictor = inference.create_predictor(inference.Config(prefix + ".pdmodel",
                                                                prefix + ".pdiparams"))
        for name in predictor.get_input_names():
            predictor.get_input_handle(name).copy_from_cpu(feeds[name])
        predictor.run()
        return [predictor.get_output_handle(n).copy_to_cpu()
                for n in predictor.get_output_names()]


def test_bert_class_model_fused_and_compiled_matches_numpy(tmp_path):
    config = bert_classifier.BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=4, intermediate_size=64,
                                        max_position_embeddings=40, num_labels=3)
    with names.guard():
        model = bert_classifier.BertForSequenceClassification(tostatic, config)
    prefix = _save(tmp_path, model, bert_classifier.input_spec(tostatic), "bert")
    feeds = bert_classifier.example_inputs(2, 12, 60, seed=3)
    fused = _outputs(prefix, feeds, True)
    plain = _outputs(prefix, feeds, False)
    for f, p in zip(fused, plain):
        np.testing.assert_allclose(f, p, rtol=1e-5, atol=1e-6)
    module = _raised(prefix, fuse=True)
    fused_ops = [op for op in entry(module).walk() if isinstance(op, FusedElementwise)]
    assert len(fused_ops) >= 2, "BERT's scale + mask add and bias + gelu chains fuse"


def test_mobilenet_v2_with_generated_kernels_matches_numpy(tmp_path):
    with names.guard():
        model = tostatic.vision.models.mobilenet_v2(scale=0.5, num_classes=10)
    prefix = _save(tmp_path, model, [InputSpec([None, 3, 64, 64], "float32", "x")], "mbv2")
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    fused = _outputs(prefix, {"x": x}, True)
    plain = _outputs(prefix, {"x": x}, False)
    np.testing.assert_allclose(fused[0], plain[0], rtol=1e-5, atol=1e-5)


CACHE_SCRIPT = textwrap.dedent("""
    import numpy as np
    from tostatic.codegen import engine, rows
    from tostatic.codegen.elementwise import ElementwiseKernel
    from tostatic.ir import scalar_expr as se
    x = se.arg(0, "float32")
    a = np.linspace(-3, 3, 1000, dtype=np.float32)
    ElementwiseKernel(se.tanh(x) * 3 + 1, ["float32"])(a)
    rows.softmax(a.reshape(10, 100))
    print(engine.STATS["compiled"], engine.STATS["loaded_from_disk"])
""")


def test_a_second_process_compiles_nothing(tmp_path):
    env = {**os.environ, "TOSTATIC_CACHE_DIR": str(tmp_path / "kernels"),
           "TOSTATIC_KERNEL_LOG": str(tmp_path / "log"), "PYTHONPATH": str(ROOT)}
    counts = []
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", CACHE_SCRIPT], env=env, text=True,
                             capture_output=True, check=True)
        counts.append(tuple(int(n) for n in run.stdout.split()))
    assert counts == [(2, 0), (0, 2)], counts
    log = (tmp_path / "log").read_text().split()
    assert log[0::2] == ["compiled", "compiled", "loaded_from_disk", "loaded_from_disk"]
    assert sorted(log[1:4:2]) == sorted(log[5::2])  # the same two keys, read back
    assert len(list((tmp_path / "kernels").glob("*.o"))) == 2
