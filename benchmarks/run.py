"""The benchmark suite: `python -m benchmarks.run [--smoke] [--out metrics/bench.json]` (or `make bench`).

Every row compares a project figure with a plain baseline measured in the same run, so the ratios
hold across machines; `ratio` is always "times as fast as the baseline" (baseline / project for
seconds), except for the pipeline's stage count (rerun / all stages). The full suite takes about
5 minutes on 2 CPU cores; --smoke shrinks every size (under a minute) for CI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

import torch
from rich.console import Console
from rich.table import Table

from cxrtransfer.data import chexpert
from cxrtransfer.fileio import write_json
from cxrtransfer.pipeline.config import load_params

from . import bootstrap, host_path, pipeline, preprocessing, training_loop
from .common import row, skipped
from .real_labels import NAME as REAL_LABELS_NAME
from .real_labels import bench_real_labels

REPO = Path(__file__).resolve().parents[1]
REAL_LABELS_TARGET_S = 10.0
DEMO_SIZE_FALLBACK = 76


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (under a minute), for CI")
    parser.add_argument("--out", type=Path, default=Path("metrics/bench.json"), help="results JSON")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml",
                        help="demo image size, batch sizes, optimizer and uncertainty policies come from here")
    parser.add_argument("--only", nargs="+", choices=["train", "host", "preprocess", "bootstrap", "pipeline", "labels"],
                        help="run these groups only")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a row is below its target too (always: when a correctness check fails)")
    return parser.parse_args(argv)


def suite_sizes(smoke: bool, demo_size: int, batch_size: int, eval_batch_size: int) -> dict[str, Any]:
    """Every size of the suite; smoke mode shrinks them all."""
    if smoke:
        train = training_loop.TrainSizes(
            archs=("resnet18", "densenet121"), image_sizes=(40, 64), batch_size=batch_size, round_seconds=0.25,
            rounds=3, warmup_steps=1, min_steps=1, cache_images=64, eval_batch_size=eval_batch_size,
            eval_images=eval_batch_size, eval_repeats=1)
        # Real image sizes (the pixel checks depend on them), few images.
        cases = (preprocessing.PreprocessCase("390x320-to-224", 390, 320, 24, 224, True),
                 preprocessing.PreprocessCase("390x320-to-320", 390, 320, 24, 320, False),
                 preprocessing.PreprocessCase("2828x2320-to-224", 2828, 2320, 2, 224, False))
        prep = preprocessing.PreprocessSizes(cases, workers=2, repeats=1)
        boot = bootstrap.BootstrapSizes(models=4, tasks=6, replicates=100, studies=200, loop_replicates=4,
                                        check_replicates=4)
        host = host_path.HostSizes(image_size=320, cache_images=512, batch_size=batch_size, batches_per_round=32, rounds=5)
        return {"train": train, "host": host, "preprocess": prep, "bootstrap": boot}
    train = training_loop.TrainSizes(
        archs=("resnet18", "densenet121"), image_sizes=(demo_size, 224), batch_size=batch_size, round_seconds=3.0,
        rounds=4, warmup_steps=2, min_steps=1, cache_images=256, eval_batch_size=eval_batch_size,
        eval_images=4 * eval_batch_size, eval_repeats=2)
    cases = (preprocessing.PreprocessCase("390x320-to-224", 390, 320, 300, 224, True),
             preprocessing.PreprocessCase("390x320-to-320", 390, 320, 300, 320, False),
             preprocessing.PreprocessCase("2828x2320-to-224", 2828, 2320, 16, 224, False))
    prep = preprocessing.PreprocessSizes(cases, workers=2, repeats=3)
    boot = bootstrap.BootstrapSizes(models=32, tasks=6, replicates=1000, studies=500, loop_replicates=20,
                                    check_replicates=3)
    # The paper's 320 px; 2048 images (200 MB) is beyond the CPU caches, like the 23 GB cache.
    host = host_path.HostSizes(image_size=320, cache_images=2048, batch_size=batch_size, batches_per_round=64, rounds=7)
    return {"train": train, "host": host, "preprocess": prep, "bootstrap": boot}


def real_labels_rows(log=print) -> list[dict[str, Any]]:
    """The real CheXpert train.csv: parse + split time (time target) against a bare pandas read of the file."""
    import pandas as pd

    from cxrtransfer.data import real_labels

    key, target = "real-labels", f"< {REAL_LABELS_TARGET_S:g} s"
    result = bench_real_labels()
    if "skipped" in result:
        return [skipped(key, REAL_LABELS_NAME, target, result["skipped"])]
    path = real_labels.real_chexpert_labels_path()
    start = time.perf_counter()
    bare = pd.read_csv(path)
    bare_s = time.perf_counter() - start
    project_s = result["parse_s"] + result["split_s"]
    checks = {"every row parsed": result["rows"] == len(bare),
              "patient fractions within 0.01": all(abs(result["patient_fractions"][s] - f) < 0.01
                                                   for s, f in (("train", 0.75), ("valid", 0.10), ("test", 0.15)))}
    return [row(key, f"real labels parse+split, {result['rows']:,} rows vs pandas read", "s", project_s, bare_s,
                bare_s / project_s, target, project_s < REAL_LABELS_TARGET_S, checks, rows=result["rows"],
                rows_per_s=result["rows"] / project_s, parse_s=result["parse_s"], split_s=result["split_s"],
                patients=result["patients"])]


def _figure(value: float, unit: str) -> str:
    if unit == "stages":
        return f"{value:.0f} stages"
    if unit == "s":
        return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"
    return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"


def print_table(rows: list[dict[str, Any]], title: str, console: Console | None = None) -> None:
    table = Table(title=title, show_lines=False)
    for name, justify in (("what", "left"), ("project", "right"), ("baseline", "right"), ("ratio", "right"),
                          ("target", "left"), ("result", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "result")
    for r in rows:
        if "skipped" in r:
            label = "skipped" if all(r["checks"].values()) else "FAIL"
            table.add_row(r["what"], "-", "-", "-", r["target"], f"{label}: {r['skipped']}")
            continue
        failed_checks = [name for name, ok in r["checks"].items() if not ok]
        verdict = {True: "pass", False: "FAIL", None: "info"}[r["passed"]]
        if failed_checks:
            verdict = "FAIL (" + "; ".join(failed_checks) + ")"
        ratio = f"{r['ratio']:.2f}" if r["unit"] == "stages" else f"{r['ratio']:.2f}x"
        table.add_row(r["what"], _figure(r["project"], r["unit"]), _figure(r["baseline"], r["unit"]), ratio,
                      r["target"], verdict)
    if console is None:
        console = Console()
        if not console.is_terminal:  # logs and CI: wide enough for one line per row
            console = Console(width=160)
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    params = load_params(args.params) if args.params.is_file() else {}
    data, train = params.get("data", {}), params.get("train", {})
    demo_size = int(data.get("image_size", DEMO_SIZE_FALLBACK))
    tasks = chexpert.validate_tasks(data.get("tasks", list(chexpert.COMPETITION_TASKS)))
    policies = chexpert.task_policies(tasks, data.get("uncertainty", {"default": "ones"}))
    betas = tuple(float(b) for b in train.get("betas", (0.9, 0.999)))
    lr, weight_decay = float(train.get("lr", 1e-4)), float(train.get("weight_decay", 0.0))
    sizes = suite_sizes(args.smoke, demo_size, int(train.get("batch_size", 16)),
                        int(train.get("eval_batch_size", 128)))
    groups = set(args.only or ["train", "host", "preprocess", "bootstrap", "pipeline", "labels"])
    log = lambda message: print(message, flush=True)  # noqa: E731

    started = time.perf_counter()
    measured: dict[str, list[dict[str, Any]]] = {}

    def measure(group: str, title: str, function) -> None:
        """Run one group; an exception becomes a failed row (the other groups' results are kept)."""
        if group not in groups:
            return
        log(f"{title} ...")
        try:
            measured[group] = function()
        except Exception as err:  # noqa: BLE001 - reported as a failed row, with the traceback on stderr
            traceback.print_exc()
            measured[group] = [{"key": f"{group}/error", "what": f"{title}: error", "target": "-", "passed": None,
                                "skipped": f"{type(err).__name__}: {err}"[:200],
                                "checks": {"ran without error": False}}]

    measure("train", "training step and inference",
            lambda: training_loop.training_rows(sizes["train"], policies, lr, betas, weight_decay, log=log))
    measured["eval"] = [r for r in measured.get("train", []) if r["key"].startswith("eval/")]
    measured["train"] = [r for r in measured.get("train", []) if not r["key"].startswith("eval/")]
    measure("host", "host data path", lambda: host_path.host_rows(sizes["host"], log=log))
    measure("preprocess", "preprocessing", lambda: preprocessing.preprocessing_rows(sizes["preprocess"], log=log))
    measure("bootstrap", "bootstrap", lambda: bootstrap.bootstrap_rows(sizes["bootstrap"], log=log))
    measure("labels", "real labels", lambda: real_labels_rows(log=log))
    if args.smoke:
        measure("pipeline", "incremental pipeline",
                lambda: pipeline.skipped_rows("smoke mode (tests/e2e/test_pipeline.py covers it)"))
    else:
        measure("pipeline", "incremental pipeline (a tiny dvc repro in a temporary repository)",
                lambda: pipeline.pipeline_rows(log=log))
    # The order: training, preprocessing, statistics, pipeline, evaluation, then the real labels.
    rows = [r for group in ("train", "host", "preprocess", "bootstrap", "pipeline", "eval", "labels")
            for r in measured.get(group, [])]
    total_s = time.perf_counter() - started

    mode = "smoke" if args.smoke else "full"
    print_table(rows, f"cxrtransfer benchmarks ({mode}, {os.cpu_count()} CPUs, {total_s:.0f} s)")
    broken = [r["key"] for r in rows if not all(r.get("checks", {}).values())]
    slow = [r["key"] for r in rows if r.get("passed") is False]
    failed = sorted(set(broken) | set(slow))
    write_json(args.out, {
        "mode": mode, "total_s": total_s, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu", "python": sys.version.split()[0],
        "torch": torch.__version__, "failed": failed, "checks_failed": broken, "rows": {r["key"]: r for r in rows}})
    if args.smoke:
        print("smoke mode: tiny sizes check that every row runs and its results are correct; "
              "the speed targets apply to the full run")
    print(f"{len(rows)} rows: {len(slow)} below target, {len(broken)} failing a correctness check -> {args.out}")
    return 1 if broken or (args.strict and slow) else 0


if __name__ == "__main__":
    sys.exit(main())
