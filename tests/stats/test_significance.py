"""Holm and DeLong against hand-computed examples, statsmodels, the quadratic definition and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from cxrtransfer.stats import bootstrap, significance


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> raised to 0.06 (monotone)
    adjusted = significance.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert significance.holm([0.5, None, 0.4]) == pytest.approx([0.8, None, 0.8])  # None does not count
    assert significance.holm([0.3, 0.6]) == [0.6, 0.6]  # capped at 1 only when needed: 0.3 x 2, 0.6 x 1 -> 0.6
    assert significance.holm([0.7, 0.9]) == [1.0, 1.0]


def plain_holm(p: dict) -> dict:
    """Holm's step-down, written out: the k-th smallest of m p-values times (m - k + 1), running maximum, cap 1."""
    ordered = sorted(p, key=p.get)
    adjusted, running = {}, 0.0
    for k, key in enumerate(ordered):
        running = max(running, min(1.0, (len(p) - k) * p[key]))
        adjusted[key] = running
    return adjusted


def test_plain_holm_reproduces_the_hand_computed_example():
    assert plain_holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005}) == pytest.approx(
        {"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02}, abs=1e-15)


def test_holm_equals_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(8).random(12) ** 3
    expected = multitest.multipletests(p, method="holm")[1]
    np.testing.assert_allclose(significance.holm(list(p)), expected, rtol=0, atol=1e-15)


def _delong_slow(scores_a, scores_b, targets):
    """DeLong et al. (1988) from the definition: psi over every (positive, negative) pair, O(n^2)."""
    pos, neg = targets == 1, targets == 0
    v10, v01 = [], []
    for s in (scores_a, scores_b):
        x, y = s[pos][:, None], s[neg][None, :]
        psi = (x > y) + 0.5 * (x == y)
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    v10, v01 = np.array(v10), np.array(v01)
    s10 = np.cov(v10)
    s01 = np.cov(v01)
    covariance = s10 / pos.sum() + s01 / neg.sum()
    auc = v10.mean(axis=1)
    z = (auc[0] - auc[1]) / np.sqrt(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    return auc, z


def test_delong_hand_computed_example():
    # positives P1..P3, negatives N1, N2; b ties P2 with N2.
    # a: V10 = (1, 1, 1/2), V01 = (2/3, 1), AUC 5/6; b: V10 = (1, 1/4, 1), V01 = (2/3, 5/6), AUC 3/4.
    # S10 = [[1/12, -1/16], [-1/16, 3/16]], S01 = [[1/18, 1/36], [1/36, 1/72]];
    # var(a - b) = (1/12 + 3/16 + 1/8) / 3 + (1/18 + 1/72 - 1/18) / 2 = 5/36, z = (1/12) / sqrt(5/36) = 1 / (2 sqrt 5)
    targets = np.array([1, 1, 1, 0, 0])
    a = np.array([0.9, 0.6, 0.4, 0.5, 0.3])
    b = np.array([0.8, 0.3, 0.7, 0.6, 0.3])
    result = significance.delong_test(a, b, targets)
    assert result["auc_a"] == pytest.approx(5 / 6, abs=1e-15) and result["auc_b"] == pytest.approx(0.75, abs=1e-15)
    assert result["z"] == pytest.approx(1 / (2 * np.sqrt(5)), abs=1e-12)
    assert result["p"] == pytest.approx(2 * norm.sf(1 / (2 * np.sqrt(5))), abs=1e-12)
    assert result["p"] == pytest.approx(0.8231, abs=1e-4)


def test_delong_fast_equals_the_quadratic_definition_and_sklearn():
    rng = np.random.default_rng(9)
    for n, decimals in ((30, 1), (200, 2), (500, 6)):  # coarse rounding: many ties
        targets = (rng.random(n) < 0.35).astype(float)
        a = np.round(rng.random(n) + 0.6 * targets, decimals)
        b = np.round(0.5 * a + rng.random(n) + 0.2 * targets, decimals)
        result = significance.delong_test(a, b, targets)
        auc, z = _delong_slow(a, b, targets)
        assert (result["auc_a"], result["auc_b"]) == pytest.approx(tuple(auc), abs=1e-12)
        assert result["auc_a"] == pytest.approx(roc_auc_score(targets, a), abs=1e-12)
        assert result["z"] == pytest.approx(z, abs=1e-9)


def test_delong_leaves_out_zero_weight_samples_and_refuses_other_weights():
    rng = np.random.default_rng(10)
    targets = (rng.random(60) < 0.5).astype(float)
    a, b = rng.random(60) + 0.3 * targets, rng.random(60)
    weights = (rng.random(60) > 0.2).astype(float)
    kept = weights == 1
    assert significance.delong_test(a, b, targets, weights) == significance.delong_test(a[kept], b[kept], targets[kept])
    with pytest.raises(ValueError, match="0/1"):
        significance.delong_test(a, b, targets, weights * 2)
    same = significance.delong_test(a, a, targets)
    assert same["diff"] == 0 and same["p"] == 1.0


def test_delong_and_bootstrap_p_agree_on_independent_studies():
    """Two routes to the same question: on 600 independent studies both find the clear difference and
    neither finds one between two equally good models."""
    rng = np.random.default_rng(13)
    targets = (rng.random((600, 1)) < 0.4).astype(float)
    strong, weak, twin = (rng.random((600, 1)) + k * targets for k in (0.8, 0.5, 0.8))
    scores = np.stack([strong, weak, twin])
    result = bootstrap.bootstrap_aucs(scores, targets, np.ones_like(targets), ["strong", "weak", "twin"], ["t"], 1000, 0, 0.95)
    clear = bootstrap.paired_difference(result, "strong", "weak")
    null = bootstrap.paired_difference(result, "strong", "twin")
    assert clear["p"] < 0.01 and significance.delong_test(strong[:, 0], weak[:, 0], targets[:, 0])["p"] < 0.01
    delong_null = significance.delong_test(strong[:, 0], twin[:, 0], targets[:, 0])["p"]
    assert null["p"] > 0.05 and delong_null > 0.05 and abs(null["p"] - delong_null) < 0.2
