"""pyproject.toml lists what the code imports, nothing more and nothing less: the runtime
dependencies are what tostatic/ imports (at any depth, as the architecture test counts
imports), the test extra what tests/ imports (or importorskips) beyond those."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# import name -> distribution name, for every third-party module the code may import; a new
# one fails test_every_import_is_known until it is added here and to pyproject.toml
DISTRIBUTIONS = {"numpy": "numpy", "xdsl": "xdsl", "google": "protobuf", "llvmlite": "llvmlite",
                 "pytest": "pytest", "paddle": "paddlepaddle", "openvino": "openvino",
                 "onnxruntime": "onnxruntime", "paddle2onnx": "paddle2onnx", "onnx": "onnx",
                 "hypothesis": "hypothesis", "playwright": "playwright", "netron": "netron"}


def third_party_imports(directory: Path) -> dict[str, str]:
    """Top-level module -> the first file:line importing it, for the .py files under directory
    (stdlib, tostatic and the directory's own modules left out)."""
    files = sorted(directory.rglob("*.py"))
    examples = {p.stem for p in (ROOT / "examples").glob("*.py")}  # tests run the examples
    local = {p.stem for p in files} | examples | {"tostatic"}
    found: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "importorskip" and node.args
                  and isinstance(node.args[0], ast.Constant)):
                names = [node.args[0].value]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def declared(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = third_party_imports(ROOT / "tostatic")
TESTS = third_party_imports(ROOT / "tests")


def test_every_import_is_known():
    unknown = {m: where for m, where in {**RUNTIME, **TESTS}.items() if m not in DISTRIBUTIONS}
    assert not unknown, (f"imports of modules with no known distribution: {unknown}; add "
                         f"them to DISTRIBUTIONS here and to pyproject.toml")


def test_runtime_dependencies_are_what_tostatic_imports():
    imported = {DISTRIBUTIONS[m] for m in RUNTIME}
    assert declared(PROJECT["dependencies"]) == imported, RUNTIME


def test_test_extra_is_what_the_tests_import_beyond_the_runtime():
    imported = {DISTRIBUTIONS[m] for m in TESTS} - declared(PROJECT["dependencies"])
    assert declared(PROJECT["optional-dependencies"]["test"]) == imported, TESTS
