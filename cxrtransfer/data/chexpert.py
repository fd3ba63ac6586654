"""CheXpert as distributed: the CSV schema, row validation, uncertainty policies, test ground truth.

The label files of CheXpert-v1.0 and CheXpert-v1.0-small (train.csv, valid.csv) have the header
HEADER; a label cell is 1.0, 0.0, -1.0 (uncertain) or blank (not mentioned). `Path` is relative to
the folder that holds the dataset folder, e.g. CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg.
The test set's labels are binary and per study; files come in two layouts: a `Study` column (the
competition's groundtruth.csv) or a `Path` column per image (valid.csv's layout, as in CheXlocalize's
test_labels.csv), with or without the dataset folder in front.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError

OBSERVATIONS: tuple[str, ...] = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)
META_COLUMNS: tuple[str, ...] = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
HEADER: tuple[str, ...] = META_COLUMNS + OBSERVATIONS
COMPETITION_TASKS: tuple[str, ...] = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
# CheXtransfer's evaluation: the five competition tasks plus No Finding.
PAPER_TASKS: tuple[str, ...] = COMPETITION_TASKS + ("No Finding",)

UNCERTAIN = -1.0
# Uncertainty policies of the CheXpert paper (U-SelfTrained needs a trained model first: not here).
POLICIES: tuple[str, ...] = ("ignore", "zeros", "ones", "multiclass")
# U-MultiClass classes: a task's target is a class index over (negative, positive, uncertain).
MULTICLASS_CLASSES = 3

PATH_PATTERN = re.compile(
    r"^(?P<dataset>[^/]+)/(?P<split>train|valid|test)/(?P<patient>patient\d+)/(?P<study>study\d+)/"
    r"(?P<view>view\d+)_(?P<orientation>frontal|lateral)\.(?:jpg|jpeg|png)$"
)
# The test set's label files name the dataset folder of the full (CheXpert-v1.0) or the downsampled
# (CheXpert-v1.0-small) release, or none (CheXlocalize's test_labels.csv: test/patientNNNNN/...).
DATASET_FOLDERS: tuple[str, ...] = ("CheXpert-v1.0", "CheXpert-v1.0-small")
TEST_KEY_COLUMNS: tuple[str, ...] = ("Study", "Path")
_TEST_STUDY = r"^(?:(?P<dataset>[^/]+)/)?test/(?P<patient>patient\d+)/(?P<study>study\d+)"
TEST_STUDY_PATTERN = re.compile(_TEST_STUDY + r"/?$")
TEST_IMAGE_PATTERN = re.compile(
    _TEST_STUDY + r"/(?P<image>(?P<view>view\d+)_(?P<orientation>frontal|lateral)\.(?:jpg|jpeg|png))$")
_ALLOWED_LABELS = {1.0, 0.0, -1.0}

# The index table every later stage reads: one row per image.
INDEX_COLUMNS: tuple[str, ...] = ("path", "patient", "study", "view", "frontal", "ap_pa", "sex", "age", "source_split")


def _csv_row(i: int) -> int:
    """Line number in the CSV file of the i-th data row (the header is line 1)."""
    return int(i) + 2


def read_csv_cells(path: str | Path, what: str = "label file") -> pd.DataFrame:
    """Every cell of a CSV as a string (blanks stay ''), or InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found", path)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
        raise InputError(f"not a readable CSV: {err}", path) from None


def _label_values(raw: pd.DataFrame, path: Path) -> np.ndarray:
    """The observation columns as float32 (blank: NaN); the first cell that is not 1, 0, -1 or blank is an error."""
    labels = np.empty((len(raw), len(OBSERVATIONS)), dtype=np.float32)
    for j, name in enumerate(OBSERVATIONS):
        cells = raw[name].str.strip()
        values = pd.to_numeric(cells.where(cells != ""), errors="coerce")
        invalid = (cells != "") & ~values.isin(_ALLOWED_LABELS)
        if invalid.any():
            i = int(np.flatnonzero(invalid.to_numpy())[0])
            raise InputError(f"label {raw[name].iloc[i]!r} is not one of 1.0, 0.0, -1.0 or blank",
                             path, row=_csv_row(i), column=name)
        labels[:, j] = values.to_numpy(dtype=np.float32)
    return labels


