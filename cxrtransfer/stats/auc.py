"""Weighted AUROC, exact, vectorized over models x tasks x bootstrap replicates.

The AUC is the Mann-Whitney statistic with weights: over every (positive i, negative j) pair,
w_i * w_j * ([s_i > s_j] + 1/2 [s_i == s_j]), divided by W_pos * W_neg. This is the area under the
trapezoidal ROC curve that sklearn.metrics.roc_auc_score(y, s, sample_weight=w) computes, ties included.

A bootstrap replicate is a vector of multiplicities over the samples (how often each one was drawn),
so a replicate is just another weight vector. Per model and task the negatives are sorted once and their
weighted draws cumulated for all replicates at once; each positive then looks up the weight of the
negatives below it (a binary search on the scores, one gathered row per positive), with no sorting per
replicate. The denominators depend on labels only and come from one matrix product.
"""

from __future__ import annotations

import numpy as np


def _tie_groups(sorted_scores: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in an ascending array."""
    return np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])


def _auc_sorted(positive: np.ndarray, negative: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """AUC per column from positive / negative weights (samples x columns) in ascending score order.

    Per tie group g with summed weights P_g, Q_g: AUC = sum_g P_g (Q_{<g} + Q_g / 2) / (sum P * sum Q).
    NaN where a column has no positive or no negative weight. Overwrites `negative`.
    """
    if len(starts) < positive.shape[0]:  # ties: sum each group first
        positive = np.add.reduceat(positive, starts, axis=0)
        negative = np.add.reduceat(negative, starts, axis=0)
    denominator = positive.sum(axis=0) * negative.sum(axis=0)
    same_group = np.einsum("g...,g...->...", positive, negative)
    np.cumsum(negative, axis=0, out=negative)  # in place: Q_{<=g}
    numerator = np.einsum("g...,g...->...", positive, negative) - 0.5 * same_group
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = numerator / denominator
    return np.where(denominator > 0, auc, np.nan)


def auroc(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted AUROC of one score vector; NaN when one class has no weight (sklearn raises there)."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    weights = np.ones_like(scores) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(scores, kind="stable")
    w, y = weights[order], targets[order]
    return float(_auc_sorted(w * y, w * (1.0 - y), _tie_groups(scores[order])))


def auroc_matrix(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None,
                 multiplicities: np.ndarray | None = None) -> np.ndarray:
    """AUROC of every model, task and replicate.

    scores: (models, samples, tasks); targets (0/1) and weights: (samples, tasks), shared by all models;
    multiplicities: (replicates, samples) bootstrap counts shared by all models and tasks (paired).
    Returns (models, tasks) without multiplicities, else (models, tasks, replicates); NaN where a
    task has only one class under that weighting.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 3:
        raise ValueError(f"scores must be (models, samples, tasks), got shape {scores.shape}")
    n_models, n_samples, n_tasks = scores.shape
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    targets = np.asarray(targets, dtype=np.float64)
    weights = np.ones_like(targets) if weights is None else np.asarray(weights, dtype=np.float64)
    if targets.shape != (n_samples, n_tasks) or weights.shape != targets.shape:
        raise ValueError(f"targets {targets.shape} / weights {weights.shape} do not match scores {scores.shape}")
    if multiplicities is None:
        drawn_by_sample = np.ones((n_samples, 1))
    else:
        multiplicities = np.asarray(multiplicities, dtype=np.float64)
        if multiplicities.ndim != 2 or multiplicities.shape[1] != n_samples:
            raise ValueError(f"multiplicities must be (replicates, {n_samples}), got {multiplicities.shape}")
        # samples x replicates, so the per-model gather below copies contiguous rows
        drawn_by_sample = np.ascontiguousarray(multiplicities.T)

    positive_weight = weights * targets
    negative_weight = weights * (1.0 - targets)
    n_replicates = drawn_by_sample.shape[1]
    # Denominators (W_pos * W_neg per replicate) depend on labels only: one matrix product for all models.
    denominator = (drawn_by_sample.T @ positive_weight) * (drawn_by_sample.T @ negative_weight)  # (replicates, tasks)
    out = np.empty((n_models, n_tasks, n_replicates), dtype=np.float64)
    for t in range(n_tasks):
        positive = np.flatnonzero(positive_weight[:, t] > 0)
        negative = np.flatnonzero(negative_weight[:, t] > 0)
        # The positives' weighted draws do not depend on the model: gathered once per task, in sample order.
        drawn_positive = drawn_by_sample[positive] * positive_weight[positive, t][:, None]
        drawn_negative = drawn_by_sample[negative] * negative_weight[negative, t][:, None]
        # Reused buffers: fresh multi-megabyte temporaries per model cost more in page faults than the arithmetic.
        below = np.zeros((len(negative) + 1, n_replicates))  # row j: weighted draws of the j lowest negatives
        gathered = np.empty((len(positive), n_replicates))
        for m in range(n_models):
            out[m, t] = _numerator(scores[m, positive, t], scores[m, negative, t], drawn_positive, drawn_negative,
                                   below, gathered)
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= denominator.T[None]
    out[:, denominator.T <= 0] = np.nan
    return out[:, :, 0] if multiplicities is None else out


def _numerator(positive_scores: np.ndarray, negative_scores: np.ndarray, drawn_positive: np.ndarray,
               drawn_negative: np.ndarray, below: np.ndarray, gathered: np.ndarray) -> np.ndarray:
    """Per replicate, sum over positives i of P_i (Q_{< s_i} + Q_{<= s_i}) / 2 (Q: weighted negative draws).

    Sorts the negatives once, cumulates their draws into `below` (row j = the j lowest), and looks each
    positive's score up among them: Q_{<s} = below[#negatives < s], Q_{<=s} = below[#negatives <= s].
    """
    order = np.argsort(negative_scores)
    sorted_negative = negative_scores[order]
    np.take(drawn_negative, order, axis=0, out=below[1:])
    np.cumsum(below[1:], axis=0, out=below[1:])
    strictly = np.searchsorted(sorted_negative, positive_scores, side="left")
    at_most = np.searchsorted(sorted_negative, positive_scores, side="right")
    np.take(below, strictly, axis=0, out=gathered)
    numerator = np.einsum("ir,ir->r", drawn_positive, gathered)
    if (strictly != at_most).any():  # a positive tied with a negative: the tied pairs count one half
        np.take(below, at_most, axis=0, out=gathered)
        numerator = 0.5 * (numerator + np.einsum("ir,ir->r", drawn_positive, gathered))
    return numerator
