"""Spearman's rho on every replicate against scipy, and the intervals of the study's correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from cxrtransfer.stats import correlation_intervals as intervals


def test_rho_per_replicate_equals_scipy_on_every_replicate():
    rng = np.random.default_rng(0)
    x = np.array([69.8, 73.3, 76.1, 77.4, 74.4, 75.6, 76.9, 77.3])
    y = rng.normal(0.85, 0.01, size=(8, 50))
    y[3, 7] = y[5, 7]  # a tie inside one replicate: midranks, as scipy
    rho = intervals.spearman_replicates(x, y)
    expected = [scipy_stats.spearmanr(x, y[:, r]).statistic for r in range(50)]
    np.testing.assert_allclose(rho, expected, rtol=0, atol=1e-12)
    assert np.isnan(intervals.spearman_replicates(x, np.ones((8, 1))))[0]


def test_intervals_for_every_reported_correlation():
    archs = ["r18", "r34", "r50", "d121"]
    points = pd.DataFrame({
        "model": [f"{a}-{i}" for i in ("random", "imagenet") for a in archs],
        "arch": archs * 2, "init": ["random"] * 4 + ["imagenet"] * 4,
        "params": [11.0, 21.0, 25.0, 8.0] * 2, "imagenet_top1": [69.8, 73.3, 76.1, 74.4] * 2,
        "imagenet_top1_2020": [69.8, 73.3, np.nan, 74.4] * 2,
    })
    rng = np.random.default_rng(1)
    replicates = {m: rng.normal(0.8, 0.02, size=200) for m in points["model"]}
    out = intervals.correlation_intervals(points, replicates, "random", 0.9)
    assert set(out) == {"imagenet_top1_vs_auc", "imagenet_top1_2020_vs_auc", "params_vs_auc", "params_vs_boost"}
    assert set(out["params_vs_boost"]) == {"imagenet"}
    # params vs boost, by hand: boost per replicate, scipy's rho per replicate, numpy's percentiles
    boost = np.stack([replicates[f"{a}-imagenet"] - replicates[f"{a}-random"] for a in archs])
    rhos = [scipy_stats.spearmanr([11.0, 21.0, 25.0, 8.0], boost[:, r]).statistic for r in range(200)]
    rhos = [r for r in rhos if not np.isnan(r)]
    entry = out["params_vs_boost"]["imagenet"]
    assert (entry["ci_low"], entry["ci_high"]) == pytest.approx(tuple(np.quantile(rhos, [0.05, 0.95])))
    # the 2020 column skips the architecture without a value (3 points remain)
    auc = np.stack([replicates[f"{a}-random"] for a in ("r18", "r34", "d121")])
    rhos = [scipy_stats.spearmanr([69.8, 73.3, 74.4], auc[:, r]).statistic for r in range(200)]
    assert out["imagenet_top1_2020_vs_auc"]["random"]["ci_low"] == pytest.approx(np.quantile(rhos, 0.05))
