"""Real chest X-ray label files that ship with torchxrayvision (the `test` extra), images not included.

torchxrayvision carries the real CheXpert-v1.0-small train.csv as data/chexpert_train.csv.gz and NIH
ChestX-ray14's Data_Entry_2017_v2020.csv.gz. Finding them needs only the package's location, not an import:
importing torchxrayvision loads torch and its models.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from . import chexpert
from .errors import InputError

PACKAGE = "torchxrayvision"
CHEXPERT_TRAIN_FILE = "chexpert_train.csv.gz"


def packaged_data_dir() -> Path | None:
    """torchxrayvision's data folder, or None when the package is not installed (nothing imported)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "data"
        if folder.is_dir():
            return folder
    return None


def real_chexpert_labels_path() -> Path | None:
    """The packaged real CheXpert-v1.0-small train.csv (gzip), or None when it is not available."""
    folder = packaged_data_dir()
    if folder is None:
        return None
    path = folder / CHEXPERT_TRAIN_FILE
    return path if path.is_file() else None


def read_real_chexpert(path: str | Path | None = None) -> pd.DataFrame:
    """Read the real CheXpert train.csv(.gz) with `chexpert.read_labels` (pandas decompresses .gz by name).

    Without `path`, the copy packaged with torchxrayvision.
    """
    if path is None:
        path = real_chexpert_labels_path()
        if path is None:
            raise InputError(f"{PACKAGE} is not installed (pip install -e '.[test]'), so the real CheXpert "
                             f"labels ({CHEXPERT_TRAIN_FILE}) are not available")
    return chexpert.read_labels(path)


NIH_LABELS_FILE = "Data_Entry_2017_v2020.csv.gz"
NIH_COLUMNS: tuple[str, ...] = ("Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
                                "Patient Gender", "View Position")
NIH_FINDINGS: tuple[str, ...] = (
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema", "Fibrosis", "Hernia",
    "Infiltration", "Mass", "Nodule", "Pleural_Thickening", "Pneumonia", "Pneumothorax",
)
# NIH findings that name the same thing as a CheXpert observation. The rest (Emphysema, Fibrosis, Hernia,
# Infiltration, Mass, Nodule, Pleural_Thickening) have no one-to-one CheXpert counterpart and are dropped;
# CheXpert observations without a source here stay blank (not assessed).
NIH_TO_CHEXPERT: dict[str, str] = {
    "No Finding": "No Finding", "Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly",
    "Consolidation": "Consolidation", "Edema": "Edema", "Effusion": "Pleural Effusion",
    "Pneumonia": "Pneumonia", "Pneumothorax": "Pneumothorax",
}
_NIH_SEX = {"M": "Male", "F": "Female"}


def real_nih_labels_path() -> Path | None:
    """The packaged NIH ChestX-ray14 Data_Entry_2017_v2020.csv (gzip), or None when not available."""
    folder = packaged_data_dir()
    path = None if folder is None else folder / NIH_LABELS_FILE
    return path if path is not None and path.is_file() else None


def read_nih_labels(path: str | Path, image_folder: str = "images") -> pd.DataFrame:
    """NIH ChestX-ray14's Data_Entry_2017 CSV as the CheXpert index table plus the 14 observation columns.

    Mapped observations (NIH_TO_CHEXPERT) are 1.0 / 0.0 (NIH labels are binary), the others blank.
    Every image is its own study (patient/followupN) and frontal; `path` is `image_folder`/<Image Index>.
    NIH's official train/test lists are not in the CSV: source_split is 'train' for all rows.
    """
    path = Path(path)
    raw = chexpert.read_csv_cells(path)
    missing = [c for c in NIH_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", path, column=missing[0])
    if raw.empty:
        raise InputError("no data rows", path)

    findings = raw["Finding Labels"].str.strip().str.split("|")
    known = set(NIH_FINDINGS) | {"No Finding"}
    bad = findings.map(lambda names: not set(names) <= known)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"finding(s) {sorted(set(findings.iloc[i]) - known)} are not NIH ChestX-ray14 labels",
                         path, row=chexpert._csv_row(i), column="Finding Labels")
    numbers = {}
    for column in ("Patient ID", "Follow-up #", "Patient Age"):
        cells = raw[column].str.strip()
        bad = ~cells.str.fullmatch(r"\d+")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{raw[column].iloc[i]!r} is not a whole number", path, row=chexpert._csv_row(i),
                             column=column)
        numbers[column] = cells.astype(np.int64)

    patient = numbers["Patient ID"].map("patient{:05d}".format)
    table = pd.DataFrame({
        "path": image_folder + "/" + raw["Image Index"].str.strip(),
        "patient": patient,
        "study": patient + "/followup" + numbers["Follow-up #"].astype(str),
        "view": "view1",
        "frontal": True,
        "ap_pa": raw["View Position"].str.strip(),
        "sex": raw["Patient Gender"].str.strip().map(_NIH_SEX).fillna("Unknown"),
        "age": numbers["Patient Age"].astype(np.float64),
        "source_split": "train",
    })
    labels = pd.DataFrame(np.nan, index=raw.index, columns=list(chexpert.OBSERVATIONS), dtype=np.float32)
    for nih_name, observation in NIH_TO_CHEXPERT.items():
        labels[observation] = findings.map(lambda names, n=nih_name: n in names).astype(np.float32)
    return pd.concat([table, labels], axis=1)
