"""The package's shape, checked from its source: imports only go down the layers, no module
imports itself back through others, every package has an __init__.py, no module is huge.

Layers, lowest first (docs/ARCHITECTURE.md): ir, ops, dialects, serialization, passes, codegen,
runtime, frontend, then the public modules (tostatic/__init__.py, nn, jit, static, ...).
Imports inside functions count like any other: a deferred import is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "tostatic"
LAYERS = ["ir", "ops", "dialects", "serialization", "passes", "codegen", "runtime", "frontend"]
MAX_LINES = 600


def layer(module: str) -> int:
    """Rank of a module `tostatic.x.y`: its top-level package's place; public modules last."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("tostatic",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported tostatic module) for every import statement, at any depth."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tostatic")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[:len(module.split(".")) - node.level + is_package]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("tostatic"):
                continue
            for a in node.names:  # `from pkg import submodule` depends on the submodule
                sub = f"{mod}.{a.name}"
                found.append((node.lineno, sub if sub in MODULES else mod))
    return found


GRAPH = {m: imports(m, p) for m, p in MODULES.items()}


def test_imports_only_go_down_the_layers():
    upward = [f"{MODULES[m].relative_to(ROOT.parent)}:{line} {m} -> {dst}"
              for m, deps in GRAPH.items() for line, dst in deps
              if layer(dst) > layer(m)]
    assert not upward, "imports against the flow of data:\n" + "\n".join(upward)


def test_no_import_cycles():
    edges = {m: sorted({d for _, d in deps if d in MODULES and d != m})
             for m, deps in GRAPH.items()}
    # a package's __init__ may gather its own submodules; that is not a cycle of concerns
    for m in edges:
        edges[m] = [d for d in edges[m] if not (m.startswith(d + ".") and d != "tostatic")]
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for d in edges[m]:
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in edges:
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_every_package_has_an_init_and_no_module_is_huge():
    missing = [str(d.relative_to(ROOT.parent)) for d in [ROOT, *ROOT.rglob("*")]
               if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
               and not (d / "__init__.py").exists()]
    assert not missing, f"packages without __init__.py: {missing}"
    big = [f"{p.relative_to(ROOT.parent)} ({n} lines)" for p in MODULES.values()
           if "_pb2" not in p.name and (n := p.read_text().count("\n")) > MAX_LINES]
    assert not big, f"modules over {MAX_LINES} lines: {big}"


@pytest.mark.parametrize("source,target,expected", [
    ("tostatic.passes.cse", "tostatic.frontend.capture.tracing", True),
    ("tostatic.frontend.static.mode", "tostatic.passes.lowering", False),
    ("tostatic.nn", "tostatic.frontend.nn.layer", False),
    ("tostatic.ir.text", "tostatic.dialects.pd", True),
])
def test_the_rule_itself(source, target, expected):
    assert (layer(target) > layer(source)) is expected


def test_the_import_finder_itself(tmp_path):
    """imports() on a made-up module: plain, `from`, relative and function-level imports, and
    `from pkg import submodule`, each resolved by hand; the rule then flags the three that go
    up from `ir`. (The checks above pass vacuously if imports() finds nothing.)"""
    known = ["tostatic.ir.dtypes", "tostatic.passes.cse", "tostatic.dialects.pd",
             "tostatic.frontend.tensor.tensor"]
    assert set(known) <= set(MODULES)
    src = tmp_path / "fake.py"
    src.write_text("import os\n"
                   "import tostatic.ir.dtypes\n"
                   "from tostatic.passes import cse\n"
                   "from ..dialects import pd\n"
                   "def f():\n"
                   "    from tostatic.frontend.tensor import tensor\n")
    found = imports("tostatic.ir.fake", src)
    assert found == [(2, known[0]), (3, known[1]), (4, known[2]), (6, known[3])]
    assert [dst for _, dst in found if layer(dst) > layer("tostatic.ir.fake")] == known[1:]
    init = tmp_path / "__init__.py"  # in a package's __init__, `.` is the package itself
    init.write_text("from .dtypes import float32\n")
    assert imports("tostatic.ir", init) == [(1, "tostatic.ir.dtypes")]
