"""The bootstrap: replicates as multiplicities, AUCs of every model and task per replicate, CIs, contrasts.

- A replicate draws the test *patients* with replacement (seeded, `np.random.default_rng`), every study
  of a drawn patient coming along (a cluster bootstrap: a patient's studies are not independent);
  `bootstrap.unit: study` draws studies instead. With one study per patient (the official CheXpert test
  set) the two are the same draws. Replicates are kept as multiplicities over studies and the same
  replicates serve every model, so differences are paired.
- A replicate in which any evaluated task has only one class (no weight on positives or on negatives)
  is dropped for all models and tasks, and counted. Which replicates drop depends on labels only, so
  every model keeps the same ones.
- Confidence intervals: percentiles of the kept replicates (numpy's default linear interpolation),
  (1 - confidence) / 2 and (1 + confidence) / 2, e.g. 2.5 % and 97.5 %. Point estimates come from
  the full test set, not from the replicates.
- Contrasts (a - b, the mean boost over architectures, family differences) are linear combinations of
  mean AUCs taken within each replicate; two-sided bootstrap p-value with the +1 correction:
  p = min(1, 2 * (1 + min(#{d_r <= 0}, #{d_r >= 0})) / (R + 1)) over the R kept replicates,
  so p is never 0 and is 1 when a and b are the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .auc import auroc_matrix


def bootstrap_multiplicities(n_samples: int, replicates: int, seed: int,
                             clusters: Sequence[Any] | None = None) -> np.ndarray:
    """(replicates, n_samples) counts: how often each sample is drawn in each resample with replacement.

    With `clusters` (one label per sample, e.g. the patient of each study) whole clusters are drawn:
    counts over clusters, expanded to their samples. Clusters are numbered in order of first
    appearance, so with one sample per cluster the draws are exactly those without clusters.
    """
    if n_samples < 1 or replicates < 1:
        raise ValueError("need at least one sample and one replicate")
    codes = np.arange(n_samples)
    if clusters is not None:
        if len(clusters) != n_samples:
            raise ValueError(f"{len(clusters)} cluster labels for {n_samples} samples")
        codes, _ = pd.factorize(np.asarray(clusters), sort=False)
        if (codes < 0).any():
            raise ValueError("a sample without a cluster label")
    n_units = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_units, size=(replicates, n_units))
    flat = drawn + (np.arange(replicates) * n_units)[:, None]
    per_unit = np.bincount(flat.ravel(), minlength=replicates * n_units).reshape(replicates, n_units)
    return per_unit if clusters is None else per_unit[:, codes]


def resampling_unit(labels: pd.DataFrame, unit: str) -> dict[str, Any]:
    """What a replicate draws: unit, numbers of patients and studies, most studies of one patient."""
    per_patient = labels.groupby("patient")["study"].nunique()
    return {"resampled": unit, "patients": int(len(per_patient)), "studies": int(labels["study"].nunique()),
            "max_studies_per_patient": int(per_patient.max())}


def replicates_with_both_classes(targets: np.ndarray, weights: np.ndarray, multiplicities: np.ndarray) -> np.ndarray:
    """(replicates,) True where every task has weight on both classes."""
    counts = np.asarray(multiplicities, dtype=np.float64)
    positive = counts @ (weights * targets)
    negative = counts @ (weights * (1.0 - targets))
    return (positive > 0).all(axis=1) & (negative > 0).all(axis=1)


def percentile_interval(values: np.ndarray, confidence: float, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval: the (1 - c) / 2 and (1 + c) / 2 quantiles (numpy's linear interpolation)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2], axis=axis)
    return low, high


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided: min(1, 2 (1 + min(#{d <= 0}, #{d >= 0})) / (R + 1))."""
    differences = np.asarray(differences, dtype=np.float64)
    at_most = int(np.sum(differences <= 0))
    at_least = int(np.sum(differences >= 0))
    return min(1.0, 2.0 * (1 + min(at_most, at_least)) / (len(differences) + 1))


@dataclass
class Bootstrap:
    """Full-sample and replicate AUCs of every model and task."""

    models: list[str]
    tasks: list[str]
    point: np.ndarray        # (models, tasks), on the full test set
    replicates: np.ndarray   # (models, tasks, kept replicates)
    drawn: int
    dropped: int
    confidence: float

    def index(self, model: str) -> int:
        return self.models.index(model)

    def mean_point(self) -> np.ndarray:
        return self.point.mean(axis=1)

    def mean_replicates(self) -> np.ndarray:
        return self.replicates.mean(axis=1)


def bootstrap_aucs(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray, models: Sequence[str],
                   tasks: Sequence[str], replicates: int, seed: int, confidence: float,
                   clusters: Sequence[Any] | None = None) -> Bootstrap:
    """AUC of every model and task on the full set and on each kept bootstrap replicate.

    scores (models, studies, tasks); targets, weights (studies, tasks); clusters: the patient of each
    study to resample patients, None to resample studies.
    """
    point = auroc_matrix(scores, targets, weights)
    counts = bootstrap_multiplicities(targets.shape[0], replicates, seed, clusters)
    keep = replicates_with_both_classes(targets, weights, counts)
    if not keep.any():
        raise InputError(f"every one of {replicates} bootstrap replicates has a task with a single class; "
                         f"the test set is too small or a task too rare (tasks {list(tasks)})")
    values = auroc_matrix(scores, targets, weights, counts[keep])
    return Bootstrap(list(models), list(tasks), point, values, int(replicates), int((~keep).sum()), confidence)


def model_summary(result: Bootstrap) -> dict[str, dict[str, Any]]:
    """Per model: mean AUC with CI, and per task AUC with CI."""
    mean_low, mean_high = percentile_interval(result.mean_replicates(), result.confidence)
    task_low, task_high = percentile_interval(result.replicates, result.confidence)
    summary = {}
    for m, model in enumerate(result.models):
        summary[model] = {
            "mean_auc": float(result.mean_point()[m]),
            "mean_auc_ci_low": float(mean_low[m]), "mean_auc_ci_high": float(mean_high[m]),
            "tasks": {task: {"auc": float(result.point[m, t]), "ci_low": float(task_low[m, t]),
                             "ci_high": float(task_high[m, t])} for t, task in enumerate(result.tasks)},
        }
    return summary


def contrast(result: Bootstrap, coefficients: Mapping[str, float], task: str | None = None) -> dict[str, float]:
    """sum_m c_m AUC_m (mean AUC, or one task's AUC): full-set value, percentile CI, bootstrap p-value.

    The combination is taken within each replicate, so it is paired across the models it names.
    """
    c = np.zeros(len(result.models))
    for model, weight in coefficients.items():
        c[result.index(model)] += weight
    if task is None:
        point, replicates = result.mean_point(), result.mean_replicates()
    else:
        t = result.tasks.index(task)
        point, replicates = result.point[:, t], result.replicates[:, t, :]
    values = c @ replicates
    low, high = percentile_interval(values, result.confidence)
    return {"diff": float(c @ point), "ci_low": float(low), "ci_high": float(high), "p": bootstrap_p_value(values)}


def paired_difference(result: Bootstrap, a: str, b: str, task: str | None = None) -> dict[str, float]:
    """Mean AUC (or one task's AUC) of a minus b: full-set difference, percentile CI, bootstrap p-value."""
    return contrast(result, {a: 1.0, b: -1.0} if a != b else {}, task)
