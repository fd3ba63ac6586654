"""The study's inputs: model folders, test labels and ensembled predictions, checked.

Scoring follows the CheXpert reference code (predict/predict.py of stanfordmlgroup's chexpert-model): per
checkpoint, the max over a study's views of the logits (U-MultiClass: the element-wise max of the
negative and positive logits, then the softmax over the two), then the probability, then the mean over
checkpoints. A binary task's max of sigmoid probabilities equals the sigmoid of its max logit, so its
probability column suffices; a U-MultiClass task needs its logit columns (cxrtransfer.layout.logit_columns;
files without them fall back to the max of probabilities). The study's labels come from the index;
uncertain cells (-1) carry no weight, blanks are negatives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

from ..data.chexpert import evaluation_targets, study_level
from ..errors import InputError
from ..layout import MODEL_FILE, logit_columns, predictions_file

PREDICTIONS_FILE = predictions_file("test")
MODEL_KEYS: tuple[str, ...] = ("arch", "init", "family", "truncate", "params")
MODEL_COLUMNS: tuple[str, ...] = ("model",) + MODEL_KEYS + ("checkpoints",)


def read_model_description(folder: Path) -> dict[str, Any]:
    """model.json of a model folder: arch, init, family, truncate, params (checked)."""
    path = folder / MODEL_FILE
    if not path.is_file():
        raise InputError(f"{MODEL_FILE} missing in the model folder", folder)
    try:
        description = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON: {err}", path) from None
    missing = [k for k in MODEL_KEYS if k not in description]
    if missing:
        raise InputError(f"missing key(s) {missing}", path)
    for key in ("truncate", "params"):
        value = description[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"'{key}' must be a non-negative integer, got {value!r}", path)
    return {k: description[k] for k in MODEL_KEYS}


def read_predictions(folder: Path, tasks: Sequence[str]) -> pd.DataFrame:
    """test_predictions.csv: checkpoint, path, patient, study and one probability column per task."""
    path = folder / PREDICTIONS_FILE
    if not path.is_file():
        raise InputError(f"{PREDICTIONS_FILE} missing in the model folder", folder)
    frame = pd.read_csv(path, dtype={"path": str, "patient": str, "study": str})
    missing = [c for c in ("checkpoint", "path", "patient", "study", *tasks) if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", path, column=missing[0])
    if frame.empty:
        raise InputError("no prediction rows", path)
    check_probabilities(frame, tasks, path, first_row=2)
    logits = present_logit_columns(frame, tasks, path)
    for column in logits:
        bad = pd.to_numeric(frame[column], errors="coerce").isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"logit {frame[column].iloc[i]!r} is not a number", path, row=i + 2, column=column)
    checkpoint = pd.to_numeric(frame["checkpoint"], errors="coerce")
    bad = (checkpoint.isna() | (checkpoint % 1 != 0)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"checkpoint {frame['checkpoint'].iloc[i]!r} is not an integer", path, row=i + 2,
                         column="checkpoint")
    return frame[["checkpoint", "path", "patient", "study", *tasks, *logits]]


def present_logit_columns(frame: pd.DataFrame, tasks: Sequence[str], source: str | Path | None = None) -> list[str]:
    """The U-MultiClass logit columns the frame has (both of a task's, or an InputError naming the one missing)."""
    present = []
    for task in tasks:
        pair = logit_columns(task)
        found = [c for c in pair if c in frame.columns]
        if len(found) == 1:
            missing = [c for c in pair if c not in found][0]
            raise InputError(f"has {found[0]!r} but not {missing!r}", source, column=missing)
        present += found
    return present


def reference_study_scores(rows: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """Study probabilities in the CheXpert reference order (module docstring): rows hold checkpoint, study,
    one probability column per task and, for U-MultiClass tasks, their logit columns. Returns one row per
    study (sorted), one column per task."""
    grouped = rows.groupby(["checkpoint", "study"], sort=True)
    per_checkpoint = {}
    for task in tasks:
        negative, positive = logit_columns(task)
        if positive in rows.columns:
            top = grouped[[negative, positive]].max()
            per_checkpoint[task] = expit(top[positive] - top[negative])
        else:
            per_checkpoint[task] = grouped[task].max()
    return pd.DataFrame(per_checkpoint).groupby(level="study", sort=True).mean()


def check_probabilities(frame: pd.DataFrame, tasks: Sequence[str], path: str | Path, first_row: int = 2) -> None:
    """Every prediction cell a number in [0, 1]; the first bad cell named by file row and column."""
    for task in tasks:
        values = pd.to_numeric(frame[task], errors="coerce")
        bad = (values.isna() | (values < 0) | (values > 1)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"prediction {frame[task].iloc[i]!r} is not a probability in [0, 1]",
                             path, row=i + first_row, column=task)


def read_test_split(split_path: str | Path) -> pd.DataFrame:
    """The test rows of the split table (path, patient, study)."""
    split_path = Path(split_path)
    if not split_path.is_file():
        raise InputError("split table not found", split_path)
    table = pd.read_csv(split_path, dtype=str)
    missing = [c for c in ("path", "patient", "study", "split") if c not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", split_path, column=missing[0])
    test = table[table["split"] == "test"][["path", "patient", "study"]].reset_index(drop=True)
    if test.empty:
        raise InputError("no test rows", split_path, column="split")
    return test


def study_labels(index_path: str | Path, test: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """Study-level raw labels (study, patient, tasks) of the test images, from the index.

    Every view of a study must carry the same labels (true of CheXpert, whose labels come from the
    study's report); a disagreement is an InputError rather than a silent choice.
    """
    index_path = Path(index_path)
    if not index_path.is_file():
        raise InputError("index table not found", index_path)
    index = pd.read_csv(index_path, dtype={"path": str, "patient": str, "study": str})
    missing = [c for c in ("path", "study", *tasks) if c not in index.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", index_path, column=missing[0])
    if index["path"].duplicated().any():
        i = int(np.flatnonzero(index["path"].duplicated().to_numpy())[0])
        raise InputError(f"image {index['path'].iloc[i]!r} listed twice", index_path, row=i + 2, column="path")
    absent = ~test["path"].isin(index["path"])
    if absent.any():
        raise InputError(f"test image {test['path'][absent].iloc[0]!r} is not in the index", index_path, column="path")
    rows = index.set_index("path").loc[test["path"]]
    frame = test[["path", "patient", "study"]].copy()
    for task in tasks:
        frame[task] = rows[task].to_numpy(dtype=np.float64)
    filled = frame[list(tasks)].fillna(-2.0)  # blanks compare equal to each other
    conflicting = filled.groupby(frame["study"]).nunique() > 1
    if conflicting.to_numpy().any():
        study = conflicting.index[np.argmax(conflicting.any(axis=1).to_numpy())]
        column = conflicting.columns[np.argmax(conflicting.loc[study].to_numpy())]
        raise InputError(f"views of study {study!r} disagree on the label", index_path, column=column)
    return study_level(frame, list(tasks), how="first")


def study_predictions(predictions: pd.DataFrame, test: pd.DataFrame, tasks: Sequence[str],
                      source: str | Path) -> tuple[pd.DataFrame, int]:
    """One model's ensemble in the reference order: per checkpoint the max over a study's views (of the
    logits), then probabilities, then the mean over its kept checkpoints.

    Each checkpoint must predict exactly the test images (no image missing, none extra, none twice,
    with the split's study). Returns (study, patient, tasks) sorted by study, and the checkpoint count.
    """
    expected = pd.Series(test["study"].to_numpy(), index=test["path"].to_numpy())
    duplicated = predictions.duplicated(["checkpoint", "path"])
    if duplicated.any():
        i = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise InputError(f"image {predictions['path'].iloc[i]!r} predicted twice by one checkpoint",
                         source, row=i + 2, column="path")
    known = predictions["path"].map(expected)
    extra = known.isna().to_numpy()
    if extra.any():
        i = int(np.flatnonzero(extra)[0])
        raise InputError(f"image {predictions['path'].iloc[i]!r} (study {predictions['study'].iloc[i]!r}) "
                         f"is not in the test split", source, row=i + 2, column="path")
    moved = (known != predictions["study"]).to_numpy()
    if moved.any():
        i = int(np.flatnonzero(moved)[0])
        raise InputError(f"study {predictions['study'].iloc[i]!r} disagrees with the test split's {known.iloc[i]!r}",
                         source, row=i + 2, column="study")
    per_checkpoint = predictions.groupby("checkpoint")["path"].nunique()
    short = per_checkpoint[per_checkpoint < len(expected)]
    if len(short):
        step = short.index[0]
        seen = set(predictions.loc[predictions["checkpoint"] == step, "path"])
        missing = [p for p in expected.index if p not in seen]
        studies = sorted({expected[p] for p in missing})
        raise InputError(f"checkpoint {step}: {len(missing)} test image(s) of {len(studies)} study(ies) missing, "
                         f"e.g. {missing[0]!r}", source, column="path")
    per_study = reference_study_scores(predictions, tasks)
    patients = test.groupby("study", sort=True)["patient"].first()
    out = per_study.reset_index()
    out.insert(1, "patient", out["study"].map(patients).to_numpy())
    return out[["study", "patient", *tasks]], int(len(per_checkpoint))


def check_both_classes(targets: np.ndarray, weights: np.ndarray, tasks: Sequence[str], source: str | Path) -> None:
    """InputError if a task has only one class (with weight) in the whole test set: AUROC undefined."""
    for j, task in enumerate(tasks):
        positive = float(np.sum(weights[:, j] * targets[:, j]))
        negative = float(np.sum(weights[:, j] * (1.0 - targets[:, j])))
        if positive == 0 or negative == 0:
            kind = "positive" if positive == 0 else "negative"
            raise InputError(f"the test set has no {kind} study for {task!r}: AUROC undefined", source, column=task)


def label_arrays(labels: pd.DataFrame, tasks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Binary targets and weights (study x task) from raw study labels."""
    return evaluation_targets(labels[list(tasks)].to_numpy(np.float32))


def read_ensemble(folder: str | Path, tasks: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The ensemble stage's folder: (models table, study labels, scores (models, studies, tasks)).

    Every model must score exactly the labelled studies; studies are put in the labels' order.
    """
    folder = Path(folder)
    paths = {name: folder / f"{name}.csv" for name in ("models", "test_labels", "test_predictions")}
    for path in paths.values():
        if not path.is_file():
            raise InputError("not found (run the ensemble stage)", path)
    models = pd.read_csv(paths["models"], dtype={"model": str, "arch": str, "init": str, "family": str})
    labels = pd.read_csv(paths["test_labels"], dtype={"study": str, "patient": str})
    predictions = pd.read_csv(paths["test_predictions"], dtype={"model": str, "study": str})
    for name, frame, columns in (("models", models, MODEL_COLUMNS), ("test_labels", labels, ("study", "patient", *tasks)),
                                 ("test_predictions", predictions, ("model", "study", *tasks))):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}", paths[name], column=missing[0])
    if models.empty:
        raise InputError("no models", paths["models"])
    check_probabilities(predictions, tasks, paths["test_predictions"])
    if labels["patient"].isna().any():  # the bootstrap's resampling unit: every study needs its patient
        i = int(np.flatnonzero(labels["patient"].isna().to_numpy())[0])
        raise InputError("study without a patient", paths["test_labels"], row=i + 2, column="patient")
    studies = pd.Index(labels["study"])
    if studies.duplicated().any():
        raise InputError(f"study {studies[studies.duplicated()][0]!r} listed twice", paths["test_labels"], column="study")
    unknown = sorted(set(predictions["model"]) - set(models["model"]))
    if unknown:
        raise InputError(f"model(s) {unknown} not in {paths['models'].name}", paths["test_predictions"], column="model")
    scores = np.empty((len(models), len(studies), len(tasks)))
    for m, model in enumerate(models["model"]):
        rows = predictions[predictions["model"] == model]
        extra = sorted(set(rows["study"]) - set(studies))
        missing = sorted(set(studies) - set(rows["study"]))
        if extra or missing or rows["study"].duplicated().any():
            problem = (f"{len(missing)} test study(ies) missing, e.g. {missing[0]!r}" if missing else
                       f"{len(extra)} study(ies) not in the test labels, e.g. {extra[0]!r}" if extra else
                       "a study listed twice")
            raise InputError(f"model {model!r}: {problem}", paths["test_predictions"], column="study")
        scores[m] = rows.set_index("study").loc[studies, list(tasks)].to_numpy(np.float64)
    return models, labels, scores
