"""The DVC pipeline end to end on a tiny configuration, in a temporary git + DVC repository.

Checks what a lab relies on: a second `dvc repro` runs nothing; changing one architecture's params
reruns that architecture's stages only; `dvc exp run -S model=<arch>` works; a fresh clone with the
lab remote and run-cache trains nothing; two local workers build the grid without lock failures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

TINY = {
    "model": "all",
    "architectures": ["resnet18", "mobilenet_v3"],
    "inits": ["random", "indomain"],
    "synthetic": {"train_patients": 40, "valid_patients": 20, "test_patients": 30, "height": 40, "width": 48,
                  "max_studies_per_patient": 2, "labels": "invented"},
    "source": {"images_per_class": 6, "height": 40, "width": 48},
    "data": {"image_size": 32},
    "pretrain": {"data": {"image_size": 32}, "epochs": 1, "eval_every_images": 64, "batch_size": 16},
    "train": {"epochs": 1, "eval_every_images": 64, "top_k": 2, "batch_size": 16},
    "bootstrap": {"replicates": 50},
    "truncation": {"architectures": ["resnet18"], "blocks": [1]},
}


def deep_merge(base: dict, overlay: dict) -> dict:
    from cxrtransfer.lab import deep_merge as merge
    return merge(base, overlay)


def sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", OMP_NUM_THREADS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def ran(output: str) -> list[str]:
    """Stages that DVC actually ran (not skipped, not restored from the run-cache)."""
    return re.findall(r"Running stage '([^']+)'", output)


def make_repo(path: Path) -> Path:
    """A git + DVC repository holding the project's pipeline with the tiny params."""
    path.mkdir(parents=True)
    shutil.copy2(REPO / "dvc.yaml", path / "dvc.yaml")
    for folder in ("stages", "cxrtransfer"):
        shutil.copytree(REPO / folder, path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    params = deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (path / ".gitignore").write_text("/.state/\n__pycache__/\n")
    sh(["git", "init", "-q", "-b", "main"], path)
    sh(["dvc", "init", "-q"], path)
    sh(["dvc", "config", "core.analytics", "false"], path)
    sh(["git", "add", "-A"], path)
    sh(["git", "commit", "-qm", "tiny pipeline"], path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The tiny pipeline reproduced once, committed, and pushed (with run-cache) to a local remote."""
    base = tmp_path_factory.mktemp("pipeline")
    repo = make_repo(base / "repo")
    first = sh(["dvc", "repro"], repo)
    assert "train@resnet18-indomain" in ran(first.stdout)
    sh(["dvc", "remote", "add", "-d", "lab", str(base / "remote")], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "reproduced"], repo)
    sh(["dvc", "push", "--run-cache"], repo)
    return repo


def test_outputs_of_every_stage(built):
    metrics = json.loads((built / "metrics" / "bootstrap.json").read_text())
    assert set(metrics["models"]) >= {"resnet18-random", "resnet18-indomain", "mobilenet_v3-random"}
    assert (built / "reports" / "summary.md").is_file()
    model = json.loads((built / "data" / "models" / "resnet18-random" / "model.json").read_text())
    assert model["arch"] == "resnet18" and 1 <= len(model["kept"]) <= 2
    assert not list((built / "data").rglob("*.pt")) and not list((built / "data").rglob("*.pkl"))


def test_second_repro_runs_nothing(built):
    again = sh(["dvc", "repro"], built)
    assert ran(again.stdout) == []


def test_one_architecture_param_reruns_that_architecture_only(built, tmp_path):
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(built), str(clone)], tmp_path)
    sh(["dvc", "pull", "-q"], clone)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["overrides"]["mobilenet_v3"]["seed"] = 1
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = sh(["dvc", "status", "--json"], clone)
    changed = set(json.loads(status.stdout))
    assert changed == {"train@mobilenet_v3-random", "train@mobilenet_v3-indomain"}


def test_experiment_on_one_architecture(built, tmp_path):
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(built), str(clone)], tmp_path)
    sh(["dvc", "pull", "-q"], clone)
    done = sh(["dvc", "exp", "run", "-S", "model=resnet18"], clone)
    assert not any(s.startswith(("train@", "init@", "truncate@")) for s in ran(done.stdout))
    metrics = json.loads((clone / "metrics" / "bootstrap.json").read_text())
    assert {m.split("-")[0] for m in metrics["models"]} == {"resnet18"}
    shown = sh(["dvc", "exp", "show", "--json"], clone)
    assert "model" in shown.stdout


def test_fresh_clone_pulls_instead_of_training(built, tmp_path):
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(built), str(clone)], tmp_path)
    done = sh(["dvc", "repro", "--pull"], clone)
    assert ran(done.stdout) == []
    assert json.loads(sh(["dvc", "status", "--json"], clone).stdout or "{}") == {}


def test_fresh_clone_without_the_lock_file_restores_models_from_the_run_cache(built, tmp_path):
    """A colleague's results reach us through the remote run-cache alone (no dvc.lock entries)."""
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(built), str(clone)], tmp_path)
    (clone / "dvc.lock").unlink()
    done = sh(["dvc", "repro", "--pull"], clone)
    model_stages = [s for s in ran(done.stdout) if s.startswith(("init@", "train@", "truncate@"))]
    assert model_stages == []
    assert "Stage 'train@resnet18-indomain' is cached - skipping run" in done.stdout
    assert (clone / "data" / "models" / "resnet18-indomain" / "test_predictions.csv").is_file()


def test_two_workers_build_the_grid_without_lock_failures(tmp_path):
    repo = make_repo(tmp_path / "repo")
    done = sh([sys.executable, "-m", "cxrtransfer.lab", "parallel", "--workers", "2"], repo)
    assert "Unable to acquire lock" not in done.stderr
    status = json.loads(sh(["dvc", "status", "--json"], repo).stdout or "{}")
    assert status == {}
    assert (repo / "metrics" / "bootstrap.json").is_file()
