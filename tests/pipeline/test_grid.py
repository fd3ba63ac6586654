"""The grid that params declare: model names, stage names and folders, against what DVC expands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks.common import deep_merge
from cxrtransfer.errors import InputError
from cxrtransfer.pipeline import grid

REPO = Path(__file__).resolve().parents[2]


def test_declared_models_name_their_stages_and_folders():
    params = {"architectures": ["a"], "inits": {"random": ["random"], "weights": ["imagenet"], "indomain": []},
              "truncation": {"architectures": ["a"], "blocks": [1], "init": "imagenet"}}
    models = grid.declared_models(params)
    assert [m.name for m in models] == ["a-imagenet", "a-random", "a-k1"]
    assert [m.stage for m in models] == ["train_weights@a-imagenet", "train_random@a-random", "truncate@a-1"]
    assert [m.folder for m in models] == ["data/models/a-imagenet", "data/models/a-random", "data/trunc/a-k1"]
    assert grid.init_stages(params) == ["init_random@a-random", "init_weights@a-imagenet"]
    assert grid.declared_models(params, selected="b") == []


def test_repeats_of_each_seed_name_their_stages_and_folders():
    """Seed 0 is the configured run (today's names); the others repeat every model in the seed groups."""
    params = {"architectures": ["a"], "inits": {"random": ["random"], "weights": [], "indomain": []},
              "truncation": {"architectures": ["a"], "blocks": [1], "init": "random"}, "seeds": [0, 2]}
    assert [m.stage for m in grid.declared_models(params)] == ["train_random@a-random", "truncate@a-1"]
    runs = grid.seed_runs(params)
    assert [m.name for m in runs] == ["a-random-s2", "a-k1-s2"]
    assert [m.model for m in runs] == ["a-random", "a-k1"]
    assert [m.stage for m in runs] == ["seed_random@a-random-2", "seed_truncate@a-1-2"]
    assert [m.folder for m in runs] == ["data/seeds/a-random-s2/model", "data/seeds/a-k1-s2/model"]
    assert grid.seed_stages(params) == ["seed_random@a-random-0", "seed_random@a-random-2",
                                        "seed_truncate@a-1-0", "seed_truncate@a-1-2"]
    assert grid.seed_runs({**params, "seeds": [0]}) == [] and grid.grid_plan(params)["seed_runs"] == 2


@pytest.mark.parametrize("seeds", [[1, 0], [0, 0], [0, -1], [], 0, [0, True]])
def test_seeds_start_with_0_and_are_distinct(seeds):
    with pytest.raises(InputError, match="seeds must"):
        grid.training_seeds({"seeds": seeds})


def _listed(folder: Path) -> list[str]:
    return subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], cwd=folder, check=True,
                          capture_output=True, text=True).stdout.split()


def _model_stages(listed: list[str]) -> list[str]:
    return sorted(s for s in listed if s.startswith(("init_", "train_", "truncate@", "seed_")))


def test_the_grid_names_exactly_the_stages_dvc_expands():
    """The grid's stage names against `dvc stage list` on this repository's dvc.yaml and params.yaml."""
    listed = _listed(REPO)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    plan = grid.grid_plan(params)
    assert _model_stages(listed) == sorted(grid.init_stages(params) + [m.stage for m in grid.declared_models(params)]
                                           + grid.seed_stages(params))
    assert len(grid.init_stages(params)) == plan["init_stages"]
    assert len([s for s in listed if s.startswith("init_indomain@")]) == plan["pretraining_runs"]


def test_the_grid_names_the_repeats_dvc_expands_with_two_seeds(tmp_path):
    """With seeds [0, 1] DVC expands today's stages unchanged plus the seed groups, as the grid names them."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["seeds"] = [0, 1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    listed = _listed(tmp_path)
    assert set(_listed(REPO)) <= set(listed)
    expected = grid.init_stages(params) + [m.stage for m in grid.declared_models(params) + grid.seed_runs(params)]
    assert _model_stages(listed) == sorted(expected + [m.seed_stage(0) for m in grid.declared_models(params)])


def test_a_grid_without_inits_is_one_clear_error():
    with pytest.raises(InputError, match="missing key 'inits'"):
        grid.declared_models({"architectures": ["a"]})


def test_deep_merge_replaces_lists_and_merges_mappings():
    """The helper the tiny test grids are built with (benchmarks.common)."""
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    merged = deep_merge(base, {"a": {"y": [3]}, "c": 4})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 2, "c": 4}
    assert base["a"]["y"] == [1, 2]  # the input is not modified
