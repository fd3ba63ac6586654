"""Best minus worst architecture, re-selected inside every replicate (selection-aware), and the smallest
Holm-adjusted p each family of tests can reach with its replicate count.

The paper's best-vs-worst comparison picks the two architectures on the full test set and then tests
their difference: the selection among k models is ignored, so its p is optimistic. Here, within each
replicate, the best and the worst are picked again among the same models and their spread (max - min of
mean AUC) is taken: the percentile interval of these spreads is the interval of the spread across
architectures, and the share of replicates in which the as-picked best (worst) is again best (worst) says
how stable the pick is. A spread is >= 0 by construction, so no p-value is given for it.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from .bootstrap import Bootstrap, percentile_interval
from .comparisons import untruncated


def replicate_spreads(mean_replicates: np.ndarray) -> np.ndarray:
    """(R,) max minus min over models (axis 0) of a (models, R) array: re-selected in every replicate."""
    return mean_replicates.max(axis=0) - mean_replicates.min(axis=0)


def reselected_spread(result: Bootstrap, models: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per init (untruncated models, at least 2): the full-set spread with the percentile interval of the
    re-selected spread, the mean replicate spread, and how often the as-picked best / worst keep their rank."""
    out: dict[str, dict[str, Any]] = {}
    point, replicates = result.mean_point(), result.mean_replicates()
    for init, group in untruncated(result, models).groupby("init", sort=True):
        if len(group) < 2:
            continue
        rows = [result.index(m) for m in group["model"]]
        arch = list(group["arch"])
        spreads = replicate_spreads(replicates[rows])
        low, high = percentile_interval(spreads, result.confidence)
        best, worst = int(np.argmax(point[rows])), int(np.argmin(point[rows]))
        out[init] = {"spread": float(point[rows].max() - point[rows].min()), "ci_low": float(low),
                     "ci_high": float(high), "replicate_mean": float(spreads.mean()), "models": len(rows),
                     "best": arch[best], "worst": arch[worst],
                     "best_kept_share": float(np.mean(np.argmax(replicates[rows], axis=0) == best)),
                     "worst_kept_share": float(np.mean(np.argmin(replicates[rows], axis=0) == worst))}
    return out


def smallest_holm_p(replicates: int, tests: int) -> float:
    """The smallest Holm-adjusted p a family of `tests` bootstrap tests can show with `replicates` kept
    replicates: the smallest two-sided bootstrap p is 2 / (R + 1), Holm multiplies the smallest by m."""
    return min(1.0, tests * 2.0 / (replicates + 1))


def _tests(entries: Mapping[str, Any], key: str = "p") -> int:
    return sum(1 for e in entries.values() if isinstance(e, dict) and e.get(key) is not None)


def holm_floors(metrics: Mapping[str, Any], replicates: int) -> list[dict[str, Any]]:
    """Per family of bootstrap tests in the bootstrap metrics: its size m and the smallest Holm-adjusted p
    its replicates allow (below 1 - confidence or not: whether the family can reject at all)."""
    families: list[tuple[str, int]] = []
    for init in sorted({i for by_init in metrics.get("boosts", {}).values() for i in by_init}):
        family = {a: e[init] for a, e in metrics["boosts"].items() if init in e}
        families.append((f"boosts ({init})", _tests(family)))
        per_task = {f"{a}/{t}": v for a, e in family.items() for t, v in e.get("tasks", {}).items()}
        families.append((f"per-task boosts ({init})", _tests(per_task)))
    families.append(("mean boost", _tests(metrics.get("mean_boost", {}))))
    families.append(("best vs worst", _tests(metrics.get("best_vs_worst", {}))))
    for init, entry in sorted(metrics.get("families", {}).items()):
        families.append((f"within families ({init})", _tests(entry.get("within", {}))))
    families.append(("named comparisons", _tests(metrics.get("comparisons", {}))))
    families.append(("truncation", _tests(metrics.get("truncation", {}))))
    return [{"family": name, "tests": m, "replicates": replicates, "smallest_p": smallest_holm_p(replicates, 1),
             "smallest_holm_p": smallest_holm_p(replicates, m)} for name, m in families if m]
