"""README.md stays true: its op table is what the registry holds, its example runs, its Python
version is pyproject's, its CLI section lists every command, and its troubleshooting table
quotes the errors as tostatic words them."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

import tostatic as paddle
from conftest import FIXTURES
from tostatic.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.MULTILINE | re.DOTALL)
    assert m, f"README.md has no '## {title}' section"
    return m.group(1)


def test_op_table_is_current():
    spec = importlib.util.spec_from_file_location("gen_op_table",
                                                  ROOT / "scripts" / "gen_op_table.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.replace_section(README, gen.render()) == README, (
        "README.md's op table is stale: run python scripts/gen_op_table.py")
    assert "`matmul_v2`" in _section("Supported ops and layers")


def test_python_version_line_is_pyprojects():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requires = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"]).group(1)
    assert f"**Supported Python version: {requires} or newer**" in README


def test_cli_section_lists_every_command():
    section = _section("The `tostatic` command")
    for cmd in COMMANDS:
        assert f"| `tostatic {cmd.name}" in section, cmd.name


def test_the_example_runs_and_calls_the_loaded_model(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", README, re.DOTALL).group(1)
    assert "layer(x, y)" in code
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue() == "[4, 3] 0.0\n"
    assert (tmp_path / "simple_net.pdmodel").exists()


def _quoted(error: Exception) -> None:
    message = str(error)
    assert message in README, f"README's troubleshooting does not quote: {message}"


def test_troubleshooting_quotes_the_real_messages(tmp_path):
    layer = paddle.jit.load(str(FIXTURES / "simple_net" / "model"))
    with pytest.raises(Exception) as e:
        layer(np.zeros((4, 7), "float32"), np.zeros(3, "float32"))
    _quoted(e.value)
    shutil.copy(FIXTURES / "mlp" / "model.pdmodel", tmp_path / "model.pdmodel")
    with pytest.raises(FileNotFoundError) as e:
        paddle.jit.load(str(tmp_path / "model"))
    assert str(e.value).replace(f"{tmp_path}/", "") in README
    with pytest.raises(Exception) as e:
        paddle.jit.save(_Branchy(), str(tmp_path / "b"),
                        input_spec=[paddle.static.InputSpec([None, 4], "float32", "x")])
    before, _, after = str(e.value).partition(" at ")
    assert before in README and after.split("; ", 1)[1].split(":")[0] in README


class _Branchy(paddle.nn.Layer):
    def forward(self, x):
        positive = bool(x.mean() > 0)  # a Python bool of a symbolic tensor: an error
        return x if positive else -x
