from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from cxrtransfer.data import images, splits
from cxrtransfer.errors import InputError
from stages import preprocess
from stages import split as split_stage


def params_file(tmp_path: Path, root: Path, **overrides) -> Path:
    data = {"kind": "chexpert", "root": str(root), "dataset": "CheXpert-v1.0-small",
            "test_groundtruth": "groundtruth.csv", "image_size": 24, "frontal_only": False,
            "tasks": ["Atelectasis", "Edema"]}
    data.update(overrides)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": data, "split": {"method": "official", "seed": 0,
                                    "fractions": {"train": 0.6, "valid": 0.2, "test": 0.2}}}))
    return path


def test_load_image_resizes_shorter_side_and_centre_crops(tmp_path):
    # a 60 x 40 (h x w) image, left half black, right half white
    pixels = np.zeros((60, 40), dtype=np.uint8)
    pixels[:, 20:] = 255
    Image.fromarray(pixels).save(tmp_path / "x.png")
    out = images.load_image(tmp_path / "x.png", 20)
    assert out.shape == (20, 20) and out.dtype == np.uint8
    assert out[:, :8].max() < 30 and out[:, 12:].min() > 225


def test_corrupt_and_missing_images_are_named(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(InputError, match="bad.jpg"):
        images.load_image(tmp_path / "bad.jpg", 16)
    with pytest.raises(InputError, match="not found"):
        images.load_image(tmp_path / "missing.jpg", 16)


def test_preprocess_stage_writes_the_cache(tiny_chexpert, tmp_path):
    out = tmp_path / "cache"
    preprocess.main(["--params", str(params_file(tmp_path, tiny_chexpert)), "--out", str(out), "--workers", "2"])
    array, index = images.read_cache(out)
    assert array.shape == (6 * 2 * 2 + 2 * 2 + 2 * 2, 24, 24)
    assert set(index["source_split"]) == {"train", "valid", "test"}
    # the cached pixels are exactly load_image of the file
    first = tiny_chexpert / index["path"].iloc[5]
    assert np.array_equal(array[5], images.load_image(first, 24))


def test_preprocess_frontal_only(tiny_chexpert, tmp_path):
    out = tmp_path / "cache"
    preprocess.main(["--params", str(params_file(tmp_path, tiny_chexpert, frontal_only=True)), "--out", str(out)])
    _, index = images.read_cache(out)
    assert index["frontal"].all() and len(index) == 6 * 2 + 2 + 4


def test_preprocess_missing_image_leaves_no_output(tiny_chexpert, tmp_path):
    victim = next((tiny_chexpert / "CheXpert-v1.0-small" / "train").rglob("*.jpg"))
    victim.unlink()
    out = tmp_path / "cache"
    with pytest.raises(InputError, match=victim.name):
        preprocess.main(["--params", str(params_file(tmp_path, tiny_chexpert)), "--out", str(out)])
    assert not out.exists() and not list(tmp_path.glob(".cache*"))


def test_preprocess_stage_exits_nonzero_with_one_line(tiny_chexpert, tmp_path, capsys):
    from cxrtransfer.pipeline.config import run_stage
    victim = next((tiny_chexpert / "CheXpert-v1.0-small" / "valid").rglob("*.jpg"))
    victim.write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exit_info:
        run_stage(preprocess.main, ["--params", str(params_file(tmp_path, tiny_chexpert)), "--out", str(tmp_path / "c")])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and victim.name in err[0] and err[0].startswith("error:")


def index_of(patients: int, studies: int = 2) -> pd.DataFrame:
    rows = [{"path": f"d/train/patient{p:05d}/study{s}/view1_frontal.jpg", "patient": f"patient{p:05d}",
             "study": f"patient{p:05d}/study{s}", "source_split": "train"}
            for p in range(patients) for s in range(1, studies + 1)]
    return pd.DataFrame(rows)


def test_fraction_split_is_patient_level_with_the_right_fractions():
    index = index_of(1000)
    table = splits.make_split(index, "fractions", {"train": 0.75, "valid": 0.10, "test": 0.15}, seed=3)
    assert (table.groupby("patient")["split"].nunique() == 1).all()
    per_split = table.groupby("split")["patient"].nunique() / 1000
    assert per_split["train"] == pytest.approx(0.75, abs=0.001)
    assert per_split["valid"] == pytest.approx(0.10, abs=0.001)
    again = splits.make_split(index, "fractions", {"train": 0.75, "valid": 0.10, "test": 0.15}, seed=3)
    other = splits.make_split(index, "fractions", {"train": 0.75, "valid": 0.10, "test": 0.15}, seed=4)
    assert table.equals(again) and not table.equals(other)


def test_leakage_and_empty_split_are_errors():
    table = pd.DataFrame({"path": ["a", "b", "c", "d"], "patient": ["p1", "p1", "p2", "p3"],
                          "study": ["p1/s1", "p1/s2", "p2/s1", "p3/s1"], "split": ["train", "test", "valid", "test"]})
    with pytest.raises(InputError, match="patient p1 appears in splits"):
        splits.check_split(table)
    with pytest.raises(InputError, match="'valid' is empty"):
        splits.check_split(table.assign(split=["train", "train", "test", "test"]))
    with pytest.raises(InputError, match="sum to 1"):
        splits.fraction_split(index_of(10), {"train": 0.8, "valid": 0.1, "test": 0.2}, 0)


def test_split_stage_official(tiny_chexpert, tmp_path):
    params = params_file(tmp_path, tiny_chexpert)
    preprocess.main(["--params", str(params), "--out", str(tmp_path / "cache")])
    split_stage.main(["--params", str(params), "--index", str(tmp_path / "cache" / "index.csv"),
                      "--out", str(tmp_path / "split.csv"), "--summary", str(tmp_path / "split.json")])
    table = pd.read_csv(tmp_path / "split.csv")
    assert table.groupby("split")["patient"].nunique().to_dict() == {"test": 2, "train": 6, "valid": 2}
