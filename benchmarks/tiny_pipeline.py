"""The project's DVC pipeline on tiny params, in a temporary git + DVC repository.

Used by the pipeline benchmark row and by tests/e2e/test_pipeline.py (benchmarks never import tests).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from benchmarks.common import deep_merge
from cxrtransfer.lab.rehearsal import commit_new_repo, repo_env

REPO = Path(__file__).resolve().parents[1]
# Two architectures x {random, indomain}, one truncated model: every kind of stage, in about a minute.
TINY = {
    "model": "all",
    "architectures": ["resnet18", "mobilenet_v3"],
    "seeds": [0],   # one seed (the demo trains two): tests add seed 1 with `dvc exp run -S 'seeds=[0,1]'`
    "inits": {"random": ["random"], "weights": [], "indomain": ["indomain"]},
    "synthetic": {"train_patients": 40, "valid_patients": 20, "test_patients": 30, "height": 40, "width": 48,
                  "max_studies_per_patient": 2, "labels": "invented"},
    "source": {"images_per_class": 6, "height": 40, "width": 48},
    "data": {"image_size": 32},
    "pretrain": {"data": {"image_size": 32}, "epochs": 1, "eval_every_images": 64, "batch_size": 16},
    "train": {"epochs": 1, "eval_every_images": 64, "top_k": 2, "batch_size": 16},
    "bootstrap": {"replicates": 50},
    "truncation": {"architectures": ["resnet18"], "blocks": [1]},
}


def sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with this interpreter's environment first on PATH (DVC stages call `python`)."""
    env = dict(repo_env(), OMP_NUM_THREADS="1")
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def ran(output: str) -> list[str]:
    """Stages that DVC actually ran (not skipped, not restored from the run-cache)."""
    return re.findall(r"Running stage '([^']+)'", output)


def make_repo(path: Path, overlay: dict | None = None) -> Path:
    """A git + DVC repository holding the project's pipeline with the tiny params (plus `overlay`)."""
    path.mkdir(parents=True)
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy2(REPO / name, path / name)
    for folder in ("stages", "cxrtransfer"):
        shutil.copytree(REPO / folder, path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    params = deep_merge(deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY), overlay or {})
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_new_repo(path, "tiny pipeline", sh)
    return path
