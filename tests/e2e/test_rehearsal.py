"""The paper rehearsal: the paper's params changed only by named scale knobs, run end to end on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from cxrtransfer.lab import rehearsal

REPO = Path(__file__).resolve().parents[2]
PAPER = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())


def differences(a, b, prefix="") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return {d for k in set(a) | set(b) for d in differences(a.get(k), b.get(k), f"{prefix}{k}.")}
    return set() if a == b else {prefix.rstrip(".")}


def test_rehearsal_params_differ_from_the_paper_only_in_the_scale_knobs():
    params = rehearsal.rehearsal_params(PAPER, 32, (60, 40, 60), ["mnasnet"], ["mnasnet"], 32)
    assert differences(PAPER, params) == {
        "architectures", "truncation.architectures", "data.image_size", "train.eval_every_images",
        "synthetic.train_patients", "synthetic.valid_patients", "synthetic.test_patients",
        "bootstrap.compare",                                     # pairs among the rehearsed models
        "data.root", "data.test_groundtruth", "synthetic.height", "synthetic.width", "synthetic.labels",  # the dataset
        "readers.dir",                                           # the synthetic test set's stand-in readers
        "train.device"}                                          # CPU (weights/ is the paper's folder)
    assert params["synthetic"]["height"] == 320 and params["synthetic"]["width"] == 390
    assert params["synthetic"]["labels"] == "real" and params["bootstrap"]["compare"] == []
    assert params["train"]["top_k"] == 10 and params["train"]["max_images"] == 0 and params["train"]["epochs"] == 3


def test_expected_evaluations_follow_the_loop_cadence():
    assert rehearsal.expected_evaluations(total=96, batch=16, every=32) == [32, 64, 96]
    assert rehearsal.expected_evaluations(total=96, batch=16, every=40) == [48, 80, 96]  # first batch past 40, 80
    assert rehearsal.expected_evaluations(total=32, batch=16, every=8192) == [32]        # the final weights only


@pytest.mark.slow
def test_small_rehearsal_runs_through_report_and_passes_its_checks(tmp_path):
    summary = rehearsal.rehearse(tmp_path / "r", rehearsal.PRESETS["small"])
    assert summary["failures"] == []
    n_train = summary["train_images"]
    assert n_train > 100 and summary["images_per_model"] == 3 * (n_train // 16) * 16
    assert sorted(summary["models"]) == ["mnasnet-imagenet", "mnasnet-k1", "mnasnet-k2", "mnasnet-k3",
                                         "mnasnet-k4", "mnasnet-random"]
    for figures in summary["models"].values():
        assert figures["checkpoints"] == 10 and figures["evaluations"] >= 10
    repo = tmp_path / "r" / "repo"
    # init@mnasnet-imagenet loaded the stand-in weights file through the real offline lookup.
    from safetensors.torch import load_file
    standin = load_file(str(repo / "weights" / "mnasnet_100.tv_in1k.safetensors"))
    body = load_file(str(repo / "data" / "init" / "mnasnet-imagenet.safetensors"))
    assert body and all(torch.equal(body[k], standin[k]) for k in body)
    # random init is normalized with the training split's statistics, imagenet with ImageNet's.
    stats = json.loads((repo / "metrics" / "normalization.json").read_text())
    random_model = json.loads((repo / "data" / "models" / "mnasnet-random" / "model.json").read_text())
    imagenet_model = json.loads((repo / "data" / "models" / "mnasnet-imagenet" / "model.json").read_text())
    assert random_model["normalization"]["mean"] == stats["mean"] and stats["mean"][0] != 0.485
    assert imagenet_model["normalization"]["mean"] == [0.485, 0.456, 0.406]
    assert (repo / "reports" / "summary.md").is_file()
    assert yaml.safe_load((REPO / "params.yaml").read_text())["data"]["root"] == "data/synthetic"  # untouched
