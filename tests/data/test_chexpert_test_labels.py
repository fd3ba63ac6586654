"""The CheXpert test-label reader on files written in the real layouts (torchxrayvision style).

Two layouts of the same radiologist labels: the competition's study-level groundtruth.csv (`Study`
column) and the image-level valid.csv layout of CheXlocalize's test_labels.csv (`Path` column, one row
per view), each with either dataset folder name or none in front. Images lie where a lab puts them:
<root>/<dataset folder>/test/patientNNNNN/studyN/viewN_<frontal|lateral>.jpg.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from cxrtransfer.data import chexpert, images
from cxrtransfer.data.chexpert import COMPETITION_TASKS, HEADER, OBSERVATIONS, PAPER_TASKS
from cxrtransfer.errors import InputError
from stages import preprocess

# Test studies (the real test set's patient ids start at 64741) and their views.
VIEWS = {
    "patient64741/study1": ["view1_frontal.jpg"],
    "patient64742/study1": ["view1_frontal.jpg", "view2_lateral.jpg"],
    "patient64743/study1": ["view1_frontal.jpg", "view2_frontal.jpg", "view3_lateral.jpg"],
}
# Study labels written out by hand: positive observations per study, every other one negative.
POSITIVE = {
    "patient64741/study1": {"No Finding"},
    "patient64742/study1": {"Cardiomegaly", "Edema", "Pleural Effusion", "Support Devices"},
    "patient64743/study1": {"Atelectasis", "Consolidation", "Lung Opacity"},
}
# The ten pathologies CheXlocalize annotates: some copies of the test labels carry only these.
LOCALIZED = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
             "Lung Lesion", "Lung Opacity", "Pleural Effusion", "Pneumothorax", "Support Devices")


def write_jpeg(path: Path, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (24, 20), dtype=np.uint8), mode="L").save(path)


def label(study: str, name: str) -> float:
    return 1.0 if name in POSITIVE[study] else 0.0


def write_images(root: Path, dataset: str) -> None:
    rng = np.random.default_rng(0)
    for study, views in VIEWS.items():
        for view in views:
            write_jpeg(root / dataset / "test" / study / view, rng)


def write_study_level(path: Path, prefix: str = "CheXpert-v1.0/") -> Path:
    """The competition's groundtruth.csv: Study, then the 14 observations as 0 / 1."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Study", *OBSERVATIONS])
        for study in VIEWS:
            writer.writerow([f"{prefix}test/{study}", *[str(int(label(study, o))) for o in OBSERVATIONS]])
    return path


def write_image_level(path: Path, prefix: str = "", observations=OBSERVATIONS, meta: bool = True) -> Path:
    """valid.csv's layout, one row per view (labels 1.0 / 0.0), as in CheXlocalize's test_labels.csv."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow((list(HEADER[:5]) if meta else ["Path"]) + list(observations))
        for study, views in VIEWS.items():
            for view in views:
                orientation = "Frontal" if "frontal" in view else "Lateral"
                info = ["Female", "61", orientation, "AP" if orientation == "Frontal" else ""] if meta else []
                writer.writerow([f"{prefix}test/{study}/{view}", *info,
                                 *[f"{label(study, o):.1f}" for o in observations]])
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The folder holding CheXpert-v1.0-small/ with the test images (no label file yet)."""
    folder = tmp_path / "chexpert"
    write_images(folder, "CheXpert-v1.0-small")
    return folder


def expected_studies() -> pd.DataFrame:
    rows = [{"patient": s.split("/")[0], "study": s, **{o: label(s, o) for o in OBSERVATIONS}} for s in VIEWS]
    frame = pd.DataFrame(rows)
    frame[list(OBSERVATIONS)] = frame[list(OBSERVATIONS)].astype(np.float32)
    return frame


