"""The DVC pipeline end to end on a tiny configuration, in a temporary git + DVC repository.

Checks what a lab relies on: a second `dvc repro` runs nothing; changing one architecture's params
reruns that architecture's stages only, and a pretraining param the in-domain inits only; `dvc exp run
-S model=<arch>` and a restricted grid report the declared models only and train nothing; `dvc exp run
-S 'seeds=[0,1]'` trains the seed-1 runs only; a fresh clone
with the lab remote and run-cache trains nothing, with `--pull` and with `--pull --allow-missing`;
two local workers build the grid without lock failures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks.tiny_pipeline import make_repo, ran, sh
from cxrtransfer.pipeline import grid

pytestmark = pytest.mark.slow
MODEL_GROUPS = ("init_", "train_", "truncate@")


def clone_of(repo: Path, where: Path, pull: bool = True) -> Path:
    clone = where / "clone"
    sh(["git", "clone", "-q", str(repo), str(clone)], where)
    if pull:
        sh(["dvc", "pull", "-q"], clone)
    return clone


def stale_after(clone: Path, key: str, value) -> set[str]:
    """Stages `dvc status` reports after setting params key (dotted) to value; params restored after."""
    path = clone / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    *parents, last = key.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        return set(json.loads(sh(["dvc", "status", "--json"], clone).stdout or "{}"))
    finally:
        path.write_text(original)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The tiny pipeline reproduced once, committed, and pushed (with run-cache) to a local remote."""
    base = tmp_path_factory.mktemp("pipeline")
    repo = make_repo(base / "repo")
    first = sh(["dvc", "repro"], repo)
    assert "train_indomain@resnet18-indomain" in ran(first.stdout)
    sh(["dvc", "remote", "add", "-d", "lab", str(base / "remote")], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "reproduced"], repo)
    sh(["dvc", "push", "--run-cache"], repo)
    return repo


def test_outputs_of_every_stage(built):
    metrics = json.loads((built / "metrics" / "bootstrap.json").read_text())
    assert set(metrics["models"]) == {"resnet18-random", "resnet18-indomain", "mobilenet_v3-random",
                                      "mobilenet_v3-indomain", "resnet18-k1"}  # TINY's grid, nothing else
    assert (built / "reports" / "summary.md").is_file()
    model = json.loads((built / "data" / "models" / "resnet18-random" / "model.json").read_text())
    assert model["arch"] == "resnet18" and 1 <= len(model["kept"]) <= 2
    assert not list((built / "data").rglob("*.pt")) and not list((built / "data").rglob("*.pkl"))


def test_second_repro_runs_nothing(built):
    again = sh(["dvc", "repro"], built)
    assert ran(again.stdout) == []


def test_each_param_makes_only_the_stages_that_read_it_stale(built, tmp_path):
    clone = clone_of(built, tmp_path)
    # (seed_<kind>@...-0: the seed groups' seed-0 items, which only write a note; params seeds)
    assert stale_after(clone, "overrides.mobilenet_v3.seed", 1) == {
        "train_random@mobilenet_v3-random", "train_indomain@mobilenet_v3-indomain",
        "seed_random@mobilenet_v3-random-0", "seed_indomain@mobilenet_v3-indomain-0"}
    # in-domain pretraining settings: the in-domain inits only (then what follows them), never the random ones
    assert stale_after(clone, "pretrain.lr", 5.0e-4) == {
        "init_indomain@resnet18-indomain", "init_indomain@mobilenet_v3-indomain"}
    assert stale_after(clone, "init.seed", 1) == {"init_random@resnet18-random", "init_random@mobilenet_v3-random",
                                                  "seed_random@resnet18-random-0", "seed_random@mobilenet_v3-random-0",
                                                  "seed_truncate@resnet18-1-0"}
    # correlate redraws the same replicates for the Spearman intervals (then the report follows)
    assert stale_after(clone, "bootstrap.replicates", 60) == {"bootstrap", "correlate"}


