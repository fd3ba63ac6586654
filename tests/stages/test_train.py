"""The init and train stages on a tiny CheXpert tree: two real architectures, outputs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cxrtransfer.errors import InputError
from cxrtransfer.pipeline.config import run_stage
from stages import init as init_stage
from stages import normalization as normalization_stage
from stages import preprocess
from stages import split as split_stage
from stages import train as train_stage

TASKS = ["Atelectasis", "Pneumonia"]  # both classes in the tiny valid split


@pytest.fixture
def prepared(tiny_chexpert, tmp_path) -> Path:
    params = {
        "data": {"kind": "chexpert", "root": str(tiny_chexpert), "dataset": "CheXpert-v1.0-small",
                 "test_groundtruth": "groundtruth.csv", "image_size": 32, "frontal_only": False,
                 "tasks": TASKS, "uncertainty": {"default": "ones", "Pneumonia": "multiclass"},
                 "blank_as_negative": True},
        "split": {"method": "official", "seed": 0},
        "train": {"epochs": 1, "batch_size": 4, "lr": 1e-3, "eval_every_images": 8, "top_k": 2, "seed": 0,
                  "eval_batch_size": 8, "selection_tasks": TASKS, "devices": 1, "device": "cpu"},
        "overrides": {"resnet18": {"seed": 0}},
        "init": {"seed": 0, "weights_dir": str(tmp_path / "weights"), "files": {}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    preprocess.main(["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "cache")])
    split_stage.main(["--params", str(tmp_path / "params.yaml"), "--index", str(tmp_path / "cache" / "index.csv"),
                      "--out", str(tmp_path / "split.csv"), "--summary", str(tmp_path / "split.json")])
    normalization_stage.main(["--cache", str(tmp_path / "cache"), "--split", str(tmp_path / "split.csv"),
                              "--out", str(tmp_path / "normalization.json")])
    return tmp_path


def train_args(root: Path, arch: str, init_weights: Path) -> list[str]:
    return ["--params", str(root / "params.yaml"), "--arch", arch, "--init", "random",
            "--init-weights", str(init_weights), "--cache", str(root / "cache"), "--split", str(root / "split.csv"),
            "--out", str(root / "models" / arch), "--metrics", str(root / f"{arch}.json"),
            "--live", str(root / "live" / arch), "--state", str(root / "state" / arch),
            "--normalization", str(root / "normalization.json")]


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_b0"])
def test_init_then_train_writes_every_output(prepared, arch):
    weights = prepared / "init" / f"{arch}.safetensors"
    init_stage.main(["--params", str(prepared / "params.yaml"), "--arch", arch, "--init", "random",
                     "--out", str(weights), "--metrics", str(prepared / "init.json"), "--state", str(prepared / "s")])
    train_stage.main(train_args(prepared, arch, weights))
    out = prepared / "models" / arch
    description = json.loads((out / "model.json").read_text())
    kept = [k["step"] for k in description["kept"]]
    assert 1 <= len(kept) <= 2 and description["policies"] == ["ones", "multiclass"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(f"step{s:010d}.safetensors" for s in kept)
    test = pd.read_csv(out / "test_predictions.csv")
    # Pneumonia is U-MultiClass: its two logits are stored for the reference scoring order
    assert list(test.columns) == ["checkpoint", "path", "patient", "study", *TASKS,
                                  "Pneumonia:negative_logit", "Pneumonia:positive_logit"]
    assert len(test) == 4 * len(kept) and test[TASKS].stack().between(0, 1).all()
    softmax = 1 / (1 + np.exp(test["Pneumonia:negative_logit"] - test["Pneumonia:positive_logit"]))
    np.testing.assert_allclose(test["Pneumonia"], softmax, rtol=1e-4)
    metrics = json.loads((prepared / f"{arch}.json").read_text())
    assert metrics["params"] == description["params"] > 0
    # throughput and wall time differ run to run: beside the resume state, not in metrics or model.json
    assert "images_per_second" not in metrics and "images_per_second" not in json.dumps(description)
    timing = json.loads((prepared / "state" / f"{arch}.timing.json").read_text())
    assert timing["images_per_second"] > 0 and timing["fit_seconds"] > 0 and timing["device"] == "cpu"
    assert (prepared / "live" / arch / "plots").is_dir()
    assert not (prepared / "state" / arch).exists()  # resume state is dropped once the outputs exist


def test_missing_init_weights_is_one_clear_error(prepared, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_stage(train_stage.main, train_args(prepared, "resnet18", prepared / "nope.safetensors"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.safetensors" in err[0] and "not found" in err[0]
    assert not (prepared / "models" / "resnet18").exists()


def test_unknown_architecture_and_too_small_images(prepared):
    with pytest.raises(InputError, match="resnet19"):
        train_stage.main(train_args(prepared, "resnet19", prepared / "x.safetensors"))
    with pytest.raises(InputError, match="75"):
        train_stage.main(train_args(prepared, "inception_v3", prepared / "x.safetensors"))


def test_train_tasks_are_learned_and_only_data_tasks_are_evaluated(prepared):
    """train.tasks adds observations to the head (the reference code trains all 14); the outputs and the
    checkpoint selection stay on data.tasks."""
    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["train"]["tasks"] = ["Edema", *TASKS]
    (prepared / "params.yaml").write_text(yaml.safe_dump(params))
    weights = prepared / "init.safetensors"
    init_stage.main(["--params", str(prepared / "params.yaml"), "--arch", "resnet18", "--init", "random",
                     "--out", str(weights), "--metrics", str(prepared / "init.json"), "--state", str(prepared / "s")])
    train_stage.main(train_args(prepared, "resnet18", weights))
    out = prepared / "models" / "resnet18"
    description = json.loads((out / "model.json").read_text())
    assert description["train_tasks"] == ["Edema", *TASKS] and description["tasks"] == TASKS
    # Edema (ones: 1 logit) + Atelectasis (ones: 1) + Pneumonia (multiclass: 3 logits)
    checkpoint = next((out / "checkpoints").iterdir())
    from safetensors.torch import load_file
    assert load_file(str(checkpoint))["fc.weight"].shape[0] == 5
    valid = pd.read_csv(out / "valid_predictions.csv")
    assert list(valid.columns) == ["checkpoint", "path", "patient", "study", *TASKS,
                                   "Pneumonia:negative_logit", "Pneumonia:positive_logit"]
    # Pneumonia's logits are the head's outputs 2 and 3 (after Edema and Atelectasis), not 0 and 1
    softmax = 1 / (1 + np.exp(valid["Pneumonia:negative_logit"] - valid["Pneumonia:positive_logit"]))
    np.testing.assert_allclose(valid["Pneumonia"], softmax, rtol=1e-4)

    params["train"]["tasks"] = ["Edema", "Atelectasis"]  # leaves out the evaluated Pneumonia
    (prepared / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(InputError, match=r"train.tasks must include every task of data.tasks; missing \['Pneumonia'\]"):
        train_stage.main(train_args(prepared, "resnet18", weights))


@pytest.mark.slow
def test_devices_2_relaunches_the_stage_under_torchrun_on_cpu(prepared, capfd):
    """train.devices: 2 on CPU: the stage relaunches itself as 2 gloo processes sharing the global batch of
    4 (2 each, BatchNorm synchronized); rank 0 writes every output, at the cadence of the global batch."""
    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["train"]["devices"] = 2
    (prepared / "params.yaml").write_text(yaml.safe_dump(params))
    weights = prepared / "init.safetensors"
    init_stage.main(["--params", str(prepared / "params.yaml"), "--arch", "resnet18", "--init", "random",
                     "--out", str(weights), "--metrics", str(prepared / "init.json"), "--state", str(prepared / "s")])
    capfd.readouterr()
    train_stage.main(train_args(prepared, "resnet18", weights))
    starts = [line for line in capfd.readouterr().out.splitlines() if line.startswith("train resnet18-random: 24 train")]
    assert len(starts) == 2, starts   # one line per process: two ranks ran
    out = prepared / "models" / "resnet18"
    description = json.loads((out / "model.json").read_text())
    assert description["train"]["devices"] == 2 and description["train"]["batch_size"] == 4
    kept = sorted(k["step"] for k in description["kept"])
    assert len(kept) == 2 and set(kept) <= {8, 16, 24}   # 24 training images, evaluations every 8 (global count)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"step{s:010d}.safetensors" for s in kept]
    test = pd.read_csv(out / "test_predictions.csv")
    assert len(test) == 4 * len(kept) and test[TASKS].stack().between(0, 1).all()
    assert json.loads((prepared / "resnet18.json").read_text())["kept_checkpoints"] == 2
    assert not (prepared / "state" / "resnet18").exists()
