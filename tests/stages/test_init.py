"""stages/init.py reads only the inputs its kind declares in dvc.yaml (see tests/pipeline/test_dvc_deps.py)."""

from __future__ import annotations

import pytest
import torch
import yaml

from cxrtransfer.errors import InputError
from cxrtransfer.models import tensorfiles
from cxrtransfer.pipeline import config as schema
from stages import init as init_stage


def run(tmp_path, params: dict, init: str) -> dict[str, torch.Tensor]:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    out = tmp_path / f"{init}.safetensors"
    init_stage.main(["--params", str(path), "--arch", "resnet18", "--init", init, "--out", str(out),
                     "--metrics", str(tmp_path / f"{init}.json")])
    return tensorfiles.load_safetensors(out)[0]


def test_kinds_of_init():
    assert [schema.init_kind(n) for n in ("random", "indomain", "imagenet", "moco")] == [
        "random", "indomain", "weights", "weights"]


def test_random_init_needs_init_seed_only(tmp_path):
    """No pretrain, weights_dir or files keys: the random init reads none of them."""
    first = run(tmp_path, {"init": {"seed": 3}}, "random")
    again = run(tmp_path, {"init": {"seed": 3}}, "random")
    other = run(tmp_path, {"init": {"seed": 4}}, "random")
    key = "conv1.weight"
    assert torch.equal(first[key], again[key]) and not torch.equal(first[key], other[key])


def test_named_file_inside_the_weights_folder_is_loaded(tmp_path):
    source = run(tmp_path, {"init": {"seed": 5}}, "random")
    (tmp_path / "weights").mkdir()
    tensorfiles.save_safetensors(tmp_path / "weights" / "mine.safetensors", source)
    params = {"init": {"seed": 0, "weights_dir": str(tmp_path / "weights"),
                       "files": {"mine": str(tmp_path / "weights" / "mine.safetensors")}}}
    loaded = run(tmp_path, params, "mine")
    assert torch.equal(loaded["conv1.weight"], source["conv1.weight"])


def test_named_file_outside_the_weights_folder_is_refused(tmp_path):
    """The init_weights stages depend on init.weights_dir: a file elsewhere would be an undeclared input."""
    (tmp_path / "weights").mkdir()
    params = {"init": {"seed": 0, "weights_dir": str(tmp_path / "weights"),
                       "files": {"moco": str(tmp_path / "elsewhere" / "moco.safetensors")}}}
    with pytest.raises(InputError, match="not inside init.weights_dir"):
        run(tmp_path, params, "moco")
    assert not (tmp_path / "moco.safetensors").exists() and not (tmp_path / "moco.json").exists()
