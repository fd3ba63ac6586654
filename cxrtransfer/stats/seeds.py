"""Training seeds: run-to-run noise beside test-set noise (a two-level bootstrap over seeds and patients).

Each model is trained once per seed (params `seeds`); its seed-averaged AUC is the mean over seeds of
the AUC of each run on the test set.

- Two-level bootstrap: in each replicate, the test patients are drawn with replacement exactly as in
  the test-set bootstrap (same seed, same draws, shared by every model and run: paired), and, for each
  model independently, its seeds are drawn with replacement (as many as it has). A model's replicate
  AUC is the mean, over its drawn seeds, of each drawn run's AUC on the drawn patients. A replicate
  dropped by the test-set bootstrap (a task with one class) is dropped here too.
- The result is a `Bootstrap` of seed-averaged AUCs (point: the seed mean on the full test set), so the
  paired differences of stats.comparisons (boosts, families, truncation) run on it unchanged and get
  two-level CIs and p-values.
- Beside it: the between-seed standard deviation of each model's mean AUC (ddof 1), the test-set-only CI
  of the seed mean (seeds fixed, patients resampled) and the probability that each model ranks first
  among the untruncated models of its init (the share of two-level replicates where its AUC is highest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from . import comparisons
from .auc import auroc_matrix
from .bootstrap import (
    Bootstrap,
    bootstrap_multiplicities,
    percentile_interval,
    replicates_with_both_classes,
)
from .seed_runs import seed_scores

SEED_DRAWS_STREAM = 1                       # the seeds' generator: default_rng([bootstrap.seed, 1])


def seed_multiplicities(n_seeds: int, n_models: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates, models, seeds) counts: each model's seeds drawn with replacement, independently."""
    rng = np.random.default_rng([seed, SEED_DRAWS_STREAM])
    drawn = rng.integers(0, n_seeds, size=(replicates, n_models, n_seeds))
    return (drawn[..., None] == np.arange(n_seeds)).sum(axis=2)


def two_level_bootstrap(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray, models: Sequence[str],
                        tasks: Sequence[str], replicates: int, seed: int, confidence: float,
                        clusters: Sequence[Any] | None = None) -> tuple[Bootstrap, np.ndarray, np.ndarray]:
    """scores (models, seeds, studies, tasks) -> (two-level Bootstrap of seed-averaged AUCs, per-run
    full-set AUCs (models, seeds, tasks), test-set-only replicates of the seed mean (models, tasks, kept))."""
    n_models, n_seeds, n_studies, n_tasks = scores.shape
    runs = scores.reshape(n_models * n_seeds, n_studies, n_tasks)
    point = auroc_matrix(runs, targets, weights).reshape(n_models, n_seeds, n_tasks)
    counts = bootstrap_multiplicities(n_studies, replicates, seed, clusters)
    keep = replicates_with_both_classes(targets, weights, counts)
    if not keep.any():
        raise InputError(f"every one of {replicates} bootstrap replicates has a task with a single class")
    per_run = auroc_matrix(runs, targets, weights, counts[keep]).reshape(n_models, n_seeds, n_tasks, -1)
    drawn_seeds = seed_multiplicities(n_seeds, n_models, replicates, seed)[keep] / n_seeds  # (kept, models, seeds)
    two_level = np.einsum("rms,mstr->mtr", drawn_seeds, per_run)
    result = Bootstrap(list(models), list(tasks), point.mean(axis=1), two_level, int(replicates),
                       int((~keep).sum()), confidence)
    return result, point, per_run.mean(axis=1)


def rank_first(result: Bootstrap, groups: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """Per group (e.g. init -> its untruncated models): the share of replicates in which each model has
    the highest mean AUC of its group (ties: the first in group order)."""
    means = result.mean_replicates()
    out: dict[str, dict[str, float]] = {}
    for group, members in groups.items():
        rows = [result.index(m) for m in members]
        first = np.argmax(means[rows], axis=0)
        out[group] = {m: float(np.mean(first == i)) for i, m in enumerate(members)}
    return out


def seed_summary(result: Bootstrap, run_point: np.ndarray, test_only: np.ndarray, seeds: Sequence[int]
                 ) -> dict[str, dict[str, Any]]:
    """Per model: mean AUC of each seed's run, their mean and between-seed SD (ddof 1), the test-set-only
    CI of the seed mean (seeds fixed) and the two-level CI (seeds and patients resampled)."""
    per_seed = run_point.mean(axis=2)   # (models, seeds): mean AUC over tasks of each run
    test_low, test_high = percentile_interval(test_only.mean(axis=1), result.confidence)
    two_low, two_high = percentile_interval(result.mean_replicates(), result.confidence)
    return {model: {"seed_auc": {str(s): float(per_seed[m, j]) for j, s in enumerate(seeds)},
                    "mean_auc": float(per_seed[m].mean()), "seed_sd": float(np.std(per_seed[m], ddof=1)),
                    "test_ci_low": float(test_low[m]), "test_ci_high": float(test_high[m]),
                    "ci_low": float(two_low[m]), "ci_high": float(two_high[m])}
            for m, model in enumerate(result.models)}


def seed_study(models: pd.DataFrame, labels: pd.DataFrame, first_seed: np.ndarray, seed_frame: pd.DataFrame,
               tasks: Sequence[str], arrays: tuple[np.ndarray, np.ndarray], settings: Mapping[str, Any], source: Path) -> dict[str, Any]:
    """The bootstrap stage's `seeds` section: per model seed AUCs, mean, SD, test-set and two-level CIs;
    P(rank first) per init; the paper's paired differences on seed-averaged AUCs with two-level CIs."""
    names = list(models["model"])
    run_seeds, scores = seed_scores(names, first_seed, seed_frame, list(labels["study"]), tasks, source)
    clusters = labels["patient"] if settings["unit"] == "patient" else None
    result, run_point, test_only = two_level_bootstrap(scores, *arrays, names, tasks, settings["replicates"],
                                                       settings["seed"], settings["confidence"], clusters)
    full = models[models["truncate"] == 0]
    baseline = settings["baseline_init"]
    truncation = comparisons.truncation_differences(result, models)
    return {"seeds": run_seeds, "models": seed_summary(result, run_point, test_only, run_seeds),
            "rank_first": rank_first(result, {init: list(g["model"]) for init, g in full.groupby("init", sort=True)}),
            "boosts": comparisons.pretraining_boosts(result, models, baseline),
            "mean_boost": comparisons.mean_boost(result, models, baseline),
            "best_vs_worst": comparisons.best_vs_worst(result, models, baseline),
            "families": comparisons.family_differences(result, models, baseline),
            "truncation": truncation,
            "truncation_efficiency": comparisons.truncation_efficiency(truncation, models, settings["confidence"])}
