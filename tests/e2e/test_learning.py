"""Training learns: the stages end to end on a small synthetic CheXpert reach a mean test AUROC that the
bugs it claims to catch do not reach.

This runs the real stage code (synthesize, preprocess, split, init, train, ensemble) on a set small enough
for CI, then plants each bug it catches (a wrong label column, targets shuffled across images) and
requires it to fall below the floor. Two plausible bugs are NOT caught here, measured and stated: wrong
uncertainty policies (0.636 and 0.658 on two versions of the loop, against 0.665 and 0.664 correct: within
the run-to-run spread of one seed) and input normalization (pixels fed as 0..255: 0.681; BatchNorm after
the first convolution absorbs an affine input change). Their unit tests catch them:
tests/data/test_chexpert.py::test_every_uncertainty_policy and tests/models/test_normalization.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from cxrtransfer.training import dataset
from stages import ensemble, normalization, preprocess, synthesize
from stages import init as init_stage
from stages import split as split_stage
from stages import train as train_stage

TASKS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion", "No Finding"]
# Measured on this configuration (resnet18 from random init, 3 epochs over 578 images at 48 px, seed 0,
# requirements.lock, 2-core AMD EPYC build machine), on the branch's base, with issue 24's DDP loss merged
# (its vectorized loss rounds differently, so the same seed trains a different model) and with main at 77822d9:
#   correct code 0.665 / 0.664 / 0.673; wrong label column 0.570 / 0.569 / 0.571; shuffled targets
#   0.544 / 0.535 / 0.541;
#   wrong policies 0.636 / 0.658 and 0..255 inputs 0.681 (not separable: see the docstring).
# Chance is 0.5 with a standard deviation of about 0.025 for a six-task mean here. The floor sits about
# halfway between the correct runs and the closest caught bug: at least 0.044 below the first, 0.049 above
# the second.
# Training is not bit-reproducible across CPU types (README "Reproducibility"): re-derive the floor from the
# planted bugs (each prints its result) rather than lowering it to pass.
MIN_MEAN_AUROC = 0.62


def _params(root: Path) -> dict:
    return {
        "model": "all",
        "architectures": ["resnet18"],
        "inits": {"random": ["random"], "weights": [], "indomain": []},
        "truncation": {"architectures": [], "blocks": [], "init": "random"},
        "synthetic": {"seed": 0, "labels": "invented", "real_labels": None, "train_patients": 240,
                      "valid_patients": 40, "test_patients": 100, "max_studies_per_patient": 3,
                      "height": 64, "width": 78, "jpeg_quality": 90},
        "data": {"kind": "chexpert", "root": str(root / "synthetic"), "dataset": "CheXpert-v1.0-small",
                 "test_groundtruth": "groundtruth.csv", "image_size": 48, "frontal_only": False, "tasks": TASKS,
                 "uncertainty": {"default": "ones", "Cardiomegaly": "multiclass", "Consolidation": "zeros",
                                 "Pleural Effusion": "multiclass"},
                 "blank_as_negative": True},
        "split": {"method": "official", "seed": 0},
        "train": {"epochs": 3, "batch_size": 16, "lr": 1e-3, "betas": [0.9, 0.999], "weight_decay": 0.0,
                  "eval_every_images": 554, "top_k": 2, "seed": 0, "eval_batch_size": 128, "max_images": 0,
                  "selection_tasks": TASKS[:5], "devices": 1, "device": "cpu"},
        "overrides": {"resnet18": {"seed": 0}},
        "init": {"seed": 0, "weights_dir": str(root / "weights"), "files": {}},
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """The data stages and the random init, run once for the learning test and its planted bugs."""
    root = tmp_path_factory.mktemp("learning")
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(_params(root)))
    p = ["--params", str(params)]
    synthesize.main([*p, "--out", str(root / "synthetic"), "--workers", "1"])
    preprocess.main([*p, "--out", str(root / "cache")])
    split_stage.main([*p, "--index", str(root / "cache" / "index.csv"), "--out", str(root / "split.csv"),
                      "--summary", str(root / "split.json")])
    normalization.main(["--cache", str(root / "cache"), "--split", str(root / "split.csv"),
                        "--out", str(root / "normalization.json")])
    init_stage.main([*p, "--arch", "resnet18", "--init", "random", "--out", str(root / "init.safetensors"),
                     "--metrics", str(root / "init.json"), "--state", str(root / "init_state")])
    return root


def train_and_score(root: Path, out: Path) -> dict:
    """The train and ensemble stages into `out`; the model's test result."""
    p = ["--params", str(root / "params.yaml")]
    train_stage.main([*p, "--arch", "resnet18", "--init", "random", "--init-weights", str(root / "init.safetensors"),
                      "--cache", str(root / "cache"), "--split", str(root / "split.csv"),
                      "--out", str(out / "models" / "resnet18-random"), "--metrics", str(out / "train.json"),
                      "--live", str(out / "live"), "--state", str(out / "state"),
                      "--normalization", str(root / "normalization.json")])
    ensemble.main([*p, "--models", str(out / "models"), "--truncated", str(out / "trunc"),
                   "--index", str(root / "cache" / "index.csv"), "--split", str(root / "split.csv"),
                   "--out", str(out / "ensemble"), "--metrics", str(out / "ensemble.json")])
    result = json.loads((out / "ensemble.json").read_text())["models"]["resnet18-random"]
    print(json.dumps(result))
    return result


@pytest.mark.slow
def test_short_training_reaches_the_floor(prepared, tmp_path):
    result = train_and_score(prepared, tmp_path)
    assert set(result["auc"]) == set(TASKS)
    assert result["mean_auc"] >= MIN_MEAN_AUROC, result


def _wrap_targets(monkeypatch, change) -> None:
    """Plant a bug where the training targets are made: `change(raw, policies) -> (raw, policies)`, or a
    change of the (targets, mask) the real function returns."""
    real = dataset.policy_targets

    def planted(raw, policies, blank_as_negative=True):
        raw, policies = change.get("before", lambda r, p: (r, p))(raw, policies)
        return change.get("after", lambda t, m: (t, m))(*real(raw, policies, blank_as_negative))
    monkeypatch.setattr(dataset, "policy_targets", planted)


def _shuffle(targets, mask):
    order = np.random.default_rng(0).permutation(len(targets))
    return targets[order], mask[order]


PLANTED_BUGS = {
    # each task trained on its neighbour's label column
    "wrong label column": lambda mp: _wrap_targets(mp, {"before": lambda r, p: (np.roll(r, 1, axis=1), p)}),
    # targets of training images permuted: labels no longer belong to their images
    "shuffled targets": lambda mp: _wrap_targets(mp, {"after": _shuffle}),
}
# Measured and left out (see the docstring), planted as:
# - wrong policies: _wrap_targets(mp, {"before": lambda r, p: (r, [wrong[x] for x in p])}) with wrong =
#   {"ones": "zeros", "zeros": "ones", "multiclass": "ones"}: uncertain cells given the other class;
# - 0..255 inputs: mp.setattr(train_stage.normalization, "for_init", lambda *a: (((0.0,) * 3, (1 / 255,) * 3), "x")).


@pytest.mark.slow
@pytest.mark.parametrize("bug", list(PLANTED_BUGS))
def test_planted_bug_brings_the_mean_auroc_below_the_floor(prepared, tmp_path, monkeypatch, bug):
    PLANTED_BUGS[bug](monkeypatch)
    result = train_and_score(prepared, tmp_path)
    assert result["mean_auc"] < MIN_MEAN_AUROC, (bug, result)
