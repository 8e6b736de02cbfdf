"""The `tostatic` command: each command as a subprocess (`python -m tostatic`) on a fresh export
and on Paddle-made models, with its error cases and exit codes; the wider matrix of error cases
in-process through `tostatic.cli.main` (same code, no interpreter start-up).

The subprocesses start all at once (each pays ~1 s of interpreter and import start-up) in two
waves: everything that needs no export, together with the export; then what reads the export.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tostatic as paddle
from conftest import FIXTURE_NAMES, FIXTURES, assert_all_close, fixture_cases
from tostatic.cli import COMMANDS, main
from tostatic.cli.model_files import resolve

ROOT = Path(__file__).resolve().parent.parent

NETS = textwrap.dedent('''
    import tostatic as paddle

    class SimpleNet(paddle.nn.Layer):
        def __init__(self, hidden=3):
            super().__init__()
            self.linear = paddle.nn.Linear(10, hidden)

        def forward(self, x, y):
            return self.linear(x) + y

    def make(hidden=3):
        return SimpleNet(hidden)

    def broken():
        return {}["no such key"]

    class Branchy(paddle.nn.Layer):
        def forward(self, x):
            if x.mean() > 0:
                return x
            return -x

    not_callable = 3

    def not_a_layer():
        return 3
''')


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TOSTATIC_DUMP", None)
    env.pop("TOSTATIC_TRACEBACK", None)
    return env


def _start_all(commands, cwd):
    procs = {name: subprocess.Popen([sys.executable, "-m", "tostatic", *argv], cwd=cwd,
                                    env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name, argv in commands.items()}
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        out[name] = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A directory with nets.py (the factories) and a state dict for SimpleNet(hidden=3)."""
    d = tmp_path_factory.mktemp("cli")
    (d / "nets.py").write_text(NETS)
    paddle.seed(7)
    layer = paddle.nn.Linear(10, 3)
    paddle.save({"linear.weight": layer.weight, "linear.bias": layer.bias},
                str(d / "net.pdparams"))
    np.save(d / "x.npy", np.random.default_rng(0).standard_normal((2, 10)).astype("float32"))
    np.save(d / "y.npy", np.arange(3, dtype="float32"))
    np.save(d / "x_bad.npy", np.zeros((2, 7), "float32"))
    (d / "stage.mlir").write_text(paddle.compile(
        lambda x: x + paddle.full([3], 2.0) * 3.0,
        [paddle.static.InputSpec([3], "float32", "x")], passes="").ir("captured"))
    return d


@pytest.fixture(scope="module")
def procs(work):
    """Every subprocess case, by name."""
    mlp, cf = FIXTURES / "mlp", FIXTURES / "control_flow"
    first = _start_all({
        "usage": ["run"],  # MODEL missing
        "export": ["export", "nets:make", "--arg", "hidden=3", "--state-dict", "net.pdparams",
                   "-s", "x:float32[?,10]", "-s", "y:float32[3]", "-o", "out/net"],
        "export_broken": ["export", "nets:broken", "-s", "x:float32[?,10]", "-o", "out/b"],
        "inspect_fixture": ["inspect", str(cf), "--dot", "cf.dot"],
        "run_fixture": ["run", str(mlp), "--input", str(mlp / "io.npz"), "-o", "mlp_out.npz"],
        "run_fixture_bad_name": ["run", str(mlp), "--input", "z=x.npy"],
        "bench_fixture": ["bench", str(mlp), "--json", "-n", "5", "--warmup", "2",
                          "--threads", "1", "--batch", "3"],
        "opt_binary": ["opt", str(mlp / "model.pdmodel"), "--pipeline", "load",
                       "--dump", "diff"],
        "opt_missing": ["opt", "missing.mlir"],
    }, work)
    assert first["export"].returncode == 0, first["export"].stderr
    second = _start_all({
        "inspect_export": ["inspect", "out/net", "--json"],
        "run_export_bad_shape": ["run", "out/net", "--input", "x=x_bad.npy"],
        "run_export": ["run", "out/net.pdmodel", "--input", "x=x.npy", "--input", "y=y.npy",
                       "-o", "net_out.npz"],
    }, work)
    return {**first, **second}


