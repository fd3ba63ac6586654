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


def pil_shorter_side_centre_crop(path: Path, size: int) -> np.ndarray:
    """The expected pixels, from PIL directly: the whole image resized (shorter side to `size`, bilinear),
    then the centre size x size cut out with numpy."""
    with Image.open(path) as img:
        gray = img.convert("L")
    width, height = gray.size
    scale = size / min(width, height)
    new_w, new_h = round(width * scale), round(height * scale)
    full = np.asarray(gray.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=None))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return full[top:top + size, left:left + size]


@pytest.mark.parametrize("height, width", [(60, 40), (40, 60)])
def test_load_image_takes_the_centre_crop_of_an_image_that_varies_by_row_and_column(tmp_path, height, width):
    # every 10 x 10 block has its own level and a ramp inside: top, centre and bottom crops, and a stretch
    # of the whole image, all give different pixels
    rows, columns = np.mgrid[0:height, 0:width]
    pixels = ((rows // 10) * 60 + (columns // 10) * 9 + rows % 10 + 2 * (columns % 10)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    out = images.load_image(tmp_path / "x.png", 20)
    expected = pil_shorter_side_centre_crop(tmp_path / "x.png", 20)
    np.testing.assert_array_equal(out, expected)
    with Image.open(tmp_path / "x.png") as img:
        stretched = np.asarray(img.resize((20, 20), Image.Resampling.BILINEAR))
        short = (20 * width // min(height, width), 20 * height // min(height, width))
        full = np.asarray(img.resize(short, Image.Resampling.BILINEAR, reducing_gap=None))
    assert not np.array_equal(out, stretched)  # keep-aspect, not a stretch
    assert not np.array_equal(out, full[:20, :20])  # the centre, not the top-left corner
    assert not np.array_equal(out, full[-20:, -20:])
    if height == 60:
        # by hand: output (10, 10) is (15, 10) of the 30 x 20 resize, centred on source (31, 21); bilinear at
        # scale 2 weighs rows 29..32 and columns 19..22 by 1/8, 3/8, 3/8, 1/8 (the level is separable):
        # rows (129, 180, 181, 182) -> 174.25, columns (27, 18, 20, 22) -> 20.375; 194.625 in all
        assert abs(int(out[10, 10]) - 194.625) < 1


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
    # the cached pixels are the file's, resized and cropped by PIL directly (not by load_image, which the
    # cache itself calls); at 24 px from 40 x 48 JPEGs libjpeg's draft scaling cannot apply. At this
    # non-integer scale, resampling only the crop box rounds an odd pixel the other way: 1 grey level of
    # 255, where a wrong image, crop or stretch of these noise images is off by tens.
    for row in (0, 5, len(index) - 1):
        expected = pil_shorter_side_centre_crop(tiny_chexpert / index["path"].iloc[row], 24).astype(int)
        assert np.abs(array[row].astype(int) - expected).max() <= 1, row
        assert np.abs(array[row].astype(int) - expected).mean() < 0.05, row


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
