"""Readers' operating points, readers under a ROC curve, and external models on the study's replicates."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from cxrtransfer.stats import bootstrap, readers


def _study(n: int = 60, tasks: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, tasks)) < 0.4).astype(float)
    targets[:2], targets[2:4] = 1.0, 0.0                       # both classes in every task
    weights = (rng.random((n, tasks)) > 0.1).astype(float)     # some uncertain labels carry no weight
    weights[:4] = 1.0
    return rng, targets, weights


def test_sensitivity_and_specificity_equal_an_independent_count():
    rng, targets, weights = _study()
    reads = (rng.random((3, 60, 2)) < 0.5).astype(float)
    counts = rng.integers(0, 3, size=(4, 60))
    sensitivity, specificity = readers.operating_points(reads, targets, weights, counts)
    for r, row in enumerate(counts):
        for k in range(3):
            for t in range(2):
                tp = fn = tn = fp = 0
                for i in range(60):                              # a plain count over the drawn studies
                    for _ in range(row[i] if weights[i, t] else 0):
                        if targets[i, t] == 1:
                            tp, fn = tp + (reads[k, i, t] == 1), fn + (reads[k, i, t] == 0)
                        else:
                            tn, fp = tn + (reads[k, i, t] == 0), fp + (reads[k, i, t] == 1)
                assert sensitivity[k, t, r] == pytest.approx(tp / (tp + fn))
                assert specificity[k, t, r] == pytest.approx(tn / (tn + fp))


# A hand-made ROC: scores of 3 positives and 4 negatives. Descending: .9 P, .8 N, .7 P, .6 N, .5 P, .4 N, .2 N,
# so the curve's vertices (false positives, true positives) are (0,0) (0,1) (1,1) (1,2) (2,2) (2,3) (3,3) (4,3).
HAND_SCORES = np.array([0.9, 0.7, 0.5, 0.8, 0.6, 0.4, 0.2])
HAND_TARGETS = np.array([1, 1, 1, 0, 0, 0, 0], dtype=float)


@pytest.mark.parametrize("read_positive, under", [
    ({0, 1, 3}, True),        # TP 2, FP 1: on the curve's vertical stretch (1,1)-(1,2)
    ({0, 1, 2, 3}, False),    # TP 3, FP 1: above it
    ({0, 1, 3, 4}, True),     # TP 2, FP 2: below (2,3)
    ({0}, True),              # TP 1, FP 0: on (0,1)
    ({0, 1, 2}, False),       # TP 3, FP 0: the perfect corner, above a curve through (0,1)
    (set(range(7)), True),    # reads everything positive: (4,3), the curve's end
])
def test_reader_under_a_hand_made_roc_curve(read_positive, under):
    reads = np.array([[1.0 if i in read_positive else 0.0 for i in range(7)]])
    result = readers.readers_under_curve(HAND_SCORES, reads, HAND_TARGETS, np.ones(7), np.ones((1, 7)))
    assert result.tolist() == [[under]]


def test_reader_on_a_diagonal_stretch_of_tied_scores():
    # positives .9 .5 .5, negatives .5 .5 .1: vertices (0,0) (0,1) (2,3) (3,3); at FP 1 the curve is at TP 2.
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1])
    targets = np.array([1, 1, 1, 0, 0, 0], dtype=float)
    on = np.array([[1, 1, 0, 1, 0, 0]], dtype=float)           # TP 2, FP 1
    above = np.array([[1, 1, 1, 1, 0, 0]], dtype=float)        # TP 3, FP 1
    both = np.vstack([on, above])
    assert readers.readers_under_curve(scores, both, targets, np.ones(6), np.ones((1, 6))).tolist() == [[True, False]]
    # multiplicities are weights: drawing the first tied negative twice makes the tie group 2 positives and
    # 3 negatives, vertices (0,0) (0,1) (3,3) (4,3); at FP 2 the curve is at TP 1 + 2 * 2/3
    drawn = np.array([[1, 1, 1, 2, 1, 1]], dtype=float)
    value = readers.curve_tp_at(scores, drawn * targets, drawn * (1 - targets), np.array([[2.0]]))
    assert value[0, 0] == pytest.approx(1 + 2 * 2 / 3)


def test_roc_points_are_sklearns_curve():
    rng, targets, weights = _study(80, 1, seed=4)
    scores = np.round(rng.random(80), 1)                       # many ties
    fpr, tpr = readers.roc_points(scores, targets[:, 0], weights[:, 0])
    expected_fpr, expected_tpr, _ = roc_curve(targets[:, 0], scores, sample_weight=weights[:, 0],
                                              drop_intermediate=False)
    np.testing.assert_allclose(fpr, expected_fpr)
    np.testing.assert_allclose(tpr, expected_tpr)


def test_kept_multiplicities_are_the_bootstraps_replicates():
    rng, targets, weights = _study(30, 2, seed=5)
    targets[4:, 1] = 0.0                                       # a rare class: some replicates drop
    scores = rng.random((1, 30, 2))
    result = bootstrap.bootstrap_aucs(scores, targets, weights, ["m"], ["a", "b"], 200, 3, 0.95)
    counts = readers.kept_multiplicities(targets, weights, 200, 3)
    assert result.dropped > 0 and counts.shape[0] == result.replicates.shape[2]
    for r in (0, 7, counts.shape[0] - 1):
        expanded = np.repeat(np.arange(30), counts[r])
        assert result.replicates[0, 0, r] == pytest.approx(
            roc_auc_score(targets[expanded, 0], scores[0, expanded, 0], sample_weight=weights[expanded, 0]))


def test_external_model_is_compared_on_its_own_tasks_with_paired_replicates():
    rng, targets, weights = _study(70, 3, seed=6)
    tasks = ["A", "B", "C"]
    study_scores = np.clip(targets[None] * 0.3 + rng.random((2, 70, 3)), 0, None)
    result = bootstrap.bootstrap_aucs(study_scores, targets, weights, ["m1", "m2"], tasks, 50, 1, 0.9)
    counts = readers.kept_multiplicities(targets, weights, 50, 1)
    outside = rng.random((70, 3))
    outside[:, 1] = np.nan                                     # the external model lacks task B
    summary = readers.external_summary(result, {"x": outside}, {"x": ["A", "C"]}, targets, weights, counts)["x"]
    assert summary["tasks_scored"] == ["A", "C"] and summary["tasks_missing"] == ["B"] and "B" not in summary["tasks"]

    def auc(s, t, idx):
        return roc_auc_score(targets[idx, t], s[idx, t], sample_weight=weights[idx, t])

    everything = np.arange(70)
    x_mean = np.mean([auc(outside, t, everything) for t in (0, 2)])
    assert summary["mean_auc"] == pytest.approx(x_mean)
    m1_mean = np.mean([auc(study_scores[0], t, everything) for t in (0, 2)])
    assert summary["versus"]["m1"]["diff"] == pytest.approx(x_mean - m1_mean)
    differences = []
    for row in counts:                                         # the same replicates, expanded study by study
        drawn = np.repeat(everything, row)
        differences.append(np.mean([auc(outside, t, drawn) - auc(study_scores[0], t, drawn) for t in (0, 2)]))
    low, high = np.quantile(differences, [0.05, 0.95])
    assert summary["versus"]["m1"]["ci_low"] == pytest.approx(low)
    assert summary["versus"]["m1"]["ci_high"] == pytest.approx(high)
