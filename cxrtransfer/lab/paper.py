"""`cxrtransfer paper`: switch to the paper's configuration, after checking and planning it.

    cxrtransfer paper --data-root /data/chexpert [--measure] [--run]

Writes configs/paper.yaml, a complete params file, as params.yaml with data.root set (nothing is
merged from the demo's params), after checking every param and printing the effective settings
beside the paper's values, how many stages and models the grid holds and an estimate of GPU-hours
from measured throughput; then (with --run) it becomes `cxrtransfer parallel` (exec: no CUDA context left in this process).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from ..errors import InputError
from ..fileio import atomic_path
from ..models.normalization import DATASET_INITS
from ..pipeline import config as schema
from ..pipeline.grid import declared_models, grid_plan, init_names, seed_runs
from ..stats.paper_settings import PAPER_SETTINGS
from ..training.dataset import ImageSet
from ..training.devices import pick_device
from .gpu_check import Sizes, timed_steps
from .gpu_plan import PEAKS, RESULTS, grid_flops, measured_rates, training_gflop
from .paper_fidelity import fidelity_rows, print_fidelity

# Settings where the paper configuration deliberately departs from the paper, and why.
DELIBERATE = {"bootstrap.replicates": "10,000: at the paper's 1,000 the smallest Holm p of a 96-test family is 0.19"}


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


def measure_throughput(arch: str, image_size: int, batch_size: int, steps: int = 20) -> float:
    """Training images/s of one architecture on this machine's device: gpu-check's timed steps (the loop's
    own step with prefetch, after 3 warm-up steps: cuDNN's kernel choice, the allocator) on one batch of
    random images; 20 steps, as 3 would time mostly launch jitter on a GPU."""
    images = np.random.default_rng(0).integers(0, 256, (batch_size, image_size, image_size), dtype=np.uint8)
    zeros = np.zeros((batch_size, 6), dtype=np.float32)
    data = ImageSet(images, np.arange(batch_size), zeros, zeros + 1)
    sizes = Sizes(image_size, batch_size, steps=steps, warmup=3, patients=0, architectures=(arch,))
    return timed_steps(arch, data, ["ones"] * 6, pick_device(), sizes)[0]


def count_images(label_csv: Path, frontal_only: bool) -> int:
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
        return f"{', '.join(DATASET_INITS)}: train mean/std, else ImageNet"
    node: Any = params
    for part in setting.split("."):
        node = node[part]
    return node


def settings_table(params: Mapping[str, Any], knobs: Mapping[str, str] | None = None
                   ) -> list[tuple[str, Any, Any, str, str]]:
    """(setting, effective value, paper value, source, status) per paper setting.

    status: "ok", "scale knob: <why>" for a deviation named in `knobs`, "deliberate: <why>" for one of
    DELIBERATE, else "DIFFERS".
    """
    rows = []
    for setting, paper_value, source in PAPER_SETTINGS:
        value = setting_value(params, setting)
        status = "ok" if value == paper_value else (f"scale knob: {knobs[setting]}" if knobs and setting in knobs
                                                    else f"deliberate: {DELIBERATE[setting]}" if setting in DELIBERATE
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


def global_batches(params: Mapping[str, Any], config_path: Path) -> dict[str, tuple[int, int]]:
    """(global batch, DDP processes) of each architecture: train.* with overrides.<arch> applied
    (train.batch_size is the global batch; the params check refuses a split that does not divide)."""
    trains = {arch: schema.check(params, ["train"], config_path, arch=arch)["train"] for arch in params["architectures"]}
    return {arch: (int(train["batch_size"]), int(train["devices"])) for arch, train in trains.items()}


def check_global_batch(params: Mapping[str, Any], config_path: Path) -> list[str]:
    """Print each architecture's global batch and its split over processes; name those that are not the paper's."""
    paper_batch = next(value for setting, value, _ in PAPER_SETTINGS if setting == "train.batch_size")
    batches = global_batches(params, config_path)
    split = {f"{devices} x {batch // devices}" for batch, devices in batches.values()}
    print(f"global batch per architecture (processes x per-process batch): {', '.join(sorted(split))}")
    differs = [f"global batch of {arch} ({batch})" for arch, (batch, _) in batches.items() if batch != paper_batch]
    for arch, (batch, devices) in batches.items():
        if batch != paper_batch or devices > 1:
            print(f"  {arch:<18} {batch} = {devices} x {batch // devices}  {'DIFFERS' if batch != paper_batch else 'ok'}")
    return differs


def paper_params(config_path: Path, data_root: Path) -> dict[str, Any]:
    """The complete paper params file with data.root set, every param checked."""
    params = schema.load_params(config_path)
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
    print_fidelity(fidelity_rows(params))
    differs = [row[0] for row in rows if row[4] == "DIFFERS"] + check_global_batch(params, config_path)
    if differs and not args.allow_deviations:
        raise InputError(f"{differs} differ from the paper's values (--allow-deviations to run anyway)", config_path)
    print_plan(params, args.measure, args.device)
    if args.dry_run:
        return
    header = f"# Written by `cxrtransfer paper` from {config_path} (data.root from --data-root).\n"
    with atomic_path(params_path) as tmp:
        tmp.write_text(header + yaml.safe_dump(params, sort_keys=False))
    print(f"wrote {params_path} (replaced, nothing merged); `git diff {params_path}` shows the switch")
    if args.run:
        # exec, not a child: the process is replaced, so --measure's CUDA context is gone while workers train
        os.execv(sys.executable, [sys.executable, "-m", "cxrtransfer", "parallel"])


def time_to_paper(runs: Mapping[str, int], work: Mapping[str, float], image_size: int, device: str,
                  results: Path = RESULTS) -> list[str]:
    """The grid's FLOPs (cxrtransfer/models/flops.csv), the ideal hours at `device`'s bf16 dense peak and,
    where gpu-check measured that device, the expected hours and their ratio to the ideal."""
    peak, _, source = PEAKS[device]
    total = grid_flops(runs, work, image_size)
    ideal = total / peak / 3600
    lines = [f"  training GFLOP per image at {image_size} px (forward + backward, FlopCounterMode): "
             + ", ".join(f"{a} {training_gflop(a, image_size):.1f}" for a in runs),
             f"  grid: {total:.3e} FLOP (truncated models counted at full-model cost)",
             f"  ideal at {device} peak {peak / 1e12:.0f} TFLOP/s ({source}): {ideal:,.2f} device-hours"]
    rates, path = measured_rates(device, results)
    if path is None or not set(runs) <= set(rates):
        lines.append(f"  no gpu-check img/s for every architecture on {device} in {results}: no expected hours")
        return lines
    expected = gpu_hours(list(runs), runs, rates, work)
    lines.append(f"  expected at gpu-check's img/s ({path}): {expected:,.2f} device-hours, "
                 f"{expected / ideal:.1f} x the ideal")
    return lines


def print_plan(params: Mapping[str, Any], measure: bool, device: str = "h100-sxm") -> None:
    """Stages, models and images per run of the grid, its FLOPs and ideal hours at `device`'s peak (and
    expected hours from gpu-check's img/s on it); with `measure`, device-hours from steps timed here."""
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
    per_arch = Counter(model.arch for model in declared_models(params) + seed_runs(params))  # repeats: seeds
    runs = {a: per_arch[a] for a in params["architectures"]}
    print("\n".join(time_to_paper(runs, work, int(data["image_size"]), device)))
    if measure:
        throughput = {a: measure_throughput(a, int(data["image_size"]), int(train["batch_size"]))
                      for a in params["architectures"]}
        for arch, rate in throughput.items():
            print(f"  measured {arch:<16} {rate:8.1f} img/s")
        hours = gpu_hours(params["architectures"], runs, throughput, work)
        print(f"  estimated device-hours on this machine's device: {hours:,.1f} "
              f"(truncated models counted at full-model cost)")
    else:
        print("  (add --measure to time a few training steps per architecture and estimate device-hours)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", type=Path, required=True, help="the folder holding CheXpert-v1.0-small (or -v1.0)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--config", default="configs/paper.yaml")
    p.add_argument("--measure", action="store_true", help="time training steps per architecture for the estimate")
    p.add_argument("--dry-run", "--plan", dest="dry_run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--device", choices=sorted(PEAKS), default="h100-sxm",
                   help="the GPU whose bf16 peak (and gpu-check img/s, where measured) the time-to-paper assumes")
    p.add_argument("--allow-deviations", action="store_true",
                   help="switch even when a setting of the config differs from the paper's value")
    p.add_argument("--run", action="store_true", help="then run `cxrtransfer parallel` (every visible GPU)")
    p.set_defaults(func=paper)
