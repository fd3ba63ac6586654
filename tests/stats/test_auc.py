"""Weighted AUROC against scikit-learn, ties and bootstrap multiplicities included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxrtransfer.stats.auc import auroc, auroc_matrix


def _random_case(rng: np.random.Generator, n: int, levels: int):
    """Scores with many ties (few levels), weights with zeros (uncertain cells) and fractions."""
    scores = rng.integers(0, levels, n) / levels
    targets = rng.integers(0, 2, n).astype(float)
    weights = rng.random(n) * (rng.random(n) > 0.2)
    return scores, targets, weights


def test_auroc_equals_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(2, 200))
        scores, targets, weights = _random_case(rng, n, levels=int(rng.integers(1, 30)))
        if (weights * targets).sum() == 0 or (weights * (1 - targets)).sum() == 0:
            continue
        expected = roc_auc_score(targets, scores, sample_weight=weights)
        assert auroc(scores, targets, weights) == pytest.approx(expected, abs=1e-9)
        checked += 1
    assert checked > 200


def test_auroc_unweighted_and_all_tied():
    targets = np.array([0, 1, 0, 1, 1.0])
    assert auroc(np.array([0.1, 0.9, 0.3, 0.3, 0.8]), targets) == pytest.approx(
        roc_auc_score(targets, [0.1, 0.9, 0.3, 0.3, 0.8]), abs=1e-12)
    assert auroc(np.full(5, 0.5), targets) == pytest.approx(0.5, abs=1e-12)


def test_auroc_single_class_is_nan():
    assert np.isnan(auroc(np.array([0.2, 0.4]), np.array([1.0, 1.0])))
    # a class present only with zero weight counts as absent
    assert np.isnan(auroc(np.array([0.2, 0.4]), np.array([1.0, 0.0]), np.array([1.0, 0.0])))


def test_auroc_matrix_equals_sklearn_per_model_and_task():
    rng = np.random.default_rng(1)
    n_models, n, n_tasks = 4, 150, 3
    targets = rng.integers(0, 2, (n, n_tasks)).astype(float)
    weights = (rng.random((n, n_tasks)) > 0.1).astype(float)
    scores = np.round(rng.random((n_models, n, n_tasks)) + 0.2 * targets, 2)
    result = auroc_matrix(scores, targets, weights)
    assert result.shape == (n_models, n_tasks)
    for m in range(n_models):
        for t in range(n_tasks):
            expected = roc_auc_score(targets[:, t], scores[m, :, t], sample_weight=weights[:, t])
            assert result[m, t] == pytest.approx(expected, abs=1e-9)


def test_auroc_matrix_replicates_equal_resampled_sklearn():
    """A multiplicity vector is a resample: AUC on np.repeat'ed rows equals the weighted AUC."""
    rng = np.random.default_rng(2)
    n_models, n, n_tasks, n_replicates = 3, 60, 2, 25
    targets = rng.integers(0, 2, (n, n_tasks)).astype(float)
    weights = (rng.random((n, n_tasks)) > 0.15).astype(float)
    scores = np.round(rng.random((n_models, n, n_tasks)), 1)  # heavy ties
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_replicates)])
    result = auroc_matrix(scores, targets, weights, counts)
    assert result.shape == (n_models, n_tasks, n_replicates)
    for r in range(n_replicates):
        rows = np.repeat(np.arange(n), counts[r])
        for m in range(n_models):
            for t in range(n_tasks):
                y, w = targets[rows, t], weights[rows, t]
                if (w * y).sum() == 0 or (w * (1 - y)).sum() == 0:
                    assert np.isnan(result[m, t, r])
                else:
                    expected = roc_auc_score(y, scores[m, rows, t], sample_weight=w)
                    assert result[m, t, r] == pytest.approx(expected, abs=1e-9)


def test_auroc_matrix_rejects_bad_shapes_and_nan():
    with pytest.raises(ValueError):
        auroc_matrix(np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError):
        auroc_matrix(np.zeros((1, 4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        auroc_matrix(np.zeros((1, 4, 3)), np.zeros((4, 3)), multiplicities=np.ones((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        auroc_matrix(np.full((1, 4, 3), np.nan), np.zeros((4, 3)))
