"""CheXpert as distributed: the CSV schema, row validation, uncertainty policies, test ground truth.

The label files of CheXpert-v1.0 and CheXpert-v1.0-small (train.csv, valid.csv) have the header
HEADER; a label cell is 1.0, 0.0, -1.0 (uncertain) or blank (not mentioned). `Path` is relative to
the folder that holds the dataset folder, e.g. CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg.
The test set's labels come per study (groundtruth.csv: a `Study` column, then binary labels).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError

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
STUDY_PATTERN = re.compile(r"^(?P<dataset>[^/]+)/(?P<split>train|valid|test)/(?P<patient>patient\d+)/(?P<study>study\d+)/?$")
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

    orientation = raw["Frontal/Lateral"].str.strip().str.lower()
    bad_view = ~orientation.isin(["frontal", "lateral"])
    if bad_view.any():
        i = int(np.flatnonzero(bad_view.to_numpy())[0])
        raise InputError(f"view {raw['Frontal/Lateral'].iloc[i]!r} is not Frontal or Lateral",
                         path, row=_csv_row(i), column="Frontal/Lateral")
    mismatch = orientation != parts["orientation"]
    if mismatch.any():
        i = int(np.flatnonzero(mismatch.to_numpy())[0])
        raise InputError(f"view {raw['Frontal/Lateral'].iloc[i]!r} disagrees with the file name {raw['Path'].iloc[i]!r}",
                         path, row=_csv_row(i), column="Frontal/Lateral")

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


def read_test_groundtruth(path: str | Path, images_root: str | Path) -> pd.DataFrame:
    """Read a study-level ground truth CSV and expand it to one row per image of each study.

    `Study` is like CheXpert-v1.0/test/patient64741/study1; its images are found on disk under
    `images_root` (the folder holding the dataset folder), in the dataset folder of that file's
    location (the study's first path component is replaced, so CheXpert-v1.0-small works too).
    """
    path = Path(path)
    images_root = Path(images_root)
    raw = read_csv_cells(path, "ground truth file")
    missing = [c for c in ("Study",) + OBSERVATIONS if c not in raw.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", path, column=missing[0])
    dataset_dir = path.parent.name  # the dataset folder this file sits in
    rows = []
    for i, record in raw.iterrows():
        match = STUDY_PATTERN.match(record["Study"].strip())
        if not match:
            raise InputError(f"cannot parse study {record['Study']!r} (expected <dataset>/test/patientNNNNN/studyN)",
                             path, row=_csv_row(i), column="Study")
        labels = []
        for name in OBSERVATIONS:
            cell = record[name].strip()
            try:
                value = float(cell)
            except ValueError:
                value = None
            if value not in (0.0, 1.0):
                raise InputError(f"label {record[name]!r} is not 0 or 1", path, row=_csv_row(i), column=name)
            labels.append(value)
        rel_study = f"{dataset_dir}/{match['split']}/{match['patient']}/{match['study']}"
        views = sorted((images_root / rel_study).glob("view*_*.jpg"))
        if not views:
            raise InputError(f"no images found for study {record['Study']!r} in {images_root / rel_study}",
                             path, row=_csv_row(i), column="Study")
        for view_file in views:
            rel = f"{rel_study}/{view_file.name}"
            m = PATH_PATTERN.match(rel)
            if not m:
                raise InputError(f"cannot parse image file name {view_file.name!r}", images_root / rel_study)
            rows.append({
                "path": rel, "patient": m["patient"], "study": f"{m['patient']}/{m['study']}",
                "view": m["view"], "frontal": m["orientation"] == "frontal", "ap_pa": "", "sex": "",
                "age": np.nan, "source_split": m["split"], **dict(zip(OBSERVATIONS, labels)),
            })
    if not rows:
        raise InputError("no studies", path)
    frame = pd.DataFrame(rows)
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
