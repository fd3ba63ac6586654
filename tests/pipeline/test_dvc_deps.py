"""dvc.yaml declares exactly the code each stage runs, and each kind of init exactly its inputs.

The code a stage runs is its script plus every module of cxrtransfer/ it imports, transitively (read
with ast, not by importing), plus the package data files those modules name (architectures.csv).
A dep missing here means a stage that does not rerun when its code changes; an extra one, a stage that
reruns for nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "cxrtransfer"
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def imported_modules(path: Path) -> set[str]:
    """Dotted names of the cxrtransfer modules (and `from` members) that `path` imports anywhere."""
    package = path.relative_to(REPO).parent.parts  # ("cxrtransfer", "embedded") for a subpackage module
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: only used inside the package
                assert package[:1] == (PACKAGE,) and node.level <= len(package), f"{path}: unexpected relative import"
                base = package[:len(package) - node.level + 1]
                module = ".".join(base) + (f".{node.module}" if node.module else "")
            else:
                module = node.module or ""
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}  # `from cxrtransfer import models`
    return {n for n in names if n.split(".")[0] == PACKAGE}


def module_file(name: str) -> Path | None:
    candidate = REPO / (name.replace(".", "/") + ".py")
    return candidate if candidate.is_file() else None


def data_files(path: Path) -> set[Path]:
    """Non-Python files beside a package module that it names in a string constant (read as package data)."""
    if PACKAGE not in path.relative_to(REPO).parts[:1]:
        return set()
    shipped = {p.name: p for p in path.parent.iterdir() if p.is_file() and p.suffix != ".py"}
    return {shipped[node.value] for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in shipped}


def code_closure(script: Path) -> set[str]:
    """The script and the package files it runs, as repository-relative paths."""
    seen, todo = {script}, [script]
    while todo:
        current = todo.pop()
        for name in imported_modules(current):
            found = module_file(name)
            if found is not None and found not in seen:
                seen.add(found)
                todo.append(found)
    files = seen | {data for module in seen for data in data_files(module)}
    return {str(f.relative_to(REPO)) for f in files}


def stage_script(stage: dict) -> Path:
    match = re.match(r"python (stages/\w+\.py)\b", stage["cmd"].strip())
    assert match, f"stage command does not start with `python stages/<name>.py`: {stage['cmd']!r}"
    return REPO / match.group(1)


@pytest.mark.parametrize("init", sorted(str(p.relative_to(REPO)) for p in (REPO / PACKAGE).rglob("__init__.py")))
def test_the_package_inits_run_no_code(init):
    """Every __init__.py of the package is imported by the stages but left out of the deps: it must stay inert."""
    tree = ast.parse((REPO / init).read_text())
    assert all(isinstance(node, (ast.Expr, ast.Assign)) for node in tree.body)


def test_the_import_walk_sees_lazy_and_relative_imports(tmp_path):
    """The walker itself, on the stage that imports a module inside a function (correlate -> models)."""
    closure = code_closure(REPO / "stages/correlate.py")
    assert {"cxrtransfer/models/architectures.py", "cxrtransfer/models/architectures.csv"} <= closure
    # stats.correlations imports stats.paper and data.chexpert with relative imports, across subpackages
    assert {"cxrtransfer/stats/correlations.py", "cxrtransfer/stats/paper.py", "cxrtransfer/data/chexpert.py"} <= closure
    assert not any(f.startswith("cxrtransfer/training/") for f in closure)


@pytest.mark.parametrize("name", sorted(DVC))
def test_code_deps_are_exactly_what_the_stage_imports(name):
    stage = DVC[name]
    declared = {d for d in stage["deps"] if isinstance(d, str) and d.startswith(("stages/", f"{PACKAGE}/"))}
    expected = code_closure(stage_script(stage))
    assert declared == expected, f"{name}: missing {sorted(expected - declared)}, extra {sorted(declared - expected)}"


def test_every_kind_of_init_has_its_stage_groups():
    """params `inits` kinds <-> dvc.yaml groups init_<kind> and train_<kind>, each fed by inits.<kind>."""
    kinds = set(PARAMS["inits"])
    assert kinds == {"random", "weights", "indomain"}
    for prefix in ("init_", "train_"):
        groups = {n[len(prefix):] for n in DVC if n.startswith(prefix)}
        assert groups == kinds, prefix
        for kind in kinds:
            assert DVC[prefix + kind]["matrix"] == {"arch": "${architectures}", "init": f"${{inits.{kind}}}"}


def _data_and_params(name: str) -> tuple[set[str], set[str]]:
    stage = DVC[name]
    data = {d for d in stage["deps"] if not d.startswith(("stages/", f"{PACKAGE}/"))}
    return data, set(stage.get("params", []))


def test_each_kind_of_init_depends_on_its_own_inputs_only():
    assert _data_and_params("init_random") == (set(), {"init.seed"})
    assert _data_and_params("init_weights") == ({"${init.weights_dir}"},
                                                {"init.seed", "init.weights_dir", "init.files"})
    assert _data_and_params("init_indomain") == ({"data/source_cache"}, {"pretrain"})


def test_train_groups_differ_only_in_their_init_list():
    """train_<kind> share one definition (a YAML anchor): the same cmd, deps and params."""
    first, *others = (DVC[f"train_{kind}"] for kind in PARAMS["inits"])
    for other in others:
        assert {k: v for k, v in other.items() if k != "matrix"} == {k: v for k, v in first.items() if k != "matrix"}
    assert "data/init/${item.arch}-${item.init}.safetensors" in first["deps"]
    assert "data/source_cache" not in first["deps"] and "pretrain" not in first["params"]


# Command-line options that name what a stage writes (or its private resume state); all others are inputs.
OUTPUT_OPTIONS = {"--out", "--metrics", "--summary", "--live", "--state", "--plot", "--points", "--figures"}


@pytest.mark.parametrize("name", sorted(DVC))
def test_every_path_a_stage_is_given_to_read_is_a_dep(name):
    stage = DVC[name]
    tokens = stage["cmd"].split()
    inputs = {value for option, value in zip(tokens, tokens[1:])
              if option.startswith("--") and option not in OUTPUT_OPTIONS | {"--params"} and "/" in value}
    assert inputs <= set(stage["deps"]), f"{name} reads undeclared {sorted(inputs - set(stage['deps']))}"