def _check_views(raw: pd.DataFrame, path_orientation: pd.Series, path: Path) -> None:
    """Frontal/Lateral is Frontal or Lateral and agrees with the view in the file name."""
    orientation = raw["Frontal/Lateral"].str.strip().str.lower()
    bad_view = ~orientation.isin(["frontal", "lateral"])
    if bad_view.any():
        i = int(np.flatnonzero(bad_view.to_numpy())[0])
        raise InputError(f"view {raw['Frontal/Lateral'].iloc[i]!r} is not Frontal or Lateral",
                         path, row=_csv_row(i), column="Frontal/Lateral")
    mismatch = orientation != path_orientation
    if mismatch.any():
        i = int(np.flatnonzero(mismatch.to_numpy())[0])
        raise InputError(f"view {raw['Frontal/Lateral'].iloc[i]!r} disagrees with the file name {raw['Path'].iloc[i]!r}",
                         path, row=_csv_row(i), column="Frontal/Lateral")


def read_labels(path: str | Path) -> pd.DataFrame:
    """Read and validate a CheXpert train.csv / valid.csv into the index table plus raw label columns.

    Raw labels keep CheXpert's values: 1.0, 0.0, -1.0, NaN (blank). Raises InputError naming the
    file, row and column of the first bad cell.
    """
    path = Path(path)
    raw = read_csv_cells(path)
    missing = [c for c in HEADER if c not in raw.columns]
    if missing:
        unexpected = [c for c in raw.columns if c not in HEADER]
        hint = f" (found unexpected column(s) {unexpected})" if unexpected else ""
        raise InputError(f"missing column(s) {missing}{hint}", path, column=missing[0])
    if raw.empty:
        raise InputError("no data rows", path)

    parts = raw["Path"].str.extract(PATH_PATTERN)
    bad = parts["patient"].isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"cannot parse path {raw['Path'].iloc[i]!r} (expected <dataset>/<train|valid|test>/patientNNNNN/studyN/viewN_<frontal|lateral>.jpg)",
            path, row=_csv_row(i), column="Path")

    labels = _label_values(raw, path)
    _check_views(raw, parts["orientation"], path)

    age = pd.to_numeric(raw["Age"].str.strip().replace("", np.nan), errors="coerce")
    bad_age = age.isna() & (raw["Age"].str.strip() != "")
    if bad_age.any():
        i = int(np.flatnonzero(bad_age.to_numpy())[0])
        raise InputError(f"age {raw['Age'].iloc[i]!r} is not a number", path, row=_csv_row(i), column="Age")

    table = pd.DataFrame({
        "path": raw["Path"],
        "patient": parts["patient"],
        "study": parts["patient"] + "/" + parts["study"],
        "view": parts["view"],
        "frontal": (parts["orientation"] == "frontal"),
        "ap_pa": raw["AP/PA"].str.strip(),
        "sex": raw["Sex"].str.strip(),
        "age": age,
        "source_split": parts["split"],
    })
    label_frame = pd.DataFrame(labels, columns=list(OBSERVATIONS))
    return pd.concat([table, label_frame], axis=1)


def _test_layout(raw: pd.DataFrame, path: Path) -> str:
    """The key column of a test label file: `Study` (one row per study) or `Path` (one row per image)."""
    keys = [c for c in TEST_KEY_COLUMNS if c in raw.columns]
    if len(keys) != 1:
        found = f"both {list(TEST_KEY_COLUMNS)}" if keys else f"neither (columns: {list(raw.columns)})"
        raise InputError(f"a test label file needs a 'Study' column (one row per study) or a 'Path' column "
                         f"(one row per image, the valid.csv layout), found {found}", path)
    return keys[0]


