"""Stage bootstrap: AUC confidence intervals and paired comparisons on the ensembled test predictions.

Writes metrics/bootstrap.json (the resampling unit; per model mean AUC and per task AUC with percentile
CIs; pretraining boosts per architecture with per-task DeLong cross-checks; the mean boost across
architectures; best vs worst architecture per init; within- and across-family differences; named
comparisons; truncated models against their k=0 model with the paper's truncation rule and gain;
Holm-adjusted p-values per family of tests; the paper's figures beside ours; the replicates drawn,
kept and dropped) and a CSV for `dvc plots`. The statistical rules are documented in cxrtransfer/stats/ (bootstrap.py, comparisons.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from cxrtransfer.data.chexpert import validate_tasks
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import write_csv, write_json
from cxrtransfer.models.architectures import architecture_names
from cxrtransfer.models.flops import truncation_costs
from cxrtransfer.pipeline import config as schema
from cxrtransfer.stats import bootstrap, comparisons, paper, predictions, readers, seed_runs, seeds, selection
from cxrtransfer.stats.significance import add_holm
from cxrtransfer.stats.truncation import truncation_rules


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--ensemble", type=Path, required=True, help="the ensemble stage's folder")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON")
    parser.add_argument("--plot", type=Path, required=True, help="CSV, one row per model, for dvc plots")
    return parser.parse_args(argv)


def named_comparisons(result: bootstrap.Bootstrap, pairs: Sequence[Sequence[str]], selected: str, source: Path
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
                             else bootstrap.paired_difference(result, a, b))
    add_holm(out)
    return out


def truncated_costs(models: Any, image_size: int, num_outputs: int) -> dict[str, Any]:
    """Parameters and forward FLOPs at the configured image size of k = 0..4 of each truncated architecture
    that the architecture table knows (none without data.image_size)."""
    archs = sorted(set(models.loc[models["truncate"] > 0, "arch"]) & set(architecture_names())) if image_size else []
    return {arch: truncation_costs(arch, range(1, 5), image_size, num_outputs) for arch in archs}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    params = schema.load_params(args.params)
    checked = schema.check(params, ["data", "bootstrap"], args.params)
    tasks = validate_tasks(checked["data"]["tasks"], str(args.params))
    settings = checked["bootstrap"]
    selected = str(schema.section(params, "model", args.params))

    models, labels, scores = predictions.read_ensemble(args.ensemble, tasks)
    targets, weights = predictions.label_arrays(labels, tasks)
    predictions.check_both_classes(targets, weights, tasks, args.ensemble / "test_labels.csv")
    clusters = labels["patient"] if settings["unit"] == "patient" else None
    result = bootstrap.bootstrap_aucs(scores, targets, weights, list(models["model"]), tasks,
                                      settings["replicates"], settings["seed"], settings["confidence"], clusters)

    summary = bootstrap.model_summary(result)
    truncation = comparisons.truncation_differences(result, models)
    baseline_init = settings["baseline_init"]
    metrics = {
        "confidence": settings["confidence"],
        "unit": bootstrap.resampling_unit(labels, settings["unit"]),
        "replicates": {"drawn": result.drawn, "dropped": result.dropped, "kept": result.drawn - result.dropped},
        "studies": len(labels),
        "models": summary,
        "boosts": comparisons.pretraining_boosts(result, models, baseline_init, (scores, targets, weights)),
        "mean_boost": comparisons.mean_boost(result, models, baseline_init),
        "best_vs_worst": comparisons.best_vs_worst(result, models, baseline_init),
        "families": comparisons.family_differences(result, models, baseline_init),
        "comparisons": named_comparisons(result, settings["compare"], selected, args.params),
        "truncation": truncation,
        "truncation_efficiency": comparisons.truncation_efficiency(truncation, models, settings["confidence"]),
        "truncation_rules": truncation_rules(truncation, models, settings["confidence"], settings["truncation_margin"],
                                             truncated_costs(models, checked["data"].get("image_size"), len(tasks))),
        "best_vs_worst_reselected": selection.reselected_spread(result, models),
        "paper_source": paper.PAPER_SOURCE,
    }
    metrics.update(readers.study_extras(args.ensemble, result, scores, list(labels["study"]), targets, weights,
                                        settings["replicates"], settings["seed"], clusters))
    metrics["holm_floors"] = selection.holm_floors(metrics, result.drawn - result.dropped)
    repeats = seed_runs.read_seed_predictions(args.ensemble, tasks)
    if repeats is not None:  # more than one training seed: seed means and two-level CIs (stats/seeds.py)
        metrics["seeds"] = seeds.seed_study(models, labels, scores, repeats, tasks, (targets, weights), settings,
                                            args.ensemble / seed_runs.SEED_PREDICTIONS)
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
    schema.run_stage(main)