def _ok(p):
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return p


def _user_error(p, *patterns):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stderr.count("error:") == 1, p.stderr
    for pattern in patterns:
        assert re.search(pattern, p.stderr), (pattern, p.stderr)


# ----------------------------------------------------------------------------- subprocesses

def test_usage_errors_exit_2(procs):
    usage = procs["usage"]
    assert usage.returncode == 2 and "usage: tostatic run" in usage.stderr
    assert "the following arguments are required: MODEL" in usage.stderr


def test_export_then_inspect_and_run_the_files(procs, work):
    out = _ok(procs["export"]).stdout
    assert "out/net.pdmodel" in out and "out/net.pdiparams.info" in out
    assert re.search(r"inputs\s+x float32 \[-1, 10\], y float32 \[3\]", out)
    summary = json.loads(_ok(procs["inspect_export"]).stdout)
    assert summary["format"] == "pdmodel" and summary["producer"]["version"] == "3.3.1"
    assert summary["inputs"] == [{"name": "x", "dtype": "float32", "shape": [-1, 10]},
                                 {"name": "y", "dtype": "float32", "shape": [3]}]
    assert [o["shape"] for o in summary["outputs"]] == [[-1, 3]]
    assert summary["ops"] == {"elementwise_add": 2, "feed": 2, "fetch": 1, "matmul_v2": 1}
    assert summary["parameters"] == {"tensors": 2, "values": 33, "bytes": 132,
                                     "by_dtype": {"float32": 33}}
    assert summary["unsupported_ops"] == []
    assert re.fullmatch(r"[0-9a-f]{64}", summary["sha256"])
    # the weights are the state dict's: the outputs are that Linear's, plus y
    _ok(procs["run_export"])
    got = np.load(work / "net_out.npz")
    state = paddle.load(str(work / "net.pdparams"))
    x, y = np.load(work / "x.npy"), np.load(work / "y.npy")
    want = x @ state["linear.weight"].numpy() + state["linear.bias"].numpy() + y
    np.testing.assert_allclose(got[got.files[0]], want, rtol=1e-5, atol=1e-6)


def test_export_error_in_the_users_factory_names_its_line(procs, work):
    line = NETS.splitlines().index("    return {}[\"no such key\"]") + 1
    _user_error(procs["export_broken"], rf"nets:broken\(\.\.\.\) raised KeyError",
                rf"nets\.py:{line}\)")
    assert not (work / "out" / "b.pdmodel").exists()


def test_inspect_a_paddle_model_with_control_flow_and_its_dot_graph(procs, work):
    out = _ok(procs["inspect_fixture"]).stdout
    assert "producer Paddle 3.3.1 (the version the file records)" in out
    assert re.search(r"^  x\s+float32\s+\[-1, 4\]$", out, re.MULTILINE)
    assert re.search(r"^  n\s+int64\s+\[1\]$", out, re.MULTILINE)
    assert re.search(r"ops\s+\d+ in 4 blocks", out)
    assert re.search(r"^  conditional_block\s+2\s*$", out, re.MULTILINE)
    dot = (work / "cf.dot").read_text()
    assert dot.startswith('digraph "model.pdmodel" {') and dot.rstrip().endswith("}")
    assert dot.count("subgraph") == 3  # the three sub-blocks
    assert re.search(r'label="while"', dot) and "lhead=" in dot


def test_run_a_paddle_model_and_its_errors(procs, work):
    _ok(procs["run_fixture"])
    got = np.load(work / "mlp_out.npz")
    ((_, _, expected),) = fixture_cases("mlp")
    assert_all_close([got[k] for k in got.files], expected)
    _user_error(procs["run_fixture_bad_name"], r"no input 'z'; its inputs are x \(float32 "
                r"\[-1, 16\]\)")
    _user_error(procs["run_export_bad_shape"], r"input 'x' expects shape \[-1, 10\].*given "
                r"shape \[2, 7\]")


