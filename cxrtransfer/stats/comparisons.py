"""The paper's comparisons on the bootstrap: pretraining boosts, best vs worst, families, truncation.

"Significantly worse" (truncation): difference < 0 and p < 1 - confidence (the CI excludes 0).
Holm-adjusted p-values stand beside the raw ones per family of tests (cxrtransfer.stats.significance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .bootstrap import Bootstrap, contrast, paired_difference
from .paper import (
    PAPER_BEST_VS_WORST,
    PAPER_BOOSTS,
    PAPER_MEAN_BOOST,
    PAPER_TRUNCATION_GAIN,
    PAPER_TRUNCATION_STATEMENT,
    PAPER_WITHIN_FAMILY,
    paper_key,
)
from .significance import add_holm, delong_test


def task_differences(result: Bootstrap, a: str, b: str, scores: np.ndarray, targets: np.ndarray,
                     weights: np.ndarray) -> dict[str, dict[str, float]]:
    """Per task, a minus b: the bootstrap difference and, as a cross-check, DeLong's p (studies as units)."""
    ia, ib = result.index(a), result.index(b)
    out = {}
    for t, task in enumerate(result.tasks):
        delong = delong_test(scores[ia, :, t], scores[ib, :, t], targets[:, t], weights[:, t])
        out[task] = {**paired_difference(result, a, b, task), "p_delong": delong["p"], "z_delong": delong["z"]}
    return out


def untruncated(result: Bootstrap, models: pd.DataFrame) -> pd.DataFrame:
    """The models table's untruncated models that the bootstrap scored."""
    return models[(models["truncate"] == 0) & models["model"].isin(result.models)]


def pretraining_boosts(result: Bootstrap, models: pd.DataFrame, baseline_init: str,
                       task_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                       ) -> dict[str, dict[str, Any]]:
    """Per architecture and pretrained init: that init minus baseline_init (untruncated models only),
    with the paper's boost where it gives one and, given (scores, targets, weights), per-task
    differences with DeLong's p beside the bootstrap's."""
    boosts: dict[str, dict[str, Any]] = {}
    for arch, group in untruncated(result, models).groupby("arch", sort=True):
        baseline = group[group["init"] == baseline_init]
        if baseline.empty:
            continue
        for _, row in group[group["init"] != baseline_init].sort_values("init").iterrows():
            entry = paired_difference(result, row["model"], baseline["model"].iloc[0])
            entry["paper"] = PAPER_BOOSTS.get(arch)
            if task_arrays is not None:
                entry["tasks"] = task_differences(result, row["model"], baseline["model"].iloc[0], *task_arrays)
            boosts.setdefault(arch, {})[row["init"]] = entry
    for init in sorted({i for by_init in boosts.values() for i in by_init}):
        family = {arch: by_init[init] for arch, by_init in boosts.items() if init in by_init}
        add_holm(family)
        per_task = {f"{arch}/{task}": v for arch, e in family.items() for task, v in e.get("tasks", {}).items()}
        add_holm(per_task)
        add_holm(per_task, key="p_delong", out="p_delong_holm")  # the same family, over DeLong's p-values
    return boosts


def mean_boost(result: Bootstrap, models: pd.DataFrame, baseline_init: str) -> dict[str, dict[str, Any]]:
    """Per pretrained init: the mean over architectures (having both inits) of the per-architecture boost,
    taken within each replicate; CI, p, and the paper's 0.015."""
    full = untruncated(result, models)
    baseline = full[full["init"] == baseline_init].set_index("arch")["model"]
    out: dict[str, dict[str, Any]] = {}
    for init, group in full[full["init"] != baseline_init].groupby("init", sort=True):
        pairs = [(m, baseline[a]) for m, a in zip(group["model"], group["arch"]) if a in baseline.index]
        if not pairs:
            continue
        coefficients: dict[str, float] = {}
        for pretrained, base in pairs:
            coefficients[pretrained] = coefficients.get(pretrained, 0.0) + 1.0 / len(pairs)
            coefficients[base] = coefficients.get(base, 0.0) - 1.0 / len(pairs)
        out[init] = {**contrast(result, coefficients), "architectures": len(pairs), "paper": PAPER_MEAN_BOOST}
    add_holm(out)
    return out


def best_vs_worst(result: Bootstrap, models: pd.DataFrame, baseline_init: str) -> dict[str, dict[str, Any]]:
    """Per init: the best minus the worst untruncated architecture by full-set mean AUC (chosen after
    seeing the data, as in the paper), CI and p, with the paper's figure for its init."""
    mean = dict(zip(result.models, result.mean_point()))
    out: dict[str, dict[str, Any]] = {}
    for init, group in untruncated(result, models).groupby("init", sort=True):
        if len(group) < 2:
            continue
        ranked = sorted(group["model"], key=lambda m: (-mean[m], m))
        best, worst = ranked[0], ranked[-1]
        arch = group.set_index("model")["arch"]
        out[init] = {"best": arch[best], "worst": arch[worst], "best_auc": float(mean[best]),
                     "worst_auc": float(mean[worst]), **paired_difference(result, best, worst),
                     "paper": PAPER_BEST_VS_WORST.get(paper_key(init, baseline_init))}
    add_holm(out)
    return out


