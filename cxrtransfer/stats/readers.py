"""Radiologists' operating points and models from outside the study, on the study's bootstrap replicates.

- Replicates: `kept_multiplicities` draws exactly the replicates `bootstrap.bootstrap_aucs` keeps (same
  seed, same clusters, same rule for dropping a replicate with a single-class task), so every figure
  here is paired with the study's AUCs.
- A reader's sensitivity on a task is the weighted share of positive studies read positive,
  specificity the share of negative studies read negative (weight: the label weight times the
  study's multiplicity in the replicate); CIs are percentile intervals over the replicates.
- A reader lies under a model's ROC curve when the reader's sensitivity is at most the curve's
  sensitivity at the reader's false-positive rate, the curve being the polyline through the ROC
  points (the trapezoids whose area is the AUC). Counted on the full test set and on every replicate,
  so the count has an interval.
- An external model is scored on the study's tasks it has; its differences with each study model use
  the mean AUC over those tasks only, for both models, within each replicate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .auc import auroc_matrix
from .bootstrap import (Bootstrap, bootstrap_multiplicities, bootstrap_p_value, percentile_interval,
                        replicates_with_both_classes)
from .significance import add_holm

# Written by the ensemble stage beside its own files (study keys in the order of test_labels.csv).
EXTERNAL_MODELS_FILE = "external_models.csv"
EXTERNAL_PREDICTIONS_FILE = "external_predictions.csv"
READERS_FILE = "readers.csv"


def load_external(folder: str | Path, tasks: Sequence[str], studies: Sequence[str]
                  ) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """The ensemble folder's external models: model -> scores (studies, tasks; NaN for a task it lacks)
    and model -> the tasks it has. Nothing when the folder has no external models."""
    models_path, predictions_path = Path(folder) / EXTERNAL_MODELS_FILE, Path(folder) / EXTERNAL_PREDICTIONS_FILE
    if not models_path.is_file():
        return {}, {}
    models = pd.read_csv(models_path, dtype=str, keep_default_na=False)
    predictions = pd.read_csv(predictions_path, dtype={"model": str, "study": str})
    scores, model_tasks = {}, {}
    for name, has in zip(models["model"], models["tasks"]):
        rows = predictions[predictions["model"] == name].set_index("study")
        if sorted(rows.index) != sorted(studies):
            raise InputError(f"model {name!r}: its studies are not the test labels' (rerun the ensemble stage)",
                             predictions_path, column="study")
        scores[name] = rows.loc[list(studies), list(tasks)].to_numpy(np.float64)
        model_tasks[name] = has.split(";")
    return scores, model_tasks


def load_readers(folder: str | Path, tasks: Sequence[str], studies: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The ensemble folder's reader reads: names and (readers, studies, tasks) 0/1; none without the file."""
    path = Path(folder) / READERS_FILE
    if not path.is_file():
        return [], np.zeros((0, len(studies), len(tasks)))
    frame = pd.read_csv(path, dtype={"reader": str, "study": str})
    names = list(dict.fromkeys(frame["reader"]))
    reads = np.stack([frame[frame["reader"] == n].set_index("study").loc[list(studies), list(tasks)].to_numpy(np.float64)
                      for n in names]) if names else np.zeros((0, len(studies), len(tasks)))
    return names, reads


def kept_multiplicities(targets: np.ndarray, weights: np.ndarray, replicates: int, seed: int,
                        clusters: Sequence[Any] | None = None) -> np.ndarray:
    """(kept replicates, studies): the draws `bootstrap_aucs` keeps for the same arguments."""
    counts = bootstrap_multiplicities(targets.shape[0], replicates, seed, clusters)
    return counts[replicates_with_both_classes(targets, weights, counts)]


def _with_full_set(counts: np.ndarray | None, n: int) -> np.ndarray:
    """The full test set (multiplicity 1) as row 0, then the replicates."""
    full = np.ones((1, n))
    return full if counts is None else np.vstack([full, np.asarray(counts, dtype=np.float64)])