def test_experiment_on_one_architecture(built, tmp_path):
    clone = clone_of(built, tmp_path)
    done = sh(["dvc", "exp", "run", "-S", "model=resnet18"], clone)
    assert not any(s.startswith(MODEL_GROUPS) for s in ran(done.stdout))
    metrics = json.loads((clone / "metrics" / "bootstrap.json").read_text())
    assert {m.split("-")[0] for m in metrics["models"]} == {"resnet18"}
    shown = sh(["dvc", "exp", "show", "--json"], clone)
    assert "model" in shown.stdout


def test_adding_a_seed_trains_only_its_runs(built, tmp_path):
    """`dvc exp run -S 'seeds=[0,1]'`: the seed-1 repeat of every model trains, nothing of seed 0 reruns,
    and the study gains its seed section."""
    clone = clone_of(built, tmp_path)
    done = sh(["dvc", "exp", "run", "-S", "seeds=[0,1]"], clone)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    assert params["seeds"] == [0, 1]
    trained = sorted(s for s in ran(done.stdout) if s.startswith((*MODEL_GROUPS, "seed_")))
    assert trained == sorted(m.stage for m in grid.seed_runs(params))
    assert trained == sorted(f"seed_{kind}@{arch}-{kind}-1" for arch in ("resnet18", "mobilenet_v3")
                             for kind in ("random", "indomain")) + ["seed_truncate@resnet18-1-1"]
    seeds = json.loads((clone / "metrics" / "bootstrap.json").read_text())["seeds"]
    assert seeds["seeds"] == [0, 1] and set(seeds["models"]) == set(json.loads(
        (built / "metrics" / "bootstrap.json").read_text())["models"])
    assert "## Training seeds" in (clone / "reports" / "summary.md").read_text()


def test_restricted_grid_reports_its_models_only_and_trains_nothing(built, tmp_path):
    """The study reads only what the params declare (folders of other models on disk: test_study_stages.py)."""
    clone = clone_of(built, tmp_path)
    done = sh(["dvc", "exp", "run", "-S", "architectures=[resnet18]", "-S", "truncation.architectures=[resnet18]"],
              clone)
    assert ran(done.stdout) and not any(s.startswith(MODEL_GROUPS) for s in ran(done.stdout))
    expected = {"resnet18-random", "resnet18-indomain", "resnet18-k1"}
    assert set(json.loads((clone / "metrics" / "ensemble.json").read_text())["models"]) == expected
    assert set(json.loads((clone / "metrics" / "bootstrap.json").read_text())["models"]) == expected


def test_fresh_clone_pulls_instead_of_training(built, tmp_path):
    clone = clone_of(built, tmp_path, pull=False)
    done = sh(["dvc", "repro", "--pull"], clone)
    assert ran(done.stdout) == []
    assert json.loads(sh(["dvc", "status", "--json"], clone).stdout or "{}") == {}


def test_fresh_clone_checks_the_pipeline_without_downloading_models(built, tmp_path):
    """`--allow-missing`: every stage is up to date by dvc.lock; the model folders are not fetched."""
    clone = clone_of(built, tmp_path, pull=False)
    done = sh(["dvc", "repro", "--pull", "--allow-missing"], clone)
    assert ran(done.stdout) == []
    assert not (clone / "data" / "models").exists() and not (clone / "data" / "trunc").exists()


def test_fresh_clone_without_the_lock_file_restores_models_from_the_run_cache(built, tmp_path):
    """A colleague's results reach us through the remote run-cache alone (no dvc.lock entries)."""
    clone = clone_of(built, tmp_path, pull=False)
    (clone / "dvc.lock").unlink()
    done = sh(["dvc", "repro", "--pull"], clone)
    model_stages = [s for s in ran(done.stdout) if s.startswith(MODEL_GROUPS)]
    assert model_stages == []
    assert "Stage 'train_indomain@resnet18-indomain' is cached - skipping run" in done.stdout
    assert (clone / "data" / "models" / "resnet18-indomain" / "test_predictions.csv").is_file()


def test_two_workers_build_the_grid_without_lock_failures(tmp_path):
    repo = make_repo(tmp_path / "repo")
    done = sh([sys.executable, "-m", "cxrtransfer.lab", "parallel", "--workers", "2"], repo)
    assert "Unable to acquire lock" not in done.stderr
    status = json.loads(sh(["dvc", "status", "--json"], repo).stdout or "{}")
    assert status == {}
    assert (repo / "metrics" / "bootstrap.json").is_file()
