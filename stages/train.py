"""Stages train_<kind>@<arch>-<init> (and truncate@<arch>-<k>): fine-tune one model on CheXpert.

Writes the top-k checkpoints (safetensors), validation and test predictions of every kept checkpoint,
model.json (what was trained, with the effective configuration) and a small metrics JSON.
With train.devices > 1 the script relaunches itself under torchrun (DistributedDataParallel); the ranks
share the global batch train.batch_size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cxrtransfer.data import chexpert, images, splits
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import write_json
from cxrtransfer.models import architectures, normalization, tensorfiles, weights
from cxrtransfer.pipeline import config as schema
from cxrtransfer.pipeline.grid import DeclaredModel
from cxrtransfer.training import dataset, devices, distributed, layouts, loop, outputs, validation


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--arch", required=True, help="an architecture of cxrtransfer/models/architectures.csv")
    parser.add_argument("--init", required=True, help="name of the initialization (random, imagenet, indomain, ...)")
    parser.add_argument("--init-weights", type=Path, default=None,
                        help="body weights (safetensors) to start from (required but for a random-init repeat)")
    parser.add_argument("--seed", type=int, default=None,
                        help="a repeat (params seeds): added to train.seed and, for init random, to init.seed (the "
                             "body is drawn here); 0 is the configured run, trained by its own stage: write a note only")
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


def training_tasks(config: dict, tasks: list[str], source: Path) -> list[str]:
    """train.tasks (default: data.tasks): the observations the model learns; it must include every
    evaluated task (data.tasks), which keep their own head outputs."""
    train_tasks = chexpert.validate_tasks(config["tasks"] or tasks, f"{source}: train.tasks")
    missing = [t for t in tasks if t not in train_tasks]
    if missing:
        raise InputError(f"train.tasks must include every task of data.tasks; missing {missing}", source)
    return train_tasks


def task_plan(data: dict, config: dict, source: Path) -> dict[str, Any]:
    """Evaluated tasks, trained tasks with their policies, the evaluated tasks' output columns, selection tasks."""
    tasks = chexpert.validate_tasks(data["tasks"], str(source))
    train_tasks = training_tasks(config, tasks, source)
    return {"tasks": tasks, "train_tasks": train_tasks,
            "policies": chexpert.task_policies(train_tasks, data["uncertainty"], str(source)),
            "evaluated": [train_tasks.index(t) for t in tasks],   # their columns in the model's output
            "selection": chexpert.validate_tasks(config["selection_tasks"] or tasks, str(source))}


def drawn_body_seed(args: argparse.Namespace, params: dict) -> int | None:
    """A random-init repeat draws its body here with init.seed + --seed; None: the body is --init-weights."""
    if args.seed and schema.init_kind(args.init) == "random":
        return schema.check(params, ["init"], args.params)["init"]["seed"] + args.seed
    if args.init_weights is None:
        raise InputError("--init-weights is required (only a random-init repeat, --seed > 0, draws its body)",
                          args.params)
    return None


def starting_model(args: argparse.Namespace, layout: layouts.ChexpertLayout, seed: int, image_size: int,
                   body_seed: int | None = None) -> Any:
    """The architecture (truncated by --truncate) with the init's body loaded (or drawn with body_seed);
    the head seeded."""
    architectures.check_input_size(args.arch, image_size)
    # Seeded construction: the head (the only part not loaded below) starts the same on every run.
    model = loop.seeded(seed, architectures.build_model, args.arch, layout.width, truncate_blocks=args.truncate)
    if body_seed is None:
        body, _ = tensorfiles.load_safetensors(args.init_weights)
    else:
        body = weights.initial_body(args.arch, "random", weights_dir=None, seed=body_seed)
    weights.load_body(model, body, source=args.init_weights or f"random body, seed {body_seed}")
    return model


