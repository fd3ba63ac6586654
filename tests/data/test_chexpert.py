from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrtransfer.data import chexpert
from cxrtransfer.data.chexpert import OBSERVATIONS, evaluation_targets, policy_targets, read_labels
from cxrtransfer.errors import InputError

REAL_ROWS = """Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,Support Devices
CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0
CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg,Female,87,Frontal,AP,,,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,
CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,Female,83,Frontal,AP,,,,1.0,,,-1.0,,,,,,1.0,
CheXpert-v1.0-small/train/patient00002/study1/view2_lateral.jpg,Female,83,Lateral,,,,,1.0,,,-1.0,,,,,,1.0,
CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,Male,41,Frontal,AP,,,,,,1.0,,,,0.0,,,,
"""


def write(tmp_path: Path, text: str, name: str = "train.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parses_rows_in_the_real_format(tmp_path):
    table = read_labels(write(tmp_path, REAL_ROWS))
    assert len(table) == 5
    assert list(table["patient"]) == ["patient00001", "patient00002", "patient00002", "patient00002", "patient00003"]
    assert list(table["study"])[1:4] == ["patient00002/study2", "patient00002/study1", "patient00002/study1"]
    assert list(table["frontal"]) == [True, True, True, False, True]
    assert table.loc[3, "ap_pa"] == ""  # lateral rows have a blank AP/PA
    assert table.loc[0, "sex"] == "Female" and table.loc[0, "age"] == 68
    assert table.loc[0, "No Finding"] == 1.0 and np.isnan(table.loc[0, "Cardiomegaly"])
    assert table.loc[1, "Cardiomegaly"] == -1.0 and table.loc[0, "Pneumothorax"] == 0.0
    assert set(table["source_split"]) == {"train"}


@pytest.mark.parametrize("column", ["Path", "Edema", "Frontal/Lateral"])
def test_missing_column_is_named(tmp_path, column):
    text = REAL_ROWS.replace(column, column + "X", 1)
    with pytest.raises(InputError, match=column):
        read_labels(write(tmp_path, text))


def test_bad_label_value_names_file_row_and_column(tmp_path):
    lines = REAL_ROWS.splitlines()
    lines[3] = lines[3].replace(",-1.0,,,,,,1.0,", ",2.0,,,,,,1.0,")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        read_labels(path)
    message = str(err.value)
    assert str(path) in message and "row 4" in message and "Consolidation" in message and "'2.0'" in message


def test_unparseable_path_is_named(tmp_path):
    text = REAL_ROWS.replace("patient00003/study1/view1_frontal.jpg", "p3/view1.jpg")
    with pytest.raises(InputError, match=r"row 6.*Path"):
        read_labels(write(tmp_path, text))


def test_view_column_must_agree_with_file_name(tmp_path):
    text = REAL_ROWS.replace("view2_lateral.jpg,Female,83,Lateral", "view2_lateral.jpg,Female,83,Frontal")
    with pytest.raises(InputError, match="Frontal/Lateral"):
        read_labels(write(tmp_path, text))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_labels(tmp_path / "nope.csv")


RAW = np.array([[1.0, 1.0, 1.0, 1.0],
                [0.0, 0.0, 0.0, 0.0],
                [-1.0, -1.0, -1.0, -1.0],
                [np.nan, np.nan, np.nan, np.nan]], dtype=np.float32)


def test_every_uncertainty_policy():
    targets, mask = policy_targets(RAW, ["ignore", "zeros", "ones", "multiclass"])
    # column by column: the uncertain row (2) is what the policies disagree on
    assert targets[:, 0].tolist() == [1, 0, 0, 0] and mask[:, 0].tolist() == [1, 1, 0, 1]
    assert targets[:, 1].tolist() == [1, 0, 0, 0] and mask[:, 1].tolist() == [1, 1, 1, 1]
    assert targets[:, 2].tolist() == [1, 0, 1, 0] and mask[:, 2].tolist() == [1, 1, 1, 1]
    assert targets[:, 3].tolist() == [1, 0, 2, 0] and mask[:, 3].tolist() == [1, 1, 1, 1]


def test_blanks_can_be_masked_instead_of_negative():
    _, mask = policy_targets(RAW, ["ones"] * 4, blank_as_negative=False)
    assert mask[3].tolist() == [0, 0, 0, 0] and mask[:3].min() == 1


def test_policy_per_task_from_params():
    policies = chexpert.task_policies(["Edema", "Cardiomegaly"], {"default": "ones", "Cardiomegaly": "multiclass"})
    assert policies == ["ones", "multiclass"]
    with pytest.raises(InputError, match="U-Wrong|not one of"):
        chexpert.task_policies(["Edema"], {"default": "U-Wrong"})
    with pytest.raises(InputError, match="unknown task"):
        chexpert.validate_tasks(["Edema", "Cardiomegally"])


def test_evaluation_targets_weight_out_uncertain():
    targets, weights = evaluation_targets(RAW[:, :1])
    assert targets[:, 0].tolist() == [1, 0, 0, 0]
    assert weights[:, 0].tolist() == [1, 1, 0, 1]


def test_groundtruth_expands_to_each_image_of_the_study(tiny_chexpert):
    frame = chexpert.read_test_groundtruth(tiny_chexpert / "CheXpert-v1.0-small" / "groundtruth.csv", tiny_chexpert)
    assert len(frame) == 4  # 2 studies x 2 views
    assert frame["path"].iloc[0] == "CheXpert-v1.0-small/test/patient00009/study1/view1_frontal.jpg"
    assert (frame.groupby("study")[list(OBSERVATIONS)].nunique() == 1).all().all()
    # patient 9: labels (9 + j) % 2 -> No Finding (j = 0) is 1
    assert frame.loc[frame["patient"] == "patient00009", "No Finding"].eq(1.0).all()


def test_groundtruth_study_without_images_is_named(tiny_chexpert):
    gt = tiny_chexpert / "CheXpert-v1.0-small" / "groundtruth.csv"
    with open(gt, "a", newline="") as f:
        csv.writer(f).writerow(["CheXpert-v1.0/test/patient00099/study1", *["0"] * len(OBSERVATIONS)])
    with pytest.raises(InputError, match="patient00099"):
        chexpert.read_test_groundtruth(gt, tiny_chexpert)


def test_study_level_takes_the_max_over_views():
    frame = pd.DataFrame({"study": ["a/s1", "a/s1", "b/s1"], "patient": ["a", "a", "b"], "Edema": [0.2, 0.7, 0.4]})
    out = chexpert.study_level(frame, ["Edema"])
    assert out["Edema"].tolist() == [0.7, 0.4] and out["patient"].tolist() == ["a", "b"]
