"""The built wheel, installed non-editable where a lab installs it: every subpackage and data file, the
`cxrtransfer` command, and the library working from a folder outside the repository.

The wheel is built from a copy of the project's files (no build/ or egg-info left in the checkout) and
installed with --no-deps into a target folder: the locked dependencies already installed here serve it,
so nothing is downloaded. The target folder comes first on PYTHONPATH, ahead of the editable install of
the checkout, and the smoke script checks that it imported the installed copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
BUILT_FROM = ("cxrtransfer", "pyproject.toml", "README.md")

SMOKE = textwrap.dedent('''
    import importlib, json, pkgutil, sys
    from pathlib import Path

    import numpy as np
    import torch

    import cxrtransfer
    assert Path(cxrtransfer.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), cxrtransfer.__file__
    modules = sorted(m.name for m in pkgutil.walk_packages(cxrtransfer.__path__, "cxrtransfer.")
                     if not m.name.endswith("__main__"))
    for name in modules:
        importlib.import_module(name)

    from cxrtransfer.data import chexpert, images
    from cxrtransfer.embedded import synthetic_chexpert
    from cxrtransfer.models import architectures
    from cxrtransfer.training import dataset, layouts, loop

    summary = synthetic_chexpert.generate_chexpert(Path("synthetic"), n_train_patients=4, n_valid_patients=2,
                                                   n_test_patients=2, height=40, width=48, labels="invented",
                                                   workers=1)
    labels = chexpert.read_labels(Path("synthetic") / "CheXpert-v1.0-small" / "train.csv")
    pixels = np.stack([images.load_image(Path("synthetic") / p, 32) for p in labels["path"][:8]])
    policies = ["ones", "zeros"]
    targets, mask = chexpert.policy_targets(labels[["Edema", "Atelectasis"]].to_numpy(np.float32)[:8], policies)
    train = dataset.ImageSet(pixels, np.arange(8), targets, mask)
    layout = layouts.ChexpertLayout(policies)
    model = architectures.build_model("resnet18", layout.width, seed=0)
    config = loop.FitConfig(epochs=1, batch_size=4, lr=1e-3, eval_every_images=8, top_k=1)
    result = loop.fit(model, layout, train, train, lambda p: (float(p.mean()), {}), config, Path("state"),
                      fingerprint="wheel", device=torch.device("cpu"), log=lambda _: None)
    print(json.dumps({"modules": len(modules), "images": summary["splits"]["train"]["images"],
                      "steps": result.history[-1]["step"], "kept": len(result.kept),
                      "layers": sorted({m.split(".")[1] for m in modules if m.count(".") >= 2})}))
''')


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in BUILT_FROM:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (REPO / name).is_dir() else {}))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(dist)], check=True, cwd=source)
    (built,) = dist.glob("cxrtransfer-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                    str(wheel)], check=True)
    return target


def outside_env(target: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS="1")


def test_the_wheel_carries_every_subpackage_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {str(p.relative_to(REPO)) for p in (REPO / "cxrtransfer").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".csv")}
    assert source - names == set()
    packages = {str(p.parent.relative_to(REPO)) for p in (REPO / "cxrtransfer").rglob("__init__.py")}
    assert len(packages) >= 9 and {f"{p}/__init__.py" for p in packages} <= names
    assert "cxrtransfer/models/architectures.csv" in names


def source_version() -> str:
    """cxrtransfer.__version__ as the checkout writes it (read, not imported)."""
    return re.search(r'__version__ = "([^"]+)"', (REPO / "cxrtransfer" / "__init__.py").read_text()).group(1)


def test_the_wheel_states_ranges_and_the_console_script(wheel):
    with zipfile.ZipFile(wheel) as archive:
        info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert f"Version: {source_version()}" in metadata.splitlines() and wheel.name.startswith(
        f"cxrtransfer-{source_version()}-")
    assert "Requires-Python: <3.14,>=3.11" in metadata or "Requires-Python: >=3.11,<3.14" in metadata
    requirements = [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    torch = next(r for r in requirements if r.startswith("torch") and not r.startswith("torchvision"))
    assert "==" not in torch and ">=" in torch
    assert "cxrtransfer = cxrtransfer.lab.cli:entry" in entry_points


def test_installed_library_runs_from_outside_the_repository(installed, tmp_path):
    done = subprocess.run([sys.executable, "-c", SMOKE, str(installed)], cwd=tmp_path, env=outside_env(installed),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["layers"] == ["data", "embedded", "lab", "models", "pipeline", "report", "stats", "training"]
    assert figures["modules"] >= 40 and figures["images"] > 0
    assert figures["steps"] == 8 and figures["kept"] == 1   # two steps of 4 images, one evaluation


def test_installed_command_lists_its_subcommands(installed, tmp_path):
    command = installed / "bin" / "cxrtransfer"
    assert command.is_file()
    env = outside_env(installed)
    version = subprocess.run([sys.executable, str(command), "--version"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"cxrtransfer {source_version()}"
    listed = subprocess.run([sys.executable, str(command), "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True).stdout
    for subcommand in ("paper", "parallel", "slurm", "rehearsal", "weights", "gpu-check"):
        assert f"    {subcommand}" in listed
    module = subprocess.run([sys.executable, "-m", "cxrtransfer", "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True).stdout
    assert module == listed  # `python -m cxrtransfer` is the same command


def project_requirements() -> tuple[SpecifierSet, list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return SpecifierSet(project["requires-python"]), [Requirement(r) for r in project["dependencies"]]


def test_the_locked_environment_satisfies_the_ranges():
    """requirements.lock (the demo's bit-for-bit environment) is one environment the ranges allow."""
    locked = {canonicalize_name(name): version for name, _, version in
              (line.partition("==") for line in (REPO / "requirements.lock").read_text().splitlines()
               if line and not line.startswith("#"))}
    python, requirements = project_requirements()
    assert "3.11.7" in python
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements.lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), f"{requirement} vs {locked[name]}"


def test_the_ranges_admit_a_lab_gpu_stack_and_pin_nothing():
    """Python 3.12 with torch 2.11 / torchvision 0.26 (the lent GPU machine, ../shared/gpu-machine.md) and
    Python 3.13 are allowed; no dependency is pinned to one version."""
    python, requirements = project_requirements()
    assert all(version in python for version in ("3.11.0", "3.12.4", "3.13.1")) and "3.14.0" not in python
    by_name = {canonicalize_name(r.name): r.specifier for r in requirements}
    assert by_name["torch"].contains("2.11.0") and by_name["torchvision"].contains("0.26.0")
    assert not any(spec.operator == "==" for r in requirements for spec in r.specifier)
