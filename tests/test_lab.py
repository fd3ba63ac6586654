"""The paper-configuration switch and its plan (the parallel workers are tested in test_pipeline.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cxrtransfer import lab

REPO = Path(__file__).resolve().parents[1]


def test_deep_merge_replaces_lists_and_merges_mappings():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    merged = lab.deep_merge(base, {"a": {"y": [3]}, "c": 4})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 2, "c": 4}
    assert base["a"]["y"] == [1, 2]  # the input is not modified


def test_paper_grid_matches_the_study():
    params = lab.deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()),
                            yaml.safe_load((REPO / "configs" / "paper.yaml").read_text()))
    plan = lab.grid_plan(params)
    assert plan["train_stages"] == 32 and plan["truncate_stages"] == 16 and plan["trained_models"] == 48
    assert plan["pretraining_runs"] == 0  # the paper's arms are random and imagenet
    # CheXtransfer truncates DenseNet121, MNASNet, ResNet18 and EfficientNet-B0 by 1-4 blocks, from ImageNet
    assert params["truncation"] == {"architectures": ["densenet121", "mnasnet", "resnet18", "efficientnet_b0"],
                                    "blocks": [1, 2, 3, 4], "init": "imagenet"}


def test_device_hours_add_up():
    work = lab.images_per_run(n_train=1000, n_valid=100, epochs=3, eval_every=1000, top_k=2, n_test=50)
    assert work == {"train": 3000.0, "inference": 4 * 100 + 2 * 150}
    hours = lab.gpu_hours(["a", "b"], {"a": 2, "b": 1}, {"a": 100.0, "b": 50.0}, work, inference_speedup=2.0)
    expected = (2 * (3000 / 100 + 700 / 200) + (3000 / 50 + 700 / 100)) / 3600
    assert hours == pytest.approx(expected)


def test_paper_switch_prints_the_plan_and_writes_params(tmp_path, capsys):
    root = tmp_path / "chexpert" / "CheXpert-v1.0-small"
    root.mkdir(parents=True)
    (root / "train.csv").write_text("Frontal/Lateral\nFrontal\nLateral\nFrontal\n")
    (root / "valid.csv").write_text("Frontal/Lateral\nFrontal\n")
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    lab.main(["paper", "--data-root", str(tmp_path / "chexpert"), "--params", str(params),
              "--config", str(REPO / "configs" / "paper.yaml"), "--dry-run"])
    out = capsys.readouterr().out
    assert "trained_models     48" in out and "9 training images" in out  # 3 images x 3 epochs
    assert yaml.safe_load(params.read_text())["data"]["root"] == "data/synthetic"  # dry run: unchanged
    lab.main(["paper", "--data-root", str(tmp_path / "chexpert"), "--params", str(params),
              "--config", str(REPO / "configs" / "paper.yaml")])
    switched = yaml.safe_load(params.read_text())
    assert switched["data"]["root"] == str(tmp_path / "chexpert") and switched["data"]["image_size"] == 320
    assert lab.init_names(switched) == ["random", "imagenet"] and len(switched["architectures"]) == 16


def test_model_stage_groups():
    names = ["split", "init_random@a-random", "init_indomain@a-indomain", "train_random@a-random",
             "train_indomain@a-indomain", "truncate@a-1", "ensemble"]
    inits, trains = lab.model_stages(names)
    assert inits == ["init_random@a-random", "init_indomain@a-indomain"]
    assert trains == ["train_random@a-random", "train_indomain@a-indomain", "truncate@a-1"]


def test_grid_plan_counts_the_stages_dvc_expands():
    """The plan against `dvc stage list` on this repository's dvc.yaml and params.yaml."""
    import subprocess
    import sys
    listed = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split()
    plan = lab.grid_plan(yaml.safe_load((REPO / "params.yaml").read_text()))
    inits, trains = lab.model_stages(listed)
    assert len(inits) == plan["init_stages"]
    assert len(trains) == plan["train_stages"] + plan["truncate_stages"]
    assert len([s for s in listed if s.startswith("init_indomain@")]) == plan["pretraining_runs"]
