"""The study report's text: markdown tables from the bootstrap and correlation summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

CORRELATION_TITLES = {
    "imagenet_top1_vs_auc": "ImageNet top-1 (weights used) vs mean AUC",
    "imagenet_top1_2020_vs_auc": "ImageNet top-1 (2020 docs) vs mean AUC",
    "params_vs_auc": "parameters vs mean AUC",
    "params_vs_boost": "parameters vs pretraining boost",
}


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table; missing values as an en dash."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def fmt_ci(value: Any, low: Any, high: Any, digits: int = 3, signed: bool = False) -> str:
    """'0.871 [0.850, 0.894]'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    sign = "+" if signed else ""
    return f"{value:{sign}.{digits}f} [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def fmt_p(p: Any) -> str:
    """p-value: three significant digits; values rounded to 0 in the metrics files as '< 1e-06'."""
    if p is None:
        return "–"
    return "< 1e-06" if p == 0 else f"{p:.3g}"


def fmt_p_holm(entry: Mapping[str, Any] | None) -> str:
    """'p (Holm p)' of a test entry."""
    return "–" if not entry or entry.get("p") is None else f"{fmt_p(entry['p'])} ({fmt_p(entry.get('p_holm'))})"


def fmt_params(count: Any) -> str:
    return "–" if count is None or pd.isna(count) else f"{count / 1e6:.2f} M"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def inits_in_order(inits: Sequence[str], baseline_init: str) -> list[str]:
    """The baseline init first, then the others alphabetically."""
    unique = sorted(set(inits))
    return ([baseline_init] if baseline_init in unique else []) + [i for i in unique if i != baseline_init]


def architecture_table(points: pd.DataFrame, bootstrap: Mapping[str, Any], baseline_init: str) -> str:
    """One row per architecture: family, params, ImageNet top-1 (weights used; 2020 docs), mean AUC [CI]
    per init, boost [CI], p and Holm p per pretrained init, and the paper's boost."""
    inits = inits_in_order(points["init"], baseline_init)
    pretrained = [i for i in inits if i != baseline_init]
    header = ["Architecture", "Family", "Params", "ImageNet top-1", "top-1 (2020)"] + [f"AUC {i}" for i in inits]
    header += [f"Boost {i} − {baseline_init}" for i in pretrained] + [f"p (Holm) {i}" for i in pretrained]
    header += ["Paper boost"] if pretrained else []
    rows = []
    for arch, group in points.groupby("arch"):
        by_init = group.set_index("init")
        row = [arch, group["family"].iloc[0], fmt_params(group["params"].max()), fmt(group["imagenet_top1"].iloc[0], 2),
               fmt(group["imagenet_top1_2020"].iloc[0], 2) if "imagenet_top1_2020" in group else "–"]
        for init in inits:
            if init in by_init.index:
                entry = bootstrap["models"][by_init.loc[init, "model"]]
                row.append(fmt_ci(entry["mean_auc"], entry["mean_auc_ci_low"], entry["mean_auc_ci_high"]))
            else:
                row.append("–")
        boosts = [bootstrap.get("boosts", {}).get(arch, {}).get(i) for i in pretrained]
        row += [fmt_ci(b["diff"], b["ci_low"], b["ci_high"], signed=True) if b else "–" for b in boosts]
        row += [fmt_p_holm(b) for b in boosts]
        if pretrained:
            row.append(fmt(next((b.get("paper") for b in boosts if b), None)))
        rows.append((group["params"].max(), arch, row))
    return markdown_table(header, [row for _, _, row in sorted(rows, key=lambda r: (r[0], r[1]))])


def task_table(bootstrap: Mapping[str, Any]) -> str:
    """Per model, AUC [CI] of every evaluated task."""
    models = sorted(bootstrap["models"])
    tasks = list(next(iter(bootstrap["models"].values()))["tasks"])
    rows = [[m] + [fmt_ci(e["auc"], e["ci_low"], e["ci_high"]) for e in
                   (bootstrap["models"][m]["tasks"][t] for t in tasks)] for m in models]
    return markdown_table(["Model"] + tasks, rows)


