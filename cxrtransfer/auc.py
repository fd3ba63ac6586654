"""Weighted AUROC, exact, vectorized over models x tasks x bootstrap replicates.

The AUC is the Mann-Whitney statistic with weights: over every (positive i, negative j) pair,
w_i * w_j * ([s_i > s_j] + 1/2 [s_i == s_j]), divided by W_pos * W_neg. This is the area under the
trapezoidal ROC curve that sklearn.metrics.roc_auc_score(y, s, sample_weight=w) computes, ties included.

A bootstrap replicate is a vector of multiplicities over the samples (how often each one was drawn),
so a replicate is just another weight vector. Per model and task the scores are sorted once; each
replicate then costs a gather, a per-tie-group sum and a cumulative sum, with no sorting per replicate.
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
    out = np.empty((n_models, n_tasks, drawn_by_sample.shape[1]), dtype=np.float64)
    # Reused buffers: fresh multi-megabyte temporaries per model and task cost more in page faults
    # than the arithmetic itself.
    drawn, positive, negative = (np.empty_like(drawn_by_sample) for _ in range(3))
    for m in range(n_models):
        for t in range(n_tasks):
            order = np.argsort(scores[m, :, t], kind="stable")
            np.take(drawn_by_sample, order, axis=0, out=drawn)
            np.multiply(drawn, positive_weight[order, t][:, None], out=positive)
            np.multiply(drawn, negative_weight[order, t][:, None], out=negative)
            out[m, t] = _auc_sorted(positive, negative, _tie_groups(scores[m, order, t]))
    return out[:, :, 0] if multiplicities is None else out

