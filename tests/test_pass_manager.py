"""The pass manager's interface: dumps, timings, verifier, failure reports and reproducers."""
import io
import re

import numpy as np
import pytest

import tostatic as paddle
from tostatic import nn
from tostatic.cli import main as cli
from tostatic.dialects.context import parse_ir
from tostatic.ir.text import print_ir
from tostatic.ir.verify import VerifyError, verify
from tostatic.passes.base import CompilePass, entry, register
from tostatic.passes.dump import DumpOptions
from tostatic.passes.manager import PassFailure
from tostatic.passes.pipeline import PIPELINES, parse_pipeline
from tostatic.static import InputSpec

# the default pipeline, written out: tests that derive their expectations from it must not
# follow it when it changes
DEFAULT = ["persistable-extraction", "canonicalize", "constant-folding",
           "loop-invariant-code-motion", "cse", "dead-op-elimination"]
# ... as dump headers name them: each pass with its options, as a pipeline spells it
SPEC = {"persistable-extraction": "persistable-extraction{max-constant-elements=16}",
        "constant-folding": "constant-folding{max-elements=1024}"}


class SimpleNet(nn.Layer):  # the guide's section 1.1 network
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(10, 3)

    def forward(self, x, y):
        out = self.linear(x)
        out = out + y
        return out


SPECS = [InputSpec([None, 10], "float32", "x"), InputSpec([3], "float32", "y")]


@register
class FailOnAdd(CompilePass):
    """Test only: raises on the first pd.add, like a pass with a bug."""

    name = "test-fail-on-add"

    def apply(self, module, state):
        for op in self.ops(entry(module).body.block.ops):
            if op.name == "pd.add":
                raise RuntimeError("cannot handle adds")


@register
class CorruptMatmulType(CompilePass):
    """Test only: gives pd.matmul's result a wrong static shape, so the verifier objects."""

    name = "test-corrupt-matmul"

    def apply(self, module, state):
        from xdsl.dialects.builtin import TensorType, f32

        for op in entry(module).body.walk():
            if op.name == "pd.matmul":
                op.results[0]._type = TensorType(f32, [7, 7])


def _compile(dump, passes=None):
    stream = io.StringIO()
    opts = DumpOptions.parse(dump)
    opts.stream = stream
    compiled = paddle.compile(SimpleNet(), SPECS, passes=passes, dump=opts)
    return compiled, stream.getvalue()


def _headers(text):
    return re.findall(r"// -----// IR Dump (.*?) //----- //", text)


def test_after_all_prints_the_ir_after_each_pass_by_name():
    _, out = _compile("after-all")
    assert _headers(out) == [f"After {SPEC.get(name, name)}"
                             for name in DEFAULT + ["lower-to-program"]]
    assert '"pd.persistable"' in out and '"program.program"' in out
    assert "pd.loc" not in out  # locations are opt-in


def test_defaults_print_nothing(monkeypatch, capsys):
    monkeypatch.delenv("TOSTATIC_DUMP", raising=False)
    paddle.compile(SimpleNet(), SPECS)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_after_change_skips_passes_that_changed_nothing():
    _, out = _compile("after-change")
    # SimpleNet has nothing to simplify, fold, merge or remove: those passes print nothing
    assert _headers(out) == [f"After {SPEC['persistable-extraction']}", "After lower-to-program"]


def test_before_and_after_named_passes_only():
    _, out = _compile("before=constant-folding,after=dead-op-elimination+lower-to-program")
    assert _headers(out) == [f"Before {SPEC['constant-folding']}", "After dead-op-elimination",
                             "After lower-to-program"]


def test_folder_writes_one_numbered_file_per_pass(tmp_path):
    _compile(f"folder={tmp_path}")
    names = sorted(p.name for p in tmp_path.iterdir())
    stages = ["captured"] + DEFAULT + ["lower-to-program"]
    assert names == [f"{i:02d}_{s}.mlir" for i, s in enumerate(stages)]
    assert '"pd.capture"' in (tmp_path / "00_captured.mlir").read_text()
    for path in tmp_path.iterdir():  # each file parses
        parse_ir(path.read_text())


def test_timings_table_names_every_pass():
    _, out = _compile("timings")
    assert "Pass execution timing report" in out
    for name in DEFAULT + ["lower-to-program"]:
        assert re.search(rf"\(\s*\d+\.\d%\)  {name}$", out, re.MULTILINE), name
    assert _headers(out) == []


def test_locations_name_the_users_line():
    _, out = _compile("after=persistable-extraction,locations")
    line = SimpleNet.forward.__code__.co_firstlineno + 2  # `out = out + y`
    assert f'pd.loc = "{__file__}:{line}"' in out


