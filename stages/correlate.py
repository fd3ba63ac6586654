"""Stage correlate: Spearman correlations and family spreads of the study, next to the paper's.

Per init, over the untruncated models: ImageNet top-1 vs mean AUC (top-1 of the weights used, and of
torchvision's 2020 documentation: what the paper could have used), parameter count vs mean AUC,
parameter count vs pretraining boost (pretrained inits); Holm-adjusted p per correlation, and a percentile
interval of each rho recomputed on every bootstrap replicate (the bootstrap stage's draws: same params,
same seed; cxrtransfer.stats.correlation_intervals). (Within- and
across-family differences need the replicates: the bootstrap stage computes them.)
Reads metrics/bootstrap.json, the ensemble's models.csv (model.json of every model) and the
architecture table; writes metrics/correlations.json and the per-model points as CSV.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from cxrtransfer.data.chexpert import validate_tasks
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import read_json, write_csv, write_json
from cxrtransfer.pipeline import config as schema
from cxrtransfer.stats import bootstrap, predictions
from cxrtransfer.stats import correlations as spearman
from cxrtransfer.stats.correlation_intervals import correlation_intervals


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--bootstrap", type=Path, required=True, help="metrics JSON of the bootstrap stage")
    parser.add_argument("--ensemble", type=Path, required=True, help="the ensemble stage's folder (models.csv)")
    parser.add_argument("--architectures", type=Path, default=None,
                        help="architecture table CSV (arch, imagenet_top1, optional imagenet_top1_2020, ...); "
                             "default: cxrtransfer's own")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON")
    parser.add_argument("--points", type=Path, required=True, help="CSV, one row per model, for plots and the report")
    return parser.parse_args(argv)




def architecture_table(path: Path | None) -> pd.DataFrame:
    if path is None:
        # Deferred: the packaged table's module imports torch and timm, which a given table does not need.
        from cxrtransfer.models.architectures import load_architecture_table
        return load_architecture_table()
    if not path.is_file():
        raise InputError("architecture table not found", path)
    table = pd.read_csv(path)
    missing = [c for c in ("arch", "imagenet_top1") if c not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", path, column=missing[0])
    return table


def replicate_mean_aucs(folder: Path, tasks: list[str], settings: dict) -> dict[str, Any]:
    """Each model's mean AUC on every kept replicate: the bootstrap stage's draws (same call, same params)."""
    models, labels, scores = predictions.read_ensemble(folder, tasks)
    targets, weights = predictions.label_arrays(labels, tasks)
    clusters = labels["patient"] if settings["unit"] == "patient" else None
    result = bootstrap.bootstrap_aucs(scores, targets, weights, list(models["model"]), tasks, settings["replicates"],
                                      settings["seed"], settings["confidence"], clusters)
    return dict(zip(result.models, result.mean_replicates()))


def add_intervals(correlations: dict[str, Any], intervals: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Each correlation entry gets its interval (ci_low, ci_high, ci_replicates) beside rho and p."""
    for name, by_init in intervals.items():
        for init, interval in by_init.items():
            if init in correlations.get(name, {}):
                correlations[name][init].update(interval)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = schema.check(schema.load_params(args.params), ["data", "bootstrap"], args.params)
    baseline_init = settings["bootstrap"]["baseline_init"]
    summary = read_json(args.bootstrap)
    if not isinstance(summary.get("models"), dict) or not summary["models"]:
        raise InputError("no 'models' section", args.bootstrap)
    models_path = args.ensemble / "models.csv"
    if not models_path.is_file():
        raise InputError("not found (run the ensemble stage)", models_path)
    models = pd.read_csv(models_path, dtype={"model": str, "arch": str, "init": str, "family": str})
    absent = sorted(set(summary["models"]) - set(models["model"]))
    if absent:
        raise InputError(f"model(s) {absent} of {args.bootstrap} not in the ensemble's models table", models_path)

    mean_auc = {name: entry["mean_auc"] for name, entry in summary["models"].items()}
    points = spearman.correlation_points(mean_auc, models, architecture_table(args.architectures),
                                         summary.get("boosts", {}))
    correlations = spearman.study_correlations(points, baseline_init)
    tasks = validate_tasks(settings["data"]["tasks"], str(args.params))
    add_intervals(correlations, correlation_intervals(points, replicate_mean_aucs(args.ensemble, tasks, settings["bootstrap"]),
                                                      baseline_init, settings["bootstrap"]["confidence"]))
    correlations["baseline_init"] = baseline_init
    if "seeds" in summary:  # more than one training seed: the same correlations on the seed means
        seed_auc = {name: entry["mean_auc"] for name, entry in summary["seeds"]["models"].items()}
        seed_points = spearman.correlation_points(seed_auc, models, architecture_table(args.architectures),
                                                  summary["seeds"]["boosts"])
        correlations["seed_means"] = spearman.study_correlations(seed_points, baseline_init)

    write_json(args.out, correlations)
    write_csv(args.points, points)
    for name in spearman.TOP1_COLUMNS.values():
        for init, value in correlations[name].items():
            rho = "n/a" if value["rho"] is None else f"{value['rho']:.3f}"
            print(f"correlate: {init}: {name} rho={rho} (n={value['n']}, paper {value['paper_rho']})")


if __name__ == "__main__":
    schema.run_stage(main)
