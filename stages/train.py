"""Stages train_<kind>@<arch>-<init> (and truncate@<arch>-<k>): fine-tune one model on CheXpert.

Writes the top-k checkpoints (safetensors), validation and test predictions of every kept checkpoint,
model.json (what was trained, with the effective configuration) and a small metrics JSON.
With train.devices > 1 the script relaunches itself under torchrun (DistributedDataParallel).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cxrtransfer import chexpert, images, models, normalization as input_norm, params as schema, splits, training, weights
from cxrtransfer.cli import load_params, run_stage, section
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import atomic_dir, write_json


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--arch", required=True, help="an architecture of cxrtransfer/architectures.csv")
    parser.add_argument("--init", required=True, help="name of the initialization (random, imagenet, indomain, ...)")
    parser.add_argument("--init-weights", type=Path, required=True, help="body weights (safetensors) to start from")
    parser.add_argument("--normalization", type=Path, default=None,
                        help="the normalization stage's JSON (training-split mean/std; needed by init random)")
    parser.add_argument("--truncate", type=int, default=0, help="remove the final k blocks (GAP + FC head)")
    parser.add_argument("--cache", type=Path, required=True, help="the preprocess cache folder")
    parser.add_argument("--split", type=Path, required=True, help="the split table (CSV)")
    parser.add_argument("--out", type=Path, required=True, help="model folder (checkpoints, predictions)")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder for the curves")
    parser.add_argument("--state", type=Path, required=True,
                        help="resume state folder (outside DVC outputs, so the run-cache stays usable)")
    parser.add_argument("--timing", type=Path, default=None,
                        help="throughput and wall time JSON, not a DVC output (default: <state>.timing.json)")
    return parser.parse_args(argv)


def run_config(params: dict, arch: str, source: Path) -> dict:
    """train.* with the architecture's own overrides applied (overrides.<arch>)."""
    config = dict(section(params, "train", source))
    config.update(params.get("overrides", {}).get(arch) or {})
    return config


def training_tasks(config: dict, tasks: list[str], source: Path) -> list[str]:
    """train.tasks (default: data.tasks): the observations the model learns; it must include every
    evaluated task (data.tasks), which keep their own head outputs."""
    train_tasks = chexpert.validate_tasks(config.get("tasks") or tasks, f"{source}: train.tasks")
    missing = [t for t in tasks if t not in train_tasks]
    if missing:
        raise InputError(f"train.tasks must include every task of data.tasks; missing {missing}", source)
    return train_tasks


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    schema.check(params, ["data", "train"], args.params, arch=args.arch)
    config = run_config(params, args.arch, args.params)
    devices = int(config.get("devices", 1))
    if devices > 1 and "WORLD_SIZE" not in os.environ:
        training.relaunch_under_torchrun(devices, __file__, sys.argv[1:] if argv is None else list(argv))
        return
    data = section(params, "data", args.params)
    tasks = chexpert.validate_tasks(data["tasks"], str(args.params))
    train_tasks = training_tasks(config, tasks, args.params)
    policies = chexpert.task_policies(train_tasks, data["uncertainty"], str(args.params))
    evaluated = [train_tasks.index(t) for t in tasks]  # columns of the evaluated tasks in the model's output
    selection = chexpert.validate_tasks(config.get("selection_tasks") or tasks, str(args.params))
    fit_config = training.fit_config(config)

    spec = models.architecture(args.arch)
    models.check_input_size(args.arch, int(data["image_size"]))
    layout = training.ChexpertLayout(policies)
    # Seeded construction: the head (the only part not loaded below) starts the same on every run.
    model = training.seeded(fit_config.seed, models.build_model, args.arch, layout.width, truncate_blocks=args.truncate)
    body, _ = weights.load_safetensors(args.init_weights)
    weights.load_body(model, body, source=args.init_weights)
    normalization, normalization_source = input_norm.for_init(args.arch, args.init, args.normalization)

    image_array, index = images.read_cache(args.cache)
    split = splits.read_split(args.split, index)
    train_set = training.chexpert_set(image_array, index, split == "train", train_tasks, policies,
                                      bool(data.get("blank_as_negative", True)))
    valid_rows = np.flatnonzero((split == "valid").to_numpy())
    test_rows = np.flatnonzero((split == "test").to_numpy())
    valid_set = training.eval_set(image_array, valid_rows, len(tasks))
    scorer = training.study_auc_scorer(index.iloc[valid_rows], tasks, selection)

    def score(probabilities: np.ndarray) -> tuple[float, dict[str, float]]:
        return scorer(probabilities[:, evaluated])

    name = f"{args.arch}-{args.init}" + (f"-k{args.truncate}" if args.truncate else "")
    fingerprint = training.fingerprint(vars(args), config, data, [args.init_weights, args.cache / images.INDEX_FILE])
    # Rank 0 alone writes curves, checkpoints and outputs; a resumed fit() replays its saved curves.
    live = training.open_live(args.live) if training.is_main_process() else None
    device = training.pick_device(str(config.get("device", "auto")))
    started = time.perf_counter()
    print(f"train {name}: {len(train_set)} train / {len(valid_rows)} valid / {len(test_rows)} test images on {device}")
    result = training.fit(model, layout, train_set, valid_set, score, fit_config, args.state, fingerprint,
                          device=device, live=live, normalization=normalization)
    if not training.is_main_process():
        return
    live.end()

    test_set = training.eval_set(image_array, test_rows, len(tasks))
    description = {"arch": args.arch, "init": args.init, "family": spec.family, "truncate": args.truncate,
                   "params": models.count_parameters(model), "tasks": tasks, "train_tasks": train_tasks,
                   "policies": policies, "selection_tasks": selection, "image_size": int(data["image_size"]), "train": config,
                   "normalization": {"mean": list(normalization[0]), "std": list(normalization[1]),
                                     "source": normalization_source},
                   "kept": [{"step": s, "score": v} for v, s in result.kept]}
    with atomic_dir(args.out) as tmp:
        prediction_frames = {"valid": [], "test": []}
        (tmp / "checkpoints").mkdir()
        for step, value, path in training.iter_checkpoints(result):
            shutil.copy2(path, tmp / "checkpoints" / path.name)
            state, _ = weights.load_safetensors(path)
            model.load_state_dict(state)
            for split_name, rows, subset in (("valid", valid_rows, valid_set), ("test", test_rows, test_set)):
                probabilities = training.predict(model, layout, subset, device, fit_config.eval_batch_size,
                                                 normalization)[:, evaluated]
                frame = index.iloc[rows][["path", "patient", "study"]].reset_index(drop=True)
                frame[tasks] = probabilities
                frame.insert(0, "checkpoint", step)
                prediction_frames[split_name].append(frame)
        for split_name, frames in prediction_frames.items():
            pd.concat(frames).to_csv(tmp / f"{split_name}_predictions.csv", index=False, float_format="%.6g")
        write_json(tmp / "model.json", description)
    best = result.history[int(np.argmax([h["score"] for h in result.history]))]
    write_json(args.metrics, {"params": description["params"], "best_step": best["step"],
                              "val_auc_mean": best["score"], "val_auc": {t: best.get(f"auc/{t}") for t in tasks},
                              "kept_checkpoints": len(result.kept)})
    training.write_timing(args.timing or training.timing_path(args.state), result, device, started)
    shutil.rmtree(args.state, ignore_errors=True)  # done: the outputs now hold everything
    print(f"train {name}: best validation AUC {best['score']:.4f} at {best['step']} images; "
          f"{len(result.kept)} checkpoints kept -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
