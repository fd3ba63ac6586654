"""Params are checked before any work: each bad value is one line naming the key, exit 2, nothing trained."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from cxrtransfer.errors import InputError
from cxrtransfer.pipeline import config as schema
from cxrtransfer.pipeline.config import run_stage
from stages import bootstrap as bootstrap_stage
from stages import init as init_stage
from stages import preprocess
from stages import split as split_stage
from stages import train as train_stage

REPO = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((REPO / "params.yaml").read_text())


def train_argv(root: Path, params: Path) -> list[str]:
    # The inputs do not exist: the params check must stop the stage before it looks for them.
    return ["--params", str(params), "--arch", "resnet18", "--init", "random", "--init-weights",
            str(root / "init.safetensors"), "--cache", str(root / "cache"), "--split", str(root / "split.csv"),
            "--out", str(root / "model"), "--metrics", str(root / "m.json"), "--live", str(root / "live"),
            "--state", str(root / "state"), "--normalization", str(root / "normalization.json")]


def with_change(dotted: str, value, base: dict = DEMO) -> dict:
    params = copy.deepcopy(base)
    *parents, last = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[last] = value
    return params


def renamed(dotted: str, new_name: str) -> dict:
    params = copy.deepcopy(DEMO)
    *parents, last = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[new_name] = node.pop(last)
    return params


BAD_TRAIN = [  # (params, what the one line must say)
    (with_change("train.batch_size", 0), "train.batch_size must be >= 1, got 0"),
    (with_change("train.eval_every_images", 0), "train.eval_every_images must be >= 1, got 0"),
    (with_change("train.top_k", 0), "train.top_k must be >= 1, got 0"),
    (with_change("train.lr", 0.0), "train.lr must be > 0"),
    (with_change("train.lr", "1e-4"), "write 1.0e-4"),
    (with_change("train.epochs", 2.5), "train.epochs must be an integer, got 2.5"),
    (with_change("train.betas", [0.9]), "train.betas must have 2 entries"),
    (with_change("train.max_images", -1), "train.max_images must be >= 0"),
    (with_change("train.selection_tasks", ["Atelectasis", "Pneumothorax"]),
     "train.selection_tasks ['Pneumothorax'] not in data.tasks"),
    (with_change("train.selection_tasks", ["Atelectasis", "Edemma"]), "did you mean 'Edema'?"),
    (renamed("train.eval_every_images", "eval_every_image"),
     "unknown key 'train.eval_every_image' (did you mean 'eval_every_images'?)"),
    (renamed("train.batch_size", "batchsize"), "unknown key 'train.batchsize' (did you mean 'batch_size'?)"),
    (renamed("train", "trian"), "unknown key 'params.trian' (did you mean 'train'?)"),
    (with_change("overrides.resnet18", {"seeed": 1}), "unknown key 'overrides.resnet18.seeed' (did you mean 'seed'?)"),
    (with_change("overrides.resnet18", {"batch_size": 0}), "overrides.resnet18.batch_size must be >= 1"),
    (with_change("train.devices", 3), "train.batch_size 16 is the global batch: it does not split evenly over "
                                      "train.devices 3 processes"),
    (with_change("overrides.resnet18", {"devices": 3}), "train.batch_size 16 is the global batch: it does not "
                                                       "split evenly over overrides.resnet18.devices 3 processes"),
    (with_change("train.compile", "yes"), "train.compile must be true or false"),
    (with_change("data.image_size", 8), "data.image_size must be >= 16"),
    (with_change("data.blank_as_negative", "yes"), "data.blank_as_negative must be true or false"),
    (with_change("data.tasks", ["Atelectasis", "Cardiomegally"]), "did you mean 'Cardiomegaly'?"),
    (with_change("data.uncertainty.Edema", "one"), "data.uncertainty['Edema'] must be one of"),
]


@pytest.mark.parametrize("params, message", BAD_TRAIN, ids=[m for _, m in BAD_TRAIN])
def test_bad_train_params_stop_the_stage_with_one_line(tmp_path, capsys, params, message):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(SystemExit) as exit_info:
        run_stage(train_stage.main, train_argv(tmp_path, path))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: ") and message in err[0], err
    assert not (tmp_path / "model").exists() and not (tmp_path / "state").exists()
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "live").exists()


@pytest.mark.parametrize("stage, argv, params, message", [
    (split_stage, ["--index", "i.csv", "--out", "s.csv", "--summary", "s.json"],
     with_change("split.method", "offical"), "split.method must be one of ['official', 'fractions'], got 'offical' "
                                             "(did you mean 'official'?)"),
    (preprocess, ["--out", "cache"], renamed("data.frontal_only", "frontal"),
     "unknown key 'data.frontal'"),
    (preprocess, ["--section", "pretrain.data", "--out", "cache"], with_change("pretrain.data.image_size", "76"),
     "pretrain.data.image_size must be an integer"),
    (init_stage, ["--arch", "resnet18", "--init", "indomain", "--out", "w.safetensors", "--metrics", "m.json",
                  "--state", "st"], with_change("pretrain.top_k", 0), "pretrain.top_k must be >= 1"),
    (init_stage, ["--arch", "resnet18", "--init", "random", "--out", "w.safetensors", "--metrics", "m.json",
                  "--state", "st"], renamed("init.weights_dir", "weight_dir"), "did you mean 'weights_dir'?"),
    (bootstrap_stage, ["--ensemble", "e", "--out", "b.json", "--plot", "p.csv"],
     with_change("bootstrap.confidence", 95), "bootstrap.confidence must be < 1"),
    (bootstrap_stage, ["--ensemble", "e", "--out", "b.json", "--plot", "p.csv"],
     with_change("bootstrap.unit", "image"), "bootstrap.unit must be one of ['patient', 'study'], got 'image'"),
    (bootstrap_stage, ["--ensemble", "e", "--out", "b.json", "--plot", "p.csv"],
     with_change("bootstrap.compare", [["a", "b", "c"]]), "bootstrap.compare[0] must have 2 entries"),
    (bootstrap_stage, ["--ensemble", "e", "--out", "b.json", "--plot", "p.csv"],
     renamed("data.tasks", "task"), "unknown key 'data.task'"),
    (init_stage, ["--arch", "resnet18", "--init", "random", "--out", "w.safetensors", "--metrics", "m.json",
                  "--state", "st"], with_change("inits", {"random": [], "weights": ["random"], "indomain": []}),
     "inits.weights lists 'random', an init of kind 'random': list it under inits.random"),
])
def test_other_stages_check_their_params_first(tmp_path, capsys, monkeypatch, stage, argv, params, message):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(SystemExit) as exit_info:
        run_stage(stage.main, ["--params", "params.yaml", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


@pytest.mark.parametrize("config", ["params.yaml", "configs/paper.yaml"])
def test_shipped_params_pass_every_check(config):
    params = yaml.safe_load((REPO / config).read_text())
    schema.check(params, list(schema.SECTIONS), REPO / config)
    for arch in params["architectures"]:
        schema.check(params, ["train"], REPO / config, arch=arch)


def test_checks_accept_null_selection_tasks_and_reject_null_elsewhere():
    schema.check(with_change("train.selection_tasks", None), ["train"])
    with pytest.raises(InputError, match="train.batch_size must be an integer, got null"):
        schema.check(with_change("train.batch_size", None), ["train"])
