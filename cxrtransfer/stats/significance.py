"""Tests beyond the paper: Holm's multiple-comparison adjustment and DeLong's test for two correlated AUROCs.

- Holm (1979), step-down: sort the m raw p-values ascending, p_(i) -> max over j <= i of
  min(1, (m - j + 1) p_(j)). It controls the family-wise error rate under any dependence, which
  paired bootstrap tests on shared replicates have.
- DeLong, DeLong & Clarke-Pearson (1988), with the midrank algorithm of Sun & Xu (2014): the AUROC
  is the mean of the positives' placement values; its covariance across two score vectors of the
  same samples comes from the placement values' sample covariances. Asymptotic normal z-test,
  two-sided. Samples are independent units (studies): it does not know about patients.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values in the input order; None (an untested entry) stays None and does not count."""
    known = [i for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    m = len(known)
    running = 0.0
    for rank, i in enumerate(sorted(known, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def add_holm(entries: Mapping[str, Mapping[str, Any] | dict[str, Any]], key: str = "p", out: str = "p_holm") -> None:
    """Write `out` (Holm over `key`) into every entry (dicts holding `key`), the entries forming one family of tests."""
    names = [n for n, e in entries.items() if isinstance(e, dict) and key in e]
    for name, value in zip(names, holm([entries[n][key] for n in names])):
        entries[name][out] = value


def _midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis, ties sharing their mean rank."""
    return scipy_stats.rankdata(x, axis=-1, method="average")


def placement_values(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V10, V01) of each score row (k, n): V10 per positive = share of negatives it outranks (ties 1/2),
    V01 per negative = share of positives that outrank it. Sun & Xu's midrank formulas."""
    positive = targets == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks_all = _midranks(scores)
    ranks_pos = _midranks(scores[:, positive])
    ranks_neg = _midranks(scores[:, ~positive])
    v10 = (ranks_all[:, positive] - ranks_pos) / n_neg
    v01 = 1.0 - (ranks_all[:, ~positive] - ranks_neg) / n_pos
    return v10, v01


def delong_test(scores_a: np.ndarray, scores_b: np.ndarray, targets: np.ndarray,
                weights: np.ndarray | None = None) -> dict[str, float]:
    """DeLong's test of AUROC(a) = AUROC(b) on the same samples: AUCs, difference, z and two-sided p.

    weights: optional 0/1 per sample (uncertain labels carry 0 and are left out); other weights
    (e.g. bootstrap multiplicities) are not part of DeLong's test and raise ValueError.
    """
    targets = np.asarray(targets, dtype=np.float64)
    keep = np.ones(len(targets), dtype=bool)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if not np.isin(weights, (0.0, 1.0)).all():
            raise ValueError("DeLong's test takes 0/1 sample weights only")
        keep = weights == 1.0
    if not np.isin(targets[keep], (0.0, 1.0)).all():
        raise ValueError("targets must be 0/1")
    y = targets[keep]
    if y.min() == y.max():
        raise ValueError("DeLong's test needs positives and negatives")
    scores = np.vstack([np.asarray(scores_a, dtype=np.float64)[keep], np.asarray(scores_b, dtype=np.float64)[keep]])
    v10, v01 = placement_values(scores, y)
    auc = v10.mean(axis=1)
    covariance = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    difference = float(auc[0] - auc[1])
    if variance <= 0:  # no spread in the placement values (e.g. identical rankings, or both AUCs 1)
        z, p = 0.0, 1.0 if difference == 0 else 0.0
    else:
        z = difference / np.sqrt(variance)
        p = float(2 * scipy_stats.norm.sf(abs(z)))
    return {"auc_a": float(auc[0]), "auc_b": float(auc[1]), "diff": difference, "z": float(z), "p": p}
