"""Row 3: the vectorized paired patient bootstrap (cxrtransfer.auc.auroc_matrix) against a roc_auc_score loop.

Timing is `cxrtransfer.stats.benchmark_bootstrap`: patients drawn (three studies each), expanded to
multiplicities over studies, and the vectorized AUCs for every model, task and replicate; the sklearn
loop timed on `loop_replicates` replicates, interleaved with the vectorized runs, and scaled linearly to
all of them (its cost per replicate is constant). Equality is checked here on the same kind of data
(scores rounded to 3 decimals, so ties occur; some weights 0): every model and task on `check_replicates`
replicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cxrtransfer import stats
from cxrtransfer.auc import auroc_matrix

from .common import row

SPEED_TARGET = 250.0
TOLERANCE = 1e-9


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
    from sklearn.metrics import roc_auc_score

    scores, targets, patients = stats.benchmark_data(sizes.models, sizes.tasks, sizes.studies, seed)
    weights = np.ones_like(targets)
    weights[np.random.default_rng(seed + 1).random(weights.shape) < 0.1] = 0.0  # uncertain labels: weight 0
    counts = stats.bootstrap_multiplicities(sizes.studies, sizes.replicates, seed, clusters=patients)
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
    timing = stats.benchmark_bootstrap(sizes.models, sizes.tasks, sizes.replicates, sizes.studies, seed=0,
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