@pytest.mark.parametrize("prefix", ["", "CheXpert-v1.0/", "CheXpert-v1.0-small/"])
def test_both_layouts_give_the_same_test_table(root, prefix):
    folder = root / "CheXpert-v1.0-small"
    study_file = write_study_level(folder / "groundtruth.csv")
    image_file = write_image_level(folder / "test_labels.csv", prefix)

    by_study, by_image = chexpert.read_test_labels(study_file), chexpert.read_test_labels(image_file)
    pd.testing.assert_frame_equal(by_study, expected_studies())
    pd.testing.assert_frame_equal(by_image, expected_studies())

    table = chexpert.read_test_groundtruth(study_file, root, PAPER_TASKS)
    pd.testing.assert_frame_equal(chexpert.read_test_groundtruth(image_file, root, PAPER_TASKS), table)
    assert list(table["path"]) == [f"CheXpert-v1.0-small/test/{s}/{v}" for s, views in VIEWS.items() for v in views]
    assert list(table["frontal"]) == [True, True, False, True, True, False]
    for _, row in table.iterrows():
        assert [row[o] for o in OBSERVATIONS] == [label(row["study"], o) for o in OBSERVATIONS]


@pytest.mark.parametrize("images_in, file_says", [("CheXpert-v1.0-small", "CheXpert-v1.0/"),
                                                   ("CheXpert-v1.0", "CheXpert-v1.0-small/")])
def test_dataset_folder_is_mapped_onto_the_images_the_user_has(tmp_path, images_in, file_says):
    root = tmp_path / "data"
    write_images(root, images_in)
    labels = write_image_level(tmp_path / "test_labels.csv", file_says)  # outside the dataset folder
    table = chexpert.read_test_groundtruth(labels, root, PAPER_TASKS, dataset=images_in)
    assert table["path"].str.startswith(f"{images_in}/test/patient6474").all() and len(table) == 6
    assert all((root / p).is_file() for p in table["path"])
    studies = write_study_level(tmp_path / "groundtruth.csv", file_says)
    pd.testing.assert_frame_equal(chexpert.read_test_groundtruth(studies, root, PAPER_TASKS, dataset=images_in),
                                  table)


def test_an_unknown_dataset_folder_is_named(root):
    labels = write_image_level(root / "CheXpert-v1.0-small" / "test_labels.csv", "CheXpert-v2/")
    with pytest.raises(InputError) as err:
        chexpert.read_test_groundtruth(labels, root)
    message = str(err.value)
    assert str(labels) in message and "row 2" in message and "column 'Path'" in message and "CheXpert-v2" in message


def test_disagreeing_views_name_file_study_and_column(root):
    labels = write_image_level(root / "CheXpert-v1.0-small" / "test_labels.csv")
    lines = labels.read_text().splitlines()
    # row 6 of the file: patient64743's second view; its Edema cell (0.0) turns positive
    cells = lines[5].split(",")
    assert cells[0] == "test/patient64743/study1/view2_frontal.jpg"
    cells[HEADER.index("Edema")] = "1.0"
    lines[5] = ",".join(cells)
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        chexpert.read_test_labels(labels)
    message = str(err.value)
    assert str(labels) in message and "patient64743/study1" in message and "column 'Edema'" in message
    assert "row 5: 0" in message and "row 6: 1" in message and "row 7: 0" in message


def test_observations_outside_the_tasks_may_be_missing(root):
    """A copy with only CheXlocalize's ten pathologies serves the five competition tasks."""
    labels = write_image_level(root / "CheXpert-v1.0-small" / "test_labels.csv", observations=LOCALIZED, meta=False)
    table = chexpert.read_test_groundtruth(labels, root, COMPETITION_TASKS)
    assert len(table) == 6
    for name in OBSERVATIONS:
        if name in LOCALIZED:
            assert list(table[name]) == [label(s, name) for s in table["study"]]
        else:
            assert table[name].isna().all()


def test_a_missing_evaluated_task_is_named(root):
    labels = write_image_level(root / "CheXpert-v1.0-small" / "test_labels.csv", observations=LOCALIZED)
    with pytest.raises(InputError) as err:
        chexpert.read_test_groundtruth(labels, root, PAPER_TASKS)  # the paper's six include No Finding
    message = str(err.value)
    assert str(labels) in message and "No Finding" in message and "column 'No Finding'" in message