def delong_table(bootstrap: Mapping[str, Any]) -> str:
    """Per-task pretraining boosts: bootstrap p against DeLong's p (a cross-check; DeLong treats studies
    as independent), Holm-adjusted within each init."""
    rows = []
    for arch, by_init in sorted(bootstrap.get("boosts", {}).items()):
        for init, boost in sorted(by_init.items()):
            for task, value in boost.get("tasks", {}).items():
                rows.append([arch, init, task, fmt_ci(value["diff"], value["ci_low"], value["ci_high"], signed=True),
                             fmt_p(value["p"]), fmt_p(value.get("p_holm")), fmt_p(value["p_delong"]),
                             fmt_p(value.get("p_delong_holm"))])
    return markdown_table(["Architecture", "Init", "Task", "Δ AUC", "p bootstrap", "p Holm", "p DeLong",
                           "p DeLong Holm"], rows)


def correlation_table(correlations: Mapping[str, Any]) -> str:
    """Spearman rho, p, Holm p and n per correlation and init, next to the paper's rho and p."""
    rows = []
    for key, title in CORRELATION_TITLES.items():
        for init, value in sorted(correlations.get(key, {}).items()):
            note = value.get("reason", "")
            rows.append([title, init, fmt(value["rho"]), fmt_p(value["p"]), fmt_p(value.get("p_holm")), value["n"],
                         fmt(value["paper_rho"]), value.get("paper_p") or "–", note])
    return markdown_table(["Correlation", "Init", "ρ", "p", "p Holm", "n", "Paper ρ", "Paper p", "Note"], rows)


def mean_boost_table(bootstrap: Mapping[str, Any], baseline_init: str) -> str:
    """The mean over architectures of the per-architecture boost, per pretrained init, beside the paper's."""
    rows = [[f"{init} − {baseline_init}", v["architectures"], fmt_ci(v["diff"], v["ci_low"], v["ci_high"], signed=True),
             fmt_p(v["p"]), fmt_p(v.get("p_holm")), fmt(v["paper"])]
            for init, v in sorted(bootstrap.get("mean_boost", {}).items())]
    return markdown_table(["Boost", "Architectures", "Mean boost", "p", "p Holm", "Paper (ImageNet − none)"], rows)


def best_worst_table(bootstrap: Mapping[str, Any]) -> str:
    """Best minus worst architecture per init, beside the paper's (no pretraining: InceptionV3 − MobileNetV2)."""
    rows = []
    for init, v in sorted(bootstrap.get("best_vs_worst", {}).items()):
        paper = v.get("paper")
        paper_text = (f"{paper['best']} {paper['best_auc']:.3f} − {paper['worst']} {paper['worst_auc']:.3f} = "
                      f"{paper['diff']:.3f}" + (" (significant)" if paper.get("significant") else "")) if paper else "–"
        rows.append([init, f"{v['best']} {v['best_auc']:.3f}", f"{v['worst']} {v['worst_auc']:.3f}",
                     fmt_ci(v["diff"], v["ci_low"], v["ci_high"], signed=True), fmt_p(v["p"]), fmt_p(v.get("p_holm")),
                     paper_text])
    return markdown_table(["Init", "Best", "Worst", "Best − worst", "p", "p Holm", "Paper"], rows)


