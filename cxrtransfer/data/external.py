"""Files from outside the pipeline on the CheXpert test set: other models' predictions, radiologists' reads.

Both come keyed by study in the layout of the public label release (rajpurkarlab/cheXpert-test-set-labels):
a `Study` column, `CheXpert-v1.0/test/patientNNNNN/studyN` (any dataset folder or none, as
`chexpert.TEST_STUDY_PATTERN` accepts), columns in any order.

- A prediction file (`example_models/predictions/standard/<name>_predictions.csv`): `Study` plus one
  probability column per task it predicts (the leaderboard's files carry the five competition tasks).
- A reader file (`radiologists/benchmark_radiologists/bc4.csv`): the `groundtruth.csv` layout, binary,
  read with `chexpert.read_test_labels`.

Each file must name exactly the study's test studies, each once; every failure is one InputError
naming the file, row and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .chexpert import DATASET_FOLDERS, OBSERVATIONS, TEST_STUDY_PATTERN, read_csv_cells, read_test_labels

STUDY_COLUMN = "Study"


def _study_keys(raw: pd.DataFrame, path: Path) -> pd.Series:
    """`patientNNNNN/studyN` of every row (the ensemble's study key); a bad or repeated key is an error."""
    parts = raw[STUDY_COLUMN].str.strip().str.extract(TEST_STUDY_PATTERN)
    bad = (parts["patient"].isna() | ~parts["dataset"].fillna("").isin(("",) + DATASET_FOLDERS)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"cannot parse {raw[STUDY_COLUMN].iloc[i]!r} (expected CheXpert-v1.0/test/patientNNNNN/studyN)",
                         path, row=i + 2, column=STUDY_COLUMN)
    studies = parts["patient"] + "/" + parts["study"]
    repeated = studies.duplicated().to_numpy()
    if repeated.any():
        i = int(np.flatnonzero(repeated)[0])
        raise InputError(f"study {studies.iloc[i]!r} is listed twice", path, row=i + 2, column=STUDY_COLUMN)
    return studies


def check_same_studies(studies: Sequence[str], expected: Sequence[str], path: str | Path) -> None:
    """The file's studies are exactly the test set's: the first missing or extra one is named."""
    have, want = set(studies), set(expected)
    missing = [s for s in expected if s not in have]
    if missing:
        raise InputError(f"{len(missing)} test study(ies) missing, e.g. {missing[0]!r}", path, column=STUDY_COLUMN)
    extra = [s for s in studies if s not in want]
    if extra:
        i = list(studies).index(extra[0])
        raise InputError(f"study {extra[0]!r} is not in the test set ({len(extra)} such)", path, row=i + 2,
                         column=STUDY_COLUMN)


def read_prediction_file(path: str | Path, tasks: Sequence[str], required: Sequence[str],
                         expected_studies: Sequence[str]) -> pd.DataFrame:
    """A prediction file checked: (study, the evaluated tasks it has), rows in `expected_studies` order.

    `tasks`: the study's evaluated tasks; `required`: those the file must carry (a missing one is an
    error); other evaluated tasks the file lacks are simply not returned (never filled in). A column
    that is neither `Study` nor a CheXpert observation is an error (a misspelt task).
    """
    path = Path(path)
    raw = read_csv_cells(path, "prediction file")
    if STUDY_COLUMN not in raw.columns:
        raise InputError(f"no '{STUDY_COLUMN}' column (columns: {list(raw.columns)})", path)
    unknown = [c for c in raw.columns if c != STUDY_COLUMN and c not in OBSERVATIONS]
    if unknown:
        raise InputError(f"column {unknown[0]!r} is not a CheXpert observation", path, column=unknown[0])
    missing = [t for t in required if t not in raw.columns]
    if missing:
        raise InputError(f"task {missing[0]!r} missing (the file has {[c for c in raw.columns if c != STUDY_COLUMN]})",
                         path, column=missing[0])
    if raw.empty:
        raise InputError("no prediction rows", path)
    has = [t for t in tasks if t in raw.columns]
    if not has:
        raise InputError(f"none of the evaluated tasks {list(tasks)}", path)
    studies = _study_keys(raw, path)
    values = pd.DataFrame({"study": studies})
    for task in has:
        cells = raw[task].str.strip()
        numbers = pd.to_numeric(cells, errors="coerce")
        bad = (numbers.isna() | ~np.isfinite(numbers) | (numbers < 0) | (numbers > 1)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"prediction {raw[task].iloc[i]!r} is not a probability in [0, 1]", path,
                             row=i + 2, column=task)
        values[task] = numbers.to_numpy(np.float64)
    check_same_studies(list(studies), expected_studies, path)
    return values.set_index("study").loc[list(expected_studies)].reset_index()


def read_reader_file(path: str | Path, tasks: Sequence[str], expected_studies: Sequence[str]) -> pd.DataFrame:
    """A reader's binary reads checked: (study, tasks) as 0/1, rows in `expected_studies` order."""
    reads = read_test_labels(path, tasks)
    check_same_studies(list(reads["study"]), expected_studies, path)
    return reads.set_index("study").loc[list(expected_studies), list(tasks)].reset_index()


def read_external_models(folder: str | Path, files: dict[str, str], tasks: Sequence[str], required: Sequence[str],
                         studies: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every named prediction file in `folder`: (models: model, family, tasks, file) and
    (predictions: model, study, every evaluated task, NaN where the model lacks the task)."""
    rows, frames = [], []
    for name, file in files.items():
        values = read_prediction_file(Path(folder) / file, tasks, required, studies)
        has = [t for t in tasks if t in values.columns]
        rows.append({"model": name, "family": "external", "tasks": ";".join(has), "file": str(Path(folder) / file)})
        frames.append(values.reindex(columns=["study", *tasks]).assign(model=name))
    models = pd.DataFrame(rows, columns=["model", "family", "tasks", "file"])
    columns = ["model", "study", *tasks]
    predictions = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    return models, predictions


def read_readers(folder: str | Path, files: dict[str, str], tasks: Sequence[str], studies: Sequence[str]
                 ) -> pd.DataFrame:
    """Every named reader file in `folder`: (reader, study, tasks) as 0/1, studies in the given order."""
    frames = [read_reader_file(Path(folder) / file, tasks, studies).assign(reader=name) for name, file in files.items()]
    columns = ["reader", "study", *tasks]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
