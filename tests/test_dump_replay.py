"""Pass debugging beyond mlir-opt: the `diff` dump item, and dumps that name each pass with its
exact options and the pipeline that runs next, so any dumped stage replays with `tostatic opt`."""
import io
import re

import pytest

import tostatic as paddle
from tostatic import nn
from tostatic.cli import main as cli
from tostatic.passes.dump import ALL, DumpOptions
from tostatic.passes.manager import PassManager
from tostatic.static import InputSpec


class Net(nn.Layer):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(x) + paddle.full([3], 2.0) * 3.0  # something to fold


SPECS = [InputSpec([None, 4], "float32", "x")]
HEADER = re.compile(r"^// -----// IR Dump (.*?) //----- //$", re.MULTILINE)


def _compile(dump):
    opts = DumpOptions.parse(dump)
    opts.stream = io.StringIO()
    compiled = paddle.compile(Net(), SPECS, dump=opts)
    return compiled, opts.stream.getvalue()


def _chunks(out):
    """(header, body) of each dump in a stream."""
    parts = HEADER.split(out)
    return list(zip(parts[1::2], (b.strip("\n") for b in parts[2::2])))


def _apply_unified_diff(text, diff):
    """A minimal `patch`: apply one unified diff (as difflib writes it) to `text`."""
    src = text.splitlines()
    out, pos = [], 0
    lines = diff.splitlines()
    assert lines[0].startswith("--- ") and lines[1].startswith("+++ ")
    for line in lines[2:]:
        m = re.match(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", line)
        if m:
            start = int(m.group(1)) - (1 if m.group(2) != "0" else 0)
            out += src[pos:start]
            pos = start
        elif line.startswith(" "):
            assert src[pos] == line[1:], (src[pos], line)
            out.append(line[1:])
            pos += 1
        elif line.startswith("-"):
            assert src[pos] == line[1:], (src[pos], line)
            pos += 1
        elif line.startswith("+"):
            out.append(line[1:])
    return "\n".join(out + src[pos:])


def test_diff_prints_the_input_then_each_pass_change_and_they_add_up_to_the_result():
    compiled, out = _compile("diff")
    chunks = _chunks(out)
    assert chunks[0][0] == "At Start (captured)"
    assert [h for h, _ in chunks[1:]] == [
        "After persistable-extraction{max-constant-elements=16} (diff)",
        "After canonicalize (no change)",
        "After constant-folding{max-elements=1024} (diff)",
        "After loop-invariant-code-motion (no change)",
        "After cse (no change)",
        "After dead-op-elimination (diff)",
        "After lower-to-program (diff)"]
    assert all(body == "" for h, body in chunks if "no change" in h)
    folding = dict(chunks)["After constant-folding{max-elements=1024} (diff)"]
    assert re.search(r'^-.*"pd.scale"', folding, re.MULTILINE)
    assert re.search(r'^\+.*"pd.constant"', folding, re.MULTILINE)
    assert not re.search(r'^[-+].*"pd.matmul"', folding, re.MULTILINE)  # only what changed
    # the input, patched by every diff in turn, is the final IR
    start = chunks[0][1].split("\n", 1)[1]  # after its `// pipeline:` line
    assert chunks[0][1].startswith("// pipeline: persistable-extraction{")
    text = start
    for header, body in chunks[1:]:
        if header.endswith("(diff)"):
            text = _apply_unified_diff(text, body)
    assert text.strip() == compiled.ir().strip()


def test_diff_of_named_passes_only_and_its_spelling():
    _, out = _compile("diff=constant-folding+cse")
    assert [h for h, _ in _chunks(out)] == ["After constant-folding{max-elements=1024} (diff)",
                                            "After cse (no change)"]
    assert DumpOptions.parse("diff").diff is ALL
    assert DumpOptions.parse("diff=a+b,diff=c").diff == {"a", "b", "c"}
    with pytest.raises(ValueError, match="diff=PASS"):
        DumpOptions.parse("diffs")


def test_environment_variable_takes_diff(monkeypatch, capsys):
    monkeypatch.setenv("TOSTATIC_DUMP", "diff=constant-folding")
    paddle.jit.to_static(Net(), input_spec=SPECS).forward.concrete_program
    assert HEADER.findall(capsys.readouterr().err) == [
        "After constant-folding{max-elements=1024} (diff)"]


def test_dumps_carry_the_pipeline_that_runs_next_and_replay_with_opt(tmp_path, capsys):
    """A Before dump saved to a file, run by `tostatic opt` with its own `// pipeline:` line,
    gives what the compiler printed after the rest of the pipeline; an After dump likewise."""
    _, out = _compile("before=constant-folding,after=persistable-extraction+"
                      "dead-op-elimination+lower-to-program")
    chunks = dict(_chunks(out))
    before = chunks["Before constant-folding{max-elements=1024}"]
    assert before.splitlines()[0] == ("// pipeline: constant-folding{max-elements=1024},"
                                      "loop-invariant-code-motion,cse,"
                                      "dead-op-elimination,lower-to-program")
    after_pe = chunks["After persistable-extraction{max-constant-elements=16}"]
    assert after_pe.splitlines()[0].startswith("// pipeline: canonicalize,constant-folding{")
    assert "// pipeline:" not in chunks["After lower-to-program"]  # nothing runs after it
    final = chunks["After lower-to-program"]
    for name, text in [("before_cf", before), ("after_pe", after_pe)]:
        path = tmp_path / f"{name}.mlir"
        path.write_text(text)
        assert cli(["opt", str(path)]) == 0
        assert capsys.readouterr().out.strip() == final.strip()
    # one pass replays alone, with the exact options its header names
    path = tmp_path / "before_cf.mlir"
    assert cli(["opt", str(path), "--pipeline", "constant-folding{max-elements=1024}"]) == 0
    folded = capsys.readouterr().out
    assert '"pd.scale"' not in folded and '"pd.full"' in folded


def test_folder_files_name_their_stage_and_replay(tmp_path, capsys):
    folder = tmp_path / "dump"
    _compile(f"folder={folder}")
    files = sorted(folder.iterdir())
    first = files[1].read_text()  # after persistable-extraction
    assert first.startswith("// tostatic stage 01: after persistable-extraction"
                            "{max-constant-elements=16}\n// pipeline: canonicalize,")
    last = files[-1].read_text()
    assert last.startswith("// tostatic stage 07: after lower-to-program\n\"builtin.module\"")
    assert cli(["opt", str(files[1])]) == 0
    assert capsys.readouterr().out.strip() == last.split("\n", 1)[1].strip()


def test_failure_dump_names_the_pass_with_its_options(monkeypatch):
    opts = DumpOptions.parse("after-failure")
    opts.stream = io.StringIO()
    compiled = paddle.compile(Net(), SPECS)
    module = compiled.module.clone()
    manager = PassManager("constant-folding{max-elements=2},lower-to-program{mode=bogus}",
                          opts)
    with pytest.raises(Exception):
        manager.run(module)
    assert HEADER.findall(opts.stream.getvalue()) == ["After lower-to-program{mode=bogus} Failed"]
