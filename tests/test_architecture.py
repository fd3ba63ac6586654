"""The package's architecture (ARCHITECTURE.md), enforced: layers import downward only, no import cycle,
imports inside functions only where a comment says why, no function over 60 lines, tests mirror the package.

Imports are read with ast (every import statement, at any depth), not by importing the modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "cxrtransfer"
BASE = {"errors", "fileio", "layout"}  # modules at the package root: the base layer (__main__.py is lab's)

# What each layer may import from the package, besides itself. A layer never imports one above it.
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "data": {"base"},
    "embedded": {"base", "data"},
    "models": {"base", "data"},
    "stats": {"base", "data"},
    "training": {"base", "data", "models", "stats"},
    "report": {"base", "stats"},
    "pipeline": {"base", "data", "models", "stats", "training", "report"},
    "lab": {"base", "data", "embedded", "models", "stats", "training", "report", "pipeline"},
    "stages": {"base", "data", "embedded", "models", "stats", "training", "report", "pipeline"},
}
MAX_FUNCTION_LINES = 60


def layer_of(module: str) -> str:
    """The layer of a dotted module name under cxrtransfer (or of a stage script)."""
    parts = module.split(".")
    if parts[0] == "stages":
        return "stages"
    if parts[1:] == ["__main__"]:
        return "lab"
    if len(parts) == 1 or parts[1] in BASE or parts[1] == "__init__":
        return "base"
    return parts[1]


def module_name(path: Path, repo: Path = REPO) -> str:
    return ".".join(path.relative_to(repo).with_suffix("").parts)


def imports(path: Path, repo: Path = REPO) -> list[tuple[str, ast.stmt]]:
    """(imported cxrtransfer module, statement) for every import in the file; `from x import y` counts y
    when y is a module of the package."""
    package = module_name(path, repo).split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names if alias.name.split(".")[0] == "cxrtransfer"]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module.split(".")[0] != "cxrtransfer":
                continue
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                is_module = (repo / (candidate.replace(".", "/") + ".py")).is_file() or \
                    (repo / candidate.replace(".", "/")).is_dir()
                found.append((candidate if is_module else module, node))
    return found


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py")) + sorted((REPO / "stages").glob("*.py"))


def test_the_layers_are_folders():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set(ALLOWED) - {"base", "stages"}
    assert {p.stem for p in PACKAGE.glob("*.py")} == BASE | {"__init__", "__main__"}


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down_the_layers(path):
    here = layer_of(module_name(path))
    wrong = sorted({f"{module} (line {node.lineno})" for module, node in imports(path)
                    if layer_of(module) != here and layer_of(module) not in ALLOWED[here]})
    assert not wrong, f"{here} may import {sorted(ALLOWED[here])} only, imports {wrong}"


def module_graph(repo: Path = REPO) -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    return {module_name(path, repo): {m for m, _ in imports(path, repo) if (repo / (m.replace(".", "/") + ".py")).is_file()}
            for path in sorted((repo / "cxrtransfer").rglob("*.py"))}


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle a depth-first walk meets, as the list of modules around it."""
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target] if target in trail else [node, target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycle():
    assert cycles_in(module_graph()) == []


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_inside_functions_say_why(path):
    """Only to break a real cycle or to defer a heavy import, with a comment on the line above saying which."""
    lines = path.read_text().splitlines()
    unexplained = []
    for function in ast.walk(ast.parse(path.read_text())):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                above = lines[node.lineno - 2].strip()
                if not above.startswith("#") and "#" not in lines[node.lineno - 1]:
                    unexplained.append(f"line {node.lineno}: {lines[node.lineno - 1].strip()}")
    assert unexplained == []


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_functions_fit_on_a_screen(path):
    long = [f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_the_checker_sees_a_wrong_direction_and_a_cycle(tmp_path):
    """The walker itself: an upward import and a two-module cycle in a throwaway package are found."""
    for folder, name, text in (("data", "reader", "from ..training import loop\n"),
                               ("training", "loop", "from ..data.reader import read\n")):
        (tmp_path / "cxrtransfer" / folder).mkdir(parents=True)
        (tmp_path / "cxrtransfer" / folder / "__init__.py").write_text("")
        (tmp_path / "cxrtransfer" / folder / f"{name}.py").write_text(text)
    reader = tmp_path / "cxrtransfer" / "data" / "reader.py"
    assert [m for m, _ in imports(reader, tmp_path)] == ["cxrtransfer.training.loop"]
    assert layer_of("cxrtransfer.training.loop") not in ALLOWED[layer_of(module_name(reader, tmp_path))]
    assert cycles_in(module_graph(tmp_path)) == [["cxrtransfer.data.reader", "cxrtransfer.training.loop",
                                                   "cxrtransfer.data.reader"]]


@pytest.mark.parametrize("layer", sorted(set(ALLOWED) - {"base"}))
def test_tests_mirror_the_package(layer):
    """Each layer (and the stage scripts) has its folder of tests; end-to-end tests are in tests/e2e/."""
    folder = REPO / "tests" / layer
    assert folder.is_dir() and any(folder.glob("test_*.py"))
