"""`cxrtransfer parallel`: the model stages on N local workers, then the study-level stages.

    cxrtransfer parallel --workers 2 [--gpus 0,1]

Each worker runs one `dvc --wait-for-lock repro --single-item <stage>` at a time with its own
CUDA_VISIBLE_DEVICES (DVC releases the repo lock while a stage's command runs): no scheduler of our own.
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from ..errors import PipelineError
from ..pipeline.config import check, load_params
from ..pipeline.grid import declared_models, init_stages, seed_stages

PARAMS = Path("params.yaml")  # what dvc.yaml's stages read: the grid comes from the same file


def run_workers(stages: Sequence[str], workers: int, gpus: Sequence[str], dvc: Sequence[str],
                threads: int = 0) -> None:
    """Run `dvc --wait-for-lock repro --single-item <stage>` for every stage on `workers` parallel workers.

    Workers take the next stage from one shared list as they finish (DVC releases its repo lock while
    a stage's command runs, and --wait-for-lock covers the short locked phases before and after).
    """
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
    params = load_params(PARAMS)
    check(params, [], PARAMS)
    subprocess.run([*dvc, "repro", "split", "normalization", "preprocess_source"], check=True)
    # The model stages of the grid: the init stages are independent of each other, and so are the
    # train and truncate stages once every init stage has run.
    inits, trains = init_stages(params), [model.stage for model in declared_models(params)]
    trains += seed_stages(params)  # repeats with params seeds (the seed-0 items only write a note)
    # CPU workers share the cores: one thread each unless told otherwise (GPU workers: data loading only).
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    run_workers(inits, args.workers, gpus, dvc, threads)
    run_workers(trains, args.workers, gpus, dvc, threads)
    subprocess.run([*dvc, "repro"], check=True)  # the study-level stages (everything else is up to date)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--gpus", default="", help="comma-separated CUDA device ids, one per worker (round robin)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per worker (default: cores / workers)")
    p.add_argument("--dvc", default="dvc")
    p.set_defaults(func=parallel)