def operating_points(reads: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                     multiplicities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sensitivity and specificity (readers, tasks, rows) of binary reads (readers, studies, tasks),
    one row per multiplicity vector (rows, studies). NaN where a row has no positive (negative) weight."""
    reads = np.asarray(reads, dtype=np.float64)
    positive = weights * targets
    negative = weights * (1.0 - targets)
    m = np.asarray(multiplicities, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity = np.einsum("rn,knt->ktr", m, reads * positive) / (m @ positive).T[None]
        specificity = np.einsum("rn,knt->ktr", m, (1.0 - reads) * negative) / (m @ negative).T[None]
    return sensitivity, specificity


def roc_points(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ROC polyline's vertices (false-positive rate, true-positive rate) of one task, from (0, 0) to (1, 1)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ordered = np.asarray(scores)[order]
    ends = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), len(ordered) - 1]
    positive, negative = (weights * targets)[order], (weights * (1.0 - targets))[order]
    tp = np.r_[0.0, np.cumsum(positive)[ends]]
    fp = np.r_[0.0, np.cumsum(negative)[ends]]
    return fp / fp[-1], tp / tp[-1]


def curve_tp_at(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """The ROC polyline's true-positive weight at given false-positive weights, per row.

    scores (n,); positive, negative: (rows, n) weights of each study as a positive / a negative;
    fp: (rows, k) false-positive weights (e.g. readers'). Returns (rows, k). The curve's vertices are
    the thresholds between tie groups (descending scores), from (0, 0) to (all negatives, all positives);
    on a vertical stretch (a tie group of positives only) the highest point counts.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ordered = np.asarray(scores)[order]
    ends = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), len(ordered) - 1]
    rows = positive.shape[0]
    tp = np.hstack([np.zeros((rows, 1)), np.cumsum(positive[:, order], axis=1)[:, ends]])
    fpc = np.hstack([np.zeros((rows, 1)), np.cumsum(negative[:, order], axis=1)[:, ends]])
    x = np.asarray(fp, dtype=np.float64)[:, :, None]                      # (rows, k, 1)
    on = fpc[:, None, :] == x                                              # (rows, k, vertices)
    on_value = np.where(on, tp[:, None, :], -np.inf).max(axis=-1)
    after = np.minimum((fpc[:, None, :] <= x).sum(axis=-1), fpc.shape[1] - 1)   # first vertex right of x
    before = np.maximum(after - 1, 0)
    take = np.take_along_axis
    f0, f1 = take(fpc, before, axis=1), take(fpc, after, axis=1)
    t0, t1 = take(tp, before, axis=1), take(tp, after, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = t0 + (t1 - t0) * (x[..., 0] - f0) / (f1 - f0)
    return np.where(on.any(axis=-1), on_value, between)


def readers_under_curve(scores: np.ndarray, reads: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                        multiplicities: np.ndarray) -> np.ndarray:
    """(rows, readers) True where the reader lies on or under the model's ROC curve on one task.

    scores (studies,), reads (readers, studies) 0/1, targets and weights (studies,); one row per
    multiplicity vector (rows, studies)."""
    m = np.asarray(multiplicities, dtype=np.float64)
    positive, negative = m * (weights * targets), m * (weights * (1.0 - targets))
    reads = np.asarray(reads, dtype=np.float64)
    reader_tp = positive @ reads.T                                          # (rows, readers)
    reader_fp = negative @ reads.T
    curve = curve_tp_at(scores, positive, negative, reader_fp)
    return reader_tp <= curve + 1e-9 * np.maximum(1.0, positive.sum(axis=1, keepdims=True))


def reader_summary(names: Sequence[str], tasks: Sequence[str], reads: np.ndarray, targets: np.ndarray,
                   weights: np.ndarray, counts: np.ndarray, confidence: float) -> dict[str, dict[str, Any]]:
    """Per task and reader: sensitivity and specificity on the full set with percentile CIs."""
    sensitivity, specificity = operating_points(reads, targets, weights, _with_full_set(counts, targets.shape[0]))
    out: dict[str, dict[str, Any]] = {}
    for t, task in enumerate(tasks):
        out[task] = {}
        for k, name in enumerate(names):
            entry = {}
            for key, values in (("sensitivity", sensitivity[k, t]), ("specificity", specificity[k, t])):
                low, high = percentile_interval(values[1:], confidence)
                entry.update({key: float(values[0]), f"{key}_ci_low": float(low), f"{key}_ci_high": float(high)})
            out[task][name] = entry
    return out


def under_curve_summary(scores: Mapping[str, np.ndarray], model_tasks: Mapping[str, Sequence[str]],
                        tasks: Sequence[str], reads: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                        counts: np.ndarray, confidence: float) -> dict[str, dict[str, Any]]:
    """Per model and task it has: how many readers lie under its ROC curve, full set and percentile CI
    over the replicates. scores: model -> (studies, tasks) with NaN columns for tasks it lacks."""
    rows = _with_full_set(counts, targets.shape[0])
    out: dict[str, dict[str, Any]] = {}
    for model, values in scores.items():
        out[model] = {}
        for task in model_tasks[model]:
            t = list(tasks).index(task)
            under = readers_under_curve(values[:, t], reads[:, :, t], targets[:, t], weights[:, t], rows)
            per_row = under.sum(axis=1).astype(np.float64)
            low, high = percentile_interval(per_row[1:], confidence)
            out[model][task] = {"count": int(per_row[0]), "readers": int(reads.shape[0]),
                                "ci_low": float(low), "ci_high": float(high),
                                "replicate_mean": float(per_row[1:].mean())}
    return out


def external_summary(result: Bootstrap, scores: Mapping[str, np.ndarray], model_tasks: Mapping[str, Sequence[str]],
                     targets: np.ndarray, weights: np.ndarray, counts: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per external model: AUC per task it has, mean AUC over those tasks, and its difference with every
    study model on the same tasks and replicates (Holm over the study models)."""
    if counts.shape[0] != result.replicates.shape[2]:
        raise ValueError(f"{counts.shape[0]} replicates here, {result.replicates.shape[2]} in the study's bootstrap")
    out: dict[str, dict[str, Any]] = {}
    for model, values in scores.items():
        has = [result.tasks.index(t) for t in model_tasks[model]]
        args = (values[None][:, :, has], targets[:, has], weights[:, has])
        point, replicates = auroc_matrix(*args)[0], auroc_matrix(*args, counts)[0]   # (tasks), (tasks, R)
        low, high = percentile_interval(replicates, result.confidence)
        mean_low, mean_high = percentile_interval(replicates.mean(axis=0), result.confidence)
        versus: dict[str, Any] = {}
        for m, other in enumerate(result.models):
            differences = replicates.mean(axis=0) - result.replicates[m, has].mean(axis=0)
            d_low, d_high = percentile_interval(differences, result.confidence)
            versus[other] = {"diff": float(point.mean() - result.point[m, has].mean()), "ci_low": float(d_low),
                             "ci_high": float(d_high), "p": bootstrap_p_value(differences)}
        add_holm(versus)
        out[model] = {
            "family": "external", "tasks_scored": list(model_tasks[model]),
            "tasks_missing": [t for t in result.tasks if t not in model_tasks[model]],
            "mean_auc": float(point.mean()), "mean_auc_ci_low": float(mean_low), "mean_auc_ci_high": float(mean_high),
            "tasks": {result.tasks[j]: {"auc": float(point[i]), "ci_low": float(low[i]), "ci_high": float(high[i])}
                      for i, j in enumerate(has)},
            "versus": versus,
        }
    return out


def study_extras(folder: str | Path, result: Bootstrap, scores: np.ndarray, studies: Sequence[str],
                 targets: np.ndarray, weights: np.ndarray, replicates: int, seed: int,
                 clusters: Sequence[Any] | None = None) -> dict[str, Any]:
    """The bootstrap stage's `external` and `readers` sections from the ensemble folder (empty when it has
    neither): external models against the study's, readers' operating points and the readers under every
    model's curve (study models on every task, external ones on theirs), all on the study's replicates."""
    external_scores, external_tasks = load_external(folder, result.tasks, studies)
    names, reads = load_readers(folder, result.tasks, studies)
    if not external_scores and not names:
        return {}
    counts = kept_multiplicities(targets, weights, replicates, seed, clusters)
    out: dict[str, Any] = {}
    if external_scores:
        out["external"] = external_summary(result, external_scores, external_tasks, targets, weights, counts)
    if names:
        every = {**{m: scores[i] for i, m in enumerate(result.models)}, **external_scores}
        every_tasks = {**{m: list(result.tasks) for m in result.models}, **external_tasks}
        out["readers"] = {
            "names": names,
            "operating_points": reader_summary(names, result.tasks, reads, targets, weights, counts, result.confidence),
            "under_curve": under_curve_summary(every, every_tasks, result.tasks, reads, targets, weights, counts,
                                               result.confidence),
        }
    return out


def external_point_aucs(scores: Mapping[str, np.ndarray], model_tasks: Mapping[str, Sequence[str]],
                        tasks: Sequence[str], targets: np.ndarray, weights: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per external model on the full test set: AUC per task it has, their mean, the tasks it lacks."""
    out = {}
    for model, values in scores.items():
        has = [list(tasks).index(t) for t in model_tasks[model]]
        aucs = auroc_matrix(values[None][:, :, has], targets[:, has], weights[:, has])[0]
        out[model] = {"auc": {tasks[j]: float(a) for j, a in zip(has, aucs)}, "mean_auc": float(aucs.mean()),
                      "tasks_missing": [t for t in tasks if t not in model_tasks[model]]}
    return out
