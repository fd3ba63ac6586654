"""Row 3: the vectorized paired patient bootstrap (cxrtransfer.stats.auc.auroc_matrix) against a roc_auc_score loop.

Timing is `benchmark_bootstrap` below: patients drawn (three studies each), expanded to
multiplicities over studies, and the vectorized AUCs for every model, task and replicate; the sklearn
loop timed on `loop_replicates` replicates, interleaved with the vectorized runs, and scaled linearly to
all of them (its cost per replicate is constant). Equality is checked here on the same kind of data
(scores rounded to 3 decimals, so ties occur; some weights 0): every model and task on `check_replicates`
replicates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from cxrtransfer.stats import bootstrap
from cxrtransfer.stats.auc import auroc_matrix

from .common import row

SPEED_TARGET = 250.0
TOLERANCE = 1e-9


def benchmark_data(n_models: int, n_tasks: int, n_studies: int, seed: int,
                   studies_per_patient: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, targets, patients) for the benchmark: scores rounded to 3 decimals (as in predictions
    files, so ties occur), consecutive studies sharing a patient (as with `split.method: fractions`)."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n_studies, n_tasks)) < 0.3).astype(np.float64)
    scores = np.round(np.clip(0.3 * targets + rng.random((n_models, n_studies, n_tasks)), 0, 1), 3)
    patients = np.arange(n_studies) // studies_per_patient
    return scores, targets, patients


def benchmark_bootstrap(n_models: int = 32, n_tasks: int = 6, n_replicates: int = 1000, n_studies: int = 500,
                        seed: int = 0, loop_replicates: int | None = None, rounds: int = 3) -> dict[str, float]:
    """Seconds for all models x tasks x replicates of a patient bootstrap: the multiplicity draw plus
    auroc_matrix, against a roc_auc_score loop over the same multiplicities.

    `rounds` interleave the two: each round times the vectorized path in full and the loop on its share
    of `loop_replicates` replicates; the vectorized figure is the median round, the loop's the sum of its
    shares scaled linearly to all replicates (its cost is the same per replicate). None loops over all.
    """
    scores, targets, patients = benchmark_data(n_models, n_tasks, n_studies, seed)
    weights = np.ones_like(targets)
    counts = bootstrap.bootstrap_multiplicities(n_studies, n_replicates, seed, clusters=patients)
    looped = n_replicates if loop_replicates is None else min(n_replicates, loop_replicates)
    shares = np.array_split(np.arange(looped), rounds)
    vectorized, loop = [], 0.0
    for share in shares:
        start = time.perf_counter()
        auroc_matrix(scores, targets, weights, bootstrap.bootstrap_multiplicities(n_studies, n_replicates, seed, clusters=patients))
        vectorized.append(time.perf_counter() - start)
        start = time.perf_counter()
        for r in share:
            for m in range(n_models):
                for t in range(n_tasks):
                    roc_auc_score(targets[:, t], scores[m, :, t], sample_weight=counts[r] * weights[:, t])
        loop += time.perf_counter() - start
    loop *= n_replicates / looped
    median = float(np.median(vectorized))
    return {"vectorized_s": median, "sklearn_loop_s": loop, "loop_replicates_timed": looped, "rounds": rounds,
            "speedup": loop / median}


@dataclass(frozen=True)
class BootstrapSizes:
    models: int
    tasks: int
    replicates: int
    studies: int
    loop_replicates: int
    check_replicates: int


def check_against_sklearn(sizes: BootstrapSizes, seed: int = 0) -> float:
    """Largest |auroc_matrix - roc_auc_score| over all models x tasks x the first check_replicates replicates."""
    scores, targets, patients = benchmark_data(sizes.models, sizes.tasks, sizes.studies, seed)
    weights = np.ones_like(targets)
    weights[np.random.default_rng(seed + 1).random(weights.shape) < 0.1] = 0.0  # uncertain labels: weight 0
    counts = bootstrap.bootstrap_multiplicities(sizes.studies, sizes.replicates, seed, clusters=patients)
    counts = counts[:sizes.check_replicates]
    ours = auroc_matrix(scores, targets, weights, counts)
    worst = 0.0
    for r in range(len(counts)):
        for m in range(sizes.models):
            for t in range(sizes.tasks):
                theirs = roc_auc_score(targets[:, t], scores[m, :, t], sample_weight=counts[r] * weights[:, t])
                worst = max(worst, abs(ours[m, t, r] - theirs))
    return worst


def bootstrap_rows(sizes: BootstrapSizes, log=print) -> list[dict[str, Any]]:
    timing = benchmark_bootstrap(sizes.models, sizes.tasks, sizes.replicates, sizes.studies, seed=0,
                                 loop_replicates=sizes.loop_replicates)
    worst = check_against_sklearn(sizes)
    ratio = timing["sklearn_loop_s"] / timing["vectorized_s"]
    log(f"  bootstrap done ({timing['vectorized_s']:.2f} s vectorized)")
    return [row(
        "bootstrap", f"patient bootstrap {sizes.models}x{sizes.tasks}x{sizes.replicates} AUCs, {sizes.studies} studies "
        f"vs sklearn loop", "s", timing["vectorized_s"], timing["sklearn_loop_s"],
        ratio, f">= {SPEED_TARGET:g}x", ratio >= SPEED_TARGET,
        {f"equal to sklearn within {TOLERANCE:g}": worst <= TOLERANCE},
        max_abs_difference=worst, loop_replicates_timed=int(timing["loop_replicates_timed"]),
        interleaved_rounds=int(timing["rounds"]),
        loop_scaled_linearly=True, checked_replicates=sizes.check_replicates)]
