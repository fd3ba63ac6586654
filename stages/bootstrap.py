"""Stage bootstrap: AUC confidence intervals and paired comparisons on the ensembled test predictions.

Writes metrics/bootstrap.json (the resampling unit; per model mean AUC and per task AUC with percentile
CIs; pretraining boosts per architecture with per-task DeLong cross-checks; the mean boost across
architectures; best vs worst architecture per init; within- and across-family differences; named
comparisons; truncated models against their k=0 model with the paper's truncation rule and gain;
Holm-adjusted p-values per family of tests; the paper's figures beside ours; the replicates drawn,
kept and dropped) and a CSV for `dvc plots`. The statistical rules are documented in cxrtransfer/stats.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from cxrtransfer import params as schema, stats
from cxrtransfer.chexpert import validate_tasks
from cxrtransfer.cli import load_params, run_stage, section
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import write_csv, write_json
from cxrtransfer.significance import add_holm


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--ensemble", type=Path, required=True, help="the ensemble stage's folder")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON")
    parser.add_argument("--plot", type=Path, required=True, help="CSV, one row per model, for dvc plots")
    return parser.parse_args(argv)


def bootstrap_settings(params: dict[str, Any], source: Path) -> dict[str, Any]:
    """bootstrap.* checked: replicates >= 1, confidence in (0, 1), compare a list of [a, b] pairs; unit
    (patient | study) defaults to patient."""
    config = section(params, "bootstrap", source)
    replicates, confidence = config.get("replicates"), config.get("confidence")
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise InputError(f"bootstrap.replicates must be a positive integer, got {replicates!r}", source)
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise InputError(f"bootstrap.confidence must be in (0, 1), got {confidence!r}", source)
    seed = config.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"bootstrap.seed must be a non-negative integer, got {seed!r}", source)
    unit = config.get("unit", "patient")  # one of patient | study: checked by params.check
    compare = config.get("compare") or []
    if not isinstance(compare, list) or not all(isinstance(p, list) and len(p) == 2 for p in compare):
        raise InputError(f"bootstrap.compare must be a list of [model_a, model_b] pairs, got {compare!r}", source)
    return {"replicates": replicates, "confidence": float(confidence), "seed": seed, "unit": unit,
            "baseline_init": str(config.get("baseline_init", "random")), "compare": compare}


def comparisons(result: stats.Bootstrap, pairs: Sequence[Sequence[str]], selected: str, source: Path
                ) -> dict[str, Any]:
    """Named comparisons "a - b". With params model=all both names must exist; with one architecture
    selected, pairs naming models outside the run are skipped with a reason."""
    out: dict[str, Any] = {}
    for a, b in pairs:
        absent = [name for name in (a, b) if name not in result.models]
        if absent and selected == "all":
            raise InputError(f"bootstrap.compare names model(s) {absent} that the ensemble does not have "
                             f"(have {result.models})", source)
        out[f"{a} - {b}"] = ({"reason": f"model(s) {absent} not in this run (model={selected})"} if absent
                             else stats.paired_difference(result, a, b))
    add_holm(out)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    schema.check(params, ["data", "bootstrap"], args.params)
    tasks = validate_tasks(section(params, "data.tasks", args.params), str(args.params))
    settings = bootstrap_settings(params, args.params)
    selected = str(section(params, "model", args.params))

    models, labels, scores = stats.read_ensemble(args.ensemble, tasks)
    targets, weights = stats.label_arrays(labels, tasks)
    stats.check_both_classes(targets, weights, tasks, args.ensemble / "test_labels.csv")
    clusters = labels["patient"] if settings["unit"] == "patient" else None
    result = stats.bootstrap_aucs(scores, targets, weights, list(models["model"]), tasks,
                                  settings["replicates"], settings["seed"], settings["confidence"], clusters)

    summary = stats.model_summary(result)
    truncation = stats.truncation_differences(result, models)
    baseline_init = settings["baseline_init"]
    metrics = {
        "confidence": settings["confidence"],
        "unit": stats.resampling_unit(labels, settings["unit"]),
        "replicates": {"drawn": result.drawn, "dropped": result.dropped, "kept": result.drawn - result.dropped},
        "studies": len(labels),
        "models": summary,
        "boosts": stats.pretraining_boosts(result, models, baseline_init, (scores, targets, weights)),
        "mean_boost": stats.mean_boost(result, models, baseline_init),
        "best_vs_worst": stats.best_vs_worst(result, models, baseline_init),
        "families": stats.family_differences(result, models, baseline_init),
        "comparisons": comparisons(result, settings["compare"], selected, args.params),
        "truncation": truncation,
        "truncation_efficiency": stats.truncation_efficiency(truncation, models, settings["confidence"]),
        "paper_source": stats.PAPER_SOURCE,
    }
    plot = models[["model", "arch", "init", "family", "truncate", "params"]].copy()
    plot["mean_auc"] = [summary[m]["mean_auc"] for m in plot["model"]]
    plot["ci_low"] = [summary[m]["mean_auc_ci_low"] for m in plot["model"]]
    plot["ci_high"] = [summary[m]["mean_auc_ci_high"] for m in plot["model"]]

    write_json(args.out, metrics)
    write_csv(args.plot, plot.round(6))
    print(f"bootstrap: {len(models)} model(s), {result.drawn - result.dropped}/{result.drawn} replicates of "
          f"{settings['unit']}s kept "
          f"({result.dropped} dropped: a task with one class)")


if __name__ == "__main__":
    run_stage(main)