def test_bench_reports_latency_percentiles_as_json(procs):
    p = _ok(procs["bench_fixture"])
    result = json.loads(p.stdout)
    assert result["runs"] == 5 and result["warmup"] == 2 and result["batch"] == 3
    lat = result["latency_ms"]
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert result["throughput"]["samples_per_s"] == pytest.approx(3e3 / lat["median"])
    assert result["inputs"] == [{"name": "x", "dtype": "float32", "shape": [3, 16]}]
    assert result["threads"] == 1
    assert "warm-up: 2 runs" in p.stderr and "measuring: 5 runs" in p.stderr


def test_opt_reads_a_binary_pdmodel_and_reports_a_missing_file(procs):
    p = _ok(procs["opt_binary"])
    assert '"pd.matmul"' in p.stdout and "program.op" not in p.stdout
    assert "IR Dump At Start (input)" in p.stderr
    assert "IR Dump After raise-from-program (diff)" in p.stderr
    _user_error(procs["opt_missing"], r"missing\.mlir: No such file or directory")


# ----------------------------------------------------------------------------- in-process

def _main(capsys, *argv):
    """(exit code, stdout, stderr) of `tostatic ARGV` run in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse: --help (0), bad usage (2)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command(capsys):
    code, out, _ = _main(capsys, "--help")
    assert code == 0
    for cmd in COMMANDS:
        assert re.search(rf"^\s+{cmd.name}\s", out, re.MULTILINE), cmd.name


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_command_has_help(capsys, command):
    code, out, _ = _main(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: tostatic {command}")
    module_doc = __import__(f"tostatic.cli.{next(c.module for c in COMMANDS if c.name == command)}",
                            fromlist=["_"]).__doc__
    assert module_doc.strip().splitlines()[0] in out


def test_model_files_are_found_from_a_file_a_prefix_or_a_directory(tmp_path):
    d = FIXTURES / "mlp"
    for given in (d, d / "model", d / "model.pdmodel"):
        files = resolve(str(given))
        assert (files.model, files.params, files.format.name) == (
            str(d / "model.pdmodel"), str(d / "model.pdiparams"), "pdmodel")
        assert files.info == str(d / "model.pdiparams.info")
    assert resolve(str(FIXTURES / "two_outputs")).params is None  # no parameters, no file
    (tmp_path / "a.pdmodel").write_bytes((d / "model.pdmodel").read_bytes())
    (tmp_path / "b.pdmodel").write_bytes((d / "model.pdmodel").read_bytes())
    (tmp_path / "renamed.json").write_text('{"base_code": {"magic": "pir"}}')
    with pytest.raises(Exception, match=r"several models \['a.pdmodel', 'b.pdmodel'\]"):
        resolve(str(tmp_path))
    assert resolve(str(tmp_path / "renamed.json")).format.name == "pir-json"  # by content
    (tmp_path / "c.json").write_bytes((d / "model.pdmodel").read_bytes())
    assert resolve(str(tmp_path / "c.json")).format.name == "pdmodel"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_inspect_json_agrees_with_what_paddle_recorded(capsys, name):
    d = FIXTURES / name
    meta = json.loads((d / "meta.json").read_text())
    code, out, _ = _main(capsys, "inspect", d, "--json")
    assert code == 0
    s = json.loads(out)
    assert s["inputs"] == meta["feeds"] and s["outputs"] == meta["fetches"]
    assert sorted(s["ops"]) == meta["op_types"] and s["num_ops"] == meta["num_ops"]
    assert s["num_blocks"] == meta["num_blocks"] and s["unsupported_ops"] == []
    assert s["parameters"]["tensors"] == len(meta["persistables"])
    assert s["files"]["model"]["sha256"] == meta["files"]["model.pdmodel"]["sha256"]
    if "model.pdiparams" in meta["files"]:
        assert s["files"]["params"]["sha256"] == meta["files"]["model.pdiparams"]["sha256"]
        assert s["parameters"]["bytes"] < s["files"]["params"]["bytes"]  # + record headers
    assert s["producer"] == {"name": "paddle", "version": "3.3.1", "version_code": 3003001}


@pytest.mark.parametrize("name", ["control_flow", "embed_ln"])
def test_inspect_program_prints_what_print_program_prints_in_paddle(capsys, name):
    code, out, _ = _main(capsys, "inspect", FIXTURES / name / "model", "--program")
    assert code == 0 and out == (FIXTURES / name / "inference_program.txt").read_text()


def test_inspect_names_ops_tostatic_cannot_run(capsys, tmp_path):
    from tostatic.dialects.context import parse_ir
    from tostatic.ir.text import print_ir
    from tostatic.serialization.program_desc import load_program, save_program

    text = print_ir(load_program(FIXTURES / "mlp" / "model.pdmodel"))
    module = parse_ir(text.replace('op_type = "relu"', 'op_type = "my_custom_relu"'))
    save_program(tmp_path / "m.pdmodel", next(iter(module.body.block.ops)))
    code, out, _ = _main(capsys, "inspect", tmp_path / "m.pdmodel")
    assert code == 0
    assert re.search(r"my_custom_relu\s+2\s+\(not supported by tostatic\)", out)
    assert "cannot run this model yet: it does not support my_custom_relu" in out
    code, _, err = _main(capsys, "run", tmp_path / "m.pdmodel")  # the loader says where
    assert code == 1 and re.search(r"op \d+ \(my_custom_relu\) of block 0.*not supported", err)


def test_dot_graph_renders_with_graphviz(capsys, tmp_path):
    import shutil

    for name in ("control_flow", "small_cnn"):
        code, out, _ = _main(capsys, "inspect", FIXTURES / name, "--dot", "-")
        assert code == 0 and out.startswith("digraph") and '"v:x"' in out
        if shutil.which("dot"):
            svg = subprocess.run(["dot", "-Tsvg"], input=out, capture_output=True, text=True)
            assert svg.returncode == 0 and "<svg" in svg.stdout, svg.stderr


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_run_gives_paddles_outputs(capsys, tmp_path, name):
    for i, (d, feeds, expected) in enumerate(fixture_cases(name)):
        np.savez(tmp_path / "in.npz", **feeds)
        out = tmp_path / f"out{i}.npz"
        code, stdout, _ = _main(capsys, "run", d, "--input", tmp_path / "in.npz", "-o", out)
        assert code == 0
        got = np.load(out)
        assert_all_close([got[k] for k in got.files], expected)
        assert all(f"{k}: {got[k].dtype}" in stdout for k in got.files)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_run_and_bench_on_random_inputs(capsys, name):
    code, out, err = _main(capsys, "run", FIXTURES / name, "--batch", "3", "-q")
    assert code == 0 and out == "" and "random" in err
    code, out, err = _main(capsys, "bench", FIXTURES / name, "-n", "3", "--warmup", "1")
    assert code == 0
    assert re.search(r"latency\s+median [\d.]+ ms\s+p90 [\d.]+ ms\s+p99 [\d.]+ ms", out)
    assert re.search(r"throughput\s+[\d.]+ runs/s", out)


def test_run_errors_name_the_input_and_what_was_expected(capsys, work, tmp_path):
    mlp = FIXTURES / "mlp"
    np.save(tmp_path / "f64.npy", np.zeros((2, 16)))
    np.save(tmp_path / "ok.npy", np.zeros((2, 16), "float32"))
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    alone = tmp_path / "alone.pdmodel"
    alone.write_bytes((mlp / "model.pdmodel").read_bytes())
    short = tmp_path / "short"
    (tmp_path / "short.pdmodel").write_bytes((mlp / "model.pdmodel").read_bytes())
    (tmp_path / "short.pdiparams").write_bytes((mlp / "model.pdiparams").read_bytes()[:100])
    cases = [
        (["--input", f"x={tmp_path / 'f64.npy'}"], 1, r"input 'x' expects dtype float32, but "
         r".*f64.npy holds float64 \[2, 16\]; convert it"),
        (["--input", str(tmp_path / "ok.npy")], 1, r"a \.npy file needs the input's name"),
        (["--input", str(tmp_path / "other.npz")], 1, r"has no array named like an input"),
        (["--input", f"x={tmp_path / 'nope.npy'}"], 1, r"nope\.npy: No such file"),
        (["--shape", "q=1,16"], 1, r"no input 'q'"),
        (["--shape", "x=1,?"], 2, r"give every dimension's size"),
        (["--shape", "x=2,8"], 1, r"input 'x' expects shape \[-1, 16\].*given shape \[2, 8\]"),
        (["--bogus"], 2, r"unrecognized arguments: --bogus"),
    ]
    for extra, want_code, pattern in cases:
        code, _, err = _main(capsys, "run", mlp, *extra)
        assert code == want_code and re.search(pattern, err), (extra, code, err)
        assert "Traceback" not in err
    code, _, err = _main(capsys, "run", "no/such/model")
    assert code == 1 and "no model at 'no/such/model'" in err
    code, _, err = _main(capsys, "run", alone)
    assert code == 1 and re.search(r"has parameters, but there is no params file .*alone"
                                   r"\.pdiparams' beside it; give it with --params", err)
    code, _, err = _main(capsys, "run", short)
    assert code == 1 and re.search(r"short\.pdiparams at byte offset \d+", err)
    code, _, err = _main(capsys, "run", alone, "--params", tmp_path / "none.pdiparams")
    assert code == 1 and "params file" in err and "does not exist" in err


def test_opt_errors_and_model_input(capsys, tmp_path):
    mlp = FIXTURES / "mlp"
    code, out, _ = _main(capsys, "opt", mlp / "model.pdmodel")  # no pipeline: as read
    assert code == 0 and '"program.program"' in out
    (tmp_path / "m.json").write_text('{"base_code": {"magic": "pir", "version": 1}}')
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 3)
    (tmp_path / "notes.txt").write_text("hello world\n")
    cases = [
        (mlp / "model.pdiparams", r"looks like a parameters file"),
        (mlp / "model.pdiparams.info", r"looks like a parameters file"),
        (tmp_path / "m.json", r"m\.json: \(top level\): missing key 'program'"),
        (mlp, r"is a directory"),
        (tmp_path / "junk.bin", r"junk\.bin is neither textual IR nor a model .*byte offset"),
        (tmp_path / "notes.txt", r"notes\.txt:1:\d+"),
        (tmp_path / "missing.mlir", r"missing\.mlir: No such file or directory"),
    ]
    for path, pattern in cases:
        code, _, err = _main(capsys, "opt", path)
        assert code == 1 and re.search(pattern, err), (path, err)
        assert "Traceback" not in err and "UnicodeDecodeError" not in err
    code, _, err = _main(capsys, "opt", mlp / "model.pdmodel", "--pipeline", "no-such-pass")
    assert code == 1 and "unknown pass 'no-such-pass'" in err
    code, _, err = _main(capsys, "opt", mlp / "model.pdmodel", "--dump", "after-some")
    assert code == 1 and "unknown dump option 'after-some'" in err


def test_opt_prints_each_pass_change_as_a_diff(capsys, work):
    code, out, err = _main(capsys, "opt", work / "stage.mlir", "--pipeline",
                           "constant-folding,cse,dead-op-elimination", "--print-ir-diff")
    assert code == 0
    headers = re.findall(r"// -----// IR Dump (.*?) //----- //", err)
    assert headers == ["At Start (input)", "After constant-folding{max-elements=1024} (diff)",
                       "After cse (no change)", "After dead-op-elimination (diff)"]
    assert re.search(r'^-\s+%\d+ = "pd.scale"', err, re.MULTILINE)
    assert re.search(r'^\+\s+%\d+ = "pd.constant"', err, re.MULTILINE)
    assert '"pd.scale"' not in out


@pytest.fixture
def in_work_dir(work, monkeypatch):
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("TOSTATIC_DUMP", "")  # so that monkeypatch restores it afterwards
    monkeypatch.delenv("TOSTATIC_DUMP")
    yield work
    sys.modules.pop("nets", None)


def test_export_errors(capsys, in_work_dir):
    spec = ["-s", "x:float32[?,10]", "-s", "y:float32[3]", "-o", "out/e"]
    nets_line = {n: NETS.splitlines().index(text) + 1 for n, text in
                 [("branchy", "        if x.mean() > 0:")]}
    cases = [
        (["nets"], 1, r"TARGET 'nets' should be MODULE:FACTORY or FILE\.py:FACTORY"),
        (["nope:make"], 1, r"cannot import 'nope': no module named 'nope'"),
        (["missing.py:make"], 1, r"missing\.py: no such file"),
        (["nets:absent"], 1, r"nets has no 'absent'"),
        (["nets:not_callable"], 1, r"nets:not_callable is a int, not a function or class"),
        (["nets:not_a_layer"], 1, r"returned a int, not a Layer"),
        (["nets:make", "-s", "x:float32[?,10]", "-o", "out/e"], 1,
         r"SimpleNet\.forward takes 2 argument\(s\) \(x, y\); got 1 --input-spec"),
        (["nets:Branchy", "-s", "x:float32[?,10]", "-o", "out/branchy"], 0, ""),  # converted to pd.if
        (["nets:make", "--arg", "hidden=4", "--state-dict", "net.pdparams"], 1,
         r"linear\.weight"),
        (["nets:make", "--state-dict", "nothing.pdparams"], 1, r"nothing\.pdparams"),
        (["nets:make", "--dump", "after-some"], 1, r"unknown dump option 'after-some'"),
        (["nets:make", "-s", "x:complex7[?,10]"], 2, r"bad input spec 'x:complex7\[\?,10\]'"),
        (["nets:make", "-s", "x:float32(?,10)"], 2, r"expected NAME:DTYPE\[DIMS\]"),
        (["nets:make", "-s", "x:float32[?,a]"], 2, r"dimension 'a' is neither a size nor '\?'"),
    ]
    for argv, want_code, pattern in cases:
        full = argv if "-o" in argv else argv + spec
        code, _, err = _main(capsys, "export", *full)
        assert code == want_code and re.search(pattern, err), (argv, code, err)
        assert "Traceback" not in err
    assert not (in_work_dir / "out" / "e.pdmodel").exists()


def test_export_from_a_file_with_a_diff_dump(capsys, in_work_dir):
    code, out, err = _main(capsys, "export", "nets.py:SimpleNet", "--arg", "hidden=2",
                           "-s", "[?,10]", "-s", "y:[2]", "-o", "out/f", "--dump",
                           "diff=persistable-extraction")
    assert code == 0, err
    assert re.search(r"inputs\s+x float32 \[-1, 10\], y float32 \[2\]", out)  # x: the arg's
    assert re.findall(r"IR Dump (.*?) //", err) == [
        "After persistable-extraction{max-constant-elements=16} (diff)"]
    assert "TOSTATIC_DUMP" not in os.environ  # set for jit.save only
    layer = paddle.jit.load(str(in_work_dir / "out" / "f"))
    assert layer(np.ones((1, 10), "float32"), np.zeros(2, "float32")).shape == [1, 2]


def test_a_bug_in_tostatic_exits_3_with_its_traceback(capsys, monkeypatch):
    import tostatic.cli.passes

    def crash(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(tostatic.cli.passes, "run", crash)
    code, _, err = _main(capsys, "passes")
    assert code == 3 and "Traceback" in err and "internal error: RuntimeError: boom" in err


def test_tostatic_traceback_shows_a_user_errors_traceback(capsys, monkeypatch):
    monkeypatch.setenv("TOSTATIC_TRACEBACK", "1")
    code, _, err = _main(capsys, "run", "no/such/model")
    assert code == 1 and "Traceback" in err and "no model at" in err


@pytest.mark.interop
def test_a_cli_export_runs_in_paddle_inference_with_the_same_outputs(capsys, in_work_dir,
                                                                     real_paddle):
    from conftest import paddle_predict

    code, _, err = _main(capsys, "export", "nets:make", "--state-dict", "net.pdparams",
                         "-s", "x:float32[?,10]", "-s", "y:float32[3]", "-o", "out/p")
    assert code == 0, err
    feeds = {"x": np.load("x.npy"), "y": np.load("y.npy")}
    np.savez("p_in.npz", **feeds)
    assert _main(capsys, "run", "out/p", "--input", "p_in.npz", "-o", "p_out.npz")[0] == 0
    got = np.load("p_out.npz")
    want = paddle_predict("out/p.pdmodel", "out/p.pdiparams", feeds)
    assert_all_close([got[k] for k in got.files], want)