def family_differences(result: Bootstrap, models: pd.DataFrame, baseline_init: str) -> dict[str, dict[str, Any]]:
    """Per init: within each family the largest minus the smallest model (by parameters), and across
    families the best minus the worst family mean; each with CI and p (Holm over the within-family tests)."""
    mean = dict(zip(result.models, result.mean_point()))
    out: dict[str, dict[str, Any]] = {}
    for init, group in untruncated(result, models).groupby("init", sort=True):
        paper = PAPER_WITHIN_FAMILY.get(paper_key(init, baseline_init), {})
        within: dict[str, Any] = {}
        for family, members in group.groupby("family", sort=True):
            members = members.sort_values(["params", "model"])
            paper_pair, paper_value = paper.get(family, (None, None))
            if len(members) < 2:
                within[family] = {"diff": None, "n": 1, "reason": "one model in the family",
                                  "paper": paper_value, "paper_pair": paper_pair}
                continue
            largest, smallest = members.iloc[-1], members.iloc[0]
            within[family] = {"largest": largest["arch"], "smallest": smallest["arch"], "n": int(len(members)),
                              **paired_difference(result, largest["model"], smallest["model"]),
                              "paper": paper_value, "paper_pair": paper_pair}
        add_holm(within)
        family_mean = {f: float(np.mean([mean[m] for m in g["model"]])) for f, g in group.groupby("family")}
        entry: dict[str, Any] = {"within": within, "families": len(family_mean)}
        if len(family_mean) >= 2:
            best, worst = max(family_mean, key=family_mean.get), min(family_mean, key=family_mean.get)
            coefficients = {m: 1.0 / (group["family"] == best).sum() for m in group.loc[group["family"] == best, "model"]}
            for m in group.loc[group["family"] == worst, "model"]:
                coefficients[m] = -1.0 / (group["family"] == worst).sum()
            entry["across"] = {"best_family": best, "worst_family": worst, **contrast(result, coefficients)}
        else:
            entry["across"] = {"diff": None, "reason": f"{len(family_mean)} family: needs at least 2"}
        out[init] = entry
    return out


def truncation_reference(models: pd.DataFrame, model: str) -> str | None:
    """The k=0 model of a truncated model: same arch and init, truncate 0 (prefer the same folder)."""
    row = models.set_index("model").loc[model]
    candidates = models[(models["arch"] == row["arch"]) & (models["init"] == row["init"]) & (models["truncate"] == 0)]
    if "folder" in models.columns and len(candidates) > 1:
        same_place = candidates[candidates["folder"].map(lambda f: str(Path(f).parent)) == str(Path(row["folder"]).parent)]
        candidates = same_place if len(same_place) else candidates
    return None if candidates.empty else str(candidates["model"].iloc[0])


def truncation_differences(result: Bootstrap, models: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every truncated model minus its k=0 model (a missing reference gives null and a reason); Holm over all."""
    out: dict[str, dict[str, Any]] = {}
    truncated = models[(models["truncate"] > 0) & models["model"].isin(result.models)]
    for _, row in truncated.sort_values("model").iterrows():
        reference = truncation_reference(models, row["model"])
        if reference is None or reference not in result.models:
            out[row["model"]] = {"diff": None, "ci_low": None, "ci_high": None, "p": None,
                                 "reason": f"no k=0 model of {row['arch']} with init {row['init']!r}"}
        else:
            out[row["model"]] = paired_difference(result, row["model"], reference)
    add_holm(out)
    return out


def significantly_worse(difference: Mapping[str, Any], confidence: float) -> bool:
    """A paired difference that is a significant loss: diff < 0 and p < 1 - confidence."""
    alpha = round(1.0 - confidence, 12)  # 1 - 0.95 is 0.05000000000000004 in floating point
    return difference["diff"] < 0 and difference["p"] < alpha


def truncation_efficiency(differences: Mapping[str, Mapping[str, Any]], models: pd.DataFrame,
                          confidence: float) -> dict[str, Any]:
    """Per (arch, init) with truncated models, the paper's rule: the largest k such that no k' <= k is
    significantly worse than k = 0 (k' over the truncations trained, in increasing k; k = 0 if the
    first already loses); gain = params(k=0) / params(that k). The average gain beside the paper's 3.25x."""
    table = models.set_index("model")
    by_reference: dict[str, list[tuple[int, str]]] = {}
    for model, difference in differences.items():
        reference = truncation_reference(models, model)
        if reference is not None and difference["diff"] is not None:
            by_reference.setdefault(reference, []).append((int(table.loc[model, "truncate"]), model))
    gains, one_block = {}, []
    for reference, truncations in sorted(by_reference.items()):
        one_block += [table.loc[reference, "params"] / table.loc[m, "params"] for k, m in truncations if k == 1]
        kept, first_worse = reference, None
        for k, model in sorted(truncations):
            if significantly_worse(differences[model], confidence):
                first_worse = k
                break
            kept = model
        gains[reference] = {"arch": str(table.loc[reference, "arch"]), "model": kept,
                            "truncate": int(table.loc[kept, "truncate"]),
                            "tested": [k for k, _ in sorted(truncations)], "first_significantly_worse": first_worse,
                            "params": int(table.loc[kept, "params"]),
                            "gain": float(table.loc[reference, "params"] / table.loc[kept, "params"])}
    average = float(np.mean([g["gain"] for g in gains.values()])) if gains else None
    # The paper's statement (one block can go) read literally: the average gain if every model kept k = 1.
    one_block_average = float(np.mean(one_block)) if one_block else None
    return {"by_reference": gains, "average_gain": average, "paper_average_gain": PAPER_TRUNCATION_GAIN,
            "paper_statement": PAPER_TRUNCATION_STATEMENT, "one_block_average_gain": one_block_average}
