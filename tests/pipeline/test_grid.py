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


def test_the_grid_names_exactly_the_stages_dvc_expands():
    """The grid's stage names against `dvc stage list` on this repository's dvc.yaml and params.yaml."""
    listed = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    plan = grid.grid_plan(params)
    model_stages = sorted(s for s in listed if s.startswith(("init_", "train_", "truncate@")))
    assert model_stages == sorted(grid.init_stages(params) + [m.stage for m in grid.declared_models(params)])
    assert len(grid.init_stages(params)) == plan["init_stages"]
    assert len([s for s in listed if s.startswith("init_indomain@")]) == plan["pretraining_runs"]


def test_a_grid_without_inits_is_one_clear_error():
    with pytest.raises(InputError, match="missing key 'inits'"):
        grid.declared_models({"architectures": ["a"]})


def test_deep_merge_replaces_lists_and_merges_mappings():
    """The helper the tiny test grids are built with (benchmarks.common)."""
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    merged = deep_merge(base, {"a": {"y": [3]}, "c": 4})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 2, "c": 4}
    assert base["a"]["y"] == [1, 2]  # the input is not modified
