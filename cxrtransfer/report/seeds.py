"""The report's training-seed section and figure (only with more than one seed: bootstrap.json "seeds").

The table puts each model's per-seed AUCs, their mean and between-seed SD beside the test-set-only CI of
the mean and the two-level CI (seeds and patients resampled); one sentence per headline comparison says
whether its verdict on seed 0 alone (the single run of today's tables) survives seed noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .figures import _new_figure, _save
from .markdown import CORRELATION_TITLES, fmt, fmt_ci, fmt_p, markdown_table

SEED_FIGURE = "auc_by_seed.png"


def excludes_zero(entry: Mapping[str, Any]) -> bool:
    """A difference whose CI excludes 0 (the paper's rule for a significant difference)."""
    return entry.get("diff") is not None and (entry["ci_low"] > 0 or entry["ci_high"] < 0)


def verdict(single: Mapping[str, Any], averaged: Mapping[str, Any]) -> str:
    """Whether a comparison's verdict on seed 0 alone holds on seed-averaged AUCs with two-level CIs."""
    before, after = excludes_zero(single), excludes_zero(averaged)
    if before and after and np.sign(single["diff"]) == np.sign(averaged["diff"]):
        return "**survives seed noise**"
    if before:
        return "**does not survive seed noise** (significant on seed 0 alone, not on the seed mean)"
    if after:
        return "significant only on the seed mean"
    return "not significant either way"


def sentence(name: str, single: Mapping[str, Any] | None, averaged: Mapping[str, Any] | None) -> str | None:
    if not single or not averaged or single.get("diff") is None or averaged.get("diff") is None:
        return None
    return (f"- {name}: seed 0 {fmt_ci(single['diff'], single['ci_low'], single['ci_high'], signed=True)} "
            f"(test set only); seed mean {fmt_ci(averaged['diff'], averaged['ci_low'], averaged['ci_high'], signed=True)} "
            f"(seeds and patients, p {fmt_p(averaged.get('p'))}): {verdict(single, averaged)}.")


def headline_sentences(bootstrap: Mapping[str, Any]) -> list[str]:
    """Boosts, mean boosts, best vs worst and truncations: seed 0 against the seed mean."""
    seeds = bootstrap["seeds"]
    lines = []
    for arch, by_init in sorted(bootstrap.get("boosts", {}).items()):
        for init, single in sorted(by_init.items()):
            lines.append(sentence(f"{arch} boost ({init})", single, seeds["boosts"].get(arch, {}).get(init)))
    for init, single in sorted(bootstrap.get("mean_boost", {}).items()):
        lines.append(sentence(f"mean boost ({init})", single, seeds["mean_boost"].get(init)))
    for init, single in sorted(bootstrap.get("best_vs_worst", {}).items()):
        averaged = seeds["best_vs_worst"].get(init, {})
        pair = f"{single['best']} − {single['worst']}"
        if (averaged.get("best"), averaged.get("worst")) != (single["best"], single["worst"]):
            pair += f" (seed mean: {averaged.get('best')} − {averaged.get('worst')})"
        lines.append(sentence(f"best − worst ({init}): {pair}", single, averaged))
    for model, single in sorted(bootstrap.get("truncation", {}).items()):
        lines.append(sentence(f"{model} − its k = 0 model", single, seeds["truncation"].get(model)))
    return [line for line in lines if line]


def seed_table(seeds: Mapping[str, Any]) -> str:
    first = {m: p for by_init in seeds["rank_first"].values() for m, p in by_init.items()}
    header = ["Model"] + [f"Seed {s}" for s in seeds["seeds"]] + ["Seed mean", "Between-seed SD", "Test-set CI",
                                                                  "Two-level CI", "P(first)"]
    rows = [[model] + [fmt(e["seed_auc"][str(s)]) for s in seeds["seeds"]] +
            [fmt(e["mean_auc"]), fmt(e["seed_sd"]), f"[{fmt(e['test_ci_low'])}, {fmt(e['test_ci_high'])}]",
             f"[{fmt(e['ci_low'])}, {fmt(e['ci_high'])}]", fmt(first.get(model), 2)]
            for model, e in seeds["models"].items()]
    return markdown_table(header, rows)


def seed_correlations(correlations: Mapping[str, Any]) -> str:
    rows = [[CORRELATION_TITLES[name], init, fmt(v["rho"]), fmt_p(v["p"]), v["n"]]
            for name, by_init in correlations.get("seed_means", {}).items() if name in CORRELATION_TITLES
            for init, v in sorted(by_init.items())]
    return markdown_table(["Correlation (seed means)", "Init", "ρ", "p", "n"], rows) if rows else ""


def seeds_markdown(bootstrap: Mapping[str, Any], correlations: Mapping[str, Any]) -> str:
    """The section, or "" with a single seed."""
    seeds = bootstrap.get("seeds")
    if not seeds:
        return ""
    parts = ["## Training seeds", (
        f"Every model trained with seeds {', '.join(map(str, seeds['seeds']))}. Mean AUC per seed, their mean and "
        "between-seed SD; the test-set CI resamples patients with the seeds fixed; the two-level CI resamples each "
        "model's seeds and the patients together (paired across models). P(first): the share of two-level replicates "
        f"in which the model has the highest AUC of its init. With {len(seeds['seeds'])} seeds the seed part of the "
        "two-level CI is coarse."), seed_table(seeds),
        "### Do the headline comparisons survive seed noise?", "\n".join(headline_sentences(bootstrap)) or "(none)"]
    table = seed_correlations(correlations)
    return "\n" + "\n\n".join(parts + ([table] if table else [])) + "\n"


def write_seed_figure(folder: Path, bootstrap: Mapping[str, Any]) -> list[str]:
    """Per model: each seed's mean AUC (dots) over the seed mean with its two-level CI; [] with one seed."""
    seeds = bootstrap.get("seeds")
    if not seeds:
        return []
    models = list(seeds["models"])
    figure, ax = _new_figure(6.0, 1.2 + 0.45 * len(models))
    for y, model in enumerate(models):
        entry = seeds["models"][model]
        ax.errorbar(entry["mean_auc"], y, xerr=[[entry["mean_auc"] - entry["ci_low"]], [entry["ci_high"] - entry["mean_auc"]]],
                    fmt="D", color="black", capsize=3, label="seed mean, two-level CI" if y == 0 else None)
        ax.scatter(list(entry["seed_auc"].values()), [y] * len(entry["seed_auc"]), color="tab:orange", zorder=3,
                   label="one seed" if y == 0 else None)
    ax.set_yticks(range(len(models)), models)
    ax.set_xlabel("mean AUC (test set)")
    ax.legend(loc="best", fontsize="small")
    _save(figure, folder / SEED_FIGURE)
    return [SEED_FIGURE]