def _test_entries(raw: pd.DataFrame, path: Path, key: str) -> pd.DataFrame:
    """Patient, study and (in the Path layout) image file name of each row, any dataset folder accepted."""
    pattern = TEST_STUDY_PATTERN if key == "Study" else TEST_IMAGE_PATTERN
    cells = raw[key].str.strip()
    parts = cells.str.extract(pattern)
    bad = parts["patient"].isna() | ~parts["dataset"].fillna("").isin(("",) + DATASET_FOLDERS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        expected = "test/patientNNNNN/studyN" + ("" if key == "Study" else "/viewN_<frontal|lateral>.jpg")
        raise InputError(f"cannot parse {raw[key].iloc[i]!r} (expected {expected}, optionally under "
                         f"{' or '.join(DATASET_FOLDERS)}/)", path, row=_csv_row(i), column=key)
    entries = pd.DataFrame({"patient": parts["patient"], "study": parts["patient"] + "/" + parts["study"]})
    entries["image"] = parts["image"] if key == "Path" else ""
    named = entries["study"] if key == "Study" else entries["study"] + "/" + entries["image"]
    repeated = named.duplicated()
    if repeated.any():
        i = int(np.flatnonzero(repeated.to_numpy())[0])
        raise InputError(f"{key.lower()} {raw[key].iloc[i]!r} is listed twice", path, row=_csv_row(i), column=key)
    return entries


def _test_label_values(raw: pd.DataFrame, path: Path, studies: pd.Series, tasks: Sequence[str]) -> pd.DataFrame:
    """The 14 observations as 0/1 floats; NaN for an observation the file lacks or leaves blank (never a task)."""
    missing = [t for t in tasks if t not in raw.columns]
    if missing:
        raise InputError(f"evaluated task(s) {missing} (data.tasks) have no column in this file; "
                         f"its columns: {list(raw.columns)}", path, column=missing[0])
    labels = pd.DataFrame(np.nan, index=raw.index, columns=list(OBSERVATIONS), dtype=np.float32)
    for name in OBSERVATIONS:
        if name not in raw.columns:
            continue
        cells = raw[name].str.strip()
        values = pd.to_numeric(cells.where(cells != ""), errors="coerce")
        invalid = (cells != "") & ~values.isin((0.0, 1.0))
        if name in tasks:
            invalid |= cells == ""
        if invalid.any():
            i = int(np.flatnonzero(invalid.to_numpy())[0])
            raise InputError(f"study {studies.iloc[i]}: label {raw[name].iloc[i]!r} is not 0 or 1",
                             path, row=_csv_row(i), column=name)
        labels[name] = values.to_numpy(dtype=np.float32)
    return labels


def _check_views_agree(rows: pd.DataFrame, path: Path) -> None:
    """Every image row of a study carries the same labels (the test set is labelled per study)."""
    for name in OBSERVATIONS:
        per_study = rows[name].fillna(-1.0).groupby(rows["study"], sort=False).nunique()
        if (per_study > 1).any():
            study = per_study.index[per_study.to_numpy() > 1][0]
            positions = np.flatnonzero((rows["study"] == study).to_numpy())
            says = ", ".join(f"row {_csv_row(i)}: {rows[name].iloc[i]:g}" for i in positions)
            raise InputError(f"the views of study {study} disagree ({says})",
                             path, row=_csv_row(positions[0]), column=name)


def _read_test_rows(path: Path, tasks: Sequence[str]) -> tuple[pd.DataFrame, str]:
    """One row per file row: patient, study, image file name ('' in the Study layout), the 14 labels."""
    raw = read_csv_cells(path, "test label file")
    if raw.empty:
        raise InputError("no data rows", path)
    key = _test_layout(raw, path)
    entries = _test_entries(raw, path, key)
    rows = pd.concat([entries, _test_label_values(raw, path, entries["study"], tasks)], axis=1)
    if key == "Path":
        _check_views_agree(rows, path)
    return rows, key


def read_test_labels(path: str | Path, tasks: Sequence[str] = OBSERVATIONS) -> pd.DataFrame:
    """The test set's labels, one row per study (in file order): patient, study and the 14 observations.

    Reads either layout: `Study` (the competition's groundtruth.csv) or `Path` per image (the valid.csv
    layout of CheXlocalize's test_labels.csv; all views of a study must agree). Observations the file
    lacks are NaN; each of `tasks` must be present and 0 or 1 in every row.
    """
    rows, _ = _read_test_rows(Path(path), tasks)
    return rows.drop_duplicates("study").drop(columns="image").reset_index(drop=True)


def _study_images(rows: pd.DataFrame, key: str, path: Path, images_root: Path, dataset: str) -> list[list[str]]:
    """File names of each study's images: those the file lists (Path layout), or those on disk (Study layout)."""
    images = []
    for study, group in rows.groupby("study", sort=False):
        folder = images_root / dataset / "test" / study
        if key == "Path":
            names = sorted(group["image"])
            absent = [n for n in names if not (folder / n).is_file()]
            if absent:
                line = _csv_row(group.index[list(group["image"]).index(absent[0])])
                raise InputError(f"image of study {study} not found: {folder / absent[0]}",
                                 path, row=line, column="Path")
        else:
            names = sorted(f.name for f in folder.glob("view*_*.jpg"))
            if not names:
                raise InputError(f"no images found for study {study} in {folder}",
                                 path, row=_csv_row(group.index[0]), column="Study")
        images.append(names)
    return images


def read_test_groundtruth(path: str | Path, images_root: str | Path, tasks: Sequence[str] = OBSERVATIONS,
                          dataset: str | None = None) -> pd.DataFrame:
    """The test set in the index table's layout: one row per image, its study's labels.

    `path` is a test label file in either layout (see read_test_labels). Its entries may name
    CheXpert-v1.0/, CheXpert-v1.0-small/ or no dataset folder: images are looked up under
    `images_root/dataset/test/` (`dataset` defaults to the folder that holds `path`).
    """
    path, images_root = Path(path), Path(images_root)
    dataset = dataset or path.parent.name
    rows, key = _read_test_rows(path, tasks)
    studies = rows.drop_duplicates("study").reset_index(drop=True)
    records = []
    for (_, study), names in zip(studies.iterrows(), _study_images(rows, key, path, images_root, dataset)):
        folder = f"{dataset}/test/{study['study']}"
        for name in names:
            image = TEST_IMAGE_PATTERN.match(f"test/{study['study']}/{name}")
            if not image:
                raise InputError(f"cannot parse image file name {name!r}", images_root / folder)
            records.append({
                "path": f"{folder}/{name}", "patient": study["patient"], "study": study["study"],
                "view": image["view"], "frontal": image["orientation"] == "frontal", "ap_pa": "", "sex": "",
                "age": np.nan, "source_split": "test", **{o: study[o] for o in OBSERVATIONS},
            })
    frame = pd.DataFrame.from_records(records, columns=list(INDEX_COLUMNS) + list(OBSERVATIONS))
    frame[list(OBSERVATIONS)] = frame[list(OBSERVATIONS)].astype(np.float32)
    return frame


def validate_tasks(tasks: Sequence[str], source: str = "params") -> list[str]:
    """Check that every task is a CheXpert observation (and listed once)."""
    unknown = [t for t in tasks if t not in OBSERVATIONS]
    if unknown:
        raise InputError(f"unknown task(s) {unknown}; choose from {list(OBSERVATIONS)}", source)
    if len(set(tasks)) != len(tasks) or not tasks:
        raise InputError(f"tasks must be a non-empty list without repeats, got {list(tasks)}", source)
    return list(tasks)


def task_policies(tasks: Sequence[str], uncertainty: Mapping[str, str], source: str = "params") -> list[str]:
    """The policy of each task: `uncertainty[task]`, else `uncertainty['default']`."""
    policies = []
    for task in tasks:
        policy = uncertainty.get(task, uncertainty.get("default"))
        if policy not in POLICIES:
            raise InputError(f"uncertainty policy {policy!r} for {task!r} is not one of {list(POLICIES)}", source)
        policies.append(policy)
    return policies


def policy_targets(raw: np.ndarray, policies: Sequence[str], blank_as_negative: bool = True
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Training targets and loss mask from raw CheXpert labels (N x tasks), one policy per task.

    - ignore: uncertain cells are masked out of the loss (target 0, mask 0)
    - zeros / ones: uncertain becomes 0 / 1
    - multiclass: the target is a class index, 0 negative, 1 positive, 2 uncertain
    Blank cells are negatives when `blank_as_negative`, else masked out.
    """
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 2 or raw.shape[1] != len(policies):
        raise ValueError(f"labels of shape {raw.shape} do not match {len(policies)} policies")
    blank = np.isnan(raw)
    uncertain = raw == UNCERTAIN
    targets = np.where(blank | uncertain, 0.0, raw).astype(np.float32)
    mask = np.ones_like(targets)
    if not blank_as_negative:
        mask[blank] = 0.0
    for j, policy in enumerate(policies):
        u = uncertain[:, j]
        if policy == "ignore":
            mask[u, j] = 0.0
        elif policy == "ones":
            targets[u, j] = 1.0
        elif policy == "zeros":
            targets[u, j] = 0.0
        elif policy == "multiclass":
            targets[u, j] = 2.0
        else:
            raise ValueError(f"unknown policy {policy!r}")
    return targets, mask


def evaluation_targets(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Binary targets and weights for AUROC: uncertain cells carry no weight, blanks are negatives.

    The official valid and test labels are binary already; this matters for splits cut from train.csv.
    """
    raw = np.asarray(raw, dtype=np.float32)
    weights = (raw != UNCERTAIN).astype(np.float64)
    targets = np.where(raw == 1.0, 1.0, 0.0)
    return targets, weights


def study_level(frame: pd.DataFrame, value_columns: Sequence[str], how: str = "max") -> pd.DataFrame:
    """Collapse image rows to study rows: predictions by max over views (CheXpert reference scoring)."""
    grouped = frame.groupby("study", sort=True)
    out = grouped[list(value_columns)].agg(how)
    out.insert(0, "patient", grouped["patient"].first())
    return out.reset_index()
