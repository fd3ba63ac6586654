"""Row 4: the incremental DVC pipeline, in a temporary git + DVC copy with the tiny params of the pipeline tests.

Uses benchmarks/tiny_pipeline.py (as tests/e2e/test_pipeline.py does): `dvc repro` once, then a no-op `dvc repro` and a
`dvc status` (each against the DVC CLI's own start-up, `dvc version`, as the plain baseline), then one
architecture's `overrides.<arch>.seed` changes and `dvc repro` must rerun exactly that architecture's
model stages and the study-level stages fed by their outputs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from cxrtransfer.pipeline.grid import declared_models, training_seeds

from .common import row, skipped
from .tiny_pipeline import make_repo, ran, sh

TIME_TARGET_S = 5.0
STUDY_STAGES = ("ensemble", "bootstrap", "correlate", "report")
KEYS = {"noop": "pipeline/noop-repro", "status": "pipeline/status", "rerun": "pipeline/one-arch-seed"}
WHAT = {"noop": "no-op dvc repro vs dvc version", "status": "dvc status vs dvc version",
        "rerun": "stages rerun, overrides.<arch>.seed vs all"}
TARGETS = {"noop": f"< {TIME_TARGET_S:g} s", "status": f"< {TIME_TARGET_S:g} s", "rerun": "exactly expected"}


def skipped_rows(reason: str) -> list[dict[str, Any]]:
    return [skipped(KEYS[k], WHAT[k], TARGETS[k], reason) for k in KEYS]


def expected_reruns(params: dict[str, Any], arch: str) -> set[str]:
    """The stages a seed change of `arch` must rerun: its train_<kind>@ (and truncate@) stages and their seed
    repeats (params seeds), then the study stages."""
    models = declared_models(params, selected=arch)
    repeats = {model.seed_stage(seed) for model in models for seed in training_seeds(params)}  # seed-0 items too
    return {model.stage for model in models} | repeats | set(STUDY_STAGES)


def pick_architecture(params: dict[str, Any]) -> str:
    """An architecture of the grid, preferring one without truncation stages (the plainest case)."""
    truncated = set((params.get("truncation") or {}).get("architectures", []))
    plain = [a for a in params["architectures"] if a not in truncated]
    return (plain or list(params["architectures"]))[-1]


def _seconds(args: list[str], repo: Path, repeats: int) -> tuple[float, Any]:
    best, done = float("inf"), None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        done = sh(args, repo)
        best = min(best, time.perf_counter() - start)
    return best, done


def pipeline_rows(repeats: int = 2, log=print) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="cxr-bench-dvc-") as tmp:
        repo = make_repo(Path(tmp) / "repo")
        start = time.perf_counter()
        first = sh(["dvc", "repro"], repo)
        first_s = time.perf_counter() - start
        all_stages = ran(first.stdout)
        log(f"  pipeline: first dvc repro ran {len(all_stages)} stages in {first_s:.1f} s")

        startup_s, _ = _seconds(["dvc", "version"], repo, repeats)
        noop_s, noop = _seconds(["dvc", "repro"], repo, repeats)
        status_s, status = _seconds(["dvc", "status"], repo, repeats)
        noop_ran = ran(noop.stdout)
        status_clean = "up to date" in status.stdout.lower() or not status.stdout.strip()

        params = yaml.safe_load((repo / "params.yaml").read_text())
        arch = pick_architecture(params)
        params["overrides"][arch]["seed"] = int(params["overrides"][arch].get("seed", 0)) + 1
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        start = time.perf_counter()
        again = sh(["dvc", "repro"], repo)
        rerun_s = time.perf_counter() - start
        rerun = ran(again.stdout)
        expected = expected_reruns(params, arch)
        exact = set(rerun) == expected and len(rerun) == len(expected)

    return [
        row(KEYS["noop"], WHAT["noop"], "s", noop_s, startup_s, startup_s / noop_s, TARGETS["noop"],
            noop_s < TIME_TARGET_S, {"no stage ran": noop_ran == []}, stages_in_pipeline=len(all_stages),
            first_repro_s=first_s),
        row(KEYS["status"], WHAT["status"], "s", status_s, startup_s, startup_s / status_s, TARGETS["status"],
            status_s < TIME_TARGET_S, {"pipeline up to date": status_clean}),
        row(KEYS["rerun"], WHAT["rerun"].replace("<arch>", arch), "stages", len(rerun), len(all_stages),
            len(rerun) / max(1, len(all_stages)), TARGETS["rerun"], exact, {"exactly the expected stages": exact},
            arch=arch, rerun=sorted(rerun), expected=sorted(expected), repro_s=rerun_s),
    ]
