"""Patient-level splits: no patient's images ever appear in two splits."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import InputError

SPLITS: tuple[str, ...] = ("train", "valid", "test")
SPLIT_COLUMNS: tuple[str, ...] = ("path", "patient", "study", "split")


def official_split(index: pd.DataFrame) -> pd.Series:
    """The dataset's own split: train.csv -> train, valid.csv -> valid, the test ground truth -> test."""
    return index["source_split"].astype(str)


def fraction_split(index: pd.DataFrame, fractions: Mapping[str, float], seed: int) -> pd.Series:
    """Assign whole patients to splits at random (seeded) so each split holds about its fraction of patients."""
    missing = [s for s in SPLITS if s not in fractions]
    if missing:
        raise InputError(f"split fractions need keys {list(SPLITS)}; missing {missing}", "params")
    weights = np.array([float(fractions[s]) for s in SPLITS])
    if (weights < 0).any() or not np.isclose(weights.sum(), 1.0):
        raise InputError(f"split fractions must be non-negative and sum to 1, got {dict(fractions)}", "params")
    patients = np.sort(index["patient"].unique())
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(patients))
    # Cumulative boundaries over the shuffled patients: exact counts, no per-patient coin flips.
    bounds = np.round(np.cumsum(weights) * len(patients)).astype(int)
    labels = np.empty(len(patients), dtype=object)
    start = 0
    for name, stop in zip(SPLITS, bounds):
        labels[order[start:stop]] = name
        start = stop
    assignment = pd.Series(labels, index=patients)
    return index["patient"].map(assignment).astype(str)


def make_split(index: pd.DataFrame, method: str, fractions: Mapping[str, float] | None = None,
               seed: int = 0) -> pd.DataFrame:
    """The split table (path, patient, study, split), one row per index row, checked for leakage."""
    if method == "official":
        split = official_split(index)
    elif method == "fractions":
        if fractions is None:
            raise InputError("split.method 'fractions' needs split.fractions", "params")
        split = fraction_split(index, fractions, seed)
    else:
        raise InputError(f"split.method must be 'official' or 'fractions', got {method!r}", "params")
    table = pd.DataFrame({"path": index["path"], "patient": index["patient"], "study": index["study"],
                          "split": split.to_numpy()})
    check_split(table)
    return table


def check_split(table: pd.DataFrame, source: str = "split") -> None:
    """Raise InputError if a split is empty or a patient appears in two splits."""
    unknown = sorted(set(table["split"]) - set(SPLITS))
    if unknown:
        raise InputError(f"unknown split name(s) {unknown}", source)
    for name in SPLITS:
        if not (table["split"] == name).any():
            raise InputError(f"split '{name}' is empty", source)
    per_patient = table.groupby("patient")["split"].nunique()
    leaked = per_patient[per_patient > 1]
    if len(leaked):
        patient = leaked.index[0]
        where = sorted(table.loc[table["patient"] == patient, "split"].unique())
        raise InputError(f"patient {patient} appears in splits {where} ({len(leaked)} patient(s) leak)", source)


def split_summary(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Images, studies and patients per split."""
    return {name: {"images": int((part := table[table["split"] == name]).shape[0]),
                   "studies": int(part["study"].nunique()),
                   "patients": int(part["patient"].nunique())}
            for name in SPLITS}


def read_split(path: Path, index: pd.DataFrame) -> pd.Series:
    """The split name of every cache row; the split table must list the cache's images in order."""
    if not Path(path).is_file():
        raise InputError("split table not found: run the split stage first", path)
    table = pd.read_csv(path)
    if len(table) != len(index) or not (table["path"].to_numpy() == index["path"].to_numpy()).all():
        raise InputError("split table does not match the cache index (rerun the split stage)", path)
    return table["split"]
