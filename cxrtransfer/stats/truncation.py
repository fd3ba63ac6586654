"""Truncation as a reader needs it: two rules for how many final blocks can go, and what each saves.

Per truncated architecture (its k = 0 model and the truncated ones trained, k ascending):
- non-inferior at a margin (bootstrap.truncation_margin, default 0.01 mean AUROC): the largest k such
  that every k' <= k has the lower bound of its interval of (truncated - full) above -margin;
- no significant drop (the paper's rule): the largest k such that no k' <= k is significantly worse
  (difference < 0 and p < 1 - confidence). With 500 test studies this is absence of evidence, not
  equivalence; the non-inferiority rule is the one that claims "no worse than".
For each rule the gain in parameters and in training FLOPs (forward + backward at the configured image
size, cxrtransfer.models.flops) of that k over k = 0; across architectures the arithmetic and the
geometric mean, the paper's 3.25x beside; and, as an observation, which choices of k per architecture
(from the block structure, whether trained or not) give a mean parameter gain of 3.25 at two decimals.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .comparisons import significantly_worse, truncation_reference
from .paper import PAPER_TRUNCATION_GAIN

Costs = Mapping[str, Mapping[int, Mapping[str, float]]]   # arch -> k -> {"params": ..., "training_flops": ...}


def non_inferior(difference: Mapping[str, Any], margin: float) -> bool:
    """The interval's lower bound of (truncated - full) above -margin."""
    return difference["ci_low"] > -margin


def largest_k(steps: Sequence[tuple[int, Mapping[str, Any]]], keeps: Any) -> int:
    """The largest k of the ascending (k, difference) steps such that `keeps` holds for every k' <= k; 0 if
    the first already fails."""
    kept = 0
    for k, difference in steps:
        if not keeps(difference):
            break
        kept = k
    return kept


def _gain(costs: Mapping[int, Mapping[str, float]], k: int, key: str) -> float:
    return float(costs[0][key] / costs[k][key])


def _means(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"arithmetic": None, "geometric": None}
    return {"arithmetic": float(np.mean(values)), "geometric": float(np.exp(np.mean(np.log(values))))}


def truncation_rules(differences: Mapping[str, Mapping[str, Any]], models: pd.DataFrame, confidence: float,
                     margin: float, costs: Costs) -> dict[str, Any]:
    """Per k = 0 model with truncated models: the largest k under each rule and its parameter and training
    FLOPs gains; means across models per rule; the paper's figure and the observation (module docstring)."""
    table = models.set_index("model")
    steps: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for model, difference in differences.items():
        reference = truncation_reference(models, model)
        if reference is not None and difference.get("diff") is not None:
            steps.setdefault(reference, []).append((int(table.loc[model, "truncate"]), difference))
    rules = {"non_inferior": lambda d: non_inferior(d, margin),
             "no_significant_drop": lambda d: not significantly_worse(d, confidence)}
    by_reference: dict[str, Any] = {}
    for reference, found in sorted(steps.items()):
        arch = str(table.loc[reference, "arch"])
        found = sorted(found, key=lambda step: step[0])
        # without costs (an architecture the table does not know): parameters of the trained models, no FLOPs
        params = {0: float(table.loc[reference, "params"]),
                  **{int(table.loc[m, "truncate"]): float(table.loc[m, "params"]) for m in differences
                     if truncation_reference(models, m) == reference}}
        entry: dict[str, Any] = {"arch": arch, "tested": [k for k, _ in found]}
        for rule, keeps in rules.items():
            k = largest_k(found, keeps)
            entry[rule] = ({"k": k, "params_gain": _gain(costs[arch], k, "params"),
                            "flops_gain": _gain(costs[arch], k, "training_flops")} if arch in costs else
                           {"k": k, "params_gain": params[0] / params[k], "flops_gain": None})
        by_reference[reference] = entry
    means = {rule: {key: _means([e[rule][key] for e in by_reference.values() if e[rule][key] is not None])
                    for key in ("params_gain", "flops_gain")} for rule in rules}
    return {"margin": margin, "by_reference": by_reference, "means": means,
            "paper_average_gain": PAPER_TRUNCATION_GAIN,
            "paper_gain_combinations": gain_combinations(costs, PAPER_TRUNCATION_GAIN)}


def gain_combinations(costs: Costs, target: float, tolerance: float = 0.01) -> list[dict[str, Any]]:
    """Every choice of k per architecture (the k's `costs` holds) whose arithmetic mean parameter gain is
    within `tolerance` of `target` (the paper gives two decimals), closest first: {"k": {arch: k}, "mean": ...}."""
    archs = sorted(costs)
    if not archs:
        return []
    found = []
    for ks in itertools.product(*[sorted(costs[a]) for a in archs]):
        mean = float(np.mean([_gain(costs[a], k, "params") for a, k in zip(archs, ks)]))
        if abs(mean - target) <= tolerance:
            found.append({"k": dict(zip(archs, map(int, ks))), "mean": mean})
    return sorted(found, key=lambda c: (abs(c["mean"] - target), sorted(c["k"].items())))
