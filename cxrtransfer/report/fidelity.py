"""The report's paper-fidelity section: what the study can and cannot claim, beside the paper's figures.

The scoring order, the smallest Holm-adjusted p each family of tests can reach with its replicates, the
best-minus-worst spread re-selected in every replicate, Spearman's rho with its bootstrap interval, and
truncation under two rules (non-inferiority at a margin; the paper's no significant drop).
"""

from __future__ import annotations

from typing import Any, Mapping

from .markdown import CORRELATION_TITLES, fmt, fmt_ci, fmt_p, markdown_table

SCORING_ORDER = (
    "Scoring order of the CheXpert reference code (predict/predict.py): per checkpoint, the max over a study's views "
    "of the logits (U-MultiClass: element-wise max of the negative and positive logits, then the softmax over the "
    "two), then probabilities, then the mean over the kept checkpoints; validation selection scores each "
    "checkpoint the same way.")


def holm_floor_table(bootstrap: Mapping[str, Any], alpha: float) -> str:
    """Per family: tests, replicates, smallest raw and Holm-adjusted p, and whether it can reach alpha."""
    rows = [[f["family"], f["tests"], f["replicates"], fmt_p(f["smallest_p"]), fmt_p(f["smallest_holm_p"]),
             "yes" if f["smallest_holm_p"] < alpha else "**no**"] for f in bootstrap.get("holm_floors", [])]
    return markdown_table(["Family", "Tests m", "Replicates R", "Smallest p 2/(R+1)", "Smallest Holm p",
                           f"Can reject at {alpha:g}"], rows)


def spread_table(bootstrap: Mapping[str, Any]) -> str:
    """Per init: the as-picked best − worst test beside the spread re-selected in every replicate."""
    picked = bootstrap.get("best_vs_worst", {})
    rows = []
    for init, entry in sorted(bootstrap.get("best_vs_worst_reselected", {}).items()):
        as_picked = picked.get(init, {})
        rows.append([init, entry["models"], f"{entry['best']} − {entry['worst']}",
                     fmt_ci(as_picked.get("diff"), as_picked.get("ci_low"), as_picked.get("ci_high"), signed=True),
                     fmt_p(as_picked.get("p")),
                     fmt_ci(entry["spread"], entry["ci_low"], entry["ci_high"]), fmt(entry["replicate_mean"]),
                     f"{entry['best_kept_share']:.0%} / {entry['worst_kept_share']:.0%}"])
    return markdown_table(["Init", "Models", "As picked", "As picked Δ [CI]", "p (ignores selection)",
                           "Re-selected spread [CI]", "Mean replicate spread", "Best / worst kept"], rows)


def spearman_table(correlations: Mapping[str, Any]) -> str:
    """Every correlation: rho with its bootstrap percentile interval, scipy's p, n, the paper's rho."""
    rows = []
    for name, title in CORRELATION_TITLES.items():
        for init, entry in sorted(correlations.get(name, {}).items()):
            rho = entry.get("rho")
            interval = fmt(rho) if rho is None or entry.get("ci_low") is None else fmt_ci(rho, entry["ci_low"], entry["ci_high"])
            rows.append([title, init, interval, fmt_p(entry.get("p")), entry.get("n"),
                         fmt(entry.get("paper_rho"))])
    return markdown_table(["Correlation", "Init", "ρ [bootstrap CI]", "p", "n", "Paper ρ"], rows)


def truncation_rules_table(bootstrap: Mapping[str, Any]) -> str:
    """Per truncated architecture: the largest k under each rule with its parameter and FLOPs gains, the means,
    and the paper's 3.25x with the choices of k that reproduce it."""
    rules = bootstrap.get("truncation_rules") or {}
    by_reference = rules.get("by_reference", {})
    if not by_reference:
        return "(no truncated models)"
    names = {"non_inferior": f"non-inferior (margin {rules['margin']:g})", "no_significant_drop": "no significant drop"}
    rows = [[entry["arch"], ", ".join(map(str, entry["tested"]))] +
            [f"k={entry[r]['k']}: {fmt(entry[r]['params_gain'], 2)}x / {fmt(entry[r]['flops_gain'], 2)}x" for r in names]
            for _, entry in sorted(by_reference.items())]
    for kind in ("arithmetic", "geometric"):
        rows.append([f"mean ({kind})", ""] + [f"{fmt(rules['means'][r]['params_gain'][kind], 2)}x / "
                                              f"{fmt(rules['means'][r]['flops_gain'][kind], 2)}x" for r in names])
    table = markdown_table(["Architecture", "k tested"] + [f"{n}: params / training FLOPs gain" for n in names.values()],
                           rows)
    combinations = rules.get("paper_gain_combinations", [])
    observed = "; ".join(", ".join(f"{a} k{k}" for a, k in sorted(c["k"].items())) + f" ({c['mean']:.3f}x)"
                         for c in combinations[:3]) or "none of the k choices"
    return table + (f"\n\nPaper: {rules['paper_average_gain']}x average parameter gain without a significant drop. "
                    f"Observation (block structure, not a result): mean parameter gains within 0.01 of it: {observed}.")


def fidelity_markdown(bootstrap: Mapping[str, Any], correlations: Mapping[str, Any]) -> str:
    """The section, appended to reports/summary.md."""
    alpha = round(1.0 - bootstrap.get("confidence", 0.95), 12)
    return "\n\n".join([
        "## Paper fidelity", SCORING_ORDER,
        "### Smallest attainable Holm-adjusted p per family",
        "A bootstrap p is at least 2/(R+1); Holm multiplies the smallest of m by m. A family whose smallest Holm p "
        f"is not below {alpha:g} cannot show a significant difference whatever the data.",
        holm_floor_table(bootstrap, alpha),
        "### Best − worst: as picked and re-selected in every replicate",
        "The paper picks the best and the worst architecture on the full test set, then tests their difference; "
        "re-selecting them inside every replicate gives the interval of the spread across architectures.",
        spread_table(bootstrap),
        "### Spearman correlations with bootstrap intervals",
        "ρ recomputed on every shared replicate (percentile interval) beside scipy's p on the full test set.",
        spearman_table(correlations),
        "### Truncation: two rules",
        "Largest k such that every k' ≤ k keeps its rule: non-inferior (lower CI bound of truncated − full mean AUC "
        "above −margin) or no significant drop (the paper's rule; absence of evidence, not equivalence). Gains over "
        "k = 0 in parameters and in training FLOPs (forward + backward at the configured image size).",
        truncation_rules_table(bootstrap),
    ]) + "\n"