def family_table(bootstrap: Mapping[str, Any]) -> str:
    """Within each family the largest minus the smallest model, and across families best − worst family mean."""
    rows = []
    for init, entry in sorted(bootstrap.get("families", {}).items()):
        for family, v in entry["within"].items():
            paper = f"{v['paper_pair']} {fmt(v['paper'], 3)}" if v.get("paper") is not None else "–"
            if v["diff"] is None:
                rows.append([init, family, v.get("reason", "–"), "–", "–", "–", paper])
                continue
            rows.append([init, family, f"{v['largest']} − {v['smallest']}",
                         fmt_ci(v["diff"], v["ci_low"], v["ci_high"], signed=True), fmt_p(v["p"]),
                         fmt_p(v.get("p_holm")), paper])
        across = entry["across"]
        if across.get("diff") is not None:
            rows.append([init, "across families", f"{across['best_family']} − {across['worst_family']} (family means)",
                         fmt_ci(across["diff"], across["ci_low"], across["ci_high"], signed=True), fmt_p(across["p"]),
                         "–", "–"])
    return markdown_table(["Init", "Family", "Largest − smallest", "Δ mean AUC", "p", "p Holm", "Paper"], rows)


def truncation_table(models: pd.DataFrame, bootstrap: Mapping[str, Any]) -> str:
    """Truncated models and their k=0 models: params, mean AUC [CI], difference to k=0 [CI], p, Holm p;
    then the kept k per architecture (the paper's rule) and the average gain beside the paper's 3.25x."""
    truncation = bootstrap.get("truncation", {})
    efficiency = bootstrap.get("truncation_efficiency", {})
    references = set(efficiency.get("by_reference", {}))
    shown = models[models["model"].isin(list(truncation) + list(references))]
    rows = []
    for _, row in shown.sort_values(["arch", "init", "truncate"]).iterrows():
        entry = bootstrap["models"].get(row["model"])
        if entry is None:
            continue
        auc = fmt_ci(entry["mean_auc"], entry["mean_auc_ci_low"], entry["mean_auc_ci_high"])
        difference = truncation.get(row["model"])
        if difference is None:
            diff, p, holm = "(reference)", "–", "–"
        elif difference["diff"] is None:
            diff, p, holm = difference.get("reason", "–"), "–", "–"
        else:
            diff = fmt_ci(difference["diff"], difference["ci_low"], difference["ci_high"], signed=True)
            p, holm = fmt_p(difference["p"]), fmt_p(difference.get("p_holm"))
        rows.append([row["model"], row["arch"], row["init"], int(row["truncate"]), fmt_params(row["params"]), auc,
                     diff, p, holm])
    table = markdown_table(["Model", "Architecture", "Init", "k", "Params", "Mean AUC", "Δ vs k=0", "p", "p Holm"], rows)
    gains = []
    for reference, g in sorted(efficiency.get("by_reference", {}).items()):
        worse = (f"k={g['first_significantly_worse']} is significantly worse"
                 if g["first_significantly_worse"] is not None else "no tested k is significantly worse")
        gains.append(f"- {g['arch']} ({reference}): tested k = {', '.join(map(str, g['tested']))}; {worse}; "
                     f"kept k = {g['truncate']} ({g['model']}), {g['gain']:.2f}x fewer parameters")
    if efficiency.get("average_gain") is not None:
        gains.append(f"- Average parameter-efficiency gain: {efficiency['average_gain']:.2f}x "
                     f"(paper: {efficiency['paper_average_gain']:g}x; {efficiency['paper_statement']})")
    if efficiency.get("one_block_average_gain") is not None:
        gains.append(f"- Had every model kept k = 1 (the paper's statement read literally), the average gain of these "
                     f"models would be {efficiency['one_block_average_gain']:.2f}x")
    return table + ("\n\n" + "\n".join(gains) if gains else "")


def resampling_text(bootstrap: Mapping[str, Any]) -> str:
    """The resampling unit, stated with the numbers that decide whether it matters."""
    unit = bootstrap.get("unit")
    if not unit:
        return "Resampling unit: test studies."
    text = (f"Resampling unit: **{unit['resampled']}** ({unit['patients']} test patients, {unit['studies']} test studies, "
            f"at most {unit['max_studies_per_patient']} studies per patient")
    if unit["max_studies_per_patient"] == 1:
        return text + "; one study per patient, so these are exactly the replicates of a study bootstrap)."
    if unit["resampled"] == "patient":
        return text + "; all studies of a drawn patient come along, so correlated studies do not narrow the intervals)."
    return text + "; studies of one patient are drawn independently, so intervals and p-values are too narrow)."


