"""Stage ensemble: each model's kept checkpoints scored per study in the CheXpert reference order (per
checkpoint the max over a study's views of the logits, then probabilities), then averaged.

Reads the models that params declare, and nothing else on disk: <arch>-<init> for every architecture
x init (`architectures`, `inits`) from --models, <arch>-k<k> for every truncated model (`truncation`)
from --truncated; of these, only the architecture named by params `model` ("all" keeps every model).
A declared model without its folder is an error naming it. Writes, into --out:
test_predictions.csv (model, study, one column per task), test_labels.csv (study, patient, raw
labels) and models.csv (model, arch, init, family, truncate, params, checkpoints, folder); and
metrics/ensemble.json (per model: AUC per task, mean AUC, number of checkpoints). With more than one
training seed (params `seeds`), seed_predictions.csv (model, seed, study, tasks): the repeats from --seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import pandas as pd

from cxrtransfer.data import external
from cxrtransfer.data.chexpert import validate_tasks
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import atomic_dir, write_json
from cxrtransfer.pipeline import config as schema
from cxrtransfer.pipeline.grid import declared_models, seed_runs
from cxrtransfer.stats import predictions as inputs
from cxrtransfer.stats import readers as extras
from cxrtransfer.stats import seed_runs as repeat_runs
from cxrtransfer.stats.auc import auroc_matrix


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--models", type=Path, required=True, help="folder of the <arch>-<init> model folders")
    parser.add_argument("--truncated", type=Path, required=True, help="folder of the <arch>-k<k> model folders")
    parser.add_argument("--seeds", type=Path, default=Path("data/seeds"), help="folder of the repeat runs (params seeds)")
    parser.add_argument("--index", type=Path, required=True, help="the cache's index table (labels)")
    parser.add_argument("--split", type=Path, required=True, help="the split table")
    parser.add_argument("--out", type=Path, required=True, help="folder for the ensembled predictions")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON")
    return parser.parse_args(argv)


def outside_inputs(params: dict, source: Path, tasks: list[str], studies: list[str]
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """External models (table, predictions) and reader reads that params `external` / `readers` name,
    checked against the test studies; an absent section means none."""
    settings = {name: schema.check_section(params.get(name) or {}, name, schema.SECTIONS[name], source)
                for name in ("external", "readers")}
    models, predictions = external.read_external_models(settings["external"]["dir"], settings["external"]["models"],
                                                        tasks, settings["external"]["tasks"] or tasks, studies)
    reads = external.read_readers(settings["readers"]["dir"], settings["readers"]["files"], tasks, studies)
    return models, predictions, reads


def outside_scores(models: pd.DataFrame, predictions: pd.DataFrame, tasks: list[str]
                   ) -> tuple[dict, dict]:
    """model -> scores (studies in the labels' order, tasks) and model -> the tasks it has."""
    scores = {name: predictions[predictions["model"] == name][tasks].to_numpy(float) for name in models["model"]}
    return scores, {name: has.split(";") for name, has in zip(models["model"], models["tasks"])}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    params = schema.load_params(args.params)
    settings = schema.check(params, ["data"], args.params)
    tasks = validate_tasks(settings["data"]["tasks"], str(args.params))
    selected = str(schema.section(params, "model", args.params))

    declared = declared_models(params, selected)
    if not declared:
        raise InputError(f"no declared model of architecture {selected!r} (params architectures, truncation)",
                         args.params)
    folders = [(args.truncated if model.truncate else args.models) / model.name for model in declared]
    for model, folder in zip(declared, folders):
        if not folder.is_dir():
            raise InputError(f"model {model.name} is declared by the params but its folder is missing "
                             f"(run its stage, or `dvc pull` it)", folder)

    test = inputs.read_test_split(args.split)
    labels = inputs.study_labels(args.index, test, tasks)
    targets, weights = inputs.label_arrays(labels, tasks)
    inputs.check_both_classes(targets, weights, tasks, args.index)
    outside = outside_inputs(params, args.params, tasks, list(labels["study"]))   # checked before any output
    runs = [(r.model, r.seed, r.arch, args.seeds / Path(r.run_folder).name / "model") for r in seed_runs(params, selected)]
    repeats = repeat_runs.seed_run_predictions(runs, test, tasks) if runs else None

    rows, frames = [], []
    for model, folder in zip(declared, folders):
        description = inputs.read_model_description(folder)
        if description["arch"] != model.arch:
            raise InputError(f"holds a {description['arch']} model, not {model.arch}", folder / inputs.MODEL_FILE)
        per_study, n_checkpoints = inputs.study_predictions(inputs.read_predictions(folder, tasks), test, tasks,
                                                            folder / inputs.PREDICTIONS_FILE)
        per_study.insert(0, "model", model.name)
        frames.append(per_study.drop(columns="patient"))
        rows.append({"model": model.name, **description, "checkpoints": n_checkpoints, "folder": str(folder)})
    models = pd.DataFrame(rows, columns=list(inputs.MODEL_COLUMNS) + ["folder"])
    predictions = pd.concat(frames, ignore_index=True)

    # Studies come out of study_level sorted, as do the labels: the rows line up with the labels.
    scores = predictions[tasks].to_numpy(float).reshape(len(models), len(labels), len(tasks))
    aucs = auroc_matrix(scores, targets, weights)
    metrics = {"studies": len(labels), "models": {
        row["model"]: {"auc": dict(zip(tasks, map(float, aucs[m]))), "mean_auc": float(aucs[m].mean()),
                       "checkpoints": row["checkpoints"]}
        for m, row in models.iterrows()}}

    metrics["external"] = extras.external_point_aucs(*outside_scores(*outside[:2], tasks), tasks, targets, weights)

    with atomic_dir(args.out) as tmp:
        if runs:
            repeats.to_csv(tmp / repeat_runs.SEED_PREDICTIONS, index=False)
        predictions.to_csv(tmp / "test_predictions.csv", index=False)
        labels.to_csv(tmp / "test_labels.csv", index=False)
        models.to_csv(tmp / "models.csv", index=False)
        for frame, name in zip(outside, (extras.EXTERNAL_MODELS_FILE, extras.EXTERNAL_PREDICTIONS_FILE, extras.READERS_FILE)):
            frame.to_csv(tmp / name, index=False)
    write_json(args.metrics, metrics)
    best = models["model"].iloc[int(aucs.mean(axis=1).argmax())]
    print(f"ensemble: {len(models)} model(s) on {len(labels)} test studies; best mean AUC {aucs.mean(axis=1).max():.4f} ({best})")


if __name__ == "__main__":
    schema.run_stage(main)
