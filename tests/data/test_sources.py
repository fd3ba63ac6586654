"""The in-domain source: the RadImageNet-layout folder reader and the synthetic source generator."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from cxrtransfer.data import sources
from cxrtransfer.embedded import synthetic_source
from cxrtransfer.errors import InputError
from stages import synthesize_source

SMALL = dict(images_per_class=3, height=40, width=48)


def touch_image(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path, format=fmt)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def test_reader_indexes_a_tree_as_classes(tmp_path):
    for rel in ("MR/knee/tear/c.jpeg", "CT/abdomen/normal/a.png", "CT/abdomen/cyst/b.jpg", "MR/knee/tear/d.PNG"):
        touch_image(tmp_path / rel)
    (tmp_path / "CT" / "abdomen" / "normal" / ".DS_Store").write_text("x")  # hidden files are skipped
    (tmp_path / ".dvc_state").mkdir()
    (tmp_path / ".dvc_state" / "junk.txt").write_text("x")
    frame = sources.read_folder_dataset(tmp_path)
    assert list(frame.columns) == list(sources.FOLDER_COLUMNS)
    assert frame["path"].tolist() == ["CT/abdomen/cyst/b.jpg", "CT/abdomen/normal/a.png",
                                      "MR/knee/tear/c.jpeg", "MR/knee/tear/d.PNG"]
    assert frame["modality"].tolist() == ["CT", "CT", "MR", "MR"]
    assert frame["anatomy"].tolist() == ["abdomen", "abdomen", "knee", "knee"]
    assert frame["label"].tolist() == ["cyst", "normal", "tear", "tear"]
    assert frame["class_name"].tolist() == ["CT/abdomen/cyst", "CT/abdomen/normal", "MR/knee/tear", "MR/knee/tear"]
    assert frame["class_index"].tolist() == [0, 1, 2, 2]
    assert all((tmp_path / p).is_file() for p in frame["path"])


@pytest.mark.parametrize("rel, message", [
    ("CT/abdomen/x.png", "wrong depth"),
    ("top.png", "wrong depth"),
    ("CT/abdomen/normal/extra/x.png", "too deep"),
    ("CT/abdomen/normal/notes.txt", "not an image"),
    ("CT/abdomen/normal/bad\nname.png", "unusable name"),
])
def test_reader_rejects_bad_layouts(tmp_path, rel, message):
    touch_image(tmp_path / "CT/abdomen/normal/ok.png")
    target = tmp_path / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"not really an image")
    with pytest.raises(InputError, match=message) as err:
        sources.read_folder_dataset(tmp_path)
    assert Path(rel).parts[-1] in str(err.value) or Path(rel).parts[-2] in str(err.value)


def test_reader_rejects_undecodable_names(tmp_path):
    touch_image(tmp_path / "CT/abdomen/normal/ok.png")
    folder = os.fsencode(tmp_path / "CT/abdomen/normal")
    with open(os.path.join(folder, b"caf\xe9.png"), "wb") as handle:  # Latin-1 bytes: not UTF-8
        handle.write(b"x")
    with pytest.raises(InputError, match="unreadable name"):
        sources.read_folder_dataset(tmp_path)


def test_reader_rejects_empty_or_missing_roots(tmp_path):
    with pytest.raises(InputError, match="not found"):
        sources.read_folder_dataset(tmp_path / "absent")
    (tmp_path / "CT" / "abdomen" / "normal").mkdir(parents=True)
    with pytest.raises(InputError, match="no images"):
        sources.read_folder_dataset(tmp_path)


def test_generator_is_deterministic_and_balanced(tmp_path):
    synthetic_source.generate_source(tmp_path / "a", seed=1, **SMALL)
    synthetic_source.generate_source(tmp_path / "b", seed=1, workers=2, **SMALL)
    synthetic_source.generate_source(tmp_path / "c", seed=2, **SMALL)
    first, second = sources.read_folder_dataset(tmp_path / "a"), sources.read_folder_dataset(tmp_path / "b")
    assert first.equals(second)
    for rel in first["path"]:
        np.testing.assert_array_equal(pixels(tmp_path / "a" / rel), pixels(tmp_path / "b" / rel))
    assert any(not np.array_equal(pixels(tmp_path / "a" / rel), pixels(tmp_path / "c" / rel)) for rel in first["path"])
    expected = ["/".join(t) for t in synthetic_source.source_classes()]
    counts = first["class_name"].value_counts()
    assert sorted(counts.index) == sorted(expected) and (counts == SMALL["images_per_class"]).all()
    assert sorted(first["class_index"].unique()) == list(range(len(expected)))
    with Image.open(tmp_path / "a" / first["path"][0]) as img:
        assert (img.format, img.mode, img.size) == ("PNG", "L", (SMALL["width"], SMALL["height"]))


def test_no_chest_content_and_checked_classes():
    classes = synthetic_source.source_classes()
    assert not {a for _, a, _ in classes} & {"chest", "lung", "thorax", "heart", "cardiac"}
    assert not {lbl for _, _, lbl in classes} & {"effusion", "cardiomegaly", "pneumonia", "edema", "atelectasis"}
    assert len({m for m, _, _ in classes}) == 3 and len({a for _, a, _ in classes}) >= 4
    with pytest.raises(InputError, match="unknown anatomy"):
        synthetic_source.source_classes({"CT": {"chest": ["normal"]}})
    with pytest.raises(InputError, match="cannot draw"):
        synthetic_source.source_classes({"MR": {"brain": ["tear"]}})
    with pytest.raises(InputError, match="unknown modality"):
        synthetic_source.source_classes({"PET": {"brain": ["normal"]}})


def test_classes_are_learnable_from_pixels(tmp_path):
    """Cross-validated logistic regression on 16x16 pixels beats the majority class by far."""
    synthetic_source.generate_source(tmp_path / "s", images_per_class=10, height=40, width=48, seed=0)
    frame = sources.read_folder_dataset(tmp_path / "s")
    x = np.stack([np.asarray(Image.open(tmp_path / "s" / p).resize((16, 16), Image.BILINEAR), np.float32).ravel() / 255
                  for p in frame["path"]])
    accuracy = cross_val_score(LogisticRegression(C=1.0, max_iter=3000), x, frame["class_index"], cv=5).mean()
    chance = frame["class_index"].value_counts(normalize=True).max()
    print(f"source classes: logistic regression accuracy {accuracy:.2f} (chance {chance:.2f})")
    assert accuracy > 4 * chance


def test_stage_writes_a_readable_tree(tmp_path):
    params = tmp_path / "params.yaml"
    config = {"seed": 0, "images_per_class": 2, "height": 40, "width": 48,
              "classes": {"CT": {"abdomen": ["normal", "cyst"]}, "US": {"thyroid": ["normal", "nodule"]}}}
    params.write_text(yaml.safe_dump({"source": config}))
    out = tmp_path / "data" / "source"
    synthesize_source.main(["--params", str(params), "--out", str(out), "--workers", "1"])
    frame = sources.read_folder_dataset(out)
    assert sorted(frame["class_name"].unique()) == ["CT/abdomen/cyst", "CT/abdomen/normal",
                                                    "US/thyroid/nodule", "US/thyroid/normal"]
    assert len(frame) == 8
    params.write_text(yaml.safe_dump({"source": {**config, "classes": {"CT": {"chest": ["normal"]}}}}))
    with pytest.raises(InputError, match="chest"):
        synthesize_source.main(["--params", str(params), "--out", str(tmp_path / "other")])
    params.write_text(yaml.safe_dump({"source": {**config, "size": 3}}))
    with pytest.raises(InputError, match="unknown key"):
        synthesize_source.main(["--params", str(params), "--out", str(tmp_path / "other")])
    assert not (tmp_path / "other").exists()