@pytest.mark.parametrize("cell", ["", "-1.0", "2"])
def test_a_bad_label_of_an_evaluated_task_names_file_study_and_column(root, cell):
    labels = write_study_level(root / "CheXpert-v1.0-small" / "groundtruth.csv")
    lines = labels.read_text().splitlines()
    cells = lines[2].split(",")
    cells[1 + OBSERVATIONS.index("Cardiomegaly")] = cell
    lines[2] = ",".join(cells)
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        chexpert.read_test_labels(labels, PAPER_TASKS)
    message = str(err.value)
    assert str(labels) in message and "row 3" in message and "patient64742/study1" in message
    assert "column 'Cardiomegaly'" in message


def test_a_blank_outside_the_tasks_is_allowed(root):
    labels = write_study_level(root / "CheXpert-v1.0-small" / "groundtruth.csv")
    text = labels.read_text().replace("test/patient64742/study1,0,0,1,0,0,1,0,0,0,0,1,0,0,1",
                                      "test/patient64742/study1,0,0,1,0,0,1,0,,0,0,1,0,0,1")
    labels.write_text(text)
    assert "0,,0" in text  # Pneumonia left blank
    table = chexpert.read_test_labels(labels, PAPER_TASKS)
    assert np.isnan(table.loc[1, "Pneumonia"]) and table.loc[1, "Edema"] == 1.0


def test_a_listed_image_missing_on_disk_is_named(root):
    labels = write_image_level(root / "CheXpert-v1.0-small" / "test_labels.csv")
    (root / "CheXpert-v1.0-small" / "test" / "patient64742" / "study1" / "view2_lateral.jpg").unlink()
    with pytest.raises(InputError) as err:
        chexpert.read_test_groundtruth(labels, root)
    message = str(err.value)
    assert "patient64742/study1" in message and "view2_lateral.jpg" in message and "row 4" in message


def test_a_file_with_neither_or_both_key_columns_is_refused(root):
    labels = write_image_level(root / "CheXpert-v1.0-small" / "test_labels.csv")
    labels.write_text(labels.read_text().replace("Path,", "Image,", 1))
    with pytest.raises(InputError, match="'Study' column .* or a 'Path' column"):
        chexpert.read_test_labels(labels)


def test_preprocess_reads_the_image_level_file_and_checks_the_tasks(tiny_chexpert, tmp_path):
    """The stage: CheXlocalize's file in place of groundtruth.csv gives the same cache; a missing task stops it."""
    folder = tiny_chexpert / "CheXpert-v1.0-small"
    truth = pd.read_csv(folder / "groundtruth.csv", dtype=str)
    rows = []
    for _, study in truth.iterrows():
        in_test = study["Study"].split("/", 1)[1]  # test/patientNNNNN/studyN, no dataset folder
        for view in sorted((folder / in_test).iterdir()):
            rows.append({"Path": f"{in_test}/{view.name}",
                         **{o: f"{float(study[o]):.1f}" for o in OBSERVATIONS if o != "Fracture"}})
    pd.DataFrame(rows).to_csv(folder / "test_labels.csv", index=False)

    def run(test_file: str, tasks: list[str], out: Path) -> pd.DataFrame:
        data = {"kind": "chexpert", "root": str(tiny_chexpert), "dataset": "CheXpert-v1.0-small",
                "test_groundtruth": test_file, "image_size": 16, "frontal_only": False, "tasks": tasks}
        params = tmp_path / "params.yaml"
        params.write_text(yaml.safe_dump({"data": data}))
        preprocess.main(["--params", str(params), "--out", str(out), "--workers", "1"])
        return images.read_cache(out)[1]

    tasks = ["Edema", "No Finding"]
    by_study, by_image = run("groundtruth.csv", tasks, tmp_path / "a"), run("test_labels.csv", tasks, tmp_path / "b")
    test = by_study["source_split"] == "test"
    assert test.sum() == 4
    pd.testing.assert_frame_equal(by_image.drop(columns="Fracture"), by_study.drop(columns="Fracture"))
    assert by_image.loc[test, "Fracture"].isna().all() and by_study.loc[test, "Fracture"].notna().all()
    with pytest.raises(InputError, match="Fracture"):
        run("test_labels.csv", ["Edema", "Fracture"], tmp_path / "c")
    assert not (tmp_path / "c").exists()