def test_environment_variable_is_the_default_dump(monkeypatch, capsys):
    monkeypatch.setenv("TOSTATIC_DUMP", "after=constant-folding")
    paddle.jit.to_static(SimpleNet(), input_spec=SPECS).forward.concrete_program
    assert _headers(capsys.readouterr().err) == [f"After {SPEC['constant-folding']}"]


def test_bad_dump_option_and_bad_pipeline_are_clear_errors():
    with pytest.raises(ValueError, match="unknown dump option 'after-some'"):
        DumpOptions.parse("after-some")
    with pytest.raises(ValueError, match="unknown pass 'cse-typo'"):
        parse_pipeline("default,cse-typo")


def test_named_pipelines_expand():
    assert [p.name for p in parse_pipeline("export")] == DEFAULT + ["lower-to-program",
                                                              "set-is-test"]
    assert set(PIPELINES) >= {"default", "export", "load"}


def test_pass_spec_round_trips_options():
    (p,) = parse_pipeline("constant-folding{max-elements=8}")
    assert p.spec() == "constant-folding{max-elements=8}"
    assert parse_pipeline(p.spec())[0].values == p.values


def test_failing_pass_names_pass_op_and_line_and_writes_a_replayable_reproducer(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOSTATIC_REPRODUCER_DIR", str(tmp_path))
    with pytest.raises(PassFailure) as info:
        paddle.compile(SimpleNet(), SPECS, passes="default,test-fail-on-add")
    err = info.value
    line = SimpleNet.forward.__code__.co_firstlineno + 1  # self.linear(x): its bias add
    assert err.pass_name == "test-fail-on-add" and err.op_name == "pd.add"
    assert err.location == f"{__file__}:{line}"
    assert f"pass 'test-fail-on-add' failed on pd.add at {__file__}:{line}" in str(err)
    repro = err.reproducer
    assert repro.startswith(str(tmp_path))
    text = open(repro).read()
    assert "// pipeline: test-fail-on-add" in text
    assert '"pd.persistable"' in text  # the IR before the failing pass, after the others
    assert f"tostatic opt {repro} --pipeline 'test-fail-on-add'" in str(err)

    assert cli(["opt", repro, "--pipeline", "test-fail-on-add"]) == 1
    replayed = capsys.readouterr().err
    assert f"pass 'test-fail-on-add' failed on pd.add at {__file__}:{line}: " \
           f"cannot handle adds" in replayed
    assert cli(["opt", repro]) == 1  # the file's own `// pipeline:` line
    assert "cannot handle adds" in capsys.readouterr().err


def test_verifier_failure_after_a_pass_names_the_pass_and_op(tmp_path, monkeypatch):
    monkeypatch.setenv("TOSTATIC_REPRODUCER_DIR", str(tmp_path))
    with pytest.raises(PassFailure, match=r"pass 'test-corrupt-matmul' failed on pd.matmul "
                                          r"at .*test_pass_manager.py:\d+: .*\[7, 7\]"):
        paddle.compile(SimpleNet(), SPECS, passes="default,test-corrupt-matmul")


def test_after_failure_prints_the_ir_the_pass_left(tmp_path, monkeypatch):
    monkeypatch.setenv("TOSTATIC_REPRODUCER_DIR", str(tmp_path))
    with pytest.raises(PassFailure):
        _compile("after-failure", passes="default,test-corrupt-matmul")
    stream = io.StringIO()
    opts = DumpOptions.parse("after-failure")
    opts.stream = stream
    with pytest.raises(PassFailure):
        paddle.compile(SimpleNet(), SPECS, passes="default,test-corrupt-matmul", dump=opts)
    out = stream.getvalue()
    assert _headers(out) == ["After test-corrupt-matmul Failed"]
    assert "tensor<7x7xf32>" in out


def test_verifier_checks_types_against_the_op_rule():
    compiled = paddle.compile(SimpleNet(), SPECS)
    module = compiled.module.clone()
    verify(module)
    matmul = next(op for op in module.walk() if op.name == "pd.matmul")
    from xdsl.dialects.builtin import TensorType, f32

    matmul.results[0]._type = TensorType(f32, [2, 2])
    with pytest.raises(VerifyError, match=r"pd.matmul at .*: .*result 0 is \[2, 2\]"):
        verify(module)


def test_opt_runs_a_pipeline_on_a_file_and_print_parse_print_is_stable(tmp_path, capsys):
    def fn(x):
        return x + paddle.full([3], 2.0) * 3.0

    compiled = paddle.compile(fn, [InputSpec([3], "float32", "x")], passes="")
    src = tmp_path / "captured.mlir"
    src.write_text(compiled.ir("captured", locations=True))
    assert cli(["opt", str(src), "--pipeline", "constant-folding,dead-op-elimination",
                "--print-loc"]) == 0
    folded = capsys.readouterr().out
    assert '"pd.multiply"' not in folded and '"pd.constant"' in folded
    assert "pd.loc" in folded
    once = tmp_path / "once.mlir"
    once.write_text(folded)
    assert cli(["opt", str(once), "--print-loc"]) == 0
    assert capsys.readouterr().out == folded  # print -> parse -> print is stable


def test_opt_reads_and_prints_the_program_dialect(tmp_path, capsys):
    compiled = paddle.compile(SimpleNet(), SPECS)
    src = tmp_path / "program.mlir"
    src.write_text(compiled.ir())
    assert cli(["opt", str(src), "--pipeline", "raise-from-program,dead-op-elimination"]) == 0
    raised = capsys.readouterr().out
    assert '"pd.matmul"' in raised and "program.op" not in raised
    assert cli(["opt", str(src), "--print-ir-after-all", "--pipeline", "load"]) == 0
    assert "IR Dump After raise-from-program" in capsys.readouterr().err


def test_opt_reports_parse_errors(tmp_path, capsys):
    bad = tmp_path / "bad.mlir"
    bad.write_text('"builtin.module"() ({\n  "pd.nonexistent"() : () -> ()\n}) : () -> ()\n')
    assert cli(["opt", str(bad)]) == 1
    assert "bad.mlir" in capsys.readouterr().err


def test_print_ir_drops_locations_unless_asked():
    compiled = paddle.compile(SimpleNet(), SPECS)
    assert "pd.loc" in print_ir(compiled.module, locations=True)
    assert "pd.loc" not in print_ir(compiled.module)
    assert "pd.loc" in print_ir(compiled.module, locations=True)  # the module itself kept them


def test_compiled_function_runs_saves_and_shows_its_stages(tmp_path):
    net = SimpleNet()
    compiled = paddle.compile(net, SPECS)
    assert compiled.stages == ["captured"] + DEFAULT + ["lower-to-program"]
    x, y = paddle.randn([4, 10]), paddle.randn([3])
    want = x.numpy() @ net.linear.weight.numpy() + net.linear.bias.numpy() + y.numpy()
    np.testing.assert_allclose(compiled(x, y).numpy(), want, rtol=1e-5, atol=1e-6)
    assert '"pd.capture"' in compiled.ir("captured")
    assert '"program.program"' in compiled.ir()
    assert compiled.pipeline == ("persistable-extraction{max-constant-elements=16},"
                                 "canonicalize,constant-folding{max-elements=1024},"
                                 "loop-invariant-code-motion,cse,"
                                 "dead-op-elimination,lower-to-program")
    compiled.save(str(tmp_path / "net"))
    loaded = paddle.jit.load(str(tmp_path / "net"))
    np.testing.assert_allclose(loaded(x, y).numpy(), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError, match="no stage .shape-inference."):
        compiled.ir("shape-inference")


def test_compile_a_plain_function_with_a_custom_pipeline():
    def fn(x):
        return paddle.relu(x) * 2.0

    compiled = paddle.compile(fn, [InputSpec([None, 2], "float32", "x")],
                              passes="dead-op-elimination")
    assert compiled.stages == ["captured", "persistable-extraction", "dead-op-elimination",
                               "lower-to-program"]
    layer = paddle.nn.Linear(2, 2)
    empty = paddle.compile(layer, [InputSpec([None, 2], "float32", "x")], passes="")
    x = paddle.ones([1, 2])
    np.testing.assert_allclose(empty(x).numpy(),
                               layer.weight.numpy().sum(0, keepdims=True) + layer.bias.numpy(),
                               rtol=1e-6)
    x = paddle.to_tensor(np.array([[-1.0, 2.0]], "float32"))
    np.testing.assert_allclose(compiled(x).numpy(), [[0.0, 4.0]])


def test_verify_once_at_the_end_still_catches_a_bad_pass_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TOSTATIC_REPRODUCER_DIR", str(tmp_path))
    with pytest.raises(PassFailure, match=r"pass 'dead-op-elimination' failed on pd.matmul .*"
                                          r"verifier ran only at the end of the pipeline"):
        paddle.compile(SimpleNet(), SPECS, verify="end", passes="persistable-extraction,"
                       "test-corrupt-matmul,dead-op-elimination")  # checked before lowering
    # "off" trusts the passes (tostatic opt --no-verify)
    paddle.compile(SimpleNet(), SPECS, passes="persistable-extraction,test-corrupt-matmul",
                   verify="off")


def test_timings_show_the_verifier_on_its_own_row():
    _, out = _compile("timings")
    assert re.search(r"\(verifier\)$", out, re.MULTILINE)


def test_errors_in_the_users_program_keep_their_class_and_write_no_reproducer(tmp_path,
                                                                             monkeypatch):
    from tostatic.ir.errors import UnsupportedError
    from tostatic.passes.manager import PassManager

    monkeypatch.setenv("TOSTATIC_REPRODUCER_DIR", str(tmp_path))
    module = parse_ir("""
"builtin.module"() ({
  "func.func"() <{sym_name = "f", function_type = (tensor<2xf32>) -> tensor<2xf32>}> ({
  ^bb0(%0: tensor<2xf32>):
    %1 = "pd.neg"(%0) {pd.loc = "model.py:3"} : (tensor<2xf32>) -> tensor<2xf32>
    "func.return"(%1) : (tensor<2xf32>) -> ()
  }) : () -> ()
}) : () -> ()
""")
    with pytest.raises(UnsupportedError, match=r"pd.neg has no Paddle legacy op .*model.py:3") \
            as info:
        PassManager("lower-to-program").run(module)
    assert not isinstance(info.value, PassFailure)
    assert info.value.pass_name == "lower-to-program"
    assert list(tmp_path.iterdir()) == []  # no reproducer: nothing is wrong with the compiler


def test_opt_on_captured_ir_explains_that_captures_need_the_traced_program(tmp_path, capsys):
    compiled = paddle.compile(SimpleNet(), SPECS)
    src = tmp_path / "captured.mlir"
    src.write_text(compiled.ir("captured"))
    assert cli(["opt", str(src), "--pipeline", "default"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"pd.capture #0 \(linear_\d+.w_0\)", err)
    assert "dump the IR after this pass" in err
    assert list(tmp_path.iterdir()) == [src]  # a user error: no reproducer beside it


def test_folder_numbers_run_on_across_pipelines(tmp_path):
    _compile(f"folder={tmp_path}")
    _compile(f"folder={tmp_path}")  # a second compile into the same folder overwrites nothing
    names = sorted(p.name for p in tmp_path.iterdir())
    stages = (["captured"] + DEFAULT + ["lower-to-program"]) * 2
    assert names == [f"{i:02d}_{s}.mlir" for i, s in enumerate(stages)]


def test_reproducer_of_a_pipeline_verified_at_the_end_replays_the_passes_before(
        tmp_path, monkeypatch, capsys):
    # verify="end" (the load and inference pipelines) copies the input once, not before every
    # pass; a failure replays the passes before the failing one on that copy
    monkeypatch.setenv("TOSTATIC_REPRODUCER_DIR", str(tmp_path))
    with pytest.raises(PassFailure) as info:
        paddle.compile(SimpleNet(), SPECS, verify="end",
                       passes="persistable-extraction,cse,test-fail-on-add,dead-op-elimination")
    repro = info.value.reproducer
    text = open(repro).read()
    assert "// pipeline: test-fail-on-add\n" in text
    assert '"pd.persistable"' in text and '"pd.capture"' not in text  # after the others
    assert cli(["opt", repro]) == 1
    assert "pass 'test-fail-on-add' failed on pd.add" in capsys.readouterr().err


def test_a_pipeline_given_a_copy_of_its_input_on_demand_copies_nothing_up_front(
        tmp_path, monkeypatch):
    # the load path re-reads the model file for a reproducer instead of copying its IR
    from tostatic.passes.base import CompileState
    from tostatic.passes.manager import PassManager

    monkeypatch.setenv("TOSTATIC_REPRODUCER_DIR", str(tmp_path))
    _, text = _compile("after=dead-op-elimination")  # `pd` IR with weights, as text
    asked = []

    def copy():
        asked.append(1)
        return parse_ir(text)

    PassManager("cse,dead-op-elimination", verify="end").run(parse_ir(text), input_copy=copy)
    assert asked == []  # nothing failed: no copy was made
    with pytest.raises(PassFailure) as info:
        PassManager("cse,test-fail-on-add", verify="end").run(parse_ir(text), CompileState(),
                                                             input_copy=copy)
    assert asked == [1]
    repro = open(info.value.reproducer).read()
    assert "// pipeline: test-fail-on-add\n" in repro and '"pd.add"' in repro
