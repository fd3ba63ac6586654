"""Row 3: the vectorized paired bootstrap (cxrtransfer.auc.auroc_matrix) against a roc_auc_score loop.

Timing is `cxrtransfer.stats.benchmark_bootstrap`: the vectorized AUCs for every model, task and
replicate, and the sklearn loop timed on `loop_replicates` replicates and scaled linearly to all of
them (its cost per replicate is constant). Equality is checked here on the same kind of data
(scores rounded to 3 decimals, so ties occur): every model and task on `check_replicates` replicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cxrtransfer import stats
from cxrtransfer.auc import auroc_matrix

from .common import row

SPEED_TARGET = 50.0
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

    rng = np.random.default_rng(seed)
    targets = (rng.random((sizes.studies, sizes.tasks)) < 0.3).astype(np.float64)
    scores = np.round(np.clip(0.3 * targets + rng.random((sizes.models, sizes.studies, sizes.tasks)), 0, 1), 3)
    weights = np.ones_like(targets)
    weights[rng.random(weights.shape) < 0.1] = 0.0  # uncertain labels carry weight 0 in the evaluation
    counts = stats.bootstrap_multiplicities(sizes.studies, sizes.replicates, seed)[:sizes.check_replicates]
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
        "bootstrap", f"bootstrap {sizes.models}x{sizes.tasks}x{sizes.replicates} AUCs, {sizes.studies} studies "
        f"vs sklearn loop", "s", timing["vectorized_s"], timing["sklearn_loop_s"],
        ratio, f">= {SPEED_TARGET:g}x", ratio >= SPEED_TARGET,
        {f"equal to sklearn within {TOLERANCE:g}": worst <= TOLERANCE},
        max_abs_difference=worst, loop_replicates_timed=int(timing["loop_replicates_timed"]),
        loop_scaled_linearly=True, checked_replicates=sizes.check_replicates)]
