"""Lab scale with what DVC and PyTorch provide: the paper configuration switch and parallel workers.

    python -m cxrtransfer.lab paper --data-root /data/chexpert [--measure] [--run]
    python -m cxrtransfer.lab parallel --workers 2 [--gpus 0,1]

`paper` writes configs/paper.yaml, a complete params file, as params.yaml with data.root set (nothing
is merged from the demo's params), after checking every param and printing the effective settings
beside the paper's values, how many stages and models the grid holds and an estimate of GPU-hours
from measured throughput; then (with --run) it runs `dvc repro`. `parallel` runs the model stages on
N local workers, each one `dvc --wait-for-lock repro <stage>` at a time with its own
CUDA_VISIBLE_DEVICES (DVC releases the repo lock while a stage's command runs), then the study-level
stages: no scheduler of our own.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from . import params as schema
from .cli import load_params
from .errors import InputError, PipelineError
from .fileio import atomic_path

# dvc.yaml's model stage groups: init_<kind>@..., then train_<kind>@... and truncate@... (kinds: params `inits`).
INIT_GROUP_PREFIX = "init_"
TRAIN_GROUP_PREFIXES = ("train_", "truncate@")
CHEXTRANSFER = "CheXtransfer"
REFERENCE_CODE = "CheXpert ref. code"
SIX_TASKS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion", "No Finding"]
# (setting, the paper's value, source): see ../shared/reference.md. Settings are dotted params keys.
PAPER_SETTINGS: tuple[tuple[str, Any, str], ...] = (
    ("architectures", ["densenet121", "densenet169", "densenet201", "resnet18", "resnet34", "resnet50",
                       "resnet101", "inception_v3", "inception_v4", "mnasnet", "efficientnet_b0",
                       "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "mobilenet_v2", "mobilenet_v3"],
     CHEXTRANSFER),
    ("inits", ["random", "imagenet"], CHEXTRANSFER),
    ("data.image_size", 320, CHEXTRANSFER),
    ("data.tasks", SIX_TASKS, CHEXTRANSFER),
    ("split.method", "official", CHEXTRANSFER),
    ("train.epochs", 3, CHEXTRANSFER),
    ("train.max_images", 0, CHEXTRANSFER),   # 0: every training image, no cap
    ("train.batch_size", 16, CHEXTRANSFER),
    ("train.lr", 1e-4, CHEXTRANSFER),
    ("train.betas", [0.9, 0.999], REFERENCE_CODE),
    ("train.weight_decay", 0.0, REFERENCE_CODE),
    ("train.eval_every_images", 8192, CHEXTRANSFER),
    ("train.top_k", 10, CHEXTRANSFER),
    ("train.selection_tasks", SIX_TASKS, CHEXTRANSFER),
    ("overrides", "none", CHEXTRANSFER),   # no per-architecture change of a train.* setting above
    ("normalization", "random: train mean/std, else ImageNet", CHEXTRANSFER),
    ("truncation.architectures", ["densenet121", "mnasnet", "resnet18", "efficientnet_b0"], CHEXTRANSFER),
    ("truncation.blocks", [1, 2, 3, 4], CHEXTRANSFER),
    ("truncation.init", "imagenet", CHEXTRANSFER),
    ("bootstrap.replicates", 1000, CHEXTRANSFER),
    ("bootstrap.confidence", 0.95, CHEXTRANSFER),
)


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` applied: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def init_names(params: Mapping[str, Any]) -> list[str]:
    """Every initialization of the grid: params `inits` maps each kind to its list of names."""
    return [name for names in params["inits"].values() for name in names]


def grid_plan(params: Mapping[str, Any]) -> dict[str, int]:
    """Stages and trained models that params.yaml describes (matches dvc.yaml's matrices)."""
    architectures, inits = list(params["architectures"]), init_names(params)
    truncation = params.get("truncation", {})
    truncated = len(truncation.get("architectures", [])) * len(truncation.get("blocks", []))
    pretraining = len(architectures) * len(params["inits"].get("indomain", []))
    return {"init_stages": len(architectures) * len(inits), "pretraining_runs": pretraining,
            "train_stages": len(architectures) * len(inits), "truncate_stages": truncated,
            "trained_models": len(architectures) * len(inits) + truncated}


def images_per_run(n_train: int, n_valid: int, epochs: int, eval_every: int, top_k: int, n_test: int) -> dict[str, float]:
    """Images one training run pushes forward+backward (train) and forward only (evaluation)."""
    trained = n_train * epochs
    evaluations = max(1, trained // eval_every) + 1
    return {"train": float(trained), "inference": float(evaluations * n_valid + top_k * (n_valid + n_test))}


def gpu_hours(plan_architectures: Sequence[str], runs_per_arch: Mapping[str, int], throughput: Mapping[str, float],
              work: Mapping[str, float], inference_speedup: float = 3.0) -> float:
    """Hours = sum over runs of train images / training throughput + inference images / (speedup x throughput)."""
    seconds = 0.0
    for arch in plan_architectures:
        rate = throughput[arch]
        seconds += runs_per_arch[arch] * (work["train"] / rate + work["inference"] / (inference_speedup * rate))
    return seconds / 3600.0


def measure_throughput(arch: str, image_size: int, batch_size: int, steps: int = 3) -> float:
    """Training images/s of one architecture on this machine's device (a few Adam steps after a warm-up)."""
    import numpy as np
    import torch

    from . import models, training
    device = training.pick_device()
    model = models.build_model(arch, 6).to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    layout = training.ChexpertLayout(["ones"] * 6)
    images = np.random.default_rng(0).integers(0, 256, (batch_size, image_size, image_size), dtype=np.uint8)
    zeros = np.zeros((batch_size, 6), dtype=np.float32)
    data = training.ImageSet(images, np.arange(batch_size), zeros, zeros + 1)
    positions = np.arange(batch_size)
    precision = training.Precision.for_device(device)  # once per run, as fit() does (a GradScaler keeps state)

    def step() -> None:
        training.train_step(model, layout, optimizer, data.batch(positions), device, models.normalization(arch),
                            precision)

    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def count_images(label_csv: Path, frontal_only: bool) -> int:
    import pandas as pd
    if not label_csv.is_file():
        raise InputError("label file not found (is data.root right?)", label_csv)
    frame = pd.read_csv(label_csv, usecols=["Frontal/Lateral"])
    return int((frame["Frontal/Lateral"] == "Frontal").sum()) if frontal_only else len(frame)


def setting_value(params: Mapping[str, Any], setting: str) -> Any:
    """The effective value of a PAPER_SETTINGS row in `params`."""
    if setting == "inits":
        return init_names(params)
    if setting == "overrides":
        paper_keys = {s.split(".", 1)[1] for s, _, _ in PAPER_SETTINGS if s.startswith("train.")}
        changed = sorted(f"{arch}.{key}" for arch, entry in (params.get("overrides") or {}).items()
                         for key in (entry or {}) if key in paper_keys)
        return ", ".join(changed) if changed else "none"
    if setting == "normalization":
        from .normalization import DATASET_INITS
        return f"{', '.join(DATASET_INITS)}: train mean/std, else ImageNet"
    node: Any = params
    for part in setting.split("."):
        node = node[part]
    return node


def settings_table(params: Mapping[str, Any], knobs: Mapping[str, str] | None = None
                   ) -> list[tuple[str, Any, Any, str, str]]:
    """(setting, effective value, paper value, source, status) per paper setting.

    status: "ok", "scale knob: <why>" for a deviation named in `knobs`, else "DIFFERS".
    """
    rows = []
    for setting, paper_value, source in PAPER_SETTINGS:
        value = setting_value(params, setting)
        status = "ok" if value == paper_value else (f"scale knob: {knobs[setting]}" if knobs and setting in knobs
                                                    else "DIFFERS")
        rows.append((setting, value, paper_value, source, status))
    return rows


def print_table(rows: Sequence[tuple[str, Any, Any, str, str]]) -> None:
    def short(value: Any) -> str:
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        if len(text) <= 30:
            return text
        return f"{len(value)} entries" if isinstance(value, list) else text[:27] + "..."
    print(f"  {'setting':<25} {'value':<30} {'paper':<30} {'source':<18} status")
    for setting, value, paper_value, source, status in rows:
        print(f"  {setting:<25} {short(value):<30} {short(paper_value):<30} {source:<18} {status}")


def paper_params(config_path: Path, data_root: Path) -> dict[str, Any]:
    """The complete paper params file with data.root set, every param checked."""
    params = load_params(config_path)
    params["data"]["root"] = str(data_root)
    schema.check(params, list(schema.SECTIONS), config_path)
    for arch in params["architectures"]:
        schema.check(params, ["train"], config_path, arch=arch)
    return params


def paper(args: argparse.Namespace) -> None:
    params_path, config_path = Path(args.params), Path(args.config)
    params = paper_params(config_path, args.data_root)
    rows = settings_table(params)
    print(f"paper configuration from {config_path} (data root {args.data_root}):")
    print_table(rows)
    differs = [row[0] for row in rows if row[4] == "DIFFERS"]
    if differs and not args.allow_deviations:
        raise InputError(f"{differs} differ from the paper's values (--allow-deviations to run anyway)", config_path)
    print_plan(params, args.measure)
    if args.dry_run:
        return
    header = f"# Written by `python -m cxrtransfer.lab paper` from {config_path} (data.root from --data-root).\n"
    with atomic_path(params_path) as tmp:
        tmp.write_text(header + yaml.safe_dump(params, sort_keys=False))
    print(f"wrote {params_path} (replaced, nothing merged); `git diff {params_path}` shows the switch")
    if args.run:
        sys.exit(subprocess.call(["dvc", "repro"]))


def print_plan(params: Mapping[str, Any], measure: bool) -> None:
    """Stages, models and images per run of the grid; with `measure`, device-hours from measured steps."""
    data, train = params["data"], params["train"]
    folder = Path(data["root"]) / data["dataset"]
    n_train = count_images(folder / "train.csv", bool(data.get("frontal_only")))
    n_valid = count_images(folder / "valid.csv", bool(data.get("frontal_only")))
    plan = grid_plan(params)
    work = images_per_run(n_train, n_valid, int(train["epochs"]), int(train["eval_every_images"]),
                          int(train["top_k"]), n_test=668)
    print("plan:")
    for key, value in plan.items():
        print(f"  {key:<18} {value}")
    print(f"  per run: {work['train']:,.0f} training images, {work['inference']:,.0f} inference images")
    if measure:
        truncated = set(params["truncation"]["architectures"])
        runs = {a: len(init_names(params)) + (len(params["truncation"]["blocks"]) if a in truncated else 0)
                for a in params["architectures"]}
        throughput = {a: measure_throughput(a, int(data["image_size"]), int(train["batch_size"]))
                      for a in params["architectures"]}
        for arch, rate in throughput.items():
            print(f"  measured {arch:<16} {rate:8.1f} img/s")
        hours = gpu_hours(params["architectures"], runs, throughput, work)
        print(f"  estimated device-hours on this machine's device: {hours:,.1f} "
              f"(truncated models counted at full-model cost)")
    else:
        print("  (add --measure to time a few training steps per architecture and estimate device-hours)")


def model_stages(stage_names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(init stages, train and truncate stages): each group's stages are independent of each other."""
    inits = [s for s in stage_names if s.startswith(INIT_GROUP_PREFIX)]
    trains = [s for s in stage_names if s.startswith(TRAIN_GROUP_PREFIXES)]
    return inits, trains


def run_workers(stages: Sequence[str], workers: int, gpus: Sequence[str], dvc: Sequence[str],
                threads: int = 0) -> None:
    """Run `dvc --wait-for-lock repro --single-item <stage>` for every stage on `workers` parallel workers.

    Workers take the next stage from one shared list as they finish (DVC releases its repo lock while
    a stage's command runs, and --wait-for-lock covers the short locked phases before and after).
    """
    import queue
    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    for stage in stages:
        pending.put(stage)

    def work(i: int) -> None:
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        while True:
            try:
                stage = pending.get_nowait()
            except queue.Empty:
                return
            done = subprocess.run([*dvc, "--wait-for-lock", "repro", "--single-item", stage], env=env)
            if done.returncode != 0:
                raise PipelineError(f"worker {i}: `dvc repro {stage}` failed (exit {done.returncode})")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(work, i) for i in range(workers)]:
            future.result()


def parallel(args: argparse.Namespace) -> None:
    dvc = [args.dvc]
    gpus = [g for g in args.gpus.split(",") if g] if args.gpus else []
    subprocess.run([*dvc, "repro", "split", "normalization", "preprocess_source"], check=True)
    listed = subprocess.run([*dvc, "stage", "list", "--name-only"], check=True, capture_output=True, text=True)
    inits, trains = model_stages(listed.stdout.split())
    # CPU workers share the cores: one thread each unless told otherwise (GPU workers: data loading only).
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    run_workers(inits, args.workers, gpus, dvc, threads)
    run_workers(trains, args.workers, gpus, dvc, threads)
    subprocess.run([*dvc, "repro"], check=True)  # the study-level stages (everything else is up to date)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cxrtransfer.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("paper", help="replace params.yaml with the paper's configuration")
    p.add_argument("--data-root", type=Path, required=True, help="the folder holding CheXpert-v1.0-small (or -v1.0)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--config", default="configs/paper.yaml")
    p.add_argument("--measure", action="store_true", help="time training steps per architecture for the estimate")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--allow-deviations", action="store_true",
                   help="switch even when a setting of the config differs from the paper's value")
    p.add_argument("--run", action="store_true", help="then run dvc repro")
    p.set_defaults(func=paper)
    q = sub.add_parser("parallel", help="run the model stages on N local workers")
    q.add_argument("--workers", type=int, default=2)
    q.add_argument("--gpus", default="", help="comma-separated CUDA device ids, one per worker (round robin)")
    q.add_argument("--threads", type=int, default=0, help="CPU threads per worker (default: cores / workers)")
    q.add_argument("--dvc", default="dvc")
    q.set_defaults(func=parallel)
    from . import slurm  # `lab slurm`: the grid as SLURM jobs
    slurm.add_parser(sub)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    from .cli import run_stage
    run_stage(main)