def describe(args: argparse.Namespace, model: Any, plan: dict[str, Any], image_size: int, config: dict,
             norm: tuple[normalization.Normalization, str], result: loop.FitResult) -> dict[str, Any]:
    """model.json: what was trained, with the effective configuration."""
    (mean, std), source = norm
    return {"arch": args.arch, "init": args.init, "family": architectures.architecture(args.arch).family,
            "truncate": args.truncate, "params": architectures.count_parameters(model), "tasks": plan["tasks"],
            "train_tasks": plan["train_tasks"], "policies": plan["policies"], "selection_tasks": plan["selection"],
            "image_size": image_size, "train": config,
            "normalization": {"mean": list(mean), "std": list(std), "source": source},
            "kept": [{"step": s, "score": v} for v, s in result.kept]}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    params = schema.load_params(args.params)
    settings = schema.check(params, ["data", "train"], args.params, arch=args.arch)
    data, config = settings["data"], settings["train"]
    name = DeclaredModel(args.arch, args.init, args.truncate, args.seed or 0).name
    if args.seed == 0:  # the seed-0 item of a seed group (DVC cannot leave it out): the configured run stands
        write_json(args.metrics, {"seed": 0, "same_as": name})
        print(f"train {name}: seed 0 is the configured run, trained by its own stage; nothing to train")
        return
    body_seed = drawn_body_seed(args, params)
    config = {**config, "seed": config["seed"] + (args.seed or 0)}
    if config["devices"] > 1 and "WORLD_SIZE" not in os.environ:
        distributed.relaunch_under_torchrun(config["devices"], __file__, sys.argv[1:] if argv is None else list(argv))
        return
    plan, fit_config, image_size = task_plan(data, config, args.params), loop.fit_config(config), data["image_size"]
    layout = layouts.ChexpertLayout(plan["policies"])
    model = starting_model(args, layout, fit_config.seed, image_size, body_seed)
    norm = normalization.for_init(args.arch, args.init, args.normalization)

    image_array, index = images.read_cache(args.cache)
    split = splits.read_split(args.split, index)
    train_set = dataset.chexpert_set(image_array, index, split == "train", plan["train_tasks"], plan["policies"],
                                     data["blank_as_negative"])
    rows = {name: np.flatnonzero((split == name).to_numpy()) for name in ("valid", "test")}
    evaluation = {name: (index.iloc[r], dataset.eval_set(image_array, r, len(plan["tasks"]))) for name, r in rows.items()}
    scorer = validation.study_auc_scorer(index.iloc[rows["valid"]], plan["tasks"], plan["selection"])

    def score(logits: np.ndarray) -> tuple[float, dict[str, float]]:  # fit() predicts raw logits (RawLogits)
        return scorer(layouts.score_columns(logits, layout, plan["evaluated"], plan["tasks"]))

    inputs = [p for p in (args.init_weights, args.cache / images.INDEX_FILE) if p is not None]
    fingerprint = loop.fingerprint(vars(args), config, data, inputs)
    # Rank 0 alone writes curves, checkpoints and outputs; a resumed fit() replays its saved curves.
    live = outputs.open_live(args.live) if distributed.is_main_process() else None
    device = devices.pick_device(config["device"])
    started = time.perf_counter()
    print(f"train {name}: {len(train_set)} train / {len(rows['valid'])} valid / {len(rows['test'])} test images on {device}")
    result = loop.fit(model, layouts.RawLogits(layout), train_set, evaluation["valid"][1], score, fit_config, args.state, fingerprint,
                      device=device, live=live, normalization=norm[0])
    if not distributed.is_main_process():
        return
    live.end()

    predictions = outputs.checkpoint_predictions(model, layout, result, evaluation, plan["evaluated"], plan["tasks"],
                                                 device, fit_config.eval_batch_size, norm[0])
    description = describe(args, model, plan, image_size, config, norm, result)
    outputs.write_model_folder(args.out, result, predictions, description)
    best = outputs.best_evaluation(result)
    write_json(args.metrics, {"params": description["params"], "best_step": best["step"],
                              "val_auc_mean": best["score"], "val_auc": {t: best.get(f"auc/{t}") for t in plan["tasks"]},
                              "kept_checkpoints": len(result.kept)})
    outputs.write_timing(args.timing or outputs.timing_path(args.state), result, device, started)
    shutil.rmtree(args.state, ignore_errors=True)  # done: the outputs now hold everything
    print(f"train {name}: best validation AUC {best['score']:.4f} at {best['step']} images; "
          f"{len(result.kept)} checkpoints kept -> {args.out}")


if __name__ == "__main__":
    schema.run_stage(main)
