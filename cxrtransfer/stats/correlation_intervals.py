"""Spearman's rho on every shared bootstrap replicate: percentile intervals beside scipy's p-values.

For a correlation between a fixed model property x (ImageNet top-1, parameters) and a bootstrap quantity
y (mean AUC, pretraining boost), rho is recomputed with y taken in each replicate (the replicates the
bootstrap stage draws, shared by all models: same seed, same draws); the percentile interval of these
rhos is its interval. A replicate in which y ties across all models gives no rho and is left out.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from .bootstrap import percentile_interval
from .correlations import TOP1_COLUMNS


def spearman_replicates(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(R,) Spearman rho of x (n,) against every column of y (n, R): Pearson's r of midranks (NaN where
    a column is constant)."""
    rx = scipy_stats.rankdata(np.asarray(x, dtype=np.float64))
    ry = scipy_stats.rankdata(np.asarray(y, dtype=np.float64), axis=0)
    rx, ry = rx - rx.mean(), ry - ry.mean(axis=0)
    denominator = np.sqrt((rx ** 2).sum()) * np.sqrt((ry ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx @ ry) / np.where(denominator > 0, denominator, 1.0), np.nan)


def _interval(x: pd.Series, y: np.ndarray, confidence: float) -> dict[str, Any]:
    known = ~np.isnan(x.to_numpy(dtype=np.float64))
    if known.sum() < 3 or np.all(x[known] == x[known].iloc[0]):
        return {"ci_low": None, "ci_high": None, "ci_replicates": 0}
    rho = spearman_replicates(x.to_numpy(dtype=np.float64)[known], y[known])
    rho = rho[~np.isnan(rho)]
    if not len(rho):
        return {"ci_low": None, "ci_high": None, "ci_replicates": 0}
    low, high = percentile_interval(rho, confidence)
    return {"ci_low": float(low), "ci_high": float(high), "ci_replicates": int(len(rho))}


def correlation_intervals(points: pd.DataFrame, mean_replicates: Mapping[str, np.ndarray], baseline_init: str,
                          confidence: float) -> dict[str, dict[str, dict[str, Any]]]:
    """The intervals of the correlations that cxrtransfer.stats.correlations.study_correlations reports:
    per init, top-1 (both columns) and parameters vs mean AUC; per pretrained init, parameters vs boost.
    `mean_replicates`: model -> its mean AUC in each kept replicate."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    baseline = points[points["init"] == baseline_init].set_index("arch")["model"]
    for init, group in points.groupby("init", sort=True):
        auc = np.stack([mean_replicates[m] for m in group["model"]])
        for column, name in [*TOP1_COLUMNS.items(), ("params", "params_vs_auc")]:
            out.setdefault(name, {})[init] = _interval(group[column].astype(float), auc, confidence)
        if init == baseline_init:
            continue
        paired = group[group["arch"].isin(baseline.index)]
        if len(paired):
            boost = np.stack([mean_replicates[m] - mean_replicates[baseline[a]]
                              for m, a in zip(paired["model"], paired["arch"])])
            out.setdefault("params_vs_boost", {})[init] = _interval(paired["params"].astype(float), boost, confidence)
    return out
