"""Prediction and reader files in the layouts of the public CheXpert test labels, and their refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrtransfer.data import external
from cxrtransfer.errors import InputError

STUDY_TASKS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion", "No Finding"]
FIVE = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
# Column orders of the real files (rajpurkarlab/cheXpert-test-set-labels): drnet_predictions.csv, and the
# order the issue quotes for another leaderboard file; bc4.csv puts Lung Lesion before Lung Opacity.
DRNET_ORDER = ["Study", "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
OTHER_ORDER = ["Study", "Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion"]
BC4_HEADER = ("Study,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Lesion,Lung Opacity,Edema,Consolidation,"
              "Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,Support Devices")
STUDIES = [f"patient{p}/study1" for p in range(64741, 64749)]


def probabilities(seed: int = 0) -> dict[str, dict[str, float]]:
    """study -> task -> probability, rounded as the files write them."""
    rng = np.random.default_rng(seed)
    return {s: {t: round(float(rng.random()), 4) for t in STUDY_TASKS} for s in STUDIES}


def write_predictions(path: Path, values: dict[str, dict[str, float]], columns: list[str], order=None) -> Path:
    studies = order or list(values)
    lines = [",".join(columns)]
    for s in studies:
        lines.append(",".join([f"CheXpert-v1.0/test/{s}"] + [str(values[s][t]) for t in columns[1:]]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_prediction_file_in_the_drnet_order_is_read_by_name(tmp_path):
    values = probabilities()
    path = write_predictions(tmp_path / "drnet_predictions.csv", values, DRNET_ORDER)
    frame = external.read_prediction_file(path, STUDY_TASKS, FIVE, STUDIES)
    assert list(frame["study"]) == STUDIES
    assert list(frame.columns) == ["study"] + FIVE          # five tasks: No Finding absent, not zero-filled
    for i, s in enumerate(STUDIES):
        for t in FIVE:
            assert frame[t].iloc[i] == values[s][t]


def test_shuffled_columns_and_rows_give_the_same_table(tmp_path):
    values = probabilities(1)
    a = external.read_prediction_file(write_predictions(tmp_path / "a.csv", values, DRNET_ORDER), STUDY_TASKS, FIVE,
                                      STUDIES)
    shuffled = [STUDIES[i] for i in (3, 0, 7, 5, 1, 6, 2, 4)]
    b = external.read_prediction_file(write_predictions(tmp_path / "b.csv", values, OTHER_ORDER, shuffled),
                                      STUDY_TASKS, FIVE, STUDIES)
    pd.testing.assert_frame_equal(a, b)


def test_a_six_task_file_is_read_on_all_six(tmp_path):
    values = probabilities(2)
    path = write_predictions(tmp_path / "six.csv", values, ["Study", "No Finding", *reversed(FIVE)])
    frame = external.read_prediction_file(path, STUDY_TASKS, STUDY_TASKS, STUDIES)
    assert list(frame.columns) == ["study"] + STUDY_TASKS
    assert frame["No Finding"].iloc[2] == values[STUDIES[2]]["No Finding"]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize("edit, fragment, row, column", [
    (lambda lines: lines[:4] + lines[5:], "1 test study(ies) missing, e.g. 'patient64744/study1'", None, "Study"),
    (lambda lines: lines + ["CheXpert-v1.0/test/patient65000/study1,0.1,0.2,0.3,0.4,0.5"],
     "study 'patient65000/study1' is not in the test set", 10, "Study"),
    (lambda lines: lines + [lines[3]], "study 'patient64743/study1' is listed twice", 10, "Study"),
    (lambda lines: [lines[0].replace(",Edema", ",Oedema")] + lines[1:], "'Oedema' is not a CheXpert observation",
     None, "Oedema"),
    (lambda lines: [lines[0].replace(",Edema", "")] + [",".join(l.split(",")[:4] + l.split(",")[5:]) for l in lines[1:]],
     "task 'Edema' missing", None, "Edema"),
    (lambda lines: lines[:2] + [lines[2].replace(lines[2].split(",")[3], "1.5")] + lines[3:],
     "prediction '1.5' is not a probability in [0, 1]", 3, "Consolidation"),
    (lambda lines: lines[:2] + [lines[2].replace(lines[2].split(",")[3], "high")] + lines[3:],
     "prediction 'high' is not a probability", 3, "Consolidation"),
    (lambda lines: lines[:6] + [lines[6].rsplit(",", 1)[0] + ","] + lines[7:],
     "prediction '' is not a probability", 7, "Pleural Effusion"),
    (lambda lines: lines[:2] + [lines[2].replace("CheXpert-v1.0/test/", "CheXpert-v1.0/train/")] + lines[3:],
     "cannot parse", 3, "Study"),
])
def test_each_bad_prediction_file_is_one_clear_error(tmp_path, edit, fragment, row, column):
    path = write_predictions(tmp_path / "p.csv", probabilities(), DRNET_ORDER)
    path.write_text("\n".join(edit(_lines(path))) + "\n")
    with pytest.raises(InputError) as caught:
        external.read_prediction_file(path, STUDY_TASKS, FIVE, STUDIES)
    message = str(caught.value)
    assert fragment in message and str(path) in message and "\n" not in message
    assert caught.value.row == row and caught.value.column == column


def write_reads(path: Path, reads: dict[str, dict[str, int]], order=None) -> Path:
    header = BC4_HEADER.split(",")
    lines = [BC4_HEADER]
    for s in order or list(reads):
        lines.append(",".join([f"CheXpert-v1.0/test/{s}"] + [str(reads[s].get(c, 0)) for c in header[1:]]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reader_file_in_the_bc4_layout(tmp_path):
    rng = np.random.default_rng(3)
    reads = {s: {t: int(rng.integers(0, 2)) for t in STUDY_TASKS + ["Lung Lesion", "Lung Opacity"]} for s in STUDIES}
    path = write_reads(tmp_path / "bc4.csv", reads, list(reversed(STUDIES)))
    frame = external.read_reader_file(path, STUDY_TASKS, STUDIES)
    assert list(frame["study"]) == STUDIES and list(frame.columns) == ["study"] + STUDY_TASKS
    for i, s in enumerate(STUDIES):
        assert [frame[t].iloc[i] for t in STUDY_TASKS] == [reads[s][t] for t in STUDY_TASKS]


def test_bad_reader_files_are_one_clear_error(tmp_path):
    reads = {s: {t: 1 for t in STUDY_TASKS} for s in STUDIES}
    missing = write_reads(tmp_path / "short.csv", reads, STUDIES[1:])
    with pytest.raises(InputError, match=r"1 test study\(ies\) missing, e.g. 'patient64741/study1'"):
        external.read_reader_file(missing, STUDY_TASKS, STUDIES)
    bad = write_reads(tmp_path / "bad.csv", reads)
    lines = _lines(bad)
    lines[2] = lines[2][:-1] + "2"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"row 3, column 'Support Devices'|label '2' is not 0 or 1"):
        external.read_reader_file(bad, STUDY_TASKS + ["Support Devices"], STUDIES)