def summary_markdown(bootstrap: Mapping[str, Any], correlations: Mapping[str, Any], points: pd.DataFrame,
                     models: pd.DataFrame, figures: Sequence[str], extra: str = "") -> str:
    """reports/summary.md; `figures` are the image paths relative to it; `extra`: sections put before them."""
    baseline_init = correlations.get("baseline_init", "random")
    replicates = bootstrap["replicates"]
    confidence = bootstrap.get("confidence", 0.95)
    tasks = list(next(iter(bootstrap["models"].values()))["tasks"])
    source = bootstrap.get("paper_source", "the paper")
    parts = [
        "# CheXtransfer study summary",
        f"{len(bootstrap['models'])} model(s) scored on {bootstrap['studies']} test studies; tasks: {', '.join(tasks)}. "
        f"Mean AUC = mean over tasks of the study-level AUROC (max over a study's views). "
        f"{confidence * 100:g} % percentile bootstrap intervals over {replicates['kept']} replicates "
        f"({replicates['dropped']} of {replicates['drawn']} dropped because a task had a single class). "
        + resampling_text(bootstrap),
        f"Paper figures: {source} (no pretraining = our `{baseline_init}`; with pretraining = ImageNet, beside every "
        "other init). p Holm: Holm-adjusted within each family of tests (one table column, per init).",
        "## Models", architecture_table(points, bootstrap, baseline_init) if len(points) else "(no untruncated models)",
        "## Mean pretraining boost across architectures",
        "Per replicate, the mean over architectures of (pretrained − baseline) mean AUC.",
        mean_boost_table(bootstrap, baseline_init),
        "## Best versus worst architecture",
        "Chosen by full-set mean AUC after seeing the data, as in the paper.", best_worst_table(bootstrap),
        "## AUC per task", task_table(bootstrap),
        "## Per-task boosts: bootstrap against DeLong", delong_table(bootstrap),
        "## Correlations (Spearman)",
        "ImageNet top-1 of the weights used and of the values the paper could have used (torchvision's 2020 "
        "documentation, other sources where torchvision had no such model; `cxrtransfer/models/architectures.csv`).",
        correlation_table(correlations),
        "## Family versus size", family_table(bootstrap),
    ]
    if bootstrap.get("truncation"):
        parts += ["## Truncation", truncation_table(models, bootstrap)]
    comparisons = bootstrap.get("comparisons", {})
    if comparisons:
        rows = [[name, fmt_ci(c["diff"], c["ci_low"], c["ci_high"], signed=True), fmt_p(c["p"]), fmt_p(c.get("p_holm"))]
                if "diff" in c else [name, c.get("reason", "–"), "–", "–"] for name, c in sorted(comparisons.items())]
        parts += ["## Comparisons", markdown_table(["a − b", "Δ mean AUC", "p", "p Holm"], rows)]
    if extra:
        parts.append(extra)
    if figures:
        parts += ["## Figures", "\n\n".join(f"![{Path(f).stem}]({Path(f).as_posix()})" for f in figures)]
    parts += ["## Method", (
        "Bootstrap replicates resample test patients (or studies, `bootstrap.unit`) with replacement (seeded) and are "
        "shared by all models, so differences are paired. A replicate in which any task has a single class is dropped "
        "for every model. Intervals are percentile intervals; point estimates use the full test set. "
        "p-values are two-sided bootstrap p-values with the +1 correction, "
        "p = min(1, 2 (1 + min(#{Δ ≤ 0}, #{Δ ≥ 0})) / (R + 1)); Holm's step-down adjustment per family of tests. "
        "DeLong's test (DeLong et al. 1988, Sun & Xu 2014 algorithm) cross-checks single-task differences. "
        f"Truncation keeps the largest k such that no k' ≤ k is significantly worse than k = 0 (Δ < 0 and "
        f"p < {1 - confidence:.2f}).")]
    return "\n\n".join(parts) + "\n"
