"""Spearman correlations of the study: ImageNet top-1 and parameters against CheXpert AUC and boost."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from ..errors import InputError
from .paper import PAPER_SOURCE, PAPER_SPEARMAN, PAPER_SPEARMAN_P, paper_key
from .significance import add_holm


def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """scipy.stats.spearmanr on the pairs where both values are known; null with a reason when
    fewer than 3 pairs remain or one side is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    known = ~(np.isnan(x) | np.isnan(y))
    x, y = x[known], y[known]
    n = int(len(x))
    if n < 3:
        return {"rho": None, "p": None, "n": n, "reason": f"{n} point(s): Spearman needs at least 3"}
    if np.all(x == x[0]) or np.all(y == y[0]):
        return {"rho": None, "p": None, "n": n, "reason": "a constant variable: Spearman undefined"}
    result = scipy_stats.spearmanr(x, y)
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": n}


TOP1_COLUMNS = {"imagenet_top1": "imagenet_top1_vs_auc", "imagenet_top1_2020": "imagenet_top1_2020_vs_auc"}


def paper_figure(table: Mapping[str, Mapping[str, Any]], correlation: str, init: str, baseline_init: str) -> Any:
    """The paper's figure for this correlation and init (both top-1 columns stand beside its one top-1 rho)."""
    key = "imagenet_top1_vs_auc" if correlation in TOP1_COLUMNS.values() else correlation
    return table[key].get(paper_key(init, baseline_init))


def correlation_points(mean_auc: Mapping[str, float], models: pd.DataFrame, architectures: pd.DataFrame,
                       boosts: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per untruncated model: model, arch, init, family, params, imagenet_top1 (the weights used),
    imagenet_top1_2020 (what the paper could have used; NaN when the table has no such column), mean_auc, boost."""
    table = architectures.set_index("arch") if "arch" in architectures.columns else architectures
    full = models[(models["truncate"] == 0) & models["model"].isin(list(mean_auc))].copy()
    unknown = sorted(set(full["arch"]) - set(table.index))
    if unknown:
        raise InputError(f"architecture(s) {unknown} not in the architecture table")
    for column in TOP1_COLUMNS:
        values = table[column] if column in table.columns else pd.Series(np.nan, index=table.index)
        full[column] = pd.to_numeric(full["arch"].map(values), errors="coerce")
    full["mean_auc"] = full["model"].map(mean_auc).astype(float)
    full["boost"] = [
        (boosts.get(arch, {}).get(init) or {}).get("diff", np.nan) for arch, init in zip(full["arch"], full["init"])
    ]
    full["boost"] = full["boost"].astype(float)
    columns = ["model", "arch", "init", "family", "params", *TOP1_COLUMNS, "mean_auc", "boost"]
    return full[columns].sort_values(["init", "params", "model"]).reset_index(drop=True)


def study_correlations(points: pd.DataFrame, baseline_init: str) -> dict[str, Any]:
    """Spearman rho and p per init (ImageNet top-1 of the weights used and of the 2020 values vs AUC,
    params vs AUC; params vs boost per pretrained init), the paper's rho and p alongside, and
    Holm-adjusted p per correlation (the family: its tests over inits)."""
    out: dict[str, Any] = {name: {} for name in (*TOP1_COLUMNS.values(), "params_vs_auc", "params_vs_boost")}
    pairs = [(name, column, "mean_auc") for column, name in TOP1_COLUMNS.items()] + [("params_vs_auc", "params", "mean_auc")]
    for init, group in points.groupby("init", sort=True):
        tests = pairs + ([("params_vs_boost", "params", "boost")] if init != baseline_init else [])
        for name, x, y in tests:
            out[name][init] = {**spearman(group[x], group[y]),
                               "paper_rho": paper_figure(PAPER_SPEARMAN, name, init, baseline_init),
                               "paper_p": paper_figure(PAPER_SPEARMAN_P, name, init, baseline_init)}
    for family in out.values():
        add_holm(family)
    out["paper_source"] = PAPER_SOURCE
    return out
