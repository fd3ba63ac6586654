"""The train stage as a repeat of params `seeds`: the seed reaches head init, data order and a random body."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_train import prepared, train_args  # noqa: F401 (prepared: the fixture)

from cxrtransfer.errors import InputError
from cxrtransfer.models import weights
from cxrtransfer.pipeline.config import load_params
from stages import init as init_stage
from stages import train as train_stage


def repeat_args(root: Path, seed: int, out: str) -> list[str]:
    """A random-init repeat as the seed_random group runs it: --seed, no --init-weights."""
    args = train_args(root, "resnet18", root / "unused")
    at = args.index("--init-weights")
    args = args[:at] + args[at + 2:] + ["--seed", str(seed)]
    for option, value in (("--out", root / "models" / out), ("--metrics", root / f"{out}.json"),
                          ("--live", root / "live" / out), ("--state", root / "state" / out)):
        args[args.index(option) + 1] = str(value)
    return args


def test_seed_zero_of_a_seed_group_trains_nothing_and_names_the_configured_run(prepared):  # noqa: F811
    train_stage.main(repeat_args(prepared, 0, "s0"))
    assert json.loads((prepared / "s0.json").read_text()) == {"seed": 0, "same_as": "resnet18-random"}
    assert not (prepared / "models" / "s0").exists()


def test_a_random_repeat_draws_its_own_body_and_shifts_the_training_seed(prepared):  # noqa: F811
    base_weights = prepared / "init.safetensors"
    init_stage.main(["--params", str(prepared / "params.yaml"), "--arch", "resnet18", "--init", "random",
                     "--out", str(base_weights), "--metrics", str(prepared / "init.json"), "--state", str(prepared / "s")])
    train_stage.main(train_args(prepared, "resnet18", base_weights))
    train_stage.main(repeat_args(prepared, 1, "s1"))
    train_stage.main(repeat_args(prepared, 1, "s1-again"))
    base, repeat, again = (pd.read_csv(prepared / "models" / name / "test_predictions.csv")
                           for name in ("resnet18", "s1", "s1-again"))
    assert json.loads((prepared / "models" / "s1" / "model.json").read_text())["train"]["seed"] == 1
    assert not base.equals(repeat) and repeat.equals(again)


def test_the_body_of_a_random_repeat_is_the_init_stages_body_at_init_seed_plus_seed(prepared):  # noqa: F811
    params = load_params(prepared / "params.yaml")
    params["init"]["seed"] = 5
    args = train_stage.parse_args(repeat_args(prepared, 2, "s2"))
    assert train_stage.drawn_body_seed(args, params) == 7
    layout = argparse.Namespace(width=2)
    model = train_stage.starting_model(args, layout, 0, 32, body_seed=7)
    drawn = weights.initial_body("resnet18", "random", weights_dir=None, seed=7)
    assert torch.equal(model.state_dict()["conv1.weight"], drawn["conv1.weight"])
    assert not torch.equal(drawn["conv1.weight"],
                           weights.initial_body("resnet18", "random", weights_dir=None, seed=5)["conv1.weight"])


def test_a_repeat_of_a_loaded_init_still_needs_its_weights(prepared):  # noqa: F811
    args = train_stage.parse_args([*repeat_args(prepared, 1, "x")[:-2], "--seed", "1"])
    args.init = "imagenet"
    with pytest.raises(InputError, match="--init-weights is required"):
        train_stage.drawn_body_seed(args, load_params(prepared / "params.yaml"))
