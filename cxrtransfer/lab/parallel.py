"""`cxrtransfer parallel`: the model stages on every visible GPU (or N CPU workers), then the study stages.

    cxrtransfer parallel [--models-per-gpu 4] [--gpus 0,1,...] [--workers 2 (CPU only)]

Each worker runs its stages one after another, each as `dvc --wait-for-lock repro --single-item <stage>`,
with CUDA_VISIBLE_DEVICES naming exactly its GPUs (DVC releases the repo lock while a stage's command
runs): one worker per GPU, `--models-per-gpu` workers sharing each GPU, and a stage with `devices: k` on k
GPUs of its own (its torchrun ranks see them as cuda:0..k-1). The plan (lab/gpu_plan.py) is printed first.
This process never touches CUDA: the GPUs are found with nvidia-smi, and the workers hold the contexts.
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import PipelineError
from ..pipeline.config import check, load_params
from ..pipeline.grid import declared_models, init_stages, training_seeds
from .gpu_plan import PEAKS, Lane, assign_lanes, measured_rates, plan_lines, stage_hours, visible_gpus

PARAMS = Path("params.yaml")  # what dvc.yaml's stages read: the grid comes from the same file


def run_stage(stage: str, env: Mapping[str, str], dvc: Sequence[str], who: str) -> None:
    done = subprocess.run([*dvc, "--wait-for-lock", "repro", "--single-item", stage], env=dict(env))
    if done.returncode != 0:
        raise PipelineError(f"{who}: `dvc repro {stage}` failed (exit {done.returncode})")


def worker_env(gpus: Sequence[str], threads: int) -> dict[str, str]:
    """The environment of a worker: its GPUs only (a CPU worker: none visible), its CPU threads."""
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_workers(stages: Sequence[str], workers: int, gpus: Sequence[str], dvc: Sequence[str],
                threads: int = 0) -> None:
    """Every stage on `workers` parallel workers taking the next stage from one shared list as they finish
    (the init stages: short, and GPU-free); worker i sees GPU i mod len(gpus)."""
    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    for stage in stages:
        pending.put(stage)

    def work(i: int) -> None:
        env = worker_env([gpus[i % len(gpus)]] if gpus else [], threads)
        while True:
            try:
                stage = pending.get_nowait()
            except queue.Empty:
                return
            run_stage(stage, env, dvc, f"worker {i}")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(work, i) for i in range(workers)]:
            future.result()


def run_lanes(phases: Sequence[Sequence[Lane]], dvc: Sequence[str], threads: int = 0) -> None:
    """Each phase's lanes in parallel, each lane's stages in its order, on exactly its GPUs."""
    for phase in phases:
        with ThreadPoolExecutor(max_workers=len(phase)) as pool:
            futures = [pool.submit(lambda ln=lane: [run_stage(s, worker_env(ln.gpus, threads), dvc,
                                                              f"GPU {','.join(ln.gpus) or 'none'}")
                                                    for s in ln.stages]) for lane in phase]
            for future in futures:
                future.result()


def train_images(params: Mapping[str, Any]) -> float:
    """Training images of one run: epochs x the label file's rows (capped by max_images); 0 if the label
    file is not there yet."""
    data, train = params["data"], params["train"]
    labels = Path(data["root"]) / data["dataset"] / "train.csv"
    if not labels.is_file():
        return 0.0
    with labels.open() as f:
        n = sum(1 for _ in f) - 1
    total = int(train["epochs"]) * n
    return float(min(total, int(train["max_images"])) if train.get("max_images") else total)


def stage_costs(params: Mapping[str, Any], device: str) -> dict[str, tuple[int, float]]:
    """Every model stage: (GPUs it trains on, expected hours: measured img/s on `device` where gpu-check
    measured it, else the FLOPs ideal at its peak); truncated models counted at the full model's cost."""
    images, size = train_images(params), int(params["data"]["image_size"])
    rates, _ = measured_rates(device)
    costs = {}
    for model in declared_models(params):
        devices = check(params, ["data", "train"], PARAMS, arch=model.arch)["train"]["devices"]
        ideal, expected = stage_hours(images, model.arch, size, device, rates)
        costs[model.stage] = (devices, expected if expected is not None else ideal)
        for seed in training_seeds(params):  # the repeats (the seed-0 item only writes a note)
            costs[model.seed_stage(seed)] = (devices, costs[model.stage][1] if seed else 0.0)
    return costs


def parallel(args: argparse.Namespace) -> None:
    dvc = [args.dvc]
    gpus = [g for g in args.gpus.split(",") if g] if args.gpus else visible_gpus()
    params = load_params(PARAMS)
    check(params, [], PARAMS)
    subprocess.run([*dvc, "repro", "split", "normalization", "preprocess_source"], check=True)
    costs = stage_costs(params, args.device)
    phases = assign_lanes(costs, gpus, args.models_per_gpu, args.workers)
    print(f"plan: {sum(len(ln.stages) for p in phases for ln in p)} model stages on "
          f"{len(gpus)} GPU(s) x {args.models_per_gpu} model(s) each" if gpus else f"on {args.workers} CPU workers")
    print(f"  expected hours: gpu-check's img/s on {args.device} where measured, else its FLOPs peak "
          f"({PEAKS[args.device][0] / 1e12:.0f} TFLOP/s)")
    if not any(hours for _, hours in costs.values()):
        print("  (no label file at data.root yet: hours unknown, stages spread evenly)")
    print("\n".join(plan_lines(phases)), flush=True)
    workers = max(len(p) for p in phases) if phases else args.workers
    # CPU workers share the cores: one thread each unless told otherwise (GPU workers: data loading only).
    threads = args.threads or max(1, (os.cpu_count() or 1) // workers)
    run_workers(init_stages(params), workers, gpus, dvc, threads)
    run_lanes(phases, dvc, threads)
    subprocess.run([*dvc, "repro"], check=True)  # the study-level stages (everything else is up to date)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=2, help="CPU workers (without GPUs)")
    p.add_argument("--gpus", default="", help="comma-separated CUDA ids to use (default: every visible GPU)")
    p.add_argument("--models-per-gpu", type=int, default=1, help="single-GPU stages trained at once on each GPU")
    p.add_argument("--device", choices=sorted(PEAKS), default="h100-sxm",
                   help="whose measured img/s (else FLOPs peak) the plan's hours assume")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per worker (default: cores / workers)")
    p.add_argument("--dvc", default="dvc")
    p.set_defaults(func=parallel)
